"""Health, retention status and metrics. Nothing here counts reads by camera, place or time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from privplate import __version__
from privplate.api.deps import Public, ServicesDep, allow
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.retention.status import retention_status

router = APIRouter(tags=["system"])
Watcher = Annotated[UserInfo, Depends(allow(Role.ADMIN, Role.AUDITOR, Role.COMPLIANCE))]


class HealthOut(BaseModel):
    status: str
    version: str


class RetentionOut(BaseModel):
    preset: str
    non_hit_window_seconds: int
    purge_interval_seconds: int
    bound_seconds: int
    oldest_non_held_read_age_seconds: float | None
    within_bound: bool


@router.get("/health", summary="Liveness", dependencies=[Public], response_model=HealthOut)
async def health() -> HealthOut:
    return HealthOut(status="ok", version=__version__)


@router.get("/retention/status", summary="Retention guarantee", response_model=RetentionOut)
def retention(_: Watcher, services: ServicesDep) -> RetentionOut:
    return RetentionOut.model_validate(retention_status(services.dep).as_dict())


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_model=None,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(_: Watcher, services: ServicesDep) -> PlainTextResponse:
    status = retention_status(services.dep)
    age = status.oldest_read_age.total_seconds() if status.oldest_read_age else 0.0
    c = services.counters
    lines = [
        "# HELP privplate_oldest_non_held_read_age_seconds Age of the oldest non-held read.",
        "# TYPE privplate_oldest_non_held_read_age_seconds gauge",
        f"privplate_oldest_non_held_read_age_seconds {age:.3f}",
        "# HELP privplate_retention_bound_seconds Non-hit window plus purge interval.",
        "# TYPE privplate_retention_bound_seconds gauge",
        f"privplate_retention_bound_seconds {status.bound.total_seconds():.0f}",
        "# TYPE privplate_ingested_reads_total counter",
        f"privplate_ingested_reads_total {c['ingested_reads']}",
        "# TYPE privplate_alerts_total counter",
        f"privplate_alerts_total {c['alerts']}",
        "# TYPE privplate_queries_total counter",
        f"privplate_queries_total {c['queries']}",
        "# TYPE privplate_webhook_deliveries_total counter",
        f'privplate_webhook_deliveries_total{{result="ok"}} {services.webhooks.delivered}',
        f'privplate_webhook_deliveries_total{{result="failed"}} {services.webhooks.failed}',
        "# TYPE privplate_scrape_time_seconds gauge",
        f"privplate_scrape_time_seconds {datetime.now(UTC).timestamp():.3f}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
