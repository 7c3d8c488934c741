"""A second person for searches: per purpose (``queries.approval_required``), a search waits
for a compliance officer's approval before it runs.

Filing runs every rule of the search itself (:meth:`QueryService.screen`: quota, purpose,
case number, justification, window, agreement), so a search that could not run is refused and
recorded exactly as a direct one. The pending search keeps its plate only sealed to its own id
under a server subkey (privplate.policy.approval_box); no answer and no surface ever shows it,
to the approver or anyone. An approver is a compliance officer who is a different *person* from
the requester (no account of theirs counts), and sees purpose, case number, justification,
window and requester. The approved search runs when its requester asks for it, through the one
search path (:meth:`QueryService.run`, which consumes the approval in the transaction that
records the query, so the quota and every rule apply at run time and it runs once), and its
ciphertext goes then. A denied or expired request loses its ciphertext at once; requests past
their deadline are expired by every call here before anything else, and by the retention
purge. Every step is audited with ids, purpose and case number, never the plate.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from privplate.audit import AuditLog
from privplate.errors import (
    ApprovalRefused,
    InvalidPlate,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    SealingError,
)
from privplate.identity.accounts import UserInfo, persons_of
from privplate.identity.roles import Role
from privplate.jurisdiction import Purpose
from privplate.policy.approval_box import open_request_plate, seal_request_plate
from privplate.policy.queries import QueryAnswer, QueryRequest, QueryService
from privplate.server_secret import ServerSecret
from privplate.store.approval_models import OPEN_STATUSES, ApprovalStatus, SearchApproval
from privplate.store.database import Database
from privplate.tokens.canonical import canonical_plate

_UNKNOWN = "no search awaiting approval with this id"
#: The roles that may see the list of searches filed for approval (an auditor reads only).
VIEWERS = (Role.INVESTIGATOR, Role.COMPLIANCE, Role.AUDITOR)


@dataclass(frozen=True)
class PendingSearch:
    """A search filed for approval as anyone may see it: never the plate."""

    id: uuid.UUID
    requested_by: str
    purpose: str
    case_number: str
    justification: str
    agreement_id: uuid.UUID | None
    window_start: datetime
    window_end: datetime
    created_at: datetime
    #: Pending: when it expires undecided; approved: by when it must be run.
    expires_at: datetime
    status: ApprovalStatus
    decided_at: datetime | None
    decided_by: str | None
    note: str
    query_id: uuid.UUID | None
    ran_at: datetime | None


def _info(row: Any) -> PendingSearch:
    r = row._mapping
    return PendingSearch(
        id=r["id"],
        requested_by=r["requested_by"],
        purpose=r["purpose"],
        case_number=r["case_number"],
        justification=r["justification"],
        agreement_id=r["agreement_id"],
        window_start=r["window_start"],
        window_end=r["window_end"],
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        status=ApprovalStatus(r["status"]),
        decided_at=r["decided_at"],
        decided_by=r["decided_by"],
        note=r["note"],
        query_id=r["query_id"],
        ran_at=r["ran_at"],
    )


def _details(row: Any, **extra: object) -> dict[str, object]:
    """What an audit entry about a request says: ids, purpose and case number."""
    r = row._mapping
    return {
        "request": str(r["id"]),
        "purpose": r["purpose"],
        "case_number": r["case_number"],
        **extra,
    }


def expire_search_approvals(conn: Connection, audit: AuditLog, now: datetime) -> int:
    """End every open request past its deadline (pending undecided, or approved and not run in
    time), erase its sealed plate, and audit each; returns how many. Called before every step
    of the service and by the retention purge, so an expired request never runs or is approved
    even between purges."""
    due = conn.execute(
        select(SearchApproval).where(
            SearchApproval.status.in_(OPEN_STATUSES), SearchApproval.expires_at <= now
        )
    ).all()
    ended = 0
    for row in due:
        done = conn.execute(
            update(SearchApproval)
            .where(SearchApproval.id == row.id, SearchApproval.status == row.status)
            .values(status=ApprovalStatus.EXPIRED, sealed_plate=None)
        ).rowcount
        if done != 1:
            continue
        ended += 1
        audit.append(
            conn,
            actor="server",
            action="search_approvals.expired",
            details=_details(row, was=row.status),
        )
    return ended


class SearchApprovals:
    """Filing, deciding and running searches that need a second person. Installs itself as
    ``queries``' approval gate: the query service then runs such a search only through
    :meth:`consume`."""

    def __init__(
        self, *, db: Database, audit: AuditLog, queries: QueryService, secret: ServerSecret
    ) -> None:
        self.db = db
        self.audit = audit
        self.queries = queries
        self.settings = queries.settings
        self._key = secret.subkey("search-approval")
        queries.approvals = self

    def needed(self, purpose: Purpose) -> bool:
        """Whether searches for ``purpose`` wait for a second person (queries.approval_required)."""
        return purpose in self.settings.approval_required

    def submit(
        self, user: UserInfo, req: QueryRequest, now: datetime | None = None
    ) -> QueryAnswer | PendingSearch:
        """What every surface calls for a new search: it runs at once, or is filed for approval
        when its purpose needs one."""
        if self.needed(req.purpose):
            return self.request(user, req, now)
        return self.queries.run(user, req, now)

    # -- filing ----------------------------------------------------------------------------

    def request(
        self, user: UserInfo, req: QueryRequest, now: datetime | None = None
    ) -> PendingSearch:
        """File a search for approval after every rule a search must pass; a refusal is
        recorded as a refused search, as :meth:`QueryService.run` records it."""
        now = now or datetime.now(UTC)
        if user.role is not Role.INVESTIGATOR:
            raise PermissionDenied("only investigators file searches")
        if req.approval_id is not None:
            raise InvalidRequest("a new search cannot name an approval")
        if not self.needed(req.purpose):
            raise InvalidRequest(
                f"searches for {req.purpose.value!r} need no approval here: ask them directly"
            )
        self.expire_due(now)
        request_id = uuid.uuid4()
        with self.db.write() as conn:
            canonical, failure, outcome = self.queries.screen(conn, user, req, now)
            if failure is not None:
                self.queries.record_refusal(conn, user, req, now, outcome, failure)
            else:
                stored = self.queries.stored_request(req)
                conn.execute(
                    insert(SearchApproval).values(
                        id=request_id,
                        user_id=user.id,
                        requested_by=user.name,
                        **stored,
                        created_at=now,
                        expires_at=now + timedelta(hours=self.settings.approval_hours),
                        status=ApprovalStatus.PENDING,
                        note="",
                        sealed_plate=seal_request_plate(self._key, request_id, canonical),
                    )
                )
                row = self._row(conn, request_id)
                self.audit.append(
                    conn,
                    actor=user.actor,
                    action="search_approvals.requested",
                    details=_details(
                        row,
                        agreement=str(req.agreement_id) if req.agreement_id else None,
                        window=[req.start.isoformat(), req.end.isoformat()],
                    ),
                )
        if failure is not None:
            raise failure
        return _info(row)

    # -- reading ---------------------------------------------------------------------------

    def expire_due(self, now: datetime | None = None) -> int:
        """Expire what is past its deadline, in its own transaction (so a refusal that follows
        does not roll it back)."""
        now = now or datetime.now(UTC)
        with self.db.write() as conn:
            ended = expire_search_approvals(conn, self.audit, now)
        if ended:
            self.db.request_scrub()
        return ended

    @staticmethod
    def _row(conn: Connection, request_id: uuid.UUID) -> Any:
        row = conn.execute(select(SearchApproval).where(SearchApproval.id == request_id)).first()
        if row is None:
            raise NotFound(_UNKNOWN)
        return row

    @staticmethod
    def _viewer(viewer: UserInfo) -> None:
        if viewer.role not in VIEWERS:
            raise PermissionDenied("only investigators, compliance officers and auditors may")

    def get(self, viewer: UserInfo, request_id: uuid.UUID) -> PendingSearch:
        """One request; an investigator sees only their own (anyone else's "does not exist")."""
        self._viewer(viewer)
        self.expire_due()
        with self.db.read() as conn:
            row = self._row(conn, request_id)
        if viewer.role is Role.INVESTIGATOR and row.user_id != viewer.id:
            raise NotFound(_UNKNOWN)
        return _info(row)

    def queue(
        self, viewer: UserInfo, *, status: ApprovalStatus | None = None, limit: int = 200
    ) -> list[PendingSearch]:
        """The newest requests (an investigator's own only), optionally of one status."""
        self._viewer(viewer)
        self.expire_due()
        stmt = select(SearchApproval).order_by(SearchApproval.created_at.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(SearchApproval.status == status)
        if viewer.role is Role.INVESTIGATOR:
            stmt = stmt.where(SearchApproval.user_id == viewer.id)
        with self.db.read() as conn:
            return [_info(r) for r in conn.execute(stmt).all()]

    # -- deciding --------------------------------------------------------------------------

    def approve(
        self,
        officer: UserInfo,
        request_id: uuid.UUID,
        *,
        note: str = "",
        now: datetime | None = None,
    ) -> PendingSearch:
        """Let the requester run the search (within ``queries.approved_run_hours``)."""
        return self._decide(officer, request_id, ApprovalStatus.APPROVED, note, now)

    def deny(
        self, officer: UserInfo, request_id: uuid.UUID, *, note: str, now: datetime | None = None
    ) -> PendingSearch:
        """End the request; its sealed plate is erased at once."""
        if not note.strip():
            raise InvalidRequest("a denial needs a note saying why")
        return self._decide(officer, request_id, ApprovalStatus.DENIED, note, now)

    def _decide(
        self,
        officer: UserInfo,
        request_id: uuid.UUID,
        status: ApprovalStatus,
        note: str,
        now: datetime | None,
    ) -> PendingSearch:
        now = now or datetime.now(UTC)
        if officer.role is not Role.COMPLIANCE:
            raise PermissionDenied("only compliance officers approve or deny searches")
        self.expire_due(now)
        try:
            with self.db.write() as conn:
                row = self._row(conn, request_id)
                if row.status != ApprovalStatus.PENDING:
                    raise ApprovalRefused(f"this search is {row.status}, not pending")
                requester = persons_of(conn, [row.requested_by]).get(row.requested_by)
                if requester == officer.person:
                    raise ApprovalRefused(
                        "the requester cannot decide on their own search, from any of their "
                        "accounts: another person must"
                    )
                erase = status is ApprovalStatus.DENIED
                values: dict[str, object] = {
                    "status": status,
                    "decided_at": now,
                    "decided_by": officer.name,
                    "note": note[:2000],
                }
                if erase:
                    values["sealed_plate"] = None
                else:
                    values["expires_at"] = now + timedelta(hours=self.settings.approved_run_hours)
                done = conn.execute(
                    update(SearchApproval)
                    .where(
                        SearchApproval.id == request_id,
                        SearchApproval.status == ApprovalStatus.PENDING,
                    )
                    .values(**values)
                ).rowcount
                if done != 1:
                    raise ApprovalRefused("this search was decided meanwhile")
                self.audit.append(
                    conn,
                    actor=officer.actor,
                    action=f"search_approvals.{status}",
                    details=_details(
                        row,
                        requested_by=row.requested_by,
                        waited_seconds=int((now - row.created_at).total_seconds()),
                        note=note[:2000],
                    ),
                )
                decided = self._row(conn, request_id)
        except ApprovalRefused as exc:
            self._refused(officer.actor, request_id, exc)
            raise
        if erase:
            self.db.request_scrub()
        return _info(decided)

    def _refused(self, actor: str, request_id: uuid.UUID, error: Exception) -> None:
        """Audit a refused step after its transaction rolled back."""
        self.audit.record(
            actor=actor,
            action="search_approvals.refused",
            details={"request": str(request_id), "reason": str(error)},
        )

    # -- running ---------------------------------------------------------------------------

    def run(
        self, user: UserInfo, request_id: uuid.UUID, now: datetime | None = None
    ) -> QueryAnswer:
        """Run an approved search as its requester (the account that filed it): one search
        through :meth:`QueryService.run`, counted against their quota now and recorded as an
        ordinary query (answered, denied or refused) linked to the request."""
        now = now or datetime.now(UTC)
        if user.role is not Role.INVESTIGATOR:
            raise PermissionDenied("only the investigator who filed a search runs it")
        self.expire_due(now)
        with self.db.read() as conn:
            row = self._row(conn, request_id)
        if row.user_id != user.id:
            raise NotFound(_UNKNOWN)
        try:
            if row.status != ApprovalStatus.APPROVED or row.sealed_plate is None:
                raise ApprovalRefused(f"this search is {row.status}, not approved: it cannot run")
            canonical = self._open(row)
        except ApprovalRefused as exc:
            self._refused(user.actor, request_id, exc)
            raise
        req = QueryRequest(
            plate=canonical,
            start=row.window_start,
            end=row.window_end,
            purpose=Purpose(row.purpose),
            case_number=row.case_number,
            justification=row.justification,
            agreement_id=row.agreement_id,
            approval_id=request_id,
        )
        try:
            return self.queries.run(user, req, now)
        except ApprovalRefused as exc:
            self._refused(user.actor, request_id, exc)
            raise

    def _open(self, row: Any) -> str:
        try:
            return open_request_plate(self._key, row.id, bytes(row.sealed_plate))
        except SealingError as exc:
            raise ApprovalRefused(str(exc)) from None

    def consume(
        self,
        conn: Connection,
        user: UserInfo,
        req: QueryRequest,
        query_id: uuid.UUID,
        now: datetime,
    ) -> None:
        """The approval gate of :meth:`QueryService.run`, in its transaction: the search may
        run only as the approved one (same requester, plate, purpose, case, justification,
        window and agreement), in time, once; its sealed plate is erased here."""
        if req.approval_id is None:
            raise ApprovalRefused("this search has no approval")
        row = conn.execute(
            select(SearchApproval).where(SearchApproval.id == req.approval_id)
        ).first()
        if row is None or row.user_id != user.id:
            raise ApprovalRefused("no approved search with this id is yours to run")
        if row.status != ApprovalStatus.APPROVED or row.sealed_plate is None:
            raise ApprovalRefused(f"this search is {row.status}, not approved: it cannot run")
        if row.expires_at <= now:
            raise ApprovalRefused(
                "the approval to run this search lapsed (queries.approved_run_hours); file it again"
            )
        try:
            asked = canonical_plate(req.plate, fold=self.queries.fold)
        except InvalidPlate:
            asked = ""
        approved = self._open(row)
        same = (
            hmac.compare_digest(asked.encode(), approved.encode())
            and req.purpose.value == row.purpose
            and req.case_number == row.case_number
            and req.justification == row.justification
            and req.start == row.window_start
            and req.end == row.window_end
            and req.agreement_id == row.agreement_id
        )
        if not same:
            raise ApprovalRefused("this search is not the one that was approved")
        done = conn.execute(
            update(SearchApproval)
            .where(SearchApproval.id == row.id, SearchApproval.status == ApprovalStatus.APPROVED)
            .values(status=ApprovalStatus.RUN, sealed_plate=None, query_id=query_id, ran_at=now)
        ).rowcount
        if done != 1:
            raise ApprovalRefused("this approved search already ran")
        self.audit.append(
            conn,
            actor=user.actor,
            action="search_approvals.run",
            details=_details(row, query=str(query_id)),
        )
        self.db.request_scrub()
