"""The FastAPI application: ``create_app`` builds it for one deployment.

Started by ``privplate serve`` (uvicorn). Two jobs run in-process on APScheduler intervals: the
retention purge unless ``server.run_purge_scheduler`` is false, and a signed checkpoint of the
audit log every ``audit.checkpoint_interval_minutes`` (0: none) when the log has grown, plus one
at start if none was ever signed. ``create_app(run_scheduler=False)`` runs neither.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI
from fastapi.routing import APIRoute
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
from privplate.identity.roles import Role
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


def _scheduler(
    settings: Settings, services: Services, run_scheduler: bool | None
) -> BackgroundScheduler | None:
    """The background jobs this process runs (none wanted: no scheduler), not yet started."""
    if run_scheduler is False:
        return None
    purge = settings.server.run_purge_scheduler if run_scheduler is None else True
    minutes = settings.audit.checkpoint_interval_minutes
    if not purge and not minutes:
        return None
    from apscheduler.schedulers.background import BackgroundScheduler  # noqa: PLC0415

    scheduler = BackgroundScheduler(timezone="UTC")
    if purge:
        scheduler.add_job(
            _purge_job,
            "interval",
            seconds=settings.retention.purge_interval_seconds,
            args=[services],
            id="retention-purge",
            max_instances=1,
            coalesce=True,
        )
    if minutes:
        audit = services.dep.audit
        scheduler.add_job(
            _checkpoint_job,
            "interval",
            minutes=minutes,
            args=[audit],
            id="audit-checkpoint",
            max_instances=1,
            coalesce=True,
        )
        # Once, as soon as the scheduler starts (in its thread: the start does not wait for a
        # whole-log tree), so the public checkpoint page has one without anyone at a terminal.
        scheduler.add_job(
            _checkpoint_job, args=[audit], kwargs={"first_only": True}, id="audit-checkpoint-first"
        )
    return scheduler


def create_app(home: Path | str | None = None, *, run_scheduler: bool | None = None) -> FastAPI:
    settings = load_settings(home)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dep = Deployment.open(settings.home, settings=settings, actor="server")
        services = Services(dep)
        services.webhooks.start()
        scheduler = _scheduler(settings, services, run_scheduler)
        if scheduler is not None:
            scheduler.start()
        app.state.services = services
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            services.close()
            dep.close()

    app = FastAPI(
        title="privplate",
        version=__version__,
        summary="Privacy-preserving licence plate recognition: hotlist alerts and plate-only "
        "queries over keyed tokens, under roles, purposes, quotas and a tamper-evident audit.",
        lifespan=lifespan,
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
