"""Health, retention status and metrics. Nothing here counts reads by camera, place or time:
the per-camera lines of /metrics are the edges' health (frames per second, ages of the last
frame and read, dropped reads), never how many reads a camera made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from privplate import __version__
from privplate.api.deps import Public, ServicesDep, allow
from privplate.devices.health import health_metrics
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.leader import leader_metrics
from privplate.retention.status import retention_status
from privplate.services import Services

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


class ReadyOut(BaseModel):
    ready: bool
    version: str
    database: bool = Field(description="the database answers")
    migrations: bool = Field(description="the schema is at this version's newest revision")
    keys: bool = Field(description="the key-encryption key and audit signing key are loaded")
    reason: str | None = Field(default=None, description="why not ready (no secrets)")


@router.get("/health", summary="Liveness", dependencies=[Public], response_model=HealthOut)
async def health() -> HealthOut:
    return HealthOut(status="ok", version=__version__)


@router.get(
    "/healthz",
    summary="Liveness: the process is up (for probes)",
    dependencies=[Public],
    response_model=HealthOut,
)
async def healthz() -> HealthOut:
    return HealthOut(status="ok", version=__version__)


@router.get(
    "/readyz",
    summary="Readiness: database reachable, migrations current, keys loaded",
    dependencies=[Public],
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "not ready, and why"}},
)
def readyz(request: Request) -> JSONResponse:
    """503 until the server can serve: a balancer sends it nothing meanwhile. A server that
    started before its database or migration keeps trying and turns ready by itself."""
    services: Services | None = request.app.state.services
    if services is None:
        out = ReadyOut(
            ready=False,
            version=__version__,
            database=False,
            migrations=False,
            keys=False,
            reason=str(request.app.state.not_ready),
        )
    else:
        out = _readiness(services)
    return JSONResponse(out.model_dump(), status_code=200 if out.ready else 503)


def _readiness(services: Services) -> ReadyOut:
    dep = services.dep
    database = migrations = False
    reason: str | None = None
    try:
        current, head = dep.db.schema_revision()
        database = True
        migrations = current == head
        if not migrations:
            reason = f"database schema is at {current or 'nothing'}, expected {head}"
    except SQLAlchemyError as exc:
        reason = "database unreachable: " + type(exc).__name__
    keys = dep.settings.kek_path.exists() and dep.settings.audit_signing_key_path.exists()
    if not keys:
        reason = reason or f"key-encryption key file {dep.settings.kek_path} is missing"
    return ReadyOut(
        ready=database and migrations and keys,
        version=__version__,
        database=database,
        migrations=migrations,
        keys=keys,
        reason=reason,
    )


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
        "# TYPE privplate_device_alerts_total counter",
        f"privplate_device_alerts_total {c['device_alerts']}",
        *health_metrics(services.dep.db),
        *leader_metrics(services.dep),
        "# TYPE privplate_scrape_time_seconds gauge",
        f"privplate_scrape_time_seconds {datetime.now(UTC).timestamp():.3f}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
