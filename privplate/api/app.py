"""The FastAPI application: ``create_app`` builds it for one deployment.

Started by ``privplate serve`` (uvicorn). Two jobs run on APScheduler intervals in whichever
process leads the deployment (privplate.leader; every process tries for the lead): the
retention purge unless ``server.run_purge_scheduler`` is false, and a signed checkpoint of the
audit log every ``audit.checkpoint_interval_minutes`` (0: none) when the log has grown, plus one
on taking the lead if none was ever signed. Every process refreshes its keys each purge
interval. The leader also checks the edge devices' health reports every
``health.check_interval_seconds`` (silent cameras, spool backlogs) while ``health.enabled``.
``create_app(run_scheduler=False)`` runs none of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from starlette.routing import BaseRoute

from privplate import __version__
from privplate.api import errors
from privplate.api.limits import BodyLimit
from privplate.api.routes import (
    alerts,
    audit,
    cameras,
    compliance,
    cosignatures,
    device_health,
    devices,
    holds,
    hotlists,
    ingest,
    queries,
    search_approvals,
    sessions,
    sharing,
    system,
    transparency,
    unseal,
    users,
    webhooks,
    wellknown,
)
from privplate.audit import AuditLog, Checkpoint
from privplate.console.app import mount as mount_console
from privplate.deployment import Deployment
from privplate.errors import StoreError
from privplate.identity.roles import Role
from privplate.leader import LeaderTick, acquire_tick, leader_only, refresh_keys
from privplate.services import Services
from privplate.settings import Settings, load_settings

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("privplate.server")
ROUTERS = (
    system,
    sessions,
    users,
    cameras,
    devices,
    device_health,
    ingest,
    hotlists,
    alerts,
    webhooks,
    queries,
    search_approvals,
    compliance,
    sharing,
    holds,
    unseal,
    audit,
    wellknown,
    cosignatures,
    transparency,
)


class Guard(Protocol):
    """What every access guard has: the roles it lets in (none: public) and the marker."""

    roles: frozenset[Role]
    access_guard: bool


def _guards(dependant: Any) -> Iterator[Guard]:
    # By marker, not class: the console's cookie guards are guards too, and the API must not
    # import the console's classes to recognise them.
    for dep in dependant.dependencies:
        if getattr(dep.call, "access_guard", False) is True:
            yield dep.call
        yield from _guards(dep)


def iter_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route the app serves, through included routers (FastAPI >= 0.16x includes them
    lazily, so ``app.routes`` alone no longer lists them)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from iter_routes(included.routes)
        else:
            yield route


def route_guard(route: APIRoute) -> Guard:
    """The one guard a route declares; a route with none (or several) is a bug."""
    found = {id(g): g for g in _guards(route.dependant)}
    if len(found) != 1:
        raise RuntimeError(
            f"route {sorted(route.methods or ())} {route.path} declares {len(found)} access "
            "guards; "
            "declare exactly one (allow(...), DeviceCaller or Public)"
        )
    return next(iter(found.values()))


def _purge_job(services: Services) -> None:
    from privplate.retention.purge import purge  # noqa: PLC0415 - only when the job runs

    try:
        report = purge(services.dep)
        services.counters["purges"] += 1
        log.info("purge: %s", "skipped (another runner)" if report.skipped else "done")
    except Exception as exc:
        log.error("purge failed: %s", type(exc).__name__)


def _checkpoint_job(audit: AuditLog, *, first_only: bool = False) -> Checkpoint | None:
    """Sign a checkpoint if the log has grown, by the rule `privplate audit checkpoint` uses
    (AuditLog.sign_if_grown: one per tree size, whichever process gets there first)."""
    try:
        signed = audit.sign_if_grown(first_only=first_only)
    except Exception as exc:
        log.error("audit checkpoint failed: %s", type(exc).__name__)
        return None
    if signed is not None:
        log.info("audit checkpoint of %d entries signed", signed.tree_size)
    return signed


def _health_job(services: Services) -> None:
    """Silent-camera and spool-backlog alerts from the devices' latest health reports."""
    try:
        alerts = services.check_device_health()
    except Exception as exc:
        log.error("device health check failed: %s", type(exc).__name__)
        return
    if alerts:
        log.info("device health: %d alert(s) raised or cleared", len(alerts))


def _scheduler(
    settings: Settings, services: Services, run_scheduler: bool | None
) -> BackgroundScheduler | None:
    """The background jobs this process runs (none wanted: no scheduler), not yet started."""
    if run_scheduler is False:
        return None
    purge = settings.server.run_purge_scheduler if run_scheduler is None else True
    minutes = settings.audit.checkpoint_interval_minutes
    interval = settings.retention.purge_interval_seconds
    from apscheduler.schedulers.background import BackgroundScheduler  # noqa: PLC0415

    scheduler = BackgroundScheduler(timezone="UTC")
    # Every process, leading or not: a rotation or an epoch destroyed by whichever process
    # purged (this deployment's leader, or a `privplate retention run` beside the servers).
    scheduler.add_job(
        refresh_keys,
        "interval",
        seconds=interval,
        args=[services.dep.keyring, services.hotlist_tokens],
        id="key-refresh",
        max_instances=1,
        coalesce=True,
    )
    health = settings.health.enabled
    if not purge and not minutes and not health:
        return scheduler
    leadership = services.dep.leadership
    if health:
        scheduler.add_job(
            leader_only(leadership, lambda: _health_job(services)),
            "interval",
            seconds=settings.health.check_interval_seconds,
            id="device-health",
            max_instances=1,
            coalesce=True,
        )
    if purge:
        scheduler.add_job(
            leader_only(leadership, lambda: _purge_job(services)),
            "interval",
            seconds=interval,
            id="retention-purge",
            max_instances=1,
            coalesce=True,
        )
    if minutes:
        audit = services.dep.audit
        scheduler.add_job(
            leader_only(leadership, lambda: _checkpoint_job(audit)),
            "interval",
            minutes=minutes,
            id="audit-checkpoint",
            max_instances=1,
            coalesce=True,
        )

    def on_lead() -> None:
        # At once, not an interval later: the last leader may have died in the middle of a
        # purge. The first checkpoint gives the public checkpoint page one without anyone at a
        # terminal. Run here, in the tick's own thread: asking the scheduler to run them
        # (modify_job, add_job) from a job deadlocks with a shutdown waiting for that job.
        if purge:
            _purge_job(services)
        if minutes:
            _checkpoint_job(services.dep.audit, first_only=True)

    scheduler.add_job(
        LeaderTick(leadership, on_lead),
        "interval",
        seconds=acquire_tick(interval),
        id="leader-tick",
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
    )
    return scheduler


#: How often a server that cannot serve yet (database down, schema behind, keys missing)
#: tries again; /readyz answers 503 meanwhile and /healthz 200.
READY_RETRY_SECONDS = 2.0


def _not_ready_reason(exc: Exception) -> str:
    if isinstance(exc, OperationalError):
        # The driver's first line (no statement parameters: none are sent before this).
        return "database unreachable: " + str(exc.orig or exc).splitlines()[0]
    return str(exc)


def _open(settings: Settings) -> Services:
    dep = Deployment.open(settings.home, settings=settings, actor="server")
    try:
        return Services(dep)
    except BaseException:
        dep.close()
        raise


class _Lifecycle:
    """Opening the deployment and its jobs when the server starts, or as soon as it can."""

    def __init__(self, settings: Settings, run_scheduler: bool | None) -> None:
        self.settings = settings
        self.run_scheduler = run_scheduler

    def start(self, app: FastAPI) -> bool:
        """Open the deployment and start its jobs; False (and why, in the log and /readyz)
        when it cannot be opened yet, e.g. while a new version's migration has not run."""
        try:
            services = _open(self.settings)
        except (StoreError, OperationalError) as exc:
            # Waiting is right for what another actor fixes (the database coming up, the
            # migration job running); a wrong configuration fails the start instead.
            reason = _not_ready_reason(exc)
            if app.state.not_ready != reason:
                log.warning("not ready: %s", reason)
            app.state.not_ready = reason
            return False
        services.webhooks.start()
        services.alert_listener.start()
        scheduler = _scheduler(self.settings, services, self.run_scheduler)
        if scheduler is not None:
            scheduler.start()
        app.state.scheduler = scheduler
        app.state.services = services
        app.state.not_ready = None
        log.info("ready")
        return True

    async def keep_trying(self, app: FastAPI) -> None:
        while True:
            await asyncio.sleep(READY_RETRY_SECONDS)
            if await asyncio.to_thread(self.start, app):
                return

    @asynccontextmanager
    async def __call__(self, app: FastAPI) -> AsyncIterator[None]:
        app.state.services = None
        app.state.scheduler = None
        app.state.not_ready = "starting"
        retry: asyncio.Task[None] | None = None
        if not await asyncio.to_thread(self.start, app):
            retry = asyncio.create_task(self.keep_trying(app))
        try:
            yield
        finally:
            if retry is not None:
                retry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retry
            scheduler = app.state.scheduler
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            services: Services | None = app.state.services
            if services is not None:
                services.close()
                services.dep.close()


def create_app(home: Path | str | None = None, *, run_scheduler: bool | None = None) -> FastAPI:
    settings = load_settings(home)
    app = FastAPI(
        title="privplate",
        version=__version__,
        summary="Privacy-preserving licence plate recognition: hotlist alerts and plate-only "
        "queries over keyed tokens, under roles, purposes, quotas and a tamper-evident audit.",
        lifespan=_Lifecycle(settings, run_scheduler),
    )
    for module in ROUTERS:
        app.include_router(module.router, responses=errors.COMMON_RESPONSES)
    mount_console(app)
    for route in iter_routes(app.routes):
        if isinstance(route, APIRoute):
            route_guard(route)
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.server.max_request_bytes)
    return app


def app_for_home() -> FastAPI:
    """The app of the deployment in PRIVPLATE_HOME: what each `privplate serve` worker
    process builds (uvicorn imports it by name in every worker)."""
    return create_app()
