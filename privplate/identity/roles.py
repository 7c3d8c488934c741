"""Roles: a closed set. Every API route declares which of them may call it."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # users, sharing agreements, webhooks, configuration
    OPERATOR = "operator"  # cameras, devices, hotlists
    INVESTIGATOR = "investigator"  # plate queries, unseal and hold requests
    COMPLIANCE = "compliance"  # unseal approvals, review of denied queries and quota flags
    AUDITOR = "auditor"  # read-only audit log and reports
    DEVICE = "device"  # edge devices: ingest and their own key and hotlist sync


#: Roles a person can hold (devices authenticate with their own key, not as users).
USER_ROLES: tuple[Role, ...] = tuple(r for r in Role if r is not Role.DEVICE)
