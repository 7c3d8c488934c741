"""The audit log, read-only (auditors and compliance officers)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from privplate.api.deps import ServicesDep, allow
from privplate.audit.cosigners import configured_witnesses, verify_witnessed
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role

router = APIRouter(tags=["audit"])
Auditor = Annotated[UserInfo, Depends(allow(Role.AUDITOR, Role.COMPLIANCE))]


class EntryOut(BaseModel):
    seq: int
    created_at: datetime
    actor: str
    action: str
    details: dict[str, Any] | None


class CosignedOut(BaseModel):
    tree_size: int
    #: The cosignature's own (signed) time.
    time: datetime


class WitnessOut(BaseModel):
    name: str
    vkey: str
    #: Listed in audit.witnesses now; a removed witness's cosignatures are still checked.
    configured: bool
    cosigned: list[CosignedOut]


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    pruned: int
    root: str
    checkpoints_checked: int
    problems: list[str]
    #: Which witnesses cosigned which sizes (every kept cosignature verified, or a problem).
    witnesses: list[WitnessOut]


class CheckpointOut(BaseModel):
    checkpoint: str | None


@router.get("/audit/entries", summary="Audit entries, newest first", response_model=list[EntryOut])
def entries(
    _: Auditor,
    services: ServicesDep,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9._-]+$")] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EntryOut]:
    return [
        EntryOut(
            seq=e.seq,
            created_at=e.created_at,
            actor=e.actor,
            action=e.action,
            details=e.entry.details if e.entry is not None else None,
        )
        for e in services.dep.audit.entries(
            action=action, actor=actor, limit=limit, newest_first=True
        )
    ]


@router.get("/audit/verify", summary="Verify the whole audit log", response_model=VerifyOut)
def verify(_: Auditor, services: ServicesDep) -> VerifyOut:
    dep = services.dep
    report, witnesses = verify_witnessed(
        dep.audit, configured_witnesses(dep.settings.audit.witnesses)
    )
    return VerifyOut(
        ok=report.ok,
        entries=report.entries,
        pruned=report.pruned,
        root=report.root.hex(),
        checkpoints_checked=report.checkpoints_checked,
        problems=report.problems,
        witnesses=[
            WitnessOut(
                name=w.name,
                vkey=w.vkey,
                configured=w.configured,
                cosigned=[CosignedOut(tree_size=n, time=t) for n, t in w.cosigned],
            )
            for w in witnesses
        ],
    )


@router.get(
    "/audit/checkpoint",
    summary="The latest signed checkpoint (for witnesses)",
    response_model=CheckpointOut,
)
def checkpoint(_: Auditor, services: ServicesDep) -> CheckpointOut:
    stored = services.dep.audit.checkpoints()
    return CheckpointOut(checkpoint=stored[-1].to_json() if stored else None)
