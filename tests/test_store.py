"""Ingest and plate lookup: the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from privplate.deployment import Deployment
from privplate.errors import IngestRejected, InvalidPlate, UnknownCamera
from privplate.sealing import generate_keypair, open_sealed, seal
from privplate.store import TokenIn
from privplate.store.models import Evidence, Read
from tests import factories

NOW = datetime.now(UTC)
HOUR_AGO = NOW - timedelta(hours=1)


def count_rows(dep: Deployment, model: type[Read] | type[Evidence]) -> int:
    with dep.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar_one())


def test_ingest_then_lookup_finds_only_that_plate(dep: Deployment) -> None:
    factories.camera(dep)
    factories.camera(dep, "gate-2")
    mine = [factories.read(dep, "ABC 123", camera_id=c) for c in ("gate-1", "gate-2")]
    others = [factories.read(dep, f"XYZ{i:03d}") for i in range(20)]
    result = factories.ingest(dep, mine + others)
    assert (result.inserted, result.duplicates, result.expired) == (22, 0, 0)

    found = factories.lookup(dep, "abc-123", HOUR_AGO)
    assert {m.read_id for m in found} == {r.read_id for r in mine}
    assert {m.camera_id for m in found} == {"gate-1", "gate-2"}
    assert all(not m.via_alternate for m in found)
    assert factories.lookup(dep, "NOPE1", HOUR_AGO) == []


def test_lookup_respects_the_time_window(dep: Deployment) -> None:
    factories.camera(dep)
    old = factories.read(dep, "ABC123", observed_at=NOW - timedelta(days=3))
    new = factories.read(dep, "ABC123", observed_at=NOW - timedelta(minutes=5))
    factories.ingest(dep, [old, new])
    assert [m.read_id for m in factories.lookup(dep, "ABC123", NOW - timedelta(days=1))] == [
        new.read_id
    ]
    assert [m.read_id for m in factories.lookup(dep, "ABC123", NOW - timedelta(days=4))] == [
        old.read_id,
        new.read_id,
    ]
    assert factories.lookup(dep, "ABC123", NOW - timedelta(days=4), NOW - timedelta(days=2)) == [
        factories.lookup(dep, "ABC123", NOW - timedelta(days=4))[0]
    ]


def test_same_plate_is_unlinkable_across_epochs(dep: Deployment) -> None:
    factories.camera(dep)
    a = factories.read(dep, "ABC123", observed_at=NOW - timedelta(days=2))
    b = factories.read(dep, "ABC123", observed_at=NOW)
    assert a.epoch_id != b.epoch_id
    assert a.tokens[0].token != b.tokens[0].token


def test_resending_a_batch_adds_nothing(dep: Deployment) -> None:
    factories.camera(dep)
    batch = [factories.read(dep, f"PL{i}", alternates=[f"PL{i}8"]) for i in range(50)]
    first = factories.ingest(dep, batch)
    again = factories.ingest(dep, batch)
    assert (first.inserted, again.inserted, again.duplicates) == (50, 0, 50)
    assert count_rows(dep, Read) == 100  # best + one alternate per read


def test_alternates_match_and_are_flagged(dep: Deployment) -> None:
    factories.camera(dep)
    read = factories.read(dep, "8ABC123", alternates=["BABC123"])
    factories.ingest(dep, [read])
    [best] = factories.lookup(dep, "8ABC123", HOUR_AGO)
    [alt] = factories.lookup(dep, "BABC123", HOUR_AGO)
    assert best.read_id == alt.read_id == read.read_id
    assert (best.via_alternate, alt.via_alternate) == (False, True)


def test_destroyed_epoch_key_finds_nothing_although_rows_remain(dep: Deployment) -> None:
    factories.camera(dep)
    old = factories.read(dep, "ABC123", observed_at=NOW - timedelta(days=5))
    new = factories.read(dep, "ABC123")
    factories.ingest(dep, [old, new])
    destroyed = dep.keyring.destroy_before(NOW - timedelta(days=2))
    assert old.epoch_id in destroyed and new.epoch_id not in destroyed
    assert [m.read_id for m in factories.lookup(dep, "ABC123", NOW - timedelta(days=10))] == [
        new.read_id
    ]
    assert count_rows(dep, Read) == 2


def test_evidence_is_stored_sealed_and_opens(dep: Deployment) -> None:
    factories.camera(dep)
    x, big_x = generate_keypair()
    ev = factories.evidence("gate-1", b"")
    sealed = seal(b"\xff\xd8jpeg bytes", big_x, evidence_id=ev.evidence_id)
    ev = dataclasses.replace(ev, sealed=sealed)
    read = factories.read(dep, "ABC123", evidence_id=ev.evidence_id)
    factories.ingest(dep, [read], [ev])
    [match] = factories.lookup(dep, "ABC123", HOUR_AGO)
    assert match.evidence_id == ev.evidence_id
    with dep.db.read() as conn:
        stored = conn.execute(select(Evidence.__table__.c.sealed)).scalar_one()
    assert open_sealed(stored, x, evidence_id=ev.evidence_id) == b"\xff\xd8jpeg bytes"


def test_reads_past_retention_are_not_kept(dep: Deployment) -> None:
    factories.camera(dep)
    stale = factories.read(dep, "ABC123", observed_at=NOW - timedelta(days=31))
    fresh = factories.read(dep, "ABC123")
    result = factories.ingest(dep, [stale, fresh])
    assert (result.inserted, result.expired) == (1, 1)
    assert count_rows(dep, Read) == 1


# -- bad input: clear error, nothing half-written ---------------------------------------------


def _bad_batches(dep: Deployment) -> dict[str, tuple[list[object], str]]:
    good = factories.read(dep, "GOOD1")
    key = dep.keyring.current_key()
    return {
        "unknown camera": (
            [good, factories.read(dep, "X1", camera_id="nowhere")],
            "not registered",
        ),
        "future": (
            [good, factories.read(dep, "X1", observed_at=NOW + timedelta(hours=2))],
            "future",
        ),
        "short token": (
            [good, dataclasses.replace(good, read_id=uuid.uuid4(), tokens=[TokenIn(b"abc")])],
            "malformed token",
        ),
        "no best token": (
            [
                good,
                dataclasses.replace(
                    good, read_id=uuid.uuid4(), tokens=[TokenIn(b"a" * 16, is_alternate=True)]
                ),
            ],
            "exactly one best",
        ),
        "unknown epoch": (
            [good, dataclasses.replace(good, read_id=uuid.uuid4(), epoch_id=12345)],
            "epoch_id is unknown",
        ),
        "wrong epoch": (
            [
                good,
                dataclasses.replace(
                    good, read_id=uuid.uuid4(), observed_at=key.starts_at - timedelta(seconds=1)
                ),
            ],
            "outside the read's epoch",
        ),
        "duplicate id": ([good, good], "twice"),
        "confidence": (
            [good, dataclasses.replace(good, read_id=uuid.uuid4(), confidence=float("nan"))],
            "confidence",
        ),
        "naive time": (
            [
                good,
                dataclasses.replace(
                    good, read_id=uuid.uuid4(), observed_at=NOW.replace(tzinfo=None)
                ),
            ],
            "timezone-aware",
        ),
        "dangling evidence": (
            [good, dataclasses.replace(good, read_id=uuid.uuid4(), evidence_id=uuid.uuid4())],
            "never sent",
        ),
        "empty": ([], "empty"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unknown camera",
        "future",
        "short token",
        "no best token",
        "unknown epoch",
        "wrong epoch",
        "duplicate id",
        "confidence",
        "naive time",
        "dangling evidence",
        "empty",
    ],
)
def test_bad_batches_are_refused_whole(dep: Deployment, case: str) -> None:
    factories.camera(dep)
    batch, message = _bad_batches(dep)[case]
    with pytest.raises(IngestRejected, match=message) as info:
        factories.ingest(dep, batch)  # type: ignore[arg-type]
    assert "nothing stored" in str(info.value)
    assert count_rows(dep, Read) == 0, "a refused batch must leave nothing behind"


def test_unknown_camera_error_names_the_fix(dep: Deployment) -> None:
    with pytest.raises(UnknownCamera, match="privplate cameras add"):
        factories.ingest(dep, [factories.read(dep, "ABC123", camera_id="ghost")])


def test_oversized_batch_and_evidence_are_refused(dep: Deployment) -> None:
    factories.camera(dep)
    limit = dep.settings.ingest.max_batch_reads
    key = dep.keyring.current_key()
    token = factories.read(dep, "A1").tokens
    batch = [
        factories.ReadIn(uuid.uuid4(), "gate-1", NOW, key.epoch_id, token, 0.5)
        for _ in range(limit + 1)
    ]
    with pytest.raises(IngestRejected, match="split the batch"):
        factories.ingest(dep, batch)
    huge = factories.evidence("gate-1", b"PPS1" + b"\x00" * 3_000_000)
    with pytest.raises(IngestRejected, match="limit"):
        factories.ingest(dep, [], [huge])
    assert count_rows(dep, Read) == count_rows(dep, Evidence) == 0


@pytest.mark.parametrize("plate", ["", "AB*", "%", "ABCDEFGHIJKLM"])
def test_lookup_refuses_invalid_plates(dep: Deployment, plate: str) -> None:
    with pytest.raises(InvalidPlate):
        factories.lookup(dep, plate, HOUR_AGO)


def test_bulk_insert_tolerates_rows_stored_concurrently(dep: Deployment) -> None:
    """The race the pre-check cannot see: another sender stored the same rows first."""
    from privplate.store.ingest import _insert_reads, _read_rows

    factories.camera(dep)
    read = factories.read(dep, "ABC123", alternates=["A8C123"])
    factories.ingest(dep, [read])
    rows = _read_rows(read, read.observed_at + timedelta(days=1))
    with dep.db.write() as conn:
        _insert_reads(conn, dep.db, rows)  # COPY conflicts on PostgreSQL, falls back
    assert count_rows(dep, Read) == 2
    [match] = factories.lookup(dep, "ABC123", HOUR_AGO)
    assert match.read_id == read.read_id


def test_the_token_lookup_needs_an_answered_unused_query_on_the_record(dep: Deployment) -> None:
    """Code that skips the query policy cannot use the store's lookup: it takes only the id
    of a recorded query that was answered and not looked up yet, and only in its window."""
    from sqlalchemy import update

    from privplate.errors import StoreError
    from privplate.store import TokenProbe, find_reads
    from privplate.store.server_models import Query
    from privplate.tokens import canonical_plate, plate_token

    factories.camera(dep)
    now = datetime.now(UTC)  # not the module's clock: the suite may have run for minutes since
    read = factories.read(dep, "ABC123", observed_at=now)
    factories.ingest(dep, [read])
    key = dep.keyring.current_key()
    probes = [TokenProbe(key.epoch_id, plate_token(key.key, canonical_plate("ABC123")),
                         key.starts_at, key.ends_at)]  # fmt: skip
    with pytest.raises(StoreError, match="on the record"):
        find_reads(dep.db, uuid.uuid4(), probes)  # no such query
    denied = factories.recorded_query(dep, now - timedelta(hours=1), now + timedelta(minutes=1))
    with dep.db.write() as conn:
        conn.execute(update(Query).where(Query.id == denied).values(outcome="denied"))
    with pytest.raises(StoreError, match="on the record"):
        find_reads(dep.db, denied, probes)
    # The recorded window bounds the lookup: a query for last week finds nothing today.
    old = factories.recorded_query(dep, now - timedelta(days=8), now - timedelta(days=7))
    assert find_reads(dep.db, old, probes) == []
    answered = factories.recorded_query(dep, now - timedelta(hours=1), now + timedelta(minutes=1))
    assert [m.read_id for m in find_reads(dep.db, answered, probes)] == [read.read_id]
    with pytest.raises(StoreError, match="on the record"):
        find_reads(dep.db, answered, probes)  # each recorded query is looked up once
    with dep.db.read() as conn:
        used = conn.execute(
            select(Query.match_count, Query.looked_up_at).where(Query.id == answered)
        ).one()
    assert used.match_count == 1 and used.looked_up_at is not None
