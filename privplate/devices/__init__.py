"""Edge devices: registration, signed requests and the ingest batch format."""

from privplate.devices.batches import IngestBatch
from privplate.devices.protocol import DeviceKey, seal_to_device
from privplate.devices.registry import DeviceInfo

__all__ = ["DeviceInfo", "DeviceKey", "IngestBatch", "seal_to_device"]
