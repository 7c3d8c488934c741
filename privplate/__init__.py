"""privplate: privacy-preserving automatic licence plate recognition.

Plates are read at the edge and stored only as keyed tokens; images are sealed; retention is
enforced by deleting rows and destroying keys; every privileged action is audited.

``import privplate`` is light: it loads no database, server or vision library. Each name below
is imported on first use, so an embedding program pays only for what it touches (the vision
names need the ``edge`` extra, ``Deployment`` the core install's database code).

    reader = privplate.load_reader(models_dir="models")      # registry names, no deployment
    pipeline = privplate.EdgePipeline(reader, spool, camera_id="gate-1", keys=keyring)
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("privplate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

#: Public name -> the module that defines it.
_EXPORTS = {
    # deployments and the domain layer
    "Deployment": "privplate.deployment",
    "init_deployment": "privplate.deployment",
    "Services": "privplate.services",
    "PrivplateError": "privplate.errors",
    # primitives
    "canonical_plate": "privplate.tokens",
    "plate_token": "privplate.tokens",
    "generate_keypair": "privplate.sealing",
    "open_sealed": "privplate.sealing",
    "seal": "privplate.sealing",
    # recognition (edge extra)
    "Detector": "privplate.vision.interfaces",
    "Recognizer": "privplate.vision.interfaces",
    "PlateReading": "privplate.vision.types",
    "Detection": "privplate.vision.types",
    "PlateReader": "privplate.vision.reader",
    "ReaderOptions": "privplate.vision.reader",
    "load_reader": "privplate.vision.factory",
    # the edge
    "Source": "privplate.edge.sources",
    "Frame": "privplate.edge.sources",
    "open_source": "privplate.edge.sources",
    "EdgePipeline": "privplate.edge.pipeline",
    "ReadSink": "privplate.edge.pipeline",
    "KeySource": "privplate.edge.reads",
    "Spool": "privplate.edge.spool",
    "Uplink": "privplate.edge.uplink",
}

__all__ = [
    "Deployment",
    "Detection",
    "Detector",
    "EdgePipeline",
    "Frame",
    "KeySource",
    "PlateReader",
    "PlateReading",
    "PrivplateError",
    "ReadSink",
    "ReaderOptions",
    "Recognizer",
    "Services",
    "Source",
    "Spool",
    "Uplink",
    "__version__",
    "canonical_plate",
    "generate_keypair",
    "init_deployment",
    "load_reader",
    "open_sealed",
    "open_source",
    "plate_token",
    "seal",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'privplate' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:
    from privplate.deployment import Deployment, init_deployment
    from privplate.edge.pipeline import EdgePipeline, ReadSink
    from privplate.edge.reads import KeySource
    from privplate.edge.sources import Frame, Source, open_source
    from privplate.edge.spool import Spool
    from privplate.edge.uplink import Uplink
    from privplate.errors import PrivplateError
    from privplate.sealing import generate_keypair, open_sealed, seal
    from privplate.services import Services
    from privplate.tokens import canonical_plate, plate_token
    from privplate.vision.factory import load_reader
    from privplate.vision.interfaces import Detector, Recognizer
    from privplate.vision.reader import PlateReader, ReaderOptions
    from privplate.vision.types import Detection, PlateReading
