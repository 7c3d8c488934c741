"""Privacy invariant: after ingest and lookups, no plate text exists in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from privplate.deployment import Deployment
from privplate.errors import InvalidPlate
from tests import factories
from tests.privacy import dump_database, hits_in_bytes

PLATES = ["7ABC123", "XYZ-9876", "HB 4711", "KA1234", "ZZTOP99", "ERR0R1", "8BOSS12"]


def test_database_and_wal_hold_no_plate_text(dep: Deployment) -> None:
    factories.camera(dep)
    now = datetime.now(UTC)
    reads = [
        factories.read(dep, p, observed_at=now - timedelta(hours=h), alternates=[p + "8"])
        for h in range(0, 48, 6)
        for p in PLATES
    ]
    factories.ingest(dep, reads)
    for plate in PLATES:
        assert factories.lookup(dep, plate, now - timedelta(days=3))
    dump = dump_database(dep.settings.resolved_database_url)
    assert len(dump) > 10_000, "the dump should contain the stored reads"
    assert hits_in_bytes(dump, PLATES) == []
    assert hits_in_bytes(dump, [p + "8" for p in PLATES]) == []


def test_the_scan_would_catch_a_leak() -> None:
    # Guard against a scanner that can never fail.
    assert hits_in_bytes(b"...XYZ9876...", PLATES) == ["XYZ9876"]
    assert hits_in_bytes(b"HB471 1", ["HB4711"]) == []
    assert hits_in_bytes("HB4711".encode("utf-16-le"), ["HB4711"]) != []
    # pg_dump's hex for binary columns: a plate stored as bytes is caught, while random bytes
    # whose hex happens to spell an all-hex plate in lower case are not a leak.
    assert hits_in_bytes(b"\\\\x" + b"2DA044".hex().encode() + b"\t", ["2DA044"]) != []
    assert hits_in_bytes(b"\\\\xff2da044ee\t", ["2DA044"]) == []


def test_errors_never_contain_the_plate(dep: Deployment) -> None:
    for bad in ["ABC*123", "WAYTOOLONGPLATE", "ÄBC123", "ABC%"]:
        try:
            factories.lookup(dep, bad, datetime.now(UTC) - timedelta(days=1))
        except InvalidPlate as exc:
            core = "".join(c for c in bad if c.isascii() and c.isalnum())
            assert core not in str(exc)
        else:  # pragma: no cover - the lookup must refuse
            raise AssertionError("invalid plate accepted")
