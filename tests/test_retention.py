"""Retention: the purge, crypto-shredding of dead epochs, legal holds, crash safety and the
one-runner rule, on SQLite and PostgreSQL with the same code.

Every test drives a fake clock: reads are ingested at their own observation time (``now=``),
epochs are created by ``keyring.current_key(t)`` for past ``t`` and ``purge(now=...)`` decides
what is expired. The fake "now" lies in the future of the real clock, so the epoch that
``init`` created for the real today is simply one more old, empty epoch.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, func, select

from privplate.audit import StoredEntry, verify_log
from privplate.deployment import Deployment
from privplate.errors import EpochKeyDestroyed, KeyringError, NotFound
from privplate.retention import purge as purge_mod
from privplate.retention.holds import (
    HoldInfo,
    HoldRefused,
    approve_hold,
    list_holds,
    release_hold,
    request_hold,
)
from privplate.retention.purge import PurgeReport, oldest_remaining_read, purge
from privplate.sealing import generate_keypair, seal
from privplate.store import EvidenceIn, ReadIn
from privplate.store import purging as purging_mod
from privplate.store.models import Epoch, Evidence, LegalHold, Read
from privplate.store.partitions import existing_partitions
from privplate.store.purging import runner_lock
from privplate.tokens import canonical_plate, plate_token
from privplate.tokens import kek as kekfile
from privplate.tokens.keyring import unwrap_key
from tests import factories
from tests.conftest import ON_POSTGRES
from tests.privacy import dump_database

#: The fake clock's "now": noon, so daily epochs (midnight to midnight) straddle it evenly.
T = datetime(2031, 5, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
READ_SPACING = timedelta(minutes=7)

_reads: Table = Read.__table__  # type: ignore[assignment]
_evidence: Table = Evidence.__table__  # type: ignore[assignment]
_epochs: Table = Epoch.__table__  # type: ignore[assignment]
_holds: Table = LegalHold.__table__  # type: ignore[assignment]

_EVIDENCE_SECRET, EVIDENCE_PUBLIC = generate_keypair()


# -- helpers ---------------------------------------------------------------------------------


def configure(
    home: Path, *, preset: str | None = None, windows: dict[str, str] | None = None
) -> None:
    """Edit the deployment's privplate.toml (before it is opened)."""
    config = home / "privplate.toml"
    body = config.read_text(encoding="utf-8")
    if preset is not None:
        body = body.replace('preset = "vendor-default-30d"', f'preset = "{preset}"')
    if windows:
        body += "\n[retention.windows]\n" + "".join(f'{k} = "{v}"\n' for k, v in windows.items())
    config.write_text(body, encoding="utf-8")


def sealed_evidence(
    camera_id: str, observed_at: datetime, size: int = 256
) -> tuple[EvidenceIn, bytes]:
    """Evidence sealed to the test key; returns it with its ciphertext."""
    ev = factories.evidence(camera_id, b"", observed_at=observed_at)
    sealed = seal(os.urandom(size), EVIDENCE_PUBLIC, evidence_id=ev.evidence_id)
    return dataclasses.replace(ev, sealed=sealed), sealed


@dataclass
class History:
    """What a fake edge sent, one batch per day, oldest day first."""

    reads: list[ReadIn] = field(default_factory=list)
    plates: dict[uuid.UUID, str] = field(default_factory=dict)
    day: dict[uuid.UUID, int] = field(default_factory=dict)
    hits: set[uuid.UUID] = field(default_factory=set)
    evidence: list[EvidenceIn] = field(default_factory=list)
    evidence_day: dict[uuid.UUID, int] = field(default_factory=dict)

    def on_day(self, d: int, i: int) -> ReadIn:
        return next(
            r
            for r in self.reads
            if self.day[r.read_id] == d and self.plates[r.read_id] == f"D{d:02d}P{i}"
        )

    def rows(self, read: ReadIn) -> int:
        return len(read.tokens)

    def epochs_of_days(self, days: range | list[int]) -> set[int]:
        return {r.epoch_id for r in self.reads if self.day[r.read_id] in days}


def ingest_history(
    dep: Deployment,
    *,
    days: int,
    per_day: int = 3,
    hits: Collection[tuple[int, int]] = (),
    now: datetime = T,
    camera_id: str = "gate-1",
) -> History:
    """``per_day`` reads on each of ``days`` days before ``now`` (read i at noon + 7 i min),
    read 0 with an alternate and one sealed evidence item; ``hits`` are (day, i) pairs."""
    factories.camera(dep, camera_id)
    h = History()
    for d in range(days - 1, -1, -1):
        base = now - d * DAY
        ev, _ = sealed_evidence(camera_id, base)
        batch = []
        for i in range(per_day):
            plate = f"D{d:02d}P{i}"
            read = factories.read(
                dep,
                plate,
                camera_id=camera_id,
                observed_at=base + i * READ_SPACING,
                alternates=[f"D{d:02d}Q{i}"] if i == 0 else [],
                evidence_id=ev.evidence_id if i == 0 else None,
            )
            batch.append(read)
            h.plates[read.read_id] = plate
            h.day[read.read_id] = d
            if (d, i) in hits:
                h.hits.add(read.read_id)
        result = factories.ingest(
            dep,
            batch,
            [ev],
            hits={r.read_id for r in batch} & h.hits,
            now=base + per_day * READ_SPACING,
        )
        assert (result.inserted, result.expired) == (per_day, 0)
        h.reads += batch
        h.evidence.append(ev)
        h.evidence_day[ev.evidence_id] = d
    return h


def stored_reads(dep: Deployment) -> dict[uuid.UUID, list[Any]]:
    """Every stored row of ``reads``, grouped by read id (one row per token)."""
    out: dict[uuid.UUID, list[Any]] = {}
    with dep.db.read() as conn:
        for row in conn.execute(
            select(
                _reads.c.read_id,
                _reads.c.token,
                _reads.c.epoch_id,
                _reads.c.observed_at,
                _reads.c.is_hit,
            )
        ):
            out.setdefault(row.read_id, []).append(row)
    return out


def stored_evidence(dep: Deployment) -> dict[uuid.UUID, bytes]:
    with dep.db.read() as conn:
        return {
            r.id: bytes(r.sealed) for r in conn.execute(select(_evidence.c.id, _evidence.c.sealed))
        }


def epoch_rows(dep: Deployment) -> dict[int, Any]:
    with dep.db.read() as conn:
        return {r.id: r for r in conn.execute(select(_epochs))}


def count(dep: Deployment, table: Table) -> int:
    with dep.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def audit_of(dep: Deployment, action: str) -> list[StoredEntry]:
    return [e for e in dep.audit.entries(action=action) if e.action == action]


def destroyed_per_audit(dep: Deployment) -> set[int]:
    """Every epoch a keys.epochs_destroyed entry names."""
    return {
        e
        for stored in audit_of(dep, "keys.epochs_destroyed")
        if stored.entry is not None
        for e in stored.entry.details["epochs"]
    }


def assert_audit_verifies(dep: Deployment) -> None:
    report = verify_log(dep.db, dep.audit.signer, stored=dep.audit.checkpoints())
    assert report.ok, report.problems
    assert report.entries == dep.audit.size()


def hold(
    dep: Deployment,
    kind: str,
    target: uuid.UUID,
    *,
    approve: bool = True,
    now: datetime = T - DAY,
    duration: timedelta = timedelta(days=90),
) -> HoldInfo:
    info = request_hold(
        db=dep.db,
        audit=dep.audit,
        kind=kind,  # type: ignore[arg-type]
        target_id=target,
        case_number="CASE-2031-0042",
        justification="hit-and-run investigation",
        requested_by="investigator:alice",
        duration=duration,
        now=now,
    )
    if approve:
        info = approve_hold(
            db=dep.db, audit=dep.audit, hold_id=info.id, approved_by="supervisor:bob", now=now
        )
    return info


def is_expired(h: History, read: ReadIn, dep: Deployment, now: datetime) -> bool:
    window = dep.windows.hit_reads if read.read_id in h.hits else dep.windows.non_hit_reads
    return read.observed_at < now - window


def key_destroyed(dep: Deployment, epoch_id: int) -> bool:
    try:
        dep.keyring.key_for(epoch_id)
    except EpochKeyDestroyed:
        return True
    return False


@dataclass
class Scenario:
    """The standard history (default preset, 30-day windows) with holds on it."""

    h: History
    held_read: ReadIn
    held_evidence: uuid.UUID
    unapproved_read: ReadIn
    expected_reads: Counter[int]  # rows deleted per epoch by a purge at T
    expected_evidence: set[uuid.UUID]
    expected_dead: set[int]  # epochs whose keys a purge at T destroys


def standard_scenario(dep: Deployment, *, days: int = 40) -> Scenario:
    """``days`` daily epochs of reads; a hit inside its window (day 29) and one past it
    (day 33); an approved hold on a day-38 read and on day-36 evidence; a hold on a day-37
    read that was requested but never approved."""
    h = ingest_history(dep, days=days, hits={(29, 1), (33, 1)})
    held_read, unapproved = h.on_day(38, 2), h.on_day(37, 2)
    held_evidence = next(e for e, d in h.evidence_day.items() if d == 36)
    hold(dep, "read", held_read.read_id)
    hold(dep, "evidence", held_evidence)
    hold(dep, "read", unapproved.read_id, approve=False)
    cut_evidence = T - dep.windows.evidence
    expected_reads: Counter[int] = Counter()
    for r in h.reads:
        if is_expired(h, r, dep, T) and r.read_id != held_read.read_id:
            expected_reads[r.epoch_id] += h.rows(r)
    expected_evidence = {
        e.evidence_id
        for e in h.evidence
        if e.observed_at < cut_evidence and e.evidence_id != held_evidence
    }
    # Documented rule (purge.py): an epoch's key dies once it ended before the non-hit window
    # and none of its *non-held* reads remain -- a hold keeps the row, not the epoch key.
    cut = T - dep.windows.non_hit_reads
    survivors = {
        r.epoch_id
        for r in h.reads
        if not is_expired(h, r, dep, T) and r.read_id != held_read.read_id
    }
    expected_dead = {
        e.id
        for e in epoch_rows(dep).values()
        if e.wrapped_key is not None and e.ends_at <= cut and e.id not in survivors
    }
    return Scenario(
        h, held_read, held_evidence, unapproved, expected_reads, expected_evidence, expected_dead
    )


def assert_purged_state(dep: Deployment, s: Scenario, now: datetime = T) -> None:
    """After a (completed) purge at ``now``: exactly the expected rows and keys are gone."""
    reads = stored_reads(dep)
    for r in s.h.reads:
        gone = is_expired(s.h, r, dep, now) and r.read_id != s.held_read.read_id
        assert (r.read_id not in reads) == gone, (s.h.plates[r.read_id], gone)
        if not gone:
            assert len(reads[r.read_id]) == s.h.rows(r)  # alternates are kept with their read
    # Straight from the table: nothing non-held older than its window remains.
    cut_non_hit, cut_hit = now - dep.windows.non_hit_reads, now - dep.windows.hit_reads
    with dep.db.read() as conn:
        stale = {
            row.read_id
            for row in conn.execute(
                select(_reads.c.read_id).where(
                    ((_reads.c.is_hit.is_(False)) & (_reads.c.observed_at < cut_non_hit))
                    | ((_reads.c.is_hit.is_(True)) & (_reads.c.observed_at < cut_hit))
                )
            )
        }
        stale_evidence = {
            row.id
            for row in conn.execute(
                select(_evidence.c.id).where(_evidence.c.observed_at < now - dep.windows.evidence)
            )
        }
    assert stale == {s.held_read.read_id}
    assert s.unapproved_read.read_id not in reads  # a requested hold does not protect
    assert stale_evidence == {s.held_evidence}
    evidence = stored_evidence(dep)
    assert s.expected_evidence.isdisjoint(evidence)
    assert {e.evidence_id for e in s.h.evidence} - s.expected_evidence <= set(evidence)
    # Keys: dead epochs are erased in the table and refuse to unwrap; the others still work.
    epochs = epoch_rows(dep)
    for epoch_id in s.expected_dead:
        assert epochs[epoch_id].wrapped_key is None
        assert epochs[epoch_id].kek_generation is None
        assert epochs[epoch_id].destroyed_at is not None
        assert key_destroyed(dep, epoch_id)
    for epoch_id in {r.epoch_id for r in s.h.reads} - s.expected_dead:
        assert dep.keyring.key_for(epoch_id).epoch_id == epoch_id
    assert not kekfile.next_path(dep.settings.kek_path).exists()
    assert_audit_verifies(dep)


# -- 1. many epochs under the default preset ----------------------------------------------------


def assert_partitions_after_standard_purge(dep: Deployment, report: PurgeReport) -> None:
    assert report.partitions_dropped, "old days should go as whole partitions"
    with dep.db.read() as conn:
        parts = set(existing_partitions(conn, "reads"))
        ev_parts = set(existing_partitions(conn, "evidence"))

    def day(d: int) -> str:
        return f"_p{(T - d * DAY):%Y%m%d}"

    assert "reads" + day(38) in parts  # the held read keeps its partition
    assert "evidence" + day(36) in ev_parts  # held evidence too
    for d in (31, 32, 33, 34, 35, 37, 39):
        assert "reads" + day(d) not in parts
        assert "reads" + day(d) in report.partitions_dropped
    assert "evidence" + day(39) not in ev_parts


def assert_standard_purge_audited(dep: Deployment, s: Scenario, generation: int) -> None:
    # The KEK rotated once, and one keys.epochs_destroyed entry says which epochs died.
    assert dep.keyring.kek_generation == generation + 1
    [destroyed] = audit_of(dep, "keys.epochs_destroyed")
    assert destroyed.entry is not None
    assert sorted(destroyed.entry.details["epochs"]) == sorted(s.expected_dead)
    assert destroyed.entry.details["kek_generation"] == generation + 1
    # Exactly one retention.purged entry, with the per-epoch counts.
    [purged] = audit_of(dep, "retention.purged")
    assert purged.entry is not None
    details = purged.entry.details
    assert details["reads_deleted_per_epoch"] == {str(e): n for e, n in s.expected_reads.items()}
    assert details["evidence_deleted"] == len(s.expected_evidence)
    assert sorted(details["epochs_destroyed"]) == sorted(s.expected_dead)
    assert details["holds_expired"] == 0
    assert details["preset"] == "vendor-default-30d"
    assert details["oldest_remaining_read"] == (T - 30 * DAY).isoformat()
    assert destroyed.seq < purged.seq


def assert_lookups_after_standard_purge(dep: Deployment, h: History) -> None:
    # Lookups inside the window still work, across the destroyed epochs too.
    window = (T - 45 * DAY, T + SECOND)
    for d, i in [(0, 0), (5, 1), (17, 2), (29, 1), (30, 0)]:
        read = h.on_day(d, i)
        assert [m.read_id for m in factories.lookup(dep, h.plates[read.read_id], *window)] == [
            read.read_id
        ]
    assert [m.read_id for m in factories.lookup(dep, "D12Q0", *window)] == [h.on_day(12, 0).read_id]
    # Purged plates, and the expired hit (day 33), are found nowhere.
    for d, i in [(31, 0), (33, 1), (35, 2), (37, 2), (39, 1)]:
        assert factories.lookup(dep, h.plates[h.on_day(d, i).read_id], *window) == []


def test_purge_over_forty_daily_epochs(dep: Deployment) -> None:
    assert dep.settings.retention.preset == "vendor-default-30d"
    assert dep.windows.non_hit_reads == dep.windows.hit_reads == dep.windows.evidence == 30 * DAY
    s = standard_scenario(dep)
    h = s.h
    assert len({r.epoch_id for r in h.reads}) == 40
    generation = dep.keyring.kek_generation
    assert audit_of(dep, "retention.purged") == []

    report = purge(dep, now=T)

    assert not report.skipped and not report.dry_run
    assert dict(report.reads_deleted) == dict(s.expected_reads)
    assert report.reads_total == sum(s.expected_reads.values()) > 0
    assert report.evidence_deleted == len(s.expected_evidence) > 0
    assert set(report.epochs_destroyed) == s.expected_dead
    assert len(report.epochs_destroyed) == len(s.expected_dead)
    # Days 31..39 all ended before the window and keep no unheld read; days 0..30 all live.
    assert h.epochs_of_days(range(31, 40)) <= s.expected_dead
    assert h.epochs_of_days(range(31)).isdisjoint(s.expected_dead)
    assert report.holds_expired == 0
    assert_purged_state(dep, s)
    # The boundary: a read observed exactly at now - 30d is inside the window and stays.
    assert h.on_day(30, 0).observed_at == T - 30 * DAY
    assert h.on_day(30, 0).read_id in stored_reads(dep)
    # The oldest read not on hold is the boundary read.
    assert report.oldest_remaining_read == T - 30 * DAY
    assert oldest_remaining_read(dep, T) == T - 30 * DAY
    if ON_POSTGRES:
        assert_partitions_after_standard_purge(dep, report)
    assert_standard_purge_audited(dep, s, generation)
    assert_lookups_after_standard_purge(dep, h)

    # A second run at the same time has nothing to do, and says so in its own entry.
    again = purge(dep, now=T)
    assert (again.reads_total, again.evidence_deleted, again.epochs_destroyed) == (0, 0, [])
    assert len(audit_of(dep, "retention.purged")) == 2
    assert len(audit_of(dep, "keys.epochs_destroyed")) == 1
    assert dep.keyring.kek_generation == generation + 1
    assert_audit_verifies(dep)


def test_hit_reads_keep_their_epoch_key(home: Path) -> None:
    # Non-hits 7 days (shorter than the preset, always allowed), hits 30 days.
    configure(home, windows={"non_hit_reads": "7d"})
    with Deployment.open(home) as dep:
        assert dep.windows.non_hit_reads == 7 * DAY and dep.windows.hit_reads == 30 * DAY
        h = ingest_history(dep, days=14, hits={(10, 1), (12, 0)})
        report = purge(dep, now=T)
        reads = stored_reads(dep)
        hit10, hit12 = h.on_day(10, 1), h.on_day(12, 0)
        assert set(reads) == {r.read_id for r in h.reads if h.day[r.read_id] <= 7} | {
            hit10.read_id,
            hit12.read_id,
        }
        assert all(row.is_hit for row in reads[hit10.read_id])
        assert len(reads[hit12.read_id]) == 2  # the hit's alternate token stays with it
        # Epochs of days 8, 9, 11 and 13 are dead; 10 and 12 keep a hit, so keep the key.
        dead = h.epochs_of_days([8, 9, 11, 13])
        assert dead <= set(report.epochs_destroyed)
        assert h.epochs_of_days([10, 12]).isdisjoint(report.epochs_destroyed)
        for e in dead:
            assert key_destroyed(dep, e)
        assert dep.keyring.key_for(hit10.epoch_id).epoch_id == hit10.epoch_id
        window = (T - 20 * DAY, T + SECOND)
        assert [m.read_id for m in factories.lookup(dep, "D10P1", *window)] == [hit10.read_id]
        assert [m.read_id for m in factories.lookup(dep, "D12Q0", *window)] == [hit12.read_id]
        assert factories.lookup(dep, "D10P0", *window) == []  # same epoch, not a hit: deleted
        # Once the hits pass their own window, their epochs die too.
        later = purge(dep, now=T + 25 * DAY)
        assert h.epochs_of_days([10, 12]) <= set(later.epochs_destroyed)
        assert hit10.read_id not in stored_reads(dep)
        assert_audit_verifies(dep)


def test_shortening_a_window_applies_to_stored_reads(home: Path) -> None:
    with Deployment.open(home) as dep:
        h = ingest_history(dep, days=12, per_day=1)
    configure(home, windows={"non_hit_reads": "5d", "evidence": "3d"})
    with Deployment.open(home) as dep:
        report = purge(dep, now=T)
        assert set(stored_reads(dep)) == {r.read_id for r in h.reads if h.day[r.read_id] <= 5}
        assert report.reads_total == sum(h.rows(r) for r in h.reads if h.day[r.read_id] > 5)
        assert set(stored_evidence(dep)) == {e for e, d in h.evidence_day.items() if d <= 3}
        [purged] = audit_of(dep, "retention.purged")
        assert purged.entry is not None and purged.entry.details["evidence_deleted"] == 8


# -- 2. crypto-shredding reaches copies taken before the purge ------------------------------------


def test_copy_from_before_the_purge_is_useless_with_todays_keys(
    dep: Deployment, tmp_path: Path
) -> None:
    s = standard_scenario(dep)
    h = s.h
    kek_path = dep.settings.kek_path
    old_kek = kekfile.read_kek(kek_path)
    # The attacker's copy: every epoch row and every (epoch, token) pair, as SQL returns them
    # (a pg_dump or a copied SQLite file holds exactly these bytes).
    backup_epochs = {e.id: e for e in epoch_rows(dep).values() if e.wrapped_key is not None}
    backup_tokens = {
        (row.epoch_id, bytes(row.token)) for rows in stored_reads(dep).values() for row in rows
    }
    # The bytes a backup holds are the bytes SQL returns: every wrapped key is in the dump.
    dump = dump_database(dep.settings.resolved_database_url)
    for e in backup_epochs.values():
        wrapped = bytes(e.wrapped_key)
        assert (wrapped.hex().encode() if ON_POSTGRES else wrapped) in dump
    backup_dir = None if ON_POSTGRES else copy_sqlite_files(dep, tmp_path / "backup")

    def tokens_under(key: bytes, plates: set[str]) -> set[bytes]:
        return {plate_token(key, canonical_plate(p)) for p in plates}

    purged_plates = {h.plates[r.read_id] for r in h.reads if r.epoch_id in s.expected_dead}
    purged_plates |= {p.replace("P0", "Q0") for p in purged_plates if p.endswith("P0")}
    # Control: with the old KEK the copy does open, and the recomputed tokens do match.
    for epoch_id in s.expected_dead & {r.epoch_id for r in h.reads}:
        e = backup_epochs[epoch_id]
        key = unwrap_key(old_kek, e.id, bytes(e.wrapped_key), ends_at=e.ends_at)
        assert {(epoch_id, t) for t in tokens_under(key, purged_plates)} & backup_tokens

    report = purge(dep, now=T)
    assert set(report.epochs_destroyed) == s.expected_dead

    new_kek = kekfile.read_kek(kek_path)
    assert new_kek.generation == old_kek.generation + 1 and new_kek.key != old_kek.key
    # No copy of the old KEK is left in the deployment directory, in any encoding.
    old_forms = [old_kek.key, base64.b64encode(old_kek.key)]
    for path in dep.settings.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(form in data for form in old_forms), path
    # The copy's wrapped keys no longer unwrap: not under today's KEK, nor with its bytes
    # relabelled as the old generation.
    for e in backup_epochs.values():
        for kek in (new_kek, kekfile.Kek(old_kek.generation, new_kek.key)):
            with pytest.raises(KeyringError):
                unwrap_key(kek, e.id, bytes(e.wrapped_key), ends_at=e.ends_at)
    # Every key the attacker can obtain (today's database with today's KEK) ...
    obtainable: dict[int, bytes] = {}
    for e in epoch_rows(dep).values():
        if e.wrapped_key is not None:
            assert e.kek_generation == new_kek.generation
            obtainable[e.id] = unwrap_key(new_kek, e.id, bytes(e.wrapped_key), ends_at=e.ends_at)
        else:
            assert e.kek_generation is None
    assert s.expected_dead.isdisjoint(obtainable)
    # ... matches none of the purged epochs' plates in the copy,
    doomed_tokens = {t for e, t in backup_tokens if e in s.expected_dead}
    assert doomed_tokens
    for key in obtainable.values():
        assert tokens_under(key, purged_plates).isdisjoint(doomed_tokens)
    # while the same procedure does find the reads still inside the window (so it can work).
    live = h.on_day(3, 1)
    assert (live.epoch_id, plate_token(obtainable[live.epoch_id], canonical_plate("D03P1"))) in (
        backup_tokens
    )

    if backup_dir is not None:
        # The SQLite copy opened as a deployment with today's key files: no old key unwraps.
        with open_sqlite_copy(dep, backup_dir) as restored:
            for epoch_id in s.expected_dead:
                with pytest.raises(KeyringError):
                    restored.keyring.key_for(epoch_id)
            with pytest.raises(KeyringError):
                factories.lookup(restored, "D35P1", T - 45 * DAY, T)


def copy_sqlite_files(dep: Deployment, backup_dir: Path) -> Path:
    dep.db.engine.dispose()
    db_file = Path(dep.settings.resolved_database_url.removeprefix("sqlite:///"))
    backup_dir.mkdir()
    for f in db_file.parent.glob(db_file.name + "*"):
        shutil.copy2(f, backup_dir / f.name)
    return backup_dir


def open_sqlite_copy(dep: Deployment, backup_dir: Path) -> Deployment:
    """The copied database with the deployment's key files as they are now."""
    shutil.copytree(dep.settings.home / "keys", backup_dir / "keys")
    config = (dep.settings.home / "privplate.toml").read_text(encoding="utf-8")
    db_file = Path(dep.settings.resolved_database_url.removeprefix("sqlite:///"))
    (backup_dir / "privplate.toml").write_text(
        config.replace(str(db_file), str(backup_dir / db_file.name)), encoding="utf-8"
    )
    restored = Deployment.open(backup_dir)
    assert restored.db.url.endswith(str(backup_dir / db_file.name))
    return restored


# -- 3. forensic: purged bytes leave the SQLite files ---------------------------------------------


@dataclass
class ForensicData:
    purged: list[bytes]  # token bytes and 32-byte ciphertext slices that must vanish
    kept: list[bytes]  # the same for data that stays (so the scan can fail)


def ingest_forensic_data(dep: Deployment) -> ForensicData:
    """400 reads (with alternates) and 4 large evidence items 35 days old, the same 1 day old."""
    factories.camera(dep)
    found: dict[str, list[bytes]] = {}
    for label, age in (("purged", 35 * DAY), ("kept", DAY)):
        base = T - age
        evidence, ciphertexts = [], []
        for k in range(4):
            ev, sealed = sealed_evidence("gate-1", base + k * SECOND, size=24_000)
            evidence.append(ev)
            ciphertexts.append(sealed)
        prefix = label[0].upper()
        reads = [
            factories.read(
                dep,
                f"{prefix}{n:04d}",
                observed_at=base + n * SECOND,
                alternates=[f"{prefix}{n:04d}8"],
                evidence_id=evidence[n].evidence_id if n < len(evidence) else None,
            )
            for n in range(400)
        ]
        factories.ingest(dep, reads, evidence, now=base + 10 * MINUTE)
        tokens = [t.token for r in reads for t in r.tokens]
        slices = [c[i : i + 32] for c in ciphertexts for i in (100, len(c) // 2, len(c) - 40)]
        found[label] = tokens + slices
    return ForensicData(purged=found["purged"], kept=found["kept"])


@pytest.mark.skipif(ON_POSTGRES, reason="scans the SQLite database and WAL files")
def test_purged_tokens_and_evidence_leave_the_database_files(dep: Deployment) -> None:
    data = ingest_forensic_data(dep)
    url = dep.settings.resolved_database_url
    before = dump_database(url)
    assert all(n in before for n in data.purged), "the scan must see the data first"

    report = purge(dep, now=T)
    assert report.reads_total == 800 and report.evidence_deleted == 4

    after = dump_database(url)  # the database file, its -wal and -shm
    leaked = [n.hex() for n in data.purged if n in after]
    assert leaked == [], f"{len(leaked)} purged values still in the files"
    assert all(n in after for n in data.kept), "the scan must be able to fail"
    db_file = Path(url.removeprefix("sqlite:///"))
    wal = db_file.with_name(db_file.name + "-wal")
    if wal.exists():
        wal_bytes = wal.read_bytes()
        assert not any(n in wal_bytes for n in data.purged)


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite free pages")
def test_purge_gives_the_freed_pages_back(dep: Deployment) -> None:
    ingest_forensic_data(dep)

    def pages() -> tuple[int, int]:
        with dep.db.read() as conn:
            return (
                int(conn.exec_driver_sql("PRAGMA page_count").scalar_one()),
                int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()),
            )

    total_before, free_before = pages()
    assert free_before == 0
    purge(dep, now=T)
    total_after, free_after = pages()
    # incremental_vacuum must release every free page, not just one: a purge that deleted
    # hundreds of pages leaves none on the free list and a correspondingly smaller file.
    assert free_after == 0, f"{free_after} free pages left after the purge"
    assert total_after < total_before * 0.75


# -- 4. New Hampshire: non-hits within three minutes -------------------------------------------


def test_new_hampshire_purges_non_hits_within_three_minutes(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVPLATE_RETENTION__PRESET", "new-hampshire")
    with Deployment.open(home) as dep:
        assert dep.settings.retention.preset == "new-hampshire"
        assert dep.windows.non_hit_reads == 3 * MINUTE
        assert dep.windows.hit_reads == 30 * DAY
        factories.camera(dep)
        ages = {"4m": 4 * MINUTE, "2m": 2 * MINUTE, "3m": 3 * MINUTE, "3m1s": 3 * MINUTE + SECOND}
        plain = {}
        for name, age in ages.items():
            read = factories.read(dep, f"NH{name.upper()}", observed_at=T - age)
            factories.ingest(dep, [read], now=T - age + SECOND)  # as it arrived
            plain[name] = read
        hit = factories.read(dep, "NHHIT1", observed_at=T - 10 * MINUTE)
        factories.ingest(dep, [hit], hits={hit.read_id}, now=T - 10 * MINUTE + SECOND)
        late = factories.read(dep, "NHLATE", observed_at=T - 4 * MINUTE)
        assert (
            factories.ingest(dep, [late], now=T).expired == 1
        )  # arrives past its window: not kept

        report = purge(dep, now=T)
        reads = stored_reads(dep)
        assert set(reads) == {plain["2m"].read_id, plain["3m"].read_id, hit.read_id}
        assert report.reads_total == 2
        assert [m.read_id for m in factories.lookup(dep, "NHHIT1", T - DAY, T + SECOND)] == [
            hit.read_id
        ]
        # Thirty days later the hit goes too.
        purge(dep, now=T + 30 * DAY)
        assert hit.read_id not in stored_reads(dep)
        assert_audit_verifies(dep)


@pytest.mark.parametrize("epoch_seconds", [86_400, 60], ids=["daily-epochs", "minute-epochs"])
def test_new_hampshire_scheduler_keeps_no_non_hit_older_than_window_plus_interval(
    home: Path, monkeypatch: pytest.MonkeyPatch, epoch_seconds: int
) -> None:
    monkeypatch.setenv("PRIVPLATE_RETENTION__PRESET", "new-hampshire")
    monkeypatch.setenv("PRIVPLATE_EPOCH_SECONDS", str(epoch_seconds))
    interval = timedelta(seconds=60)
    window = 3 * MINUTE
    rng = random.Random(20310520)
    start = T
    with Deployment.open(home) as dep:
        factories.camera(dep)
        # Reads arrive at random seconds over 30 minutes, each observed up to 20 s earlier.
        arrivals = sorted(rng.uniform(0, 30 * 60) for _ in range(240))
        pending = []
        for n, at in enumerate(arrivals):
            arrived = start + timedelta(seconds=at)
            observed = arrived - timedelta(seconds=rng.uniform(0, 20))
            pending.append((arrived, observed, f"NH{n:04d}", rng.random() < 0.1))
        hits: set[uuid.UUID] = set()
        purges = 0
        tick = start + interval
        while tick <= start + 31 * MINUTE:
            batch = [p for p in pending if p[0] <= tick]
            pending = [p for p in pending if p[0] > tick]
            for arrived, observed, plate, is_hit in batch:
                read = factories.read(dep, plate, observed_at=observed)
                if is_hit:
                    hits.add(read.read_id)
                factories.ingest(dep, [read], hits={read.read_id} if is_hit else (), now=arrived)
            # Just before the scheduled purge, the oldest non-hit is at most window + interval old.
            oldest = oldest_non_hit(dep)
            if oldest is not None:
                assert tick - oldest < window + interval
            report = purge(dep, now=tick)
            purges += 1
            assert not report.skipped
            oldest = oldest_non_hit(dep)
            if oldest is not None:
                assert tick - oldest <= window
            assert hits <= set(stored_reads(dep))  # hits are never lost to the 3-minute rule
            if epoch_seconds == 60:
                # Every epoch that ended before the window and keeps no read has lost its key.
                reads = stored_reads(dep)
                with_reads = {row.epoch_id for rows in reads.values() for row in rows}
                for e in epoch_rows(dep).values():
                    if e.ends_at <= tick - window and e.id not in with_reads:
                        assert e.wrapped_key is None, (e.id, tick)
            tick += interval
        assert purges == 31
        assert len(audit_of(dep, "retention.purged")) == 31
        assert_audit_verifies(dep)


def oldest_non_hit(dep: Deployment) -> datetime | None:
    with dep.db.read() as conn:
        value: datetime | None = conn.execute(
            select(func.min(_reads.c.observed_at)).where(_reads.c.is_hit.is_(False))
        ).scalar()
    return value


# -- 5. a purge killed half-way is completed by the next run ------------------------------------


@contextmanager
def crash_at(point: str, dep: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the purge die (SystemExit, which nothing catches) at ``point``."""
    with monkeypatch.context() as m:
        if point == "second-delete":
            # After the first delete committed (SQLite: one batch; PostgreSQL: after the
            # whole-partition drops, inside the boundary-row delete).
            real_delete = purge_mod.delete  # type: ignore[attr-defined]
            calls = Counter[str]()

            def dying_delete(*args: Any, **kwargs: Any) -> Any:
                calls["n"] += 1
                if calls["n"] == 2:
                    raise SystemExit("killed mid-delete")
                return real_delete(*args, **kwargs)

            # The purge deletes boundary rows itself; SQLite's batches run in the store.
            m.setattr(purge_mod, "delete", dying_delete)
            m.setattr(purging_mod, "delete", dying_delete)
        elif point == "destroy-keys":

            def no_destroy(*args: Any, **kwargs: Any) -> list[int]:
                raise SystemExit("killed before destroying keys")

            m.setattr(dep.keyring, "destroy_epochs", no_destroy)
        elif point == "kek-rename":

            def no_rename(path: Path) -> None:
                raise SystemExit("killed after the re-wrap committed, before the rename")

            m.setattr(kekfile, "promote_next", no_rename)
        elif point == "audit":
            real_record = dep.audit.record

            def dying_record(**kwargs: Any) -> Any:
                if kwargs.get("action") == "retention.purged":
                    raise SystemExit("killed before the audit entry")
                return real_record(**kwargs)

            m.setattr(dep.audit, "record", dying_record)
        else:  # pragma: no cover
            raise AssertionError(point)
        yield


@pytest.mark.parametrize("point", ["second-delete", "destroy-keys", "kek-rename", "audit"])
def test_purge_killed_midway_is_completed_by_the_next_run(
    home: Path, dep: Deployment, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    s = standard_scenario(dep)
    before = stored_reads(dep)
    with crash_at(point, dep, monkeypatch), pytest.raises(SystemExit):
        purge(dep, now=T)
    # The crash left a consistent, partly purged store: held rows never lost ...
    after_crash = stored_reads(dep)
    assert s.held_read.read_id in after_crash
    assert s.held_evidence in stored_evidence(dep)
    assert len(after_crash) < len(before), "the run had deleted something before it died"
    assert audit_of(dep, "retention.purged") == []
    assert_audit_verifies(dep)
    if point == "kek-rename":
        assert kekfile.next_path(dep.settings.kek_path).exists()

    # ... and the next run (a fresh process) completes it.
    dep.close()
    with Deployment.open(home) as again:
        assert not kekfile.next_path(again.settings.kek_path).exists()
        report = purge(again, now=T)
        assert not report.skipped
        assert_purged_state(again, s)
        assert destroyed_per_audit(again) == s.expected_dead
        [purged] = audit_of(again, "retention.purged")
        assert purged.entry is not None
        if point != "second-delete":
            assert report.reads_total == 0  # the first run had deleted every row already
        if point in ("kek-rename", "audit"):
            # The rotation had committed (recovery finished the rename): nothing left to do.
            assert report.epochs_destroyed == []
        else:
            assert set(report.epochs_destroyed) == s.expected_dead
        window = (T - 45 * DAY, T + SECOND)
        assert [m.read_id for m in factories.lookup(again, "D05P1", *window)] == [
            s.h.on_day(5, 1).read_id
        ]


PURGE_SCRIPT = """
import json, os, signal, sys, time
from datetime import datetime
from pathlib import Path
from privplate.deployment import Deployment
from privplate.retention import purge as purge_mod
from privplate.store import purging as purging_mod
from privplate.tokens import kek as kekfile

home, now, mode, sync = sys.argv[1], datetime.fromisoformat(sys.argv[2]), sys.argv[3], sys.argv[4]

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if mode == "kill-second-delete":
    real, calls = purge_mod.delete, []
    def delete(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            die()
        return real(*args, **kwargs)
    purge_mod.delete = purging_mod.delete = delete
elif mode == "kill-before-rename":
    kekfile.promote_next = die
elif mode == "kill-mid-scrub":
    # Die inside a write transaction of the page scrub, after one page was rewritten.
    real_scrub, updates = purging_mod.scrub_free_space, []
    class Dying:
        def __init__(self, conn):
            self.conn = conn
        def execute(self, sql, *args):
            if sql.startswith("UPDATE sqlite_dbpage"):
                updates.append(1)
                if len(updates) == 2:
                    die()
            return self.conn.execute(sql, *args)
    purging_mod.scrub_free_space = lambda conn, *a, **kw: real_scrub(Dying(conn), *a, **kw)
elif mode == "slow":
    real_expire = purge_mod.expire_holds  # type: ignore[attr-defined]
    def expire_holds(*args, **kwargs):
        time.sleep(1.0)  # hold the runner lock long enough for the other runner to try
        return real_expire(*args, **kwargs)
    purge_mod.expire_holds = expire_holds

with Deployment.open(home) as dep:
    if sync != "-":
        Path(sync + "." + str(os.getpid())).touch()
        while not Path(sync).exists():
            time.sleep(0.005)
    report = purge_mod.purge(dep, now=now)
print(json.dumps({
    "skipped": report.skipped,
    "reads": report.reads_total,
    "evidence": report.evidence_deleted,
    "epochs": report.epochs_destroyed,
}))
"""


def run_purge_process(
    home: Path, tmp_path: Path, mode: str, *, now: datetime = T, sync: str = "-"
) -> subprocess.Popen[str]:
    script = tmp_path / "purge_script.py"
    script.write_text(PURGE_SCRIPT, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(script), str(home), now.isoformat(), mode, sync],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def purge_until_done(dep: Deployment, now: datetime) -> PurgeReport:
    # PostgreSQL releases a killed session's advisory lock once it notices the disconnect.
    for _ in range(100):
        report = purge(dep, now=now)
        if not report.skipped:
            return report
        time.sleep(0.05)
    raise AssertionError("the runner lock of the killed purge was never released")


@pytest.mark.parametrize("mode", ["kill-second-delete", "kill-before-rename", "kill-mid-scrub"])
def test_purge_process_killed_with_sigkill_is_completed_by_the_next_run(
    home: Path, dep: Deployment, tmp_path: Path, mode: str
) -> None:
    if mode == "kill-mid-scrub" and ON_POSTGRES:
        pytest.skip("the page scrub is SQLite's")
    s = standard_scenario(dep)
    before = stored_reads(dep)
    dep.close()
    proc = run_purge_process(home, tmp_path, mode)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -9, err
    with Deployment.open(home) as again:
        assert s.held_read.read_id in stored_reads(again)
        assert len(stored_reads(again)) < len(before)
        report = purge_until_done(again, T)
        assert_purged_state(again, s)
        assert destroyed_per_audit(again) == s.expected_dead
        # A run killed in its last step (the scrub) had already audited what it deleted.
        runs = 2 if mode == "kill-mid-scrub" else 1
        assert len(audit_of(again, "retention.purged")) == runs
        if mode == "kill-before-rename":
            assert report.epochs_destroyed == [] and report.reads_total == 0
        if mode == "kill-mid-scrub":
            # Its rows were already deleted; the marker it left makes this run zero the pages.
            assert report.reads_total == 0 and "scrub" in report.phases
            with again.db.read() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"


# -- 6. one runner at a time ------------------------------------------------------------------


def test_a_purge_while_another_runner_holds_the_lock_is_skipped(
    home: Path, dep: Deployment
) -> None:
    s = standard_scenario(dep)
    reads, evidence = stored_reads(dep), stored_evidence(dep)
    generation = dep.keyring.kek_generation
    with runner_lock(dep.db) as acquired:
        assert acquired is True
        with Deployment.open(home) as other:
            report = purge(other, now=T)
            with runner_lock(other.db) as second:
                assert second is False
        assert report.skipped
        assert (report.reads_total, report.evidence_deleted, report.epochs_destroyed) == (0, 0, [])
        assert stored_reads(dep) == reads and stored_evidence(dep) == evidence
        assert dep.keyring.kek_generation == generation
        assert audit_of(dep, "retention.purged") == []
    # Released: the next run purges.
    with Deployment.open(home) as other:
        report = purge(other, now=T)
        assert not report.skipped and report.reads_total == sum(s.expected_reads.values())
        assert_purged_state(other, s)


def run_concurrently(targets: list[Callable[[], PurgeReport]]) -> list[PurgeReport]:
    barrier = threading.Barrier(len(targets))
    results: list[PurgeReport | BaseException | None] = [None] * len(targets)

    def run(n: int) -> None:
        try:
            barrier.wait()
            results[n] = targets[n]()
        except BaseException as exc:
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    errors = [r for r in results if not isinstance(r, PurgeReport)]
    assert errors == [], errors
    return results  # type: ignore[return-value]


def test_two_overlapping_runners_exactly_one_deletes(
    home: Path, dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = standard_scenario(dep)
    real_expire = purge_mod.expire_holds  # type: ignore[attr-defined]

    def slow_expire(*args: Any, **kwargs: Any) -> int:
        time.sleep(0.3)  # the winner holds the runner lock for a while
        return real_expire(*args, **kwargs)

    monkeypatch.setattr(purge_mod, "expire_holds", slow_expire)
    with Deployment.open(home) as a, Deployment.open(home) as b:
        reports = run_concurrently([lambda: purge(a, now=T), lambda: purge(b, now=T)])
    assert sorted(r.skipped for r in reports) == [False, True]
    [winner] = [r for r in reports if not r.skipped]
    [loser] = [r for r in reports if r.skipped]
    assert dict(winner.reads_deleted) == dict(s.expected_reads)
    assert (loser.reads_total, loser.evidence_deleted, loser.epochs_destroyed) == (0, 0, [])
    assert_purged_state(dep, s)
    assert len(audit_of(dep, "retention.purged")) == 1


def test_racing_runners_never_delete_twice(home: Path, dep: Deployment) -> None:
    # No injected delay: whatever the interleaving, each round's work is done exactly once.
    h = ingest_history(dep, days=36, per_day=2)
    deleted: set[uuid.UUID] = set()
    runs = 0
    runners = [Deployment.open(home) for _ in range(3)]
    try:
        for day in range(4):
            now = T + day * DAY
            due = {
                r.read_id
                for r in h.reads
                if r.observed_at < now - 30 * DAY and r.read_id not in deleted
            }
            assert due
            reports = run_concurrently([functools.partial(purge, d, now=now) for d in runners])
            assert sum(r.reads_total for r in reports) == sum(
                h.rows(r) for r in h.reads if r.read_id in due
            )
            assert sum(r.reads_total > 0 for r in reports) == 1
            destroyed = [e for r in reports for e in r.epochs_destroyed]
            assert len(destroyed) == len(set(destroyed))  # no epoch destroyed twice
            runs += sum(not r.skipped for r in reports)
            assert len(audit_of(dep, "retention.purged")) == runs
            deleted |= due
            assert set(stored_reads(dep)) == {r.read_id for r in h.reads} - deleted
        assert_audit_verifies(dep)
    finally:
        for r in runners:
            r.close()


def test_two_purge_processes_exactly_one_deletes(
    home: Path, dep: Deployment, tmp_path: Path
) -> None:
    s = standard_scenario(dep)
    dep.close()
    go = tmp_path / "go"
    procs = [run_purge_process(home, tmp_path, "slow", sync=str(go)) for _ in range(2)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.*"))) < 2:
        assert time.monotonic() < deadline, [p.poll() for p in procs]
        time.sleep(0.01)
    go.touch()
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outputs.append(json.loads(out))
    assert sorted(o["skipped"] for o in outputs) == [False, True]
    [winner] = [o for o in outputs if not o["skipped"]]
    assert winner["reads"] == sum(s.expected_reads.values())
    assert set(winner["epochs"]) == s.expected_dead
    assert sum(o["reads"] for o in outputs) == winner["reads"]
    with Deployment.open(home) as again:
        assert_purged_state(again, s)
        assert len(audit_of(again, "retention.purged")) == 1


# -- 7. legal holds -----------------------------------------------------------------------------


def test_hold_rules(dep: Deployment) -> None:
    h = ingest_history(dep, days=2, per_day=1)
    target = h.reads[0].read_id
    args: dict[str, Any] = {
        "db": dep.db,
        "audit": dep.audit,
        "kind": "read",
        "target_id": target,
        "case_number": "CASE-1",
        "justification": "robbery",
        "requested_by": "investigator:alice",
        "duration": timedelta(days=30),
        "now": T,
    }
    # A hold needs a case number and a justification, and a sane duration.
    for bad in (
        {"case_number": ""},
        {"case_number": "   "},
        {"justification": ""},
        {"justification": " \n"},
        {"duration": timedelta(0)},
        {"duration": timedelta(days=3651)},
    ):
        with pytest.raises(HoldRefused):
            request_hold(**(args | bad))
    # Only stored items can be held.
    with pytest.raises(NotFound):
        request_hold(**(args | {"target_id": uuid.uuid4()}))
    with pytest.raises(NotFound):
        request_hold(**(args | {"kind": "evidence", "target_id": uuid.uuid4()}))
    with pytest.raises(NotFound):
        request_hold(**(args | {"kind": "evidence", "target_id": target}))  # a read, not evidence
    assert list_holds(db=dep.db) == []

    info = request_hold(**args)
    assert (info.case_number, info.requested_by, info.approved_by) == (
        "CASE-1",
        "investigator:alice",
        None,
    )
    # Two people: the requester cannot approve their own hold.
    with pytest.raises(HoldRefused, match="requester"):
        approve_hold(
            db=dep.db, audit=dep.audit, hold_id=info.id, approved_by="investigator:alice", now=T
        )
    with pytest.raises(NotFound):
        approve_hold(db=dep.db, audit=dep.audit, hold_id=uuid.uuid4(), approved_by="x", now=T)
    approved = approve_hold(
        db=dep.db, audit=dep.audit, hold_id=info.id, approved_by="supervisor:bob", now=T
    )
    assert approved.approved_by == "supervisor:bob"
    with pytest.raises(HoldRefused):  # only once
        approve_hold(db=dep.db, audit=dep.audit, hold_id=info.id, approved_by="carol", now=T)
    # A hold past its expiry cannot be approved.
    late = request_hold(**args)
    with pytest.raises(HoldRefused):
        approve_hold(
            db=dep.db, audit=dep.audit, hold_id=late.id, approved_by="bob", now=T + 31 * DAY
        )
    # Every step is audited, with its actor.
    requested = audit_of(dep, "hold.requested")
    assert [e.actor for e in requested] == ["investigator:alice"] * 2
    assert requested[0].entry is not None
    assert requested[0].entry.details["case"] == "CASE-1"
    assert requested[0].entry.details["target"] == str(target)
    [approval] = audit_of(dep, "hold.approved")
    assert approval.actor == "supervisor:bob"
    assert_audit_verifies(dep)


def test_expired_holds_are_released_by_the_purge_then_purged(dep: Deployment) -> None:
    h = ingest_history(dep, days=40, per_day=1)
    short = h.on_day(35, 0)
    long_ = h.on_day(34, 0)
    short_ev = next(e for e, d in h.evidence_day.items() if d == 36)
    short_hold = hold(dep, "read", short.read_id, duration=5 * DAY)
    short_ev_hold = hold(dep, "evidence", short_ev, duration=5 * DAY)
    long_hold = hold(dep, "read", long_.read_id, duration=50 * DAY)

    first = purge(dep, now=T)
    assert first.holds_expired == 0
    assert {short.read_id, long_.read_id} <= set(stored_reads(dep))
    assert short_ev in stored_evidence(dep)
    assert audit_of(dep, "hold.expired") == []

    # Six days later the short holds have expired: this run releases them and purges the items.
    second = purge(dep, now=T + 6 * DAY)
    assert second.holds_expired == 2
    reads = stored_reads(dep)
    assert short.read_id not in reads and long_.read_id in reads
    assert short_ev not in stored_evidence(dep)
    [expired] = audit_of(dep, "hold.expired")
    assert expired.entry is not None
    assert sorted(expired.entry.details["holds"]) == sorted(
        [str(short_hold.id), str(short_ev_hold.id)]
    )
    holds = {x.id: x for x in list_holds(db=dep.db)}
    assert holds[short_hold.id].released_at == T + 6 * DAY
    assert holds[short_ev_hold.id].released_at == T + 6 * DAY
    assert holds[long_hold.id].released_at is None
    [purged] = audit_of(dep, "retention.purged")[-1:]
    assert purged.entry is not None and purged.entry.details["holds_expired"] == 2
    # Expired holds are released once only.
    assert purge(dep, now=T + 7 * DAY).holds_expired == 0
    assert len(audit_of(dep, "hold.expired")) == 1
    assert_audit_verifies(dep)


def test_released_hold_no_longer_protects(dep: Deployment) -> None:
    h = ingest_history(dep, days=40, per_day=1)
    held = h.on_day(39, 0)
    info = hold(dep, "read", held.read_id)
    purge(dep, now=T)
    assert held.read_id in stored_reads(dep)
    release_hold(db=dep.db, audit=dep.audit, hold_id=info.id, released_by="supervisor:bob", now=T)
    with pytest.raises(NotFound):  # released once only
        release_hold(db=dep.db, audit=dep.audit, hold_id=info.id, released_by="bob", now=T)
    with pytest.raises(NotFound):
        release_hold(db=dep.db, audit=dep.audit, hold_id=uuid.uuid4(), released_by="bob", now=T)
    [released] = audit_of(dep, "hold.released")
    assert released.actor == "supervisor:bob"
    assert released.entry is not None and released.entry.details["hold"] == str(info.id)
    report = purge(dep, now=T)
    assert held.read_id not in stored_reads(dep)
    assert report.reads_deleted == Counter({held.epoch_id: 2})
    assert report.holds_expired == 0  # released, not expired
    assert_audit_verifies(dep)


def test_held_read_is_not_counted_as_oldest_remaining(dep: Deployment) -> None:
    h = ingest_history(dep, days=40, per_day=1)
    hold(dep, "read", h.on_day(39, 0).read_id)
    report = purge(dep, now=T)
    assert report.oldest_remaining_read == h.on_day(30, 0).observed_at
    assert oldest_remaining_read(dep, T) == h.on_day(30, 0).observed_at


# -- 8. dry run ---------------------------------------------------------------------------------


def test_dry_run_counts_and_deletes_nothing(dep: Deployment) -> None:
    s = standard_scenario(dep)
    reads, evidence, epochs = stored_reads(dep), stored_evidence(dep), epoch_rows(dep)
    generation = dep.keyring.kek_generation
    audit_size = dep.audit.size()
    with dep.db.read() as conn:
        holds_before = conn.execute(select(_holds)).all()

    dry = purge(dep, now=T, dry_run=True)

    assert dry.dry_run and not dry.skipped
    assert dict(dry.reads_deleted) == dict(s.expected_reads)
    assert dry.evidence_deleted == len(s.expected_evidence)
    assert dry.epochs_destroyed == [] and dry.partitions_dropped == []
    # Nothing changed: rows, keys, KEK, holds, audit log.
    assert stored_reads(dep) == reads and stored_evidence(dep) == evidence
    assert epoch_rows(dep) == epochs
    assert dep.keyring.kek_generation == generation
    assert all(not key_destroyed(dep, e) for e in s.expected_dead)
    with dep.db.read() as conn:
        assert conn.execute(select(_holds)).all() == holds_before
    assert dep.audit.size() == audit_size
    # A dry run does not need the runner lock, and a real run then does what it announced.
    with runner_lock(dep.db) as acquired:
        assert acquired
        assert purge(dep, now=T, dry_run=True).reads_total == dry.reads_total
    real = purge(dep, now=T)
    assert dict(real.reads_deleted) == dict(dry.reads_deleted)
    assert real.evidence_deleted == dry.evidence_deleted
    assert_purged_state(dep, s)
    assert purge(dep, now=T, dry_run=True).reads_total == 0


@pytest.mark.skipif(ON_POSTGRES, reason="the scrub marker is SQLite's")
def test_a_scrub_asked_for_during_a_purge_is_not_lost(
    dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process erasing data (unseal partials, audit pruning) while a purge that
    deletes nothing runs: its request for a scrub must survive the purge's own clearing."""
    real_expire = purge_mod.expire_holds  # type: ignore[attr-defined]

    def expire_and_someone_erases(*args: Any, **kwargs: Any) -> int:
        dep.db.request_scrub()  # as another process would, mid-run
        return int(real_expire(*args, **kwargs))

    purge(dep)  # a first run leaves no marker of its own
    assert not dep.db.scrub_marker.exists()
    monkeypatch.setattr(purge_mod, "expire_holds", expire_and_someone_erases)
    report = purge(dep)
    assert not report.deleted_anything
    assert dep.db.scrub_marker.exists()  # the next run zeroes what the other process erased
    monkeypatch.undo()
    assert "scrub" in purge(dep).phases and not dep.db.scrub_marker.exists()
