"""Hotlists: named lists of wanted plates, encrypted at rest and tokenized under every live
epoch key so that ingest matches them by token.

Caps per list and per deployment, and a per-person daily quota, keep a "hotlist" from becoming
a way to enumerate plates. Every change is audited; no audit entry or error names a plate.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from privplate.audit import AuditLog
from privplate.errors import (
    AlreadyExists,
    InvalidPlate,
    InvalidRequest,
    NotFound,
    PurposeDenied,
    QuotaExceeded,
    StoreError,
)
from privplate.hotlists.box import PlateBox
from privplate.hotlists.sources import HotlistSource
from privplate.hotlists.tokens import HotlistTokens, StaleKeys
from privplate.identity.accounts import actors_of_person, person_of_actor
from privplate.policy.flags import FlagKind, raise_flag
from privplate.policy.review import draw_entries
from privplate.policy.rules import CASE_NUMBER, PurposePolicy
from privplate.settings import HotlistSettings
from privplate.store.database import Database
from privplate.store.server_models import Hotlist, HotlistEntry, HotlistToken
from privplate.tokens.canonical import canonical_plate
from privplate.tokens.keyring import EpochKey

HOTLIST_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


@dataclass(frozen=True)
class HotlistInfo:
    id: uuid.UUID
    name: str
    source: HotlistSource
    description: str
    max_entries: int
    created_by: str
    created_at: datetime
    live_entries: int


@dataclass(frozen=True)
class EntryIn:
    plate: str = field(repr=False)
    reason: str
    case_number: str
    expires_at: datetime | None = None
    #: From a file or a feed (csv_import), not typed by hand: never drawn for a spot check
    #: (privplate.policy.review).
    imported: bool = False


@dataclass(frozen=True)
class EntryInfo:
    id: uuid.UUID
    hotlist: str
    reason: str
    case_number: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    removed_at: datetime | None
    plate: str | None = field(default=None, repr=False)


class Hotlists:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditLog,
        box: PlateBox,
        tokens: HotlistTokens,
        settings: HotlistSettings,
        policy: PurposePolicy,
        fold: dict[str, str] | None,
        entry_window: timedelta,
    ) -> None:
        self.db = db
        self.audit = audit
        self.box = box
        self.tokens = tokens
        self.settings = settings
        self.policy = policy
        self.fold = fold
        self.entry_window = entry_window

    # -- lists -----------------------------------------------------------------------------

    def create(
        self,
        *,
        actor: str,
        name: str,
        source: HotlistSource,
        description: str = "",
        max_entries: int | None = None,
    ) -> HotlistInfo:
        if not HOTLIST_NAME.fullmatch(name):
            raise InvalidRequest(
                "a hotlist name is 1-100 characters of a-z, 0-9, '.', '_' or '-' (e.g. "
                "stolen-vehicles)"
            )
        if len(description) > 2000:
            raise InvalidRequest("description is longer than 2000 characters")
        self.policy.screen("description", description)
        cap = max_entries or self.settings.max_entries_per_list
        if not 1 <= cap <= self.settings.max_entries_per_list:
            raise InvalidRequest(
                f"max_entries must be 1 to {self.settings.max_entries_per_list} "
                "(hotlists.max_entries_per_list)"
            )
        now = datetime.now(UTC)
        info = HotlistInfo(uuid.uuid4(), name, source, description, cap, actor, now, 0)
        with self.db.write() as conn:
            if conn.execute(select(Hotlist.id).where(Hotlist.name == name)).first():
                raise AlreadyExists(f"hotlist {name!r} already exists")
            conn.execute(
                insert(Hotlist).values(
                    id=info.id,
                    name=name,
                    source=source.value,
                    description=description,
                    max_entries=cap,
                    created_by=actor,
                    created_at=now,
                )
            )
            self.audit.append(
                conn,
                actor=actor,
                action="hotlists.created",
                details={"hotlist": name, "source": source.value, "max_entries": cap},
            )
        return info

    def _live_counts(self, conn: Connection, now: datetime) -> dict[uuid.UUID, int]:
        rows = conn.execute(
            select(HotlistEntry.hotlist_id, func.count())
            .where(HotlistEntry.removed_at.is_(None), HotlistEntry.expires_at > now)
            .group_by(HotlistEntry.hotlist_id)
        )
        return {uuid.UUID(str(r[0])): int(r[1]) for r in rows}

    def all(self) -> list[HotlistInfo]:
        now = datetime.now(UTC)
        with self.db.read() as conn:
            counts = self._live_counts(conn, now)
            rows = conn.execute(select(Hotlist).order_by(Hotlist.name)).all()
        return [self._info(r, counts.get(uuid.UUID(str(r.id)), 0)) for r in rows]

    @staticmethod
    def _info(row: object, live: int) -> HotlistInfo:
        m = row._mapping  # type: ignore[attr-defined]
        return HotlistInfo(
            id=m["id"],
            name=m["name"],
            source=HotlistSource(m["source"]),
            description=m["description"],
            max_entries=m["max_entries"],
            created_by=m["created_by"],
            created_at=m["created_at"],
            live_entries=live,
        )

    def get(self, name: str) -> HotlistInfo:
        now = datetime.now(UTC)
        with self.db.read() as conn:
            row = conn.execute(select(Hotlist).where(Hotlist.name == name)).first()
            if row is None:
                raise NotFound(f"no hotlist named {name!r}")
            return self._info(row, self._live_counts(conn, now).get(uuid.UUID(str(row.id)), 0))

    # -- entries ---------------------------------------------------------------------------

    def _validate(
        self, entries: Sequence[EntryIn], now: datetime
    ) -> list[tuple[str, EntryIn, datetime]]:
        latest = now + self.entry_window
        out: list[tuple[str, EntryIn, datetime]] = []
        for i, entry in enumerate(entries):
            where = f"entry {i + 1}"
            try:
                canonical = canonical_plate(entry.plate, fold=self.fold)
            except InvalidPlate as exc:
                raise InvalidPlate(f"{where}: {exc}") from None
            if not 1 <= len(entry.reason.strip()) <= 500:
                raise InvalidRequest(f"{where}: a reason of 1-500 characters is required")
            if not CASE_NUMBER.fullmatch(entry.case_number):
                raise InvalidRequest(
                    f"{where}: a case number of 1-64 letters, digits and . _ / # : - is required"
                )
            try:
                self.policy.screen(f"reason of {where}", entry.reason)
                self.policy.screen(f"case number of {where}", entry.case_number)
            except PurposeDenied as exc:
                raise PurposeDenied(str(exc)) from None
            expires = entry.expires_at or now + timedelta(days=self.settings.default_entry_days)
            if expires.tzinfo is None:
                raise InvalidRequest(f"{where}: expires_at must carry a time zone")
            if expires <= now:
                raise InvalidRequest(f"{where}: expires_at is in the past")
            if expires > latest:
                raise InvalidRequest(
                    f"{where}: expires_at is beyond the hotlist-entry retention window "
                    f"({self.entry_window.days} days)"
                )
            out.append((canonical, entry, min(expires, latest)))
        return out

    def add_entries(
        self,
        *,
        actor: str,
        hotlist: str,
        entries: Sequence[EntryIn],
        now: datetime | None = None,
    ) -> list[EntryInfo]:
        """Add entries all-or-nothing; a refusal is audited and flagged, and writes nothing
        else."""
        now = now or datetime.now(UTC)
        if not entries:
            raise InvalidRequest("no entries given")
        try:
            checked = self._validate(entries, now)
        except PurposeDenied as exc:
            self._refused(actor, hotlist, exc, len(entries), FlagKind.DENIED_HOTLIST_ENTRY)
            raise
        except (InvalidPlate, InvalidRequest) as exc:
            self._refused(actor, hotlist, exc, len(entries), None)
            raise
        macs = [self.box.mac(c) for c, _, _ in checked]
        if len(set(macs)) != len(macs):
            error = InvalidRequest("the same plate appears twice in this import")
            self._refused(actor, hotlist, error, len(entries), None)
            raise error
        for _attempt in range(5):
            keys = self.tokens.live_keys()
            try:
                added, refusal = self._add_locked(actor, hotlist, checked, macs, keys, now)
            except StaleKeys:
                continue
            if refusal is None:
                return added
            break  # refused: recorded below, outside the rolled-back transaction
        else:
            raise StoreError("epochs kept changing while the entries were added; try again")
        quota = isinstance(refusal, QuotaExceeded)
        self._refused(
            actor, hotlist, refusal, len(entries), FlagKind.HOTLIST_QUOTA if quota else None
        )
        raise refusal

    def _add_locked(
        self,
        actor: str,
        hotlist: str,
        checked: list[tuple[str, EntryIn, datetime]],
        macs: list[bytes],
        keys: list[EpochKey],
        now: datetime,
    ) -> tuple[list[EntryInfo], Exception | None]:
        with self.db.write() as conn:
            self.tokens.lock(conn)
            info = self._get_in(conn, hotlist, now)
            refusal = self._cap_problem(conn, info, actor, len(checked), now)
            if refusal is None:
                dup = conn.execute(
                    select(func.count())
                    .select_from(HotlistEntry)
                    .where(
                        HotlistEntry.hotlist_id == info.id,
                        HotlistEntry.removed_at.is_(None),
                        HotlistEntry.expires_at > now,
                        HotlistEntry.plate_mac.in_(macs),
                    )
                ).scalar_one()
                if dup:
                    refusal = AlreadyExists(
                        f"{dup} of these plates are already live entries of hotlist {hotlist!r}"
                    )
            if refusal is None:
                added = self._insert(conn, info, actor, checked, macs, keys, now)
                self.audit.append(
                    conn,
                    actor=actor,
                    action="hotlists.entries_added",
                    details={
                        "hotlist": hotlist,
                        "entries": [str(e.id) for e in added],
                        "case_numbers": sorted({e.case_number for e in added}),
                    },
                )
                draw_entries(  # spot checks of hand-made entries, in the same transaction
                    conn,
                    self.audit,
                    hotlist=hotlist,
                    requester=actor,
                    entries=[
                        (e.id, e.reason, e.case_number, c.imported)
                        for e, (_, c, _) in zip(added, checked, strict=True)
                    ],
                    share=self.settings.spot_check_share,
                    near_terms=self.policy.near_terms,
                    now=now,
                )
                return added, None
        return [], refusal

    def _get_in(self, conn: Connection, hotlist: str, now: datetime) -> HotlistInfo:
        row = conn.execute(select(Hotlist).where(Hotlist.name == hotlist)).first()
        if row is None:
            raise NotFound(f"no hotlist named {hotlist!r}")
        return self._info(row, self._live_counts(conn, now).get(uuid.UUID(str(row.id)), 0))

    def _cap_problem(
        self, conn: Connection, info: HotlistInfo, actor: str, adding: int, now: datetime
    ) -> Exception | None:
        if info.live_entries + adding > info.max_entries:
            return QuotaExceeded(
                f"hotlist {info.name!r} holds {info.live_entries} live entries; adding {adding} "
                f"would pass its cap of {info.max_entries}"
            )
        total = sum(self._live_counts(conn, now).values())
        if total + adding > self.settings.max_entries_total:
            return QuotaExceeded(
                f"the deployment holds {total} live hotlist entries; adding {adding} would pass "
                f"its cap of {self.settings.max_entries_total} (hotlists.max_entries_total)"
            )
        # The daily quota is a person's, counted over all their accounts.
        today = datetime(now.year, now.month, now.day, tzinfo=UTC)
        mine = conn.execute(
            select(func.count())
            .select_from(HotlistEntry)
            .where(
                HotlistEntry.created_by.in_(actors_of_person(conn, actor)),
                HotlistEntry.created_at >= today,
            )
        ).scalar_one()
        if mine + adding > self.settings.entries_per_user_per_day:
            return QuotaExceeded(
                f"you added {mine} hotlist entries today, counted over all your accounts; "
                f"adding {adding} would pass the daily quota of "
                f"{self.settings.entries_per_user_per_day} (hotlists.entries_per_user_per_day; "
                "compliance officers were notified)"
            )
        return None

    def _insert(
        self,
        conn: Connection,
        info: HotlistInfo,
        actor: str,
        checked: list[tuple[str, EntryIn, datetime]],
        macs: list[bytes],
        keys: list[EpochKey],
        now: datetime,
    ) -> list[EntryInfo]:
        added: list[EntryInfo] = []
        rows = []
        plates: dict[uuid.UUID, str] = {}
        for (canonical, entry, expires), mac in zip(checked, macs, strict=True):
            entry_id = uuid.uuid4()
            plates[entry_id] = canonical
            rows.append(
                {
                    "id": entry_id,
                    "hotlist_id": info.id,
                    "plate_box": self.box.seal(canonical),
                    "plate_mac": mac,
                    "reason": entry.reason.strip(),
                    "case_number": entry.case_number,
                    "created_by": actor,
                    "created_at": now,
                    "expires_at": expires,
                }
            )
            added.append(
                EntryInfo(
                    entry_id,
                    info.name,
                    entry.reason.strip(),
                    entry.case_number,
                    actor,
                    now,
                    expires,
                    None,
                )
            )
        conn.execute(insert(HotlistEntry), rows)
        self.tokens.tokenize_new(conn, plates, keys)
        return added

    def _refused(
        self,
        actor: str,
        hotlist: str,
        error: Exception,
        count: int,
        flag: FlagKind | None,
    ) -> None:
        with self.db.write() as conn:
            # The flag first, as everywhere: its row lock, then the audit log's lock.
            if flag is not None:
                # A quota flag names the person (the daily quota counts all their accounts),
                # a denied entry the account.
                quota = flag is FlagKind.HOTLIST_QUOTA
                raise_flag(
                    conn,
                    kind=flag,
                    subject=person_of_actor(conn, actor) if quota else actor,
                    details={"hotlist": hotlist, "reason": str(error)},
                )
            self.audit.append(
                conn,
                actor=actor,
                action="hotlists.entries_refused",
                details={"hotlist": hotlist, "entries": count, "reason": str(error)},
            )

    def remove_entry(self, *, actor: str, hotlist: str, entry_id: uuid.UUID) -> None:
        now = datetime.now(UTC)
        with self.db.write() as conn:
            info = self._get_in(conn, hotlist, now)
            done = conn.execute(
                update(HotlistEntry)
                .where(
                    HotlistEntry.id == entry_id,
                    HotlistEntry.hotlist_id == info.id,
                    HotlistEntry.removed_at.is_(None),
                )
                .values(removed_at=now, removed_by=actor)
            )
            if done.rowcount == 0:
                raise NotFound("no live entry with this id in this hotlist")
            conn.execute(delete(HotlistToken).where(HotlistToken.entry_id == entry_id))
            self.audit.append(
                conn,
                actor=actor,
                action="hotlists.entry_removed",
                details={"hotlist": hotlist, "entry": str(entry_id)},
            )

    def reveal_entry(self, *, actor: str, hotlist: str, entry_id: uuid.UUID) -> EntryInfo:
        """One live entry with its plate, decrypted; the viewing is audited as that entry's
        (not the whole list's, as ``entries(reveal=True)`` is)."""
        now = datetime.now(UTC)
        with self.db.read() as conn:
            info = self._get_in(conn, hotlist, now)
            row = conn.execute(
                select(HotlistEntry).where(
                    HotlistEntry.hotlist_id == info.id,
                    HotlistEntry.id == entry_id,
                    HotlistEntry.removed_at.is_(None),
                    HotlistEntry.expires_at > now,
                )
            ).first()
        if row is None:
            raise NotFound(f"hotlist {hotlist!r} has no live entry with this id")
        self.audit.record(
            actor=actor,
            action="hotlists.entry_revealed",
            details={"hotlist": hotlist, "entry": str(entry_id)},
        )
        r = row._mapping
        return EntryInfo(
            r["id"],
            hotlist,
            r["reason"],
            r["case_number"],
            r["created_by"],
            r["created_at"],
            r["expires_at"],
            r["removed_at"],
            self.box.open(r["plate_box"]),
        )

    def entries(
        self, *, actor: str, hotlist: str, reveal: bool, include_expired: bool = False
    ) -> list[EntryInfo]:
        """Entries of a list; with ``reveal`` their plates, decrypted (and the viewing audited)."""
        now = datetime.now(UTC)
        with self.db.read() as conn:
            info = self._get_in(conn, hotlist, now)
            stmt = select(HotlistEntry).where(HotlistEntry.hotlist_id == info.id)
            if not include_expired:
                stmt = stmt.where(
                    and_(HotlistEntry.removed_at.is_(None), HotlistEntry.expires_at > now)
                )
            rows = conn.execute(stmt.order_by(HotlistEntry.created_at, HotlistEntry.id)).all()
        out = [
            EntryInfo(
                r.id,
                hotlist,
                r.reason,
                r.case_number,
                r.created_by,
                r.created_at,
                r.expires_at,
                r.removed_at,
                self.box.open(r.plate_box) if reveal else None,
            )
            for r in rows
        ]
        if reveal:
            self.audit.record(
                actor=actor,
                action="hotlists.entries_viewed",
                details={"hotlist": hotlist, "entries": len(out)},
            )
        return out
