"""The two-person unseal workflow.

An investigator files a request for one evidence item with a case number and justification.
Compliance officers each send a partial decryption of that item's point R made with their own
share, with a proof; when the threshold of distinct officers is reached the server combines the
partials into S = x*R, derives the item's key, checks that the item opens, and releases it to
the requester (watermarked). The requester cannot approve, from any account of theirs; one
person counts once (checks compare people, not accounts, see privplate.identity); approvals
expire; any officer's denial ends the request, and so does its requester's withdrawal.
Every step is audited.

A partial depends only on the item and the share, so partials of two requests for one item
would combine: at most one request per item is open at a time (a unique index), partials are
kept only sealed to their request under a server subkey (privplate.unseal.partials), and they
are erased when the request ends (SPEC §7.6).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import nacl.secret
from sqlalchemy import ColumnElement, Connection, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from privplate.audit import AuditLog
from privplate.errors import Conflict, EvidenceExpired, NotFound, SealingError, UnsealRefused
from privplate.identity.accounts import UserInfo, persons_of
from privplate.identity.roles import Role
from privplate.policy.rules import PurposePolicy
from privplate.sealing import ecies
from privplate.sealing.layout import unpack_evidence
from privplate.server_secret import ServerSecret
from privplate.settings import UnsealSettings
from privplate.store.database import Database
from privplate.store.evidence_keys import (
    KeySet,
    active_key_set,
    keys_live_at,
    known_evidence_key,
)
from privplate.store.models import Evidence
from privplate.store.unseal_models import (
    ShareCommitment,
    ShareSet,
    UnsealApproval,
    UnsealRequest,
)
from privplate.threshold.combine import Partial, combine_partials, verified_partial
from privplate.threshold.dleq import Proof
from privplate.unseal.partials import open_partial, seal_partial
from privplate.unseal.watermark import watermark

CONTEXT_DOMAIN = b"privplate/v1/unseal-request\x00"


class RequestStatus(StrEnum):
    """Where an unseal request stands. Only PENDING is open; every other status ends it (and
    erases its partials)."""

    PENDING = "pending"
    RELEASED = "released"
    DENIED = "denied"
    EXPIRED = "expired"
    EVIDENCE_EXPIRED = "evidence-expired"
    WITHDRAWN = "withdrawn"


def request_context(request_id: uuid.UUID, evidence_id: uuid.UUID, share_set: uuid.UUID) -> bytes:
    """What every partial's proof is bound to: this request, this item, this share set."""
    return CONTEXT_DOMAIN + request_id.bytes + evidence_id.bytes + share_set.bytes


_EXPIRED = "this request expired before enough officers approved it"


def _request_open(open_id: uuid.UUID | None, *, theirs: bool) -> Conflict:
    """The refusal of a second request for an item. Only the person who filed the open one
    learns its id (and may withdraw it); to anyone else the id would say who is looking at
    the item and open a request they have no business with."""
    if theirs:
        error = Conflict(
            f"your unseal request {open_id} for this evidence item is still open: withdraw it "
            "(privplate unseal withdraw) or wait until it is released, denied or expires before "
            "filing another (one open request per item, so that approvals of two requests "
            "never combine)"
        )
    else:
        error = Conflict(
            "another unseal request for this evidence item is still open: it must be released, "
            "denied, withdrawn or expire before another is filed (one open request per item, "
            "so that approvals of two requests never combine)"
        )
    error.open_request = open_id  # type: ignore[attr-defined]  # for the audit entry alone
    return error


def _erase_partials(conn: Connection, db: Database, where: ColumnElement[bool]) -> int:
    """Delete stored partials; on SQLite ask the next purge to zero what they left behind."""
    erased = int(conn.execute(delete(UnsealApproval).where(where)).rowcount)
    if erased:
        db.request_scrub()
    return erased


def _ends(error: Exception, status: str) -> Exception:
    """Mark a refusal that also ends the request (recorded once the transaction rolled back)."""
    error.ends_request = status  # type: ignore[attr-defined]
    return error


@dataclass(frozen=True)
class RequestInfo:
    id: uuid.UUID
    evidence_id: uuid.UUID
    requested_by: str
    case_number: str
    justification: str
    created_at: datetime
    status: str
    reason: str
    share_set_id: uuid.UUID
    public_key: bytes
    threshold: int
    ephemeral: bytes  # R of the evidence item ("" once the item is gone)
    approvals: int
    expires_at: datetime


@dataclass(frozen=True)
class Released:
    crop_jpeg: bytes
    frame_jpeg: bytes
    watermark: str


class UnsealService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditLog,
        secret: ServerSecret,
        settings: UnsealSettings,
        policy: PurposePolicy,
        visible_watermark: bool = True,
    ) -> None:
        self.db = db
        self.audit = audit
        self._box = nacl.secret.SecretBox(secret.subkey("unseal-box"))
        self._partial_key = secret.subkey("unseal-partial")
        self.settings = settings
        self.policy = policy
        self.visible_watermark = visible_watermark

    # -- reading ---------------------------------------------------------------------------

    def current_key(self) -> KeySet:
        """The active evidence key, with the threshold and commitments that can open it."""
        with self.db.read() as conn:
            key_set = active_key_set(conn)
        if key_set is None:
            raise NotFound("no evidence key yet: hold a key ceremony (privplate keys ceremony)")
        return key_set

    def _row(self, conn: Connection, request_id: uuid.UUID) -> object:
        row = conn.execute(select(UnsealRequest).where(UnsealRequest.id == request_id)).first()
        if row is None:
            raise NotFound("no unseal request with this id")
        return row

    def _sealed(
        self, conn: Connection, evidence_id: uuid.UUID, observed_at: datetime
    ) -> bytes | None:
        value = conn.execute(
            select(Evidence.sealed).where(
                Evidence.id == evidence_id, Evidence.observed_at == observed_at
            )
        ).scalar()
        return bytes(value) if value is not None else None

    def _sealing_key(self, conn: Connection, evidence_id: uuid.UUID, observed: datetime) -> bytes:
        """The evidence key X the item was sealed to: named in the blob (PPS2), or for an
        older PPS1 blob the key that was active when the item was observed."""
        sealed = self._sealed(conn, evidence_id, observed)
        named = ecies.sealed_to(sealed) if sealed is not None else None
        if named is not None:
            if not known_evidence_key(conn, named):
                raise NotFound(
                    "this item was sealed to an evidence key no ceremony of this deployment "
                    "produced (check the edge's evidence_public_key)"
                )
            return named
        live = keys_live_at(conn, observed)
        if not live:
            raise NotFound(
                "no evidence key was active when this item was sealed; hold a key "
                "ceremony first (privplate keys ceremony)"
            )
        return live[0]

    def _info(self, conn: Connection, row: object, now: datetime) -> RequestInfo:
        r = row._mapping  # type: ignore[attr-defined]
        share_set = conn.execute(select(ShareSet).where(ShareSet.id == r["share_set_id"])).one()
        sealed = self._sealed(conn, r["evidence_id"], r["evidence_observed_at"])
        approvals = conn.execute(
            select(UnsealApproval.share_index).where(
                UnsealApproval.request_id == r["id"], UnsealApproval.expires_at > now
            )
        ).all()
        return RequestInfo(
            id=r["id"],
            evidence_id=r["evidence_id"],
            requested_by=r["requested_by"],
            case_number=r["case_number"],
            justification=r["justification"],
            created_at=r["created_at"],
            status=r["status"],
            reason=r["reason"],
            share_set_id=r["share_set_id"],
            public_key=bytes(share_set.public_key),
            threshold=share_set.threshold,
            ephemeral=ecies.parse_sealed(sealed).ephemeral if sealed else b"",
            approvals=len(approvals),
            expires_at=r["created_at"] + timedelta(days=self.settings.request_days),
        )

    def get(self, request_id: uuid.UUID, *, viewer: UserInfo) -> RequestInfo:
        now = datetime.now(UTC)
        with self.db.read() as conn:
            row = self._row(conn, request_id)
            info = self._info(conn, row, now)
        if viewer.role is Role.INVESTIGATOR and info.requested_by != viewer.name:
            raise NotFound("no unseal request with this id")
        return info

    def queue(self, *, viewer: UserInfo, status: str | None = None) -> list[RequestInfo]:
        now = datetime.now(UTC)
        stmt = select(UnsealRequest).order_by(UnsealRequest.created_at.desc()).limit(500)
        if status is not None:
            stmt = stmt.where(UnsealRequest.status == status)
        if viewer.role is Role.INVESTIGATOR:
            stmt = stmt.where(UnsealRequest.requested_by == viewer.name)
        with self.db.read() as conn:
            return [self._info(conn, row, now) for row in conn.execute(stmt).all()]

    # -- filing ----------------------------------------------------------------------------

    def request(
        self, user: UserInfo, *, evidence_id: uuid.UUID, case_number: str, justification: str
    ) -> RequestInfo:
        if user.role is not Role.INVESTIGATOR:
            raise UnsealRefused("only investigators file unseal requests")
        self.policy.check_case_number(case_number)
        self.policy.check_justification(justification)
        request_id = uuid.uuid4()
        error: Conflict | EvidenceExpired
        try:
            with self.db.write() as conn:
                return self._file(conn, user, request_id, evidence_id, case_number, justification)
        except IntegrityError:  # PostgreSQL: another request for the item was filed meanwhile
            with self.db.read() as conn:
                open_id = self._open_request(conn, evidence_id)
                error = _request_open(open_id, theirs=self._filed_by(conn, open_id, user))
        except (Conflict, EvidenceExpired) as exc:
            error = exc
        self._refuse(user.actor, evidence_id, error)
        raise error

    @staticmethod
    def _filed_by(conn: Connection, request_id: uuid.UUID | None, user: UserInfo) -> bool:
        """Whether ``user``'s person filed the request, from any of their accounts (False for
        no such request)."""
        by = conn.execute(
            select(UnsealRequest.requested_by).where(UnsealRequest.id == request_id)
        ).scalar()
        return isinstance(by, str) and persons_of(conn, [by]).get(by) == user.person

    def _file(
        self,
        conn: Connection,
        user: UserInfo,
        request_id: uuid.UUID,
        evidence_id: uuid.UUID,
        case_number: str,
        justification: str,
    ) -> RequestInfo:
        now = datetime.now(UTC)
        observed = conn.execute(
            select(Evidence.observed_at).where(Evidence.id == evidence_id)
        ).scalar()
        if observed is None:  # audited by request(), after this transaction rolled back
            raise EvidenceExpired(
                "evidence expired: retention has purged this item (or it never existed)"
            )
        key = self._sealing_key(conn, evidence_id, observed)
        share_set = conn.execute(
            select(ShareSet.id).where(ShareSet.public_key == key, ShareSet.superseded_at.is_(None))
        ).scalar_one()
        open_id = self._open_request(conn, evidence_id)
        if open_id is not None:
            created = conn.execute(
                select(UnsealRequest.created_at).where(UnsealRequest.id == open_id)
            ).scalar_one()
            if created + timedelta(days=self.settings.request_days) > now:
                raise _request_open(open_id, theirs=self._filed_by(conn, open_id, user))
            self._end(conn, open_id, RequestStatus.EXPIRED, now, reason=_EXPIRED)
        conn.execute(
            insert(UnsealRequest).values(
                id=request_id,
                evidence_id=evidence_id,
                evidence_observed_at=observed,
                share_set_id=share_set,
                requested_by=user.name,
                case_number=case_number,
                justification=justification,
                created_at=now,
                status=RequestStatus.PENDING,
                reason="",
            )
        )
        self.audit.append(
            conn,
            actor=user.actor,
            action="unseal.requested",
            details={
                "request": str(request_id),
                "evidence": str(evidence_id),
                "case_number": case_number,
                "justification": justification,
            },
        )
        return self._info(conn, self._row(conn, request_id), now)

    def _open_request(self, conn: Connection, evidence_id: uuid.UUID) -> uuid.UUID | None:
        value = conn.execute(
            select(UnsealRequest.id).where(
                UnsealRequest.evidence_id == evidence_id,
                UnsealRequest.status == RequestStatus.PENDING,
            )
        ).scalar()
        return value if isinstance(value, uuid.UUID) else None

    def _end(
        self,
        conn: Connection,
        request_id: uuid.UUID,
        status: RequestStatus,
        now: datetime,
        *,
        reason: str,
        by: str | None = None,
    ) -> None:
        """End a pending request and erase its partials (on SQLite the next purge also zeroes
        the pages and WAL frames they were in)."""
        conn.execute(
            update(UnsealRequest)
            .where(UnsealRequest.id == request_id, UnsealRequest.status == RequestStatus.PENDING)
            .values(status=status, decided_at=now, decided_by=by, reason=reason)
        )
        _erase_partials(conn, self.db, UnsealApproval.request_id == request_id)

    def _audit_refusal(
        self,
        conn: Connection,
        actor: str,
        subject: uuid.UUID,
        why: str,
        open_request: uuid.UUID | None = None,
    ) -> None:
        details = {"subject": str(subject), "reason": why}
        if open_request is not None:  # auditors see which request blocked this one
            details["open_request"] = str(open_request)
        self.audit.append(conn, actor=actor, action="unseal.refused", details=details)

    def _refuse(self, actor: str, request_id: uuid.UUID, error: Exception) -> None:
        """Audit a refusal after its transaction rolled back, and end the request if the
        refusal means it can never be released."""
        now = datetime.now(UTC)
        with self.db.write() as conn:
            status = getattr(error, "ends_request", None)
            if status is not None:
                self._end(conn, request_id, status, now, reason=str(error))
            self._audit_refusal(
                conn, actor, request_id, str(error), getattr(error, "open_request", None)
            )

    # -- deciding --------------------------------------------------------------------------

    def _pending(self, conn: Connection, request_id: uuid.UUID, now: datetime) -> object:
        row = self._row(conn, request_id)
        r = row._mapping  # type: ignore[attr-defined]
        if r["status"] != RequestStatus.PENDING:
            raise UnsealRefused(f"this request is already {r['status']}")
        if r["created_at"] + timedelta(days=self.settings.request_days) <= now:
            raise _ends(UnsealRefused(_EXPIRED), RequestStatus.EXPIRED)
        return row

    def approve(
        self,
        officer: UserInfo,
        request_id: uuid.UUID,
        *,
        share_index: int,
        partial: bytes,
        proof: bytes,
        now: datetime | None = None,
    ) -> RequestInfo:
        """Record one officer's partial; release the item once enough distinct officers did."""
        now = now or datetime.now(UTC)
        try:
            with self.db.write() as conn:
                return self._approve(conn, officer, request_id, share_index, partial, proof, now)
        except (UnsealRefused, SealingError, EvidenceExpired) as exc:
            self._refuse(officer.actor, request_id, exc)
            raise

    def _approve(
        self,
        conn: Connection,
        officer: UserInfo,
        request_id: uuid.UUID,
        share_index: int,
        partial: bytes,
        proof: bytes,
        now: datetime,
    ) -> RequestInfo:
        if officer.role is not Role.COMPLIANCE:
            raise UnsealRefused("only compliance officers approve unseal requests")
        row = self._pending(conn, request_id, now)
        r = row._mapping  # type: ignore[attr-defined]
        if persons_of(conn, [r["requested_by"]]).get(r["requested_by"]) == officer.person:
            raise UnsealRefused(
                "the requester cannot approve their own request, from any of their accounts"
            )
        commitment = conn.execute(
            select(ShareCommitment.commitment, ShareCommitment.officer).where(
                ShareCommitment.share_set_id == r["share_set_id"],
                ShareCommitment.share_index == share_index,
            )
        ).first()
        if commitment is None or commitment.officer != officer.name:
            raise UnsealRefused(
                "this share is not one of yours in the current key ceremony (officer not in "
                "the ceremony, or a share of another ceremony)"
            )
        prior = conn.execute(
            select(UnsealApproval.share_index, UnsealApproval.expires_at).where(
                UnsealApproval.request_id == request_id,
                or_(
                    UnsealApproval.officer == officer.name,
                    UnsealApproval.share_index == share_index,
                ),
            )
        ).first()
        if prior is not None and prior.expires_at > now:
            raise UnsealRefused("you already approved this request (one officer counts once)")
        approvers = conn.execute(
            select(UnsealApproval.officer).where(
                UnsealApproval.request_id == request_id,
                UnsealApproval.expires_at > now,
                UnsealApproval.officer != officer.name,
            )
        ).scalars()
        if officer.person in persons_of(conn, list(approvers)).values():
            raise UnsealRefused(
                "another account of yours already approved this request (one person counts once)"
            )
        sealed = self._sealed(conn, r["evidence_id"], r["evidence_observed_at"])
        if sealed is None:
            raise _ends(
                EvidenceExpired("evidence expired: retention purged this item; the request ended"),
                RequestStatus.EVIDENCE_EXPIRED,
            )
        ephemeral = ecies.parse_sealed(sealed).ephemeral
        context = request_context(request_id, r["evidence_id"], r["share_set_id"])
        verified_partial(
            share_index,
            bytes(commitment.commitment),
            ephemeral,
            partial,
            Proof.from_bytes(proof),
            context,
        )
        if prior is not None:  # an expired approval by this officer is replaced
            _erase_partials(
                conn,
                self.db,
                and_(
                    UnsealApproval.request_id == request_id,
                    or_(
                        UnsealApproval.officer == officer.name,
                        UnsealApproval.share_index == share_index,
                    ),
                ),
            )
        try:
            conn.execute(
                insert(UnsealApproval).values(
                    request_id=request_id,
                    share_index=share_index,
                    officer=officer.name,
                    # Sealed to this request and share under a key outside the database: a
                    # copy of the database holds nothing that combines (SPEC §7.6).
                    sealed=seal_partial(self._partial_key, context, share_index, partial, proof),
                    created_at=now,
                    expires_at=now + timedelta(hours=self.settings.approval_hours),
                )
            )
        except IntegrityError:
            raise UnsealRefused(
                "you already approved this request (one officer counts once)"
            ) from None
        self.audit.append(
            conn,
            actor=officer.actor,
            action="unseal.approved",
            details={"request": str(request_id), "share_index": share_index},
        )
        live = conn.execute(
            select(UnsealApproval.share_index, UnsealApproval.sealed).where(
                UnsealApproval.request_id == request_id, UnsealApproval.expires_at > now
            )
        ).all()
        info = self._info(conn, row, now)
        if len(live) >= info.threshold:
            partials = [
                Partial(
                    a.share_index,
                    open_partial(self._partial_key, context, a.share_index, bytes(a.sealed)),
                )
                for a in live
            ]
            self._release(conn, info, sealed, partials, now)
        return self._info(conn, self._row(conn, request_id), now)

    def _release(
        self,
        conn: Connection,
        info: RequestInfo,
        sealed: bytes,
        partials: list[Partial],
        now: datetime,
    ) -> None:
        shared = combine_partials(partials, info.threshold)
        key = ecies.derive_item_key(shared, info.ephemeral, info.public_key)
        ecies.open_with_item_key(sealed, key, info.public_key, evidence_id=info.evidence_id)
        conn.execute(
            update(UnsealRequest)
            .where(UnsealRequest.id == info.id)
            .values(
                status=RequestStatus.RELEASED,
                decided_at=now,
                release_box=bytes(self._box.encrypt(key)),
                release_expires_at=now + timedelta(hours=self.settings.release_hours),
            )
        )
        # T stored partials (with the server secret) rebuild S: once released, they go (the
        # audit log keeps who approved).
        _erase_partials(conn, self.db, UnsealApproval.request_id == info.id)
        self.audit.append(
            conn,
            actor="server",
            action="unseal.released",
            details={
                "request": str(info.id),
                "evidence": str(info.evidence_id),
                "to": info.requested_by,
                "share_indices": sorted(p.index for p in partials[: info.threshold]),
            },
        )

    def deny(self, officer: UserInfo, request_id: uuid.UUID, *, why: str) -> RequestInfo:
        now = datetime.now(UTC)
        if officer.role is not Role.COMPLIANCE:
            raise UnsealRefused("only compliance officers deny unseal requests")
        if not why.strip():
            raise UnsealRefused("a denial needs a reason")
        try:
            with self.db.write() as conn:
                self._pending(conn, request_id, now)
        except UnsealRefused as exc:
            self._refuse(officer.actor, request_id, exc)
            raise
        with self.db.write() as conn:
            self._pending(conn, request_id, now)
            self._end(conn, request_id, RequestStatus.DENIED, now, reason=why, by=officer.name)
            self.audit.append(
                conn,
                actor=officer.actor,
                action="unseal.denied",
                details={"request": str(request_id), "reason": why},
            )
            return self._info(conn, self._row(conn, request_id), now)

    def withdraw(self, user: UserInfo, request_id: uuid.UUID) -> RequestInfo:
        """The requester ends their own pending request (from any of their accounts), e.g. to
        file a corrected one: its partials are erased. Anyone else is told it does not exist,
        as by :meth:`get`."""
        now = datetime.now(UTC)
        if user.role is not Role.INVESTIGATOR:
            raise UnsealRefused("only the investigator who filed a request withdraws it")
        try:
            with self.db.write() as conn:
                if not self._filed_by(conn, request_id, user):
                    raise NotFound("no unseal request with this id")
                self._pending(conn, request_id, now)
                self._end(
                    conn,
                    request_id,
                    RequestStatus.WITHDRAWN,
                    now,
                    reason="withdrawn by the requester",
                    by=user.name,
                )
                self.audit.append(
                    conn,
                    actor=user.actor,
                    action="unseal.withdrawn",
                    details={"request": str(request_id)},
                )
                return self._info(conn, self._row(conn, request_id), now)
        except UnsealRefused as exc:  # already ended, or expired (then ended as expired)
            self._refuse(user.actor, request_id, exc)
            raise

    # -- fetching --------------------------------------------------------------------------

    def fetch(self, user: UserInfo, request_id: uuid.UUID) -> Released:
        now = datetime.now(UTC)
        with self.db.read() as conn:
            row = self._row(conn, request_id)
            r = row._mapping  # type: ignore[attr-defined]
            if r["requested_by"] != user.name:
                raise NotFound("no unseal request with this id")
            if r["status"] != RequestStatus.RELEASED or r["release_box"] is None:
                raise UnsealRefused(f"this request is {r['status']}, not released")
            if r["release_expires_at"] is not None and r["release_expires_at"] <= now:
                raise UnsealRefused("the release has expired; file a new request")
            sealed = self._sealed(conn, r["evidence_id"], r["evidence_observed_at"])
            public_key = conn.execute(
                select(ShareSet.public_key).where(ShareSet.id == r["share_set_id"])
            ).scalar_one()
        if sealed is None:
            raise EvidenceExpired("evidence expired: retention purged this item after release")
        key = bytes(self._box.decrypt(r["release_box"]))
        plaintext = ecies.open_with_item_key(
            sealed, key, bytes(public_key), evidence_id=r["evidence_id"]
        )
        crop, frame = unpack_evidence(plaintext)
        mark = (
            f"privplate unseal {request_id} for {user.name} at {now.isoformat(timespec='seconds')}"
        )
        released = Released(
            watermark(crop, mark, visible=False),
            watermark(frame, mark, visible=self.visible_watermark),
            mark,
        )
        self.audit.record(
            actor=user.actor,
            action="unseal.fetched",
            details={"request": str(request_id), "evidence": str(r["evidence_id"])},
        )
        return released


def expire_release_keys(conn: Connection, now: datetime) -> int:
    """Retention: erase item keys whose release window passed, and partial decryptions that
    no longer count (expired approvals, or approvals of requests that ended)."""
    ended = select(UnsealRequest.id).where(UnsealRequest.status != RequestStatus.PENDING)
    conn.execute(
        delete(UnsealApproval).where(
            or_(UnsealApproval.expires_at <= now, UnsealApproval.request_id.in_(ended))
        )
    )
    return int(
        conn.execute(
            update(UnsealRequest)
            .where(
                and_(
                    UnsealRequest.release_box.is_not(None), UnsealRequest.release_expires_at <= now
                )
            )
            .values(release_box=None)
        ).rowcount
    )
