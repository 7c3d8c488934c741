"""Console screens of the auditor: the audit log browser, the log's verification, an entry's
inclusion proof (shown, checked and downloadable).

The same roles as the API's /audit routes (auditors and compliance officers) and the same calls:
``AuditLog.entries`` for the browser, ``verify_witnessed`` for the verification (the log, its
checkpoints and the witnesses' cosignatures), and
:mod:`privplate.audit.proofs` for inclusion proofs. The signed checkpoint is published on the
public checkpoint page, which the verification page links.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from privplate.audit.cosigners import configured_witnesses, describe, verify_witnessed
from privplate.audit.proofs import InclusionProof, latest_checkpoint, prove_inclusion
from privplate.console.render import page
from privplate.console.sessions import console, services_of
from privplate.errors import AuditError, NotFound
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role

router = APIRouter(include_in_schema=False)
#: Who may read the audit log: the roles of the API's /audit routes.
Auditor = Annotated[UserInfo, Depends(console(Role.AUDITOR, Role.COMPLIANCE))]
PAGE_SIZE = 50
#: The API's rules for the filters (GET /audit/entries), so both refuse the same input.
ACTION = re.compile(r"[a-z0-9._-]{1,64}")
MAX_ACTOR = 200


@dataclass(frozen=True)
class Filters:
    actor: str | None
    action: str | None
    since: datetime | None
    until: datetime | None
    #: As typed, to put back in the form.
    since_text: str
    until_text: str

    def query(self, **extra: int) -> str:
        pairs = {
            "actor": self.actor or "",
            "action": self.action or "",
            "since": self.since_text,
            "until": self.until_text,
        }
        kept: dict[str, str | int] = {k: v for k, v in pairs.items() if v}
        kept.update(extra)
        return urlencode(kept)


def _moment(text: str, field: str, problems: list[str]) -> datetime | None:
    """A ``datetime-local`` value (or a date), read as UTC like every time on the page."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"{field}: write a date and time like 2026-11-22T10:00")
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _filters(actor: str, action: str, since: str, until: str) -> tuple[Filters, list[str]]:
    problems: list[str] = []
    actor, action = actor.strip(), action.strip()
    if len(actor) > MAX_ACTOR:
        problems.append(f"actor: at most {MAX_ACTOR} characters")
    if action and not ACTION.fullmatch(action):
        problems.append("action: lower-case letters, digits, '.', '_' or '-' (e.g. queries.)")
    start, end = _moment(since, "from", problems), _moment(until, "until", problems)
    if start is not None and end is not None and end <= start:
        problems.append("until must be later than from")
    found = Filters(
        actor=actor or None,
        action=action or None,
        since=start,
        until=end,
        since_text=since,
        until_text=until,
    )
    return found, problems


def _details(details: dict[str, Any] | None) -> str:
    if details is None:
        return ""
    return json.dumps(details, sort_keys=True, ensure_ascii=False)


Text = Annotated[str, Query(max_length=400)]


@router.get("/console/auditor/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    _user: Auditor,
    actor: Text = "",
    action: Text = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    before: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    filters, problems = _filters(actor, action, since, until)
    rows: list[dict[str, Any]] = []
    older: str | None = None
    if not problems:
        found = list(
            services_of(request).dep.audit.entries(
                actor=filters.actor,
                action=filters.action,
                since=filters.since,
                until=filters.until,
                before_seq=before,
                limit=PAGE_SIZE + 1,
                newest_first=True,
            )
        )
        rows = [
            {
                "seq": e.seq,
                "created_at": e.created_at,
                "actor": e.actor,
                "action": e.action,
                "details": _details(e.entry.details if e.entry is not None else None),
                "pruned": e.entry is None,
            }
            for e in found[:PAGE_SIZE]
        ]
        if len(found) > PAGE_SIZE:
            older = filters.query(before=found[PAGE_SIZE - 1].seq)
    return page(
        request,
        "auditor_audit.html",
        title="Audit log",
        filters=filters,
        problems=problems,
        rows=rows,
        older=older,
        newest=filters.query() if before is not None else None,
        page_size=PAGE_SIZE,
        status_code=422 if problems else 200,
    )


@router.get("/console/auditor/verify", response_class=HTMLResponse)
async def verify(request: Request, _user: Auditor) -> Response:
    """The verification of `privplate audit verify` and GET /audit/verify (verify_witnessed):
    the log recomputed, its stored checkpoints, and every kept witness cosignature."""
    dep = services_of(request).dep
    audit = dep.audit
    witnesses = configured_witnesses(dep.settings.audit.witnesses)
    stored = await run_in_threadpool(audit.checkpoints)
    report, cosigners = await run_in_threadpool(verify_witnessed, audit, witnesses)
    return page(
        request,
        "auditor_verify.html",
        title="Verification of the audit log",
        report=report,
        cosigners=[(w, describe(w)) for w in cosigners],
        root=report.root.hex(),
        checkpoint=stored[-1] if stored else None,
        public_key=audit.signer.public_key.hex(),
    )


def _proof(request: Request, seq: int) -> InclusionProof:
    if seq < 0:
        raise NotFound(f"audit entry #{seq} does not exist")
    return prove_inclusion(services_of(request).dep.audit, seq)


@router.get("/console/auditor/audit/{seq}", response_class=HTMLResponse)
def entry(request: Request, _user: Auditor, seq: int) -> Response:
    audit = services_of(request).dep.audit
    proof = _proof(request, seq)
    problem = ""
    try:
        proof.verify(audit.signer.public_key)
    except AuditError as exc:
        problem = str(exc)
    stored = next(iter(audit.entries(before_seq=seq + 1, limit=1, newest_first=True)))
    latest = latest_checkpoint(audit)
    return page(
        request,
        "auditor_entry.html",
        title=f"Audit entry #{seq}",
        stored=stored,
        details=_details(stored.entry.details if stored.entry is not None else None),
        proof=proof,
        proof_path=[h.hex() for h in proof.path],
        problem=problem,
        latest=latest,
    )


@router.get("/console/auditor/audit/{seq}/proof.json")
def entry_proof(request: Request, _user: Auditor, seq: int) -> Response:
    proof = _proof(request, seq)
    return Response(
        proof.to_json(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="privplate-audit-{seq}-inclusion.json"'
        },
    )
