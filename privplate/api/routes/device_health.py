"""Signed health reports from edge devices (every minute): the latest is kept per device and
per camera, shown in /metrics and checked by the leader for silent cameras and spool backlogs."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from privplate.api.deps import DeviceCaller, ServicesDep
from privplate.devices.health import HealthReport, record_report
from privplate.devices.protocol import parse_headers
from privplate.errors import DeviceRejected, InvalidRequest

router = APIRouter(tags=["devices"])


class HealthOut(BaseModel):
    received_at: datetime
    clock_offset_seconds: float = Field(
        description="the server's time minus the request's signed time (whole seconds signed)"
    )


@router.post(
    "/devices/health",
    summary="Store a signed health report from an edge device (latest only)",
    response_model=HealthOut,
)
async def report_health(
    report: HealthReport, device: DeviceCaller, services: ServicesDep, request: Request
) -> HealthOut:
    """Counts, rates and times only; the device may report only for its own cameras. Each
    report replaces the device's last one."""
    now = datetime.now(UTC)
    # The guard checked these headers and the signature already; the signed time is re-read
    # for the clock offset.
    signed = parse_headers(dict(request.headers))
    signed_at = datetime.fromtimestamp(signed.timestamp, tz=UTC)
    try:
        offset = await run_in_threadpool(
            record_report,
            db=services.dep.db,
            device=device,
            report=report,
            signed_at=signed_at,
            now=now,
        )
    except (DeviceRejected, InvalidRequest) as exc:
        await run_in_threadpool(
            services.dep.audit.record,
            actor=device.actor,
            action="health.refused",
            details={"reason": str(exc)},
        )
        raise
    return HealthOut(received_at=now, clock_offset_seconds=offset)
