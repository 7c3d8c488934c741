"""The only search: "was this plate seen", asked by a named investigator, for an allowed
purpose, with a case number and a justification, within a quota, on the record.

A query is refused before anything is looked up if any rule fails; the refusal is recorded
(without the plate), audited and flagged to compliance officers. An answer with matches and
one without have the same shape.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, func, insert, select

from privplate.audit import AuditLog
from privplate.errors import (
    ApprovalRefused,
    InvalidPlate,
    PermissionDenied,
    PurposeDenied,
    QuotaExceeded,
)
from privplate.identity.accounts import UserInfo, person_ref
from privplate.identity.roles import Role
from privplate.jurisdiction import Purpose
from privplate.policy.flags import FlagKind, raise_flag
from privplate.policy.review import draw_search
from privplate.policy.rules import PurposePolicy
from privplate.policy.sharing import check_agreement
from privplate.settings import QuerySettings
from privplate.store.database import Database
from privplate.store.lookup import ReadMatch, TokenProbe, find_reads
from privplate.store.server_models import Query, QueryOutcome, User
from privplate.tokens.canonical import canonical_plate
from privplate.tokens.keyring import Keyring
from privplate.tokens.plate_token import plate_token

#: Outcomes that count against the quota (a refusal over quota does not use it up).
COUNTED = (QueryOutcome.ANSWERED, QueryOutcome.DENIED)
QUOTA_LOCK = "queries.quota"


@dataclass(frozen=True)
class QueryRequest:
    plate: str = field(repr=False)
    start: datetime
    end: datetime
    purpose: Purpose
    case_number: str
    justification: str
    agreement_id: uuid.UUID | None = None
    #: The second person's approval this search runs under (privplate.policy.approvals).
    approval_id: uuid.UUID | None = None


class ApprovalGate(Protocol):
    """Consumes an approved pending search (privplate.policy.approvals), in the transaction
    that records the query it becomes; raises ApprovalRefused for anything else."""

    def consume(
        self,
        conn: Connection,
        user: UserInfo,
        req: QueryRequest,
        query_id: uuid.UUID,
        now: datetime,
    ) -> None: ...


@dataclass(frozen=True)
class QueryAnswer:
    query_id: uuid.UUID
    start: datetime
    end: datetime
    matches: list[ReadMatch]


class QueryService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditLog,
        keyring: Keyring,
        policy: PurposePolicy,
        settings: QuerySettings,
        fold: dict[str, str] | None,
    ) -> None:
        self.db = db
        self.audit = audit
        self.keyring = keyring
        self.policy = policy
        self.settings = settings
        self.fold = fold
        #: Set by the approval service; without it a purpose that needs approval never runs.
        self.approvals: ApprovalGate | None = None

    def run(self, user: UserInfo, req: QueryRequest, now: datetime | None = None) -> QueryAnswer:
        now = now or datetime.now(UTC)
        if user.role is not Role.INVESTIGATOR:
            raise PermissionDenied("only investigators may query plates")
        query_id = uuid.uuid4()
        with self.db.write() as conn:
            self._approved(conn, user, req, query_id, now)
            canonical, failure, outcome = self.screen(conn, user, req, now)
            # An allowed query is reserved before the lookup: it counts even if the lookup fails.
            self._record(
                conn,
                query_id,
                user,
                req,
                now,
                outcome if failure else QueryOutcome.ANSWERED,
                str(failure) if failure else "",
            )
            if failure is None:  # the spot-check draw, drawn or not, on the same path
                draw_search(
                    conn,
                    self.audit,
                    query_id=query_id,
                    requester=user.actor,
                    share=self.settings.spot_check_share,
                    terms=self.policy.near_terms(req.justification, req.case_number),
                    now=now,
                )
        if failure is not None:
            raise failure

        def answered(conn: Connection, matches: list[ReadMatch]) -> None:
            # In the transaction that marks the recorded query as looked up.
            self.audit.append(
                conn,
                actor=user.actor,
                action="queries.answered",
                details={
                    "query": str(query_id),
                    "purpose": req.purpose.value,
                    "case_number": req.case_number,
                    "agreement": str(req.agreement_id) if req.agreement_id else None,
                    "window": [req.start.isoformat(), req.end.isoformat()],
                    "matches": len(matches),
                },
            )

        matches = self._matches(query_id, canonical, req.start, req.end, answered)
        return QueryAnswer(query_id, req.start, req.end, matches)

    def _matches(
        self,
        query_id: uuid.UUID,
        canonical: str,
        start: datetime,
        end: datetime,
        answered: Callable[[Connection, list[ReadMatch]], None],
    ) -> list[ReadMatch]:
        """The lookup itself, reached only from :meth:`run` once the query is allowed and on
        the record: the plate's token under every live epoch key of the recorded window. The
        store takes it only for that recorded, answered, not yet used query."""
        probes = [
            TokenProbe(key.epoch_id, plate_token(key.key, canonical), key.starts_at, key.ends_at)
            for key in self.keyring.keys_between(start, end)
        ]
        return find_reads(self.db, query_id, probes, then=answered)

    def _approved(
        self,
        conn: Connection,
        user: UserInfo,
        req: QueryRequest,
        query_id: uuid.UUID,
        now: datetime,
    ) -> None:
        """The one place that holds a search back for a second person: a purpose that needs
        approval runs only under an approved request, consumed in this transaction whatever
        the query's outcome; so no surface can skip it."""
        if req.approval_id is None:
            if req.purpose in self.settings.approval_required:
                raise ApprovalRefused(
                    f"searches for {req.purpose.value!r} need a second person's approval "
                    "(queries.approval_required): file the search for approval, and run it "
                    "once a compliance officer approved it"
                )
            return
        if self.approvals is None:
            raise ApprovalRefused("this server has no approval service: the search cannot run")
        self.approvals.consume(conn, user, req, query_id, now)

    def screen(
        self, conn: Connection, user: UserInfo, req: QueryRequest, now: datetime
    ) -> tuple[str, Exception | None, QueryOutcome]:
        """Every rule a search must pass before anything is looked up (quota, then purpose,
        case number, justification, window, agreement), in the caller's write transaction: the
        canonical plate, or the failure and the outcome to record it under (a policy denial is
        also flagged to compliance). Used by :meth:`run` and when a search is filed for
        approval, so both apply the same rules."""
        failure = self._quota_problem(conn, user, now)
        if failure is not None:
            return "", failure, QueryOutcome.REFUSED
        try:
            return self._check(conn, req, now), None, QueryOutcome.ANSWERED
        except (PurposeDenied, InvalidPlate) as exc:
            raise_flag(
                conn,
                kind=FlagKind.DENIED_QUERY,
                subject=user.name,
                details={"last_reason": str(exc)},
                now=now,
            )
            return "", exc, QueryOutcome.DENIED

    def record_refusal(
        self,
        conn: Connection,
        user: UserInfo,
        req: QueryRequest,
        now: datetime,
        outcome: QueryOutcome,
        failure: Exception,
    ) -> uuid.UUID:
        """Record (and audit) a search that :meth:`screen` refused, as :meth:`run` does."""
        query_id = uuid.uuid4()
        self._record(conn, query_id, user, req, now, outcome, str(failure))
        return query_id

    def _quota_problem(self, conn: Connection, user: UserInfo, now: datetime) -> Exception | None:
        # Counting and recording a query is one step for every server on the database: every
        # query counts against the deployment's quota, so one lock covers the person's too,
        # held until the caller's transaction has recorded this query.
        self.db.lock_subject(conn, QUOTA_LOCK)
        day = datetime(now.year, now.month, now.day, tzinfo=UTC)
        base = (
            select(func.count())
            .select_from(Query)
            .where(Query.created_at >= day, Query.outcome.in_(COUNTED))
        )
        # The quota is a person's, whichever of their accounts asks: a second investigator
        # account is not a second quota.
        persons = base.join(User, User.id == Query.user_id).where(User.person == user.person)
        mine = conn.execute(persons).scalar_one()
        if mine >= self.settings.per_user_per_day:
            used_by = conn.execute(
                persons.with_only_columns(User.name).distinct().order_by(User.name)
            ).scalars()
            raise_flag(
                conn,
                kind=FlagKind.QUERY_QUOTA,
                subject=person_ref(user.person),
                details={"quota": self.settings.per_user_per_day, "accounts": list(used_by)},
                now=now,
            )
            return QuotaExceeded(
                f"you have used your {self.settings.per_user_per_day} queries for today, counted "
                "over all your accounts (queries.per_user_per_day); compliance officers were "
                "notified"
            )
        everyone = conn.execute(base).scalar_one()
        if everyone >= self.settings.per_deployment_per_day:
            raise_flag(
                conn,
                kind=FlagKind.DEPLOYMENT_QUERY_QUOTA,
                subject="deployment",
                details={"quota": self.settings.per_deployment_per_day},
                now=now,
            )
            return QuotaExceeded(
                f"this deployment has used its {self.settings.per_deployment_per_day} queries "
                "for today (queries.per_deployment_per_day); compliance officers were notified"
            )
        return None

    def _check(self, conn: Connection, req: QueryRequest, now: datetime) -> str:
        self.policy.check_purpose(req.purpose)
        self.policy.check_case_number(req.case_number)
        self.policy.check_justification(req.justification)
        if req.start.tzinfo is None or req.end.tzinfo is None:
            raise PurposeDenied("the time window must carry a time zone")
        if req.end <= req.start:
            raise PurposeDenied("the time window ends before it starts")
        if req.end - req.start > timedelta(days=self.settings.max_window_days):
            raise PurposeDenied(
                f"the time window is longer than {self.settings.max_window_days} days "
                "(queries.max_window_days); narrow it"
            )
        if req.agreement_id is not None:
            check_agreement(
                conn, req.agreement_id, req.purpose, self.policy.out_of_state_sharing, now
            )
        canonical = canonical_plate(req.plate, fold=self.fold)
        if canonical and canonical in canonical_plate_words(req.justification, self.fold):
            raise PurposeDenied(
                "the justification must not contain the plate (it is kept on the record, and "
                "plates are never stored); rephrase it"
            )
        return canonical

    def storable_text(self, req: QueryRequest) -> tuple[str, str]:
        """The justification and case number as they may be stored: a text that contains the
        plate is never stored, even on a refusal (nor in a search filed for approval)."""
        justification = req.justification[:2000]
        try:
            canonical = canonical_plate(req.plate, fold=self.fold)
        except InvalidPlate:
            canonical = ""
        if canonical and canonical in canonical_plate_words(justification, self.fold):
            justification = "(withheld: it contained the queried plate)"
        case_number = req.case_number[:64]
        if canonical and canonical in canonical_plate_words(case_number, self.fold):
            case_number = "(withheld)"
        return justification, case_number

    def stored_request(self, req: QueryRequest) -> dict[str, object]:
        """The columns a recorded search and a search filed for approval share: purpose, case
        number and justification as they may be stored, agreement and window."""
        justification, case_number = self.storable_text(req)
        return {
            "purpose": req.purpose.value,
            "case_number": case_number,
            "justification": justification,
            "agreement_id": req.agreement_id,
            "window_start": req.start,
            "window_end": req.end,
        }

    def _record(
        self,
        conn: Connection,
        query_id: uuid.UUID,
        user: UserInfo,
        req: QueryRequest,
        now: datetime,
        outcome: QueryOutcome,
        reason: str,
    ) -> None:
        stored = self.stored_request(req)
        case_number = str(stored["case_number"])
        conn.execute(
            insert(Query).values(
                id=query_id,
                user_id=user.id,
                created_at=now,
                **stored,
                outcome=outcome,
                reason=reason[:500],
                match_count=0,
            )
        )
        if outcome != QueryOutcome.ANSWERED:
            self.audit.append(
                conn,
                actor=user.actor,
                action=f"queries.{outcome}",
                details={
                    "query": str(query_id),
                    "purpose": req.purpose.value,
                    "case_number": case_number,
                    "reason": reason,
                },
            )


def canonical_plate_words(text: str, fold: dict[str, str] | None) -> set[str]:
    """Every run of up to four adjacent words of ``text`` in canonical form, so that a plate
    typed with spaces or dashes inside a sentence is still recognised."""
    words = [w for w in text.replace("-", " ").replace(".", " ").split() if w]
    out: set[str] = set()
    for i in range(len(words)):
        for j in range(i + 1, min(i + 4, len(words)) + 1):
            try:
                out.add(canonical_plate(" ".join(words[i:j]), fold=fold))
            except InvalidPlate:
                continue
    return out


@dataclass(frozen=True)
class QueryRecord:
    """A query as compliance officers and auditors see it: never the plate."""

    id: uuid.UUID
    user: str
    created_at: datetime
    purpose: str
    case_number: str
    justification: str
    agreement_id: uuid.UUID | None
    window_start: datetime
    window_end: datetime
    outcome: str
    reason: str
    match_count: int


def list_queries(
    *,
    db: Database,
    user_id: uuid.UUID | None = None,
    outcome: QueryOutcome | None = None,
    purpose: Purpose | None = None,
    limit: int = 200,
) -> list[QueryRecord]:
    """The newest ``limit`` query records matching every filter given (never a plate: the
    records hold none)."""
    stmt = (
        select(Query, User.name.label("user_name"))
        .join(User, User.id == Query.user_id)
        .order_by(Query.created_at.desc())
        .limit(limit)
    )
    if user_id is not None:
        stmt = stmt.where(Query.user_id == user_id)
    if outcome is not None:
        stmt = stmt.where(Query.outcome == outcome)
    if purpose is not None:
        stmt = stmt.where(Query.purpose == purpose.value)
    with db.read() as conn:
        rows = conn.execute(stmt).all()
    return [
        QueryRecord(
            id=r.id,
            user=r.user_name,
            created_at=r.created_at,
            purpose=r.purpose,
            case_number=r.case_number,
            justification=r.justification,
            agreement_id=r.agreement_id,
            window_start=r.window_start,
            window_end=r.window_end,
            outcome=r.outcome,
            reason=r.reason,
            match_count=r.match_count,
        )
        for r in rows
    ]
