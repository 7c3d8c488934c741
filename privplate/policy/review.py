"""Spot checks: a share of answered searches and of hand-made hotlist entries is drawn at
random into a compliance review queue, together with every one the screen found near a
forbidden term; a compliance officer records one verdict on each, with a note.

What makes a draw worth anything is that the requester cannot steer or see it:

- The random draw comes from the operating system's generator (``secrets``), fed by nothing the
  requester sends or can know (not the query, its id, the time or the plate).
- It happens in the transaction that records the search (or adds the entries), before anything
  is answered: an aborted search leaves no review row, and a drawn one is never lost.
- Drawn or not, a search goes the same way: one draw entry in the audit log either way (the
  public checkpoint shows the log's size, so a drawn search must not add an entry more), the
  same answer, and nothing on the requester's own views. Only compliance officers and auditors
  read the queue and the audit log; the transparency report counts draws only up to the start
  of the current UTC day, so reading it just before and after a search tells nothing.

Imported entries (CSV files, extracts of another agency's list) are not drawn: they are not
one operator's choice of whom to watch, and the screen (which refuses forbidden terms in them as
in any entry) would otherwise run twice per row of a large import while the write lock is held.
"""

from __future__ import annotations

import json
import secrets
import statistics
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select, update

from privplate.audit import AuditLog
from privplate.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from privplate.identity.accounts import UserInfo, person_of_actor
from privplate.identity.roles import Role
from privplate.store.database import Database
from privplate.store.review_models import SpotCheck
from privplate.store.server_models import Hotlist, HotlistEntry, Query, User

#: The audit actor of draws: the deployment draws, not the requester (whose own entries an
#: account view could one day list).
DRAW_ACTOR = "spot-checks"
DRAW_ACTION = "spot_checks.draw"
VERDICT_ACTION = "spot_checks.verdict"
REFUSED_ACTION = "spot_checks.verdict_refused"
MAX_NOTE = 2000
MAX_TERMS = 20
_RESOLUTION = 53  # bits: every share a float can hold between 0 and 1, drawn exactly


class SubjectKind(StrEnum):
    SEARCH = "search"
    HOTLIST_ENTRY = "hotlist-entry"


class DrawReason(StrEnum):
    RANDOM = "random"
    NEAR_TERM = "near-term"


class Verdict(StrEnum):
    CONSISTENT = "consistent"  # consistent with the purpose given
    NEEDS_FOLLOW_UP = "needs-follow-up"
    VIOLATION = "violation"


@dataclass(frozen=True)
class Candidate:
    """One search or entry offered to the draw: drawn at random with ``share``, and always
    when ``terms`` (what the screen came close to) is not empty."""

    subject_id: uuid.UUID
    requester: str
    share: float
    terms: tuple[str, ...] = ()


def drawn_at_random(share: float) -> bool:
    """True with probability ``share`` (0 never, 1 always)."""
    return secrets.randbits(_RESOLUTION) < round(share * (1 << _RESOLUTION))


def draw_reason(candidate: Candidate) -> DrawReason | None:
    # The random draw is made for near-term candidates too: one path whatever the text.
    picked = drawn_at_random(candidate.share)
    if candidate.terms:
        return DrawReason.NEAR_TERM
    return DrawReason.RANDOM if picked else None


def draw(
    conn: Connection,
    audit: AuditLog,
    *,
    kind: SubjectKind,
    candidates: Sequence[Candidate],
    about: dict[str, Any],
    now: datetime,
) -> list[uuid.UUID]:
    """Draw ``candidates`` into the queue, in the caller's transaction (the one that records
    them); one audit entry for the lot, drawn or not. Returns the review ids."""
    drawn: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for c in candidates:
        reason = draw_reason(c)
        if reason is None:
            continue
        terms = sorted(set(c.terms))[:MAX_TERMS]
        review_id = uuid.uuid4()
        rows.append(
            {
                "id": review_id,
                "subject_kind": kind.value,
                "subject_id": c.subject_id,
                "requester": c.requester,
                "drawn_at": now,
                "reason": reason.value,
                "terms": json.dumps(terms),
                "note": "",
            }
        )
        drawn.append(
            {
                "review": str(review_id),
                "subject": str(c.subject_id),
                "reason": reason.value,
                "terms": terms,
            }
        )
    if rows:
        conn.execute(insert(SpotCheck), rows)
    audit.append(
        conn,
        actor=DRAW_ACTOR,
        action=DRAW_ACTION,
        details={"kind": kind.value, **about, "considered": len(candidates), "drawn": drawn},
    )
    return [uuid.UUID(r["review"]) for r in drawn]


def draw_search(
    conn: Connection,
    audit: AuditLog,
    *,
    query_id: uuid.UUID,
    requester: str,
    share: float,
    terms: tuple[str, ...],
    now: datetime,
) -> list[uuid.UUID]:
    """The draw for one answered search (QueryService.run, in its recording transaction)."""
    return draw(
        conn,
        audit,
        kind=SubjectKind.SEARCH,
        candidates=[Candidate(query_id, requester, share, terms)],
        about={"query": str(query_id)},
        now=now,
    )


def draw_entries(
    conn: Connection,
    audit: AuditLog,
    *,
    hotlist: str,
    requester: str,
    entries: Sequence[tuple[uuid.UUID, str, str, bool]],
    share: float,
    near_terms: Callable[..., tuple[str, ...]],
    now: datetime,
) -> list[uuid.UUID]:
    """The draw for entries just added (Hotlists.add_entries, in its transaction): each
    ``(id, reason, case number, imported)``; only the hand-made ones are candidates."""
    terms: dict[tuple[str, str], tuple[str, ...]] = {}  # a batch often repeats its reason
    candidates = []
    for entry_id, reason, case, imported in entries:
        if imported:
            continue
        if (reason, case) not in terms:
            terms[reason, case] = near_terms(reason, case)
        candidates.append(Candidate(entry_id, requester, share, terms[reason, case]))
    return draw(
        conn,
        audit,
        kind=SubjectKind.HOTLIST_ENTRY,
        candidates=candidates,
        about={"hotlist": hotlist, "entries": len(entries)},
        now=now,
    )


# -- the queue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewInfo:
    id: uuid.UUID
    kind: SubjectKind
    subject_id: uuid.UUID
    requester: str
    drawn_at: datetime
    reason: DrawReason
    terms: list[str]
    reviewer: str | None
    reviewed_at: datetime | None
    verdict: Verdict | None
    note: str


@dataclass(frozen=True)
class SearchSubject:
    """A drawn search as its reviewer reads it: never the plate (the record has none)."""

    requester: str
    created_at: datetime
    purpose: str
    case_number: str
    justification: str
    window_start: datetime
    window_end: datetime
    agreement_id: uuid.UUID | None
    outcome: str
    match_count: int


@dataclass(frozen=True)
class EntrySubject:
    """A drawn hotlist entry, without its plate (which stays sealed in the list)."""

    hotlist: str
    reason: str
    case_number: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    removed_at: datetime | None


@dataclass(frozen=True)
class ReviewItem:
    review: ReviewInfo
    #: None when retention has deleted the subject since (an expired or removed entry, a
    #: query past the audit window); the draw's audit entry still names it.
    search: SearchSubject | None
    hotlist_entry: EntrySubject | None


def _info(row: Any) -> ReviewInfo:
    m = row._mapping
    return ReviewInfo(
        id=m["id"],
        kind=SubjectKind(m["subject_kind"]),
        subject_id=m["subject_id"],
        requester=m["requester"],
        drawn_at=m["drawn_at"],
        reason=DrawReason(m["reason"]),
        terms=list(json.loads(m["terms"])),
        reviewer=m["reviewer"],
        reviewed_at=m["reviewed_at"],
        verdict=Verdict(m["verdict"]) if m["verdict"] is not None else None,
        note=m["note"],
    )


def list_reviews(
    *,
    db: Database,
    open_only: bool = False,
    reason: DrawReason | None = None,
    kind: SubjectKind | None = None,
    limit: int = 200,
) -> list[ReviewInfo]:
    """The queue: open items oldest first (the longest waiting on top), then reviewed ones
    newest first, ``limit`` in all."""
    base = select(SpotCheck)
    if reason is not None:
        base = base.where(SpotCheck.reason == reason.value)
    if kind is not None:
        base = base.where(SpotCheck.subject_kind == kind.value)
    opened = base.where(SpotCheck.reviewed_at.is_(None)).order_by(SpotCheck.drawn_at, SpotCheck.id)
    with db.read() as conn:
        out = [_info(r) for r in conn.execute(opened.limit(limit))]
        if not open_only and len(out) < limit:
            done = base.where(SpotCheck.reviewed_at.is_not(None)).order_by(
                SpotCheck.reviewed_at.desc(), SpotCheck.id
            )
            out += [_info(r) for r in conn.execute(done.limit(limit - len(out)))]
    return out


def _get(conn: Connection, review_id: uuid.UUID) -> ReviewInfo:
    row = conn.execute(select(SpotCheck).where(SpotCheck.id == review_id)).first()
    if row is None:
        raise NotFound("no spot check with this id")
    return _info(row)


def _search(conn: Connection, query_id: uuid.UUID) -> SearchSubject | None:
    row = conn.execute(
        select(Query, User.name.label("user_name"))
        .join(User, User.id == Query.user_id)
        .where(Query.id == query_id)
    ).first()
    if row is None:
        return None
    return SearchSubject(
        requester=row.user_name,
        created_at=row.created_at,
        purpose=row.purpose,
        case_number=row.case_number,
        justification=row.justification,
        window_start=row.window_start,
        window_end=row.window_end,
        agreement_id=row.agreement_id,
        outcome=row.outcome,
        match_count=row.match_count,
    )


def _entry(conn: Connection, entry_id: uuid.UUID) -> EntrySubject | None:
    row = conn.execute(
        select(
            Hotlist.name,
            HotlistEntry.reason,
            HotlistEntry.case_number,
            HotlistEntry.created_by,
            HotlistEntry.created_at,
            HotlistEntry.expires_at,
            HotlistEntry.removed_at,
        )
        .join(Hotlist, Hotlist.id == HotlistEntry.hotlist_id)
        .where(HotlistEntry.id == entry_id)
    ).first()
    if row is None:
        return None
    return EntrySubject(
        hotlist=row.name,
        reason=row.reason,
        case_number=row.case_number,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        removed_at=row.removed_at,
    )


def _kept(conn: Connection, review_id: uuid.UUID) -> dict[str, Any] | None:
    """What retention kept of a subject it deleted before the review (:func:`keep_subjects`)."""
    raw = conn.execute(select(SpotCheck.subject).where(SpotCheck.id == review_id)).scalar()
    if raw is None:
        return None
    kept: dict[str, Any] = json.loads(raw)
    for key in ("created_at", "window_start", "window_end", "expires_at", "removed_at"):
        if kept.get(key) is not None:
            kept[key] = datetime.fromisoformat(kept[key])
    if kept.get("agreement_id") is not None:
        kept["agreement_id"] = uuid.UUID(kept["agreement_id"])
    return kept


def review_item(*, db: Database, review_id: uuid.UUID) -> ReviewItem:
    """One item of the queue with what its reviewer reads about the subject (as retention
    kept it, once the subject itself is deleted)."""
    with db.read() as conn:
        info = _get(conn, review_id)
        if info.kind is SubjectKind.SEARCH:
            search = _search(conn, info.subject_id)
            if search is None and (kept := _kept(conn, review_id)) is not None:
                search = SearchSubject(**kept)
            return ReviewItem(info, search, None)
        entry = _entry(conn, info.subject_id)
        if entry is None and (kept := _kept(conn, review_id)) is not None:
            entry = EntrySubject(**kept)
        return ReviewItem(info, None, entry)


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def keep_subjects(conn: Connection, *, kind: SubjectKind, doomed: Any) -> int:
    """Before retention deletes subjects (``doomed``: a select of their ids), copy what the
    reviewer of an open spot check reads about each into the spot check: a drawn entry
    removed, or a drawn query aged out, before anyone reviewed it must not take the review's
    substance with it. Returns how many were kept. Holds no plate: neither record has one
    in clear (an entry's sealed plate is not copied)."""
    rows = conn.execute(
        select(SpotCheck.id, SpotCheck.subject_id).where(
            SpotCheck.subject_kind == kind.value,
            SpotCheck.reviewed_at.is_(None),
            SpotCheck.subject.is_(None),
            SpotCheck.subject_id.in_(doomed),
        )
    ).all()
    read = _search if kind is SubjectKind.SEARCH else _entry
    kept = 0
    for row in rows:
        subject = read(conn, row.subject_id)
        if subject is None:
            continue
        snapshot = {k: _jsonable(v) for k, v in subject.__dict__.items()}
        conn.execute(
            update(SpotCheck).where(SpotCheck.id == row.id).values(subject=json.dumps(snapshot))
        )
        kept += 1
    return kept


def _take_verdict(
    conn: Connection,
    *,
    review_id: uuid.UUID,
    reviewer: str,
    verdict: Verdict,
    note: str,
    now: datetime,
) -> ReviewInfo:
    info = _get(conn, review_id)
    if info.reviewed_at is not None:
        raise Conflict("this spot check already has its verdict; a verdict is taken once")
    if person_of_actor(conn, info.requester) == person_of_actor(conn, reviewer):
        raise PermissionDenied(
            "this spot check is about your own search or entry: you cannot review it, from any "
            "of your accounts; another compliance officer must"
        )
    # Conditional, so that of two officers recording a verdict at once only one does.
    done = conn.execute(
        update(SpotCheck)
        .where(SpotCheck.id == review_id, SpotCheck.reviewed_at.is_(None))
        .values(reviewer=reviewer, reviewed_at=now, verdict=verdict.value, note=note)
    )
    if done.rowcount == 0:
        raise Conflict("this spot check already has its verdict; a verdict is taken once")
    return _get(conn, review_id)


def record_verdict(
    *,
    db: Database,
    audit: AuditLog,
    review_id: uuid.UUID,
    reviewer: UserInfo,
    verdict: Verdict,
    note: str,
) -> ReviewInfo:
    """A compliance officer's verdict on one spot check, on the record; a refused one is
    audited too. The note is the officer's own words and is kept as written (bounded): the
    officer never sees a plate, so it cannot hold one from here."""
    note = note.strip()
    if reviewer.role is not Role.COMPLIANCE:
        raise PermissionDenied("only compliance officers record spot-check verdicts")
    if not 1 <= len(note) <= MAX_NOTE:
        raise InvalidRequest(f"a note of 1-{MAX_NOTE} characters is required with a verdict")
    now = datetime.now(UTC)
    try:
        with db.write() as conn:
            info = _take_verdict(
                conn,
                review_id=review_id,
                reviewer=reviewer.actor,
                verdict=verdict,
                note=note,
                now=now,
            )
            audit.append(
                conn,
                actor=reviewer.actor,
                action=VERDICT_ACTION,
                details={
                    "review": str(review_id),
                    "kind": info.kind.value,
                    "subject": str(info.subject_id),
                    "reason": info.reason.value,
                    "verdict": verdict.value,
                    # Seconds, an integer: audit entries hold no floats.
                    "seconds_to_review": int((now - info.drawn_at).total_seconds()),
                    "note": note,
                },
            )
    except (PermissionDenied, Conflict) as exc:
        audit.record(
            actor=reviewer.actor,
            action=REFUSED_ACTION,
            details={"review": str(review_id), "reason": str(exc)},
        )
        raise
    return info


# -- the transparency report ----------------------------------------------------------------


_REPORT_KEYS = {SubjectKind.SEARCH: "searches", SubjectKind.HOTLIST_ENTRY: "hotlist_entries"}


def counted_until(end: datetime, now: datetime) -> datetime:
    """Draws and verdicts count in a report up to the start of the current UTC day (or the
    period's end, if earlier): a report read just before and just after a search differs in
    no spot-check figure."""
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    return min(end, today)


def spot_check_counts(
    audit: AuditLog, *, start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    """Draws and verdicts of the period, from the audit log, per kind of subject."""
    until = counted_until(end, now)
    drawn: dict[str, Counter[str]] = {k.value: Counter() for k in SubjectKind}
    verdicts: dict[str, Counter[str]] = {k.value: Counter() for k in SubjectKind}
    hours: dict[str, list[float]] = {k.value: [] for k in SubjectKind}
    for action in (DRAW_ACTION, VERDICT_ACTION):
        for stored in audit.entries(action=action, since=start, until=until):
            if stored.entry is None or stored.action != action:
                continue
            d = stored.entry.details
            kind = str(d.get("kind"))
            if kind not in drawn:
                continue
            if action == DRAW_ACTION:
                drawn[kind].update(str(item.get("reason")) for item in d.get("drawn", []))
            else:
                verdicts[kind][str(d.get("verdict"))] += 1
                hours[kind].append(int(d.get("seconds_to_review", 0)) / 3600)
    return {
        "counted_until": until.isoformat(),
        **{
            _REPORT_KEYS[k]: {
                "drawn": {r.value: drawn[k.value][r.value] for r in DrawReason},
                "reviewed": sum(verdicts[k.value].values()),
                "verdicts": {v.value: verdicts[k.value][v.value] for v in Verdict},
                "hours_to_review": {
                    "median": round(statistics.median(hours[k.value]), 2)
                    if hours[k.value]
                    else None,
                    "max": round(max(hours[k.value]), 2) if hours[k.value] else None,
                },
            }
            for k in SubjectKind
        },
    }
