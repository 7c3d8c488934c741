"""The FastAPI application: ``create_app`` builds it for one deployment.

Started by ``privplate serve`` (uvicorn). The retention purge runs in-process on an APScheduler
interval unless ``server.run_purge_scheduler`` is false.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from privplate import __version__
from privplate.api import errors
from privplate.api.deps import DeviceGuard, PublicGuard, RoleGuard
from privplate.api.limits import BodyLimit
from privplate.api.routes import (
    alerts,
    audit,
    cameras,
    compliance,
    devices,
    holds,
    hotlists,
    ingest,
    queries,
    sessions,
    sharing,
    system,
    transparency,
    unseal,
    users,
    webhooks,
)
from privplate.deployment import Deployment
from privplate.services import Services
from privplate.settings import load_settings

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
    compliance,
    sharing,
    holds,
    unseal,
    audit,
    transparency,
)
Guard = RoleGuard | DeviceGuard | PublicGuard


def _guards(dependant: Any) -> Iterator[Guard]:
    for dep in dependant.dependencies:
        if isinstance(dep.call, RoleGuard | DeviceGuard | PublicGuard):
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


def create_app(home: Path | str | None = None, *, run_scheduler: bool | None = None) -> FastAPI:
    settings = load_settings(home)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dep = Deployment.open(settings.home, settings=settings, actor="server")
        services = Services(dep)
        services.webhooks.start()
        scheduler = None
        wanted = settings.server.run_purge_scheduler if run_scheduler is None else run_scheduler
        if wanted:
            from apscheduler.schedulers.background import (  # noqa: PLC0415
                BackgroundScheduler,
            )

            scheduler = BackgroundScheduler(timezone="UTC")
            scheduler.add_job(
                _purge_job,
                "interval",
                seconds=settings.retention.purge_interval_seconds,
                args=[services],
                max_instances=1,
                coalesce=True,
            )
            scheduler.start()
        app.state.services = services
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
    for route in iter_routes(app.routes):
        if isinstance(route, APIRoute):
            route_guard(route)
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.server.max_request_bytes)
    return app
