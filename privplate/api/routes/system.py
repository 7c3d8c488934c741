"""Health, retention status and metrics. Nothing here counts reads by camera, place or time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

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


class PromiseOut(BaseModel):
    kind: str = Field(
        examples=["non_hit_reads"], description="non_hit_reads, hit_reads or evidence"
    )
    window_seconds: int
    bound_seconds: int = Field(description="window plus the purge interval")
    oldest_non_held_age_seconds: float | None
    within_bound: bool


class RetentionOut(BaseModel):
    preset: str
    non_hit_window_seconds: int
    purge_interval_seconds: int
    bound_seconds: int
    oldest_non_held_read_age_seconds: float | None = Field(
        description="the oldest non-hit read not under a legal hold"
    )
    within_bound: bool = Field(description="every promise below is kept")
    promises: list[PromiseOut]


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
    c = services.counters
    lines = [
        "# HELP privplate_oldest_non_held_age_seconds Age of the oldest item not on legal hold.",
        "# TYPE privplate_oldest_non_held_age_seconds gauge",
        *(
            f'privplate_oldest_non_held_age_seconds{{kind="{p.kind}"}} '
            f"{p.oldest_age.total_seconds() if p.oldest_age else 0.0:.3f}"
            for p in status.promises
        ),
        "# HELP privplate_retention_bound_seconds Window plus purge interval.",
        "# TYPE privplate_retention_bound_seconds gauge",
        *(
            f'privplate_retention_bound_seconds{{kind="{p.kind}"}} {p.bound.total_seconds():.0f}'
            for p in status.promises
        ),
        "# HELP privplate_retention_within_bound 1 while every retention promise is kept.",
        "# TYPE privplate_retention_within_bound gauge",
        f"privplate_retention_within_bound {int(status.within_bound)}",
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
