"""Dependencies shared by the routes: the services, and the guard every route declares.

Each route names who may call it with exactly one guard: :func:`allow` (users by role),
:data:`DeviceCaller` (signed edge devices) or :data:`Public`. The route x role test walks the
app and fails for a route without one.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from privplate.devices import registry
from privplate.devices.protocol import parse_headers
from privplate.devices.registry import DeviceInfo
from privplate.errors import AuthenticationFailed, DeviceRejected, PermissionDenied
from privplate.identity.accounts import UserInfo, user_for_bearer
from privplate.identity.roles import Role
from privplate.services import Services, services_in

_bearer = HTTPBearer(auto_error=False, description="A session token (pps_...) or API key (ppk_...)")


def get_services(request: Request) -> Services:
    return services_in(request.app.state)


ServicesDep = Annotated[Services, Depends(get_services)]


class RoleGuard:
    """Lets in a signed-in user whose role is one of ``roles``; returns that user."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        if not roles or Role.DEVICE in roles:
            raise ValueError("a role guard names one or more user roles")
        self.roles = frozenset(roles)

    #: Marks the callable as a route's access guard (the route x role check finds it by this).
    access_guard = True

    def __call__(
        self,
        request: Request,
        services: ServicesDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> UserInfo:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthenticationFailed("sign in first: send Authorization: Bearer <token>")
        user = user_for_bearer(
            db=services.dep.db, secret=credentials.credentials, idle=services.session_idle
        )
        if user is None:
            raise AuthenticationFailed("the bearer token is unknown, expired or revoked")
        if user.role not in self.roles:
            # A signed-in person trying what their role may not do is worth a record.
            services.dep.audit.record(
                actor=user.actor,
                action="access.denied",
                details={"method": request.method, "path": request.url.path},
            )
            raise PermissionDenied(
                f"role {user.role.value!r} may not do this "
                f"(allowed: {', '.join(sorted(r.value for r in self.roles))})"
            )
        request.state.actor = user.actor
        return user


def allow(*roles: Role) -> RoleGuard:
    return RoleGuard(roles)


class DeviceGuard:
    """Lets in a registered edge device whose signed request checks out."""

    roles = frozenset({Role.DEVICE})
    access_guard = True

    async def __call__(self, request: Request, services: ServicesDep) -> DeviceInfo:
        body = await request.body()
        try:
            signed = parse_headers(dict(request.headers))
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            device = await run_in_threadpool(
                registry.authenticate,
                db=services.dep.db,
                signed=signed,
                method=request.method,
                path=path,
                body=body,
                max_age=timedelta(
                    seconds=services.dep.settings.server.device_request_max_age_seconds
                ),
            )
        except DeviceRejected as exc:
            await run_in_threadpool(
                services.refusals.refused, path=request.url.path, reason=str(exc)
            )
            raise
        request.state.actor = device.actor
        request.state.body_digest = hashlib.sha256(body).digest()
        return device


class PublicGuard:
    """Marks a route anyone may call (health, sign-in)."""

    roles: frozenset[Role] = frozenset()
    access_guard = True

    def __call__(self) -> None:
        return None


DEVICE_GUARD = DeviceGuard()
PUBLIC_GUARD = PublicGuard()
DeviceCaller = Annotated[DeviceInfo, Depends(DEVICE_GUARD)]
Public = Depends(PUBLIC_GUARD)
