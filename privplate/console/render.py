"""Jinja2 pages: one environment, autoescaped, and the navigation each role sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str


#: What each role's menu shows: every screen is one click from any page.
NAV: dict[Role, tuple[NavItem, ...]] = {
    Role.OPERATOR: (
        NavItem("Dashboard", "/console/operator"),
        NavItem("Hotlists", "/console/operator/hotlists"),
        NavItem("Alerts", "/console/operator/alerts"),
        NavItem("Cameras and devices", "/console/operator/cameras"),
        NavItem("Enrolment codes", "/console/operator/enrolment-codes"),
    ),
    Role.INVESTIGATOR: (
        NavItem("Search", "/console/investigator/search"),
        NavItem("My searches", "/console/investigator/searches"),
        NavItem("Awaiting approval", "/console/investigator/approvals"),
        NavItem("My unseal requests", "/console/investigator/unseal"),
    ),
    Role.COMPLIANCE: (
        NavItem("Flags", "/console/officer/flags"),
        NavItem("Search review", "/console/officer/searches"),
        NavItem("Spot checks", "/console/officer/spot-checks"),
        NavItem("Search approvals", "/console/officer/approvals"),
        NavItem("Unseal requests", "/console/officer/unseal"),
        NavItem("Legal holds", "/console/officer/holds"),
    ),
    Role.AUDITOR: (
        NavItem("Audit log", "/console/auditor/audit"),
        NavItem("Verification", "/console/auditor/verify"),
    ),
    Role.ADMIN: (
        NavItem("Users", "/console/admin/users"),
        NavItem("Webhooks", "/console/admin/webhooks"),
        NavItem("Sharing agreements", "/console/admin/sharing"),
        NavItem("Effective policy", "/console/admin/policy"),
    ),
}
PUBLIC_NAV = (
    NavItem("Transparency report", "/console/public/report"),
    NavItem("Policy", "/console/public/policy"),
    NavItem("Signed checkpoint", "/console/public/checkpoint"),
)


def home_of(role: Role) -> str:
    """Where a role lands after sign-in: its first screen (its dashboard)."""
    return NAV[role][0].href


def _when(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("privplate.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    return env


def page(request: Request, screen: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render the template ``screen`` for the signed-in user (or the public) with the shared
    layout. (Not "template": the architecture test flags any parameter spelling "plate".)"""
    user: UserInfo | None = getattr(request.state, "user", None)
    nav = NAV.get(user.role, ()) if user is not None else ()
    html = (
        environment()
        .get_template(screen)
        .render(
            user=user,
            nav=nav,
            public_nav=PUBLIC_NAV,
            csrf=getattr(request.state, "csrf", ""),
            path=request.url.path,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code)
