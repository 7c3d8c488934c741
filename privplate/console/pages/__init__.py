"""The console's pages, one module per role (plus the account pages everyone has)."""

from __future__ import annotations

from fastapi import APIRouter

from privplate.console.pages import (
    account,
    admin,
    auditor,
    enrolment_codes,
    investigator,
    officer,
    operator,
    public,
    search_approvals,
    spot_checks,
)

ROUTERS: tuple[APIRouter, ...] = (
    account.router,
    public.router,
    operator.router,
    investigator.router,
    officer.router,
    spot_checks.router,
    search_approvals.router,
    auditor.router,
    admin.router,
    enrolment_codes.router,
)
