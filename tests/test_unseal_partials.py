"""Officers' partials cannot be combined from copies of the database (SPEC §7.6).

The attack: an investigator files two unseal requests for one item, officer A approves the
first and officer B the second. A partial D_i = x_i*R depends only on the item and the share, so
two stored in the clear opened the item from a plain copy of the database. Now a second open
request is refused, partials are sealed to their request under a key that is not in the
database, and they are erased when the request ends. Every copy taken along the way (the SQLite
database and WAL files as they lie, or a pg_dump) is searched for the officers' partials and
every pair of candidates found in all of them is combined: nothing opens. The legitimate
two-officer release still works.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlean
from sqlalchemy import text
from sqlalchemy.engine import make_url

from privplate.errors import Conflict, SealingError
from privplate.identity.accounts import get_user
from privplate.identity.roles import Role
from privplate.retention import purge as purge_mod
from privplate.sealing import ecies, group
from privplate.sealing.layout import unpack_evidence
from privplate.store.models import Evidence
from privplate.threshold import Partial, combine_partials
from privplate.unseal.partials import open_partial
from privplate.unseal.workflow import UnsealService, request_context
from tests.api_support import Api, now
from tests.privacy import dump_database
from tests.unseal_support import CROP, FRAME, Unseal, setup_unseal

A, B, C = "compliance-1", "compliance-2", "compliance-3"
JPEG = b"\xff\xd8\xff"


@dataclass
class Copy:
    """What a thief holds after copying the database at one moment."""

    step: str
    raw: bytes  # every byte of the files (SQLite db + WAL), or the pg_dump text
    rows: list[dict[str, Any]] = field(default_factory=list)  # unseal_approvals, as stored


def _sqlite_copy(url: str, dest: Path, step: str) -> Copy:
    """A plain file copy of the database and its WAL while the server runs, opened as the thief
    would (SQLite replays the copied WAL)."""
    db = Path(str(make_url(url).database))
    dest.mkdir()
    raw = b""
    for suffix in ("", "-wal"):
        source = db.with_name(db.name + suffix)
        if source.exists():
            shutil.copyfile(source, dest / ("copy.db" + suffix))
            raw += source.read_bytes()
    conn = sqlean.connect(str(dest / "copy.db"))
    try:
        cur = conn.execute("SELECT * FROM unseal_approvals")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()
    return Copy(step, raw, rows)


def _pg_copy(url: str, step: str) -> Copy:
    raw = dump_database(url)
    rows: list[dict[str, Any]] = []
    names: list[str] | None = None
    for line in raw.decode().splitlines():
        if line.startswith("COPY ") and ".unseal_approvals (" in line:
            names = line.split("(", 1)[1].split(")", 1)[0].replace(" ", "").split(",")
        elif names is not None and line == "\\.":
            names = None
        elif names is not None:
            values: list[Any] = [
                bytes.fromhex(v[3:]) if v.startswith("\\\\x") else v for v in line.split("\t")
            ]
            row = dict(zip(names, values, strict=True))
            row["share_index"] = int(row["share_index"])
            rows.append(row)
    return Copy(step, raw, rows)


def _candidates(copies: list[Copy]) -> set[bytes]:
    """Every 32-byte string in any stored approval that is a group element: what a thief
    would try as a partial, wherever in a value it might sit."""
    found: set[bytes] = set()
    for copy in copies:
        for row in copy.rows:
            for value in row.values():
                if isinstance(value, bytes | bytearray | memoryview):
                    blob = bytes(value)
                    for at in range(len(blob) - 31):
                        window = blob[at : at + 32]
                        with contextlib.suppress(SealingError):
                            found.add(group.check_point(window, "candidate"))
    return found


def _opens(sealed: bytes, public_key: bytes, evidence_id: uuid.UUID, pair: list[Partial]) -> bytes:
    shared = combine_partials(pair, 2)
    return ecies.open_with_shared_point(sealed, shared, public_key, evidence_id=evidence_id)


def _item(api: Api, u: Unseal) -> tuple[bytes, bytes]:
    with api.dep.db.read() as conn:
        sealed = conn.execute(
            sa.select(Evidence.__table__.c.sealed).where(Evidence.__table__.c.id == u.evidence_id)
        ).scalar_one()
        public_key = conn.execute(text("SELECT public_key FROM evidence_keys")).scalar_one()
    return bytes(sealed), bytes(public_key)


def _opened_by_any_pair(
    candidates: set[bytes], sealed: bytes, public_key: bytes, evidence_id: uuid.UUID
) -> int:
    """Try every pair of candidates under every pair of share indices (2 of 3)."""
    opened = 0
    for (p, q), (i, j) in itertools.product(
        itertools.permutations(sorted(candidates), 2), itertools.combinations((1, 2, 3), 2)
    ):
        try:
            _opens(sealed, public_key, evidence_id, [Partial(i, p), Partial(j, q)])
        except SealingError:
            continue
        opened += 1
    return opened


def _released(api: Api) -> int:
    with api.dep.db.read() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM unseal_requests WHERE release_box IS NOT NULL")
            ).scalar_one()
        )


@dataclass
class Attack:
    api: Api
    u: Unseal
    tmp_path: Path
    sealed: bytes
    public_key: bytes
    copies: list[Copy] = field(default_factory=list)
    partials: dict[str, tuple[int, bytes, bytes]] = field(default_factory=dict)  # D_i, proof
    contexts: list[bytes] = field(default_factory=list)

    def take(self, step: str) -> None:
        db = self.api.dep.db
        if db.is_sqlite:
            self.copies.append(
                _sqlite_copy(db.url, self.tmp_path / f"copy-{len(self.copies)}", step)
            )
        else:
            self.copies.append(_pg_copy(db.url, step))

    def file(self) -> dict[str, Any]:
        request = self.u.file()
        self.contexts.append(
            request_context(
                uuid.UUID(str(request["id"])),
                self.u.evidence_id,
                uuid.UUID(str(request["share_set_id"])),
            )
        )
        return request

    def approve(self, officer: str, request: dict[str, Any]) -> None:
        body = self.u.partial(officer, request)
        answer = self.u.approve(officer, request, body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "pending"
        self.partials[officer] = (
            int(str(body["share_index"])),
            bytes.fromhex(str(body["partial"])),
            bytes.fromhex(str(body["proof"])),
        )

    def any_pair_opens(self) -> int:
        return _opened_by_any_pair(
            _candidates(self.copies), self.sealed, self.public_key, self.u.evidence_id
        )


def _run_attack(api: Api, tmp_path: Path) -> Attack:
    """A approves one request, B another for the same item; a copy after every step."""
    u = setup_unseal(api, tmp_path)
    attack = Attack(api, u, tmp_path, *_item(api, u))
    first = attack.file()
    attack.take("filed")
    attack.approve(A, first)
    attack.take("A approved the first request")

    # The second request for the same item is refused, naming the open request (not the plate).
    answer = api.call(
        Role.INVESTIGATOR,
        "POST",
        "/unseal/requests",
        json={
            "evidence_id": str(u.evidence_id),
            "case_number": "SPD-2026-8",
            "justification": "Same vehicle, another case; the image identifies it.",
        },
    )
    assert answer.status_code == 409
    message = answer.json()["error"]["message"]
    assert str(first["id"]) in message and "7ABC123" not in message
    refused = [e.entry.details for e in api.dep.audit.entries(action="unseal.refused") if e.entry]
    assert refused[-1]["subject"] == str(u.evidence_id)
    assert str(first["id"]) in refused[-1]["reason"]
    attack.take("second request refused")

    # The first request goes stale; filing again ends it (A's partial erased) and opens another.
    with api.dep.db.write() as conn:
        conn.execute(
            text("UPDATE unseal_requests SET created_at = :t WHERE status = 'pending'"),
            {"t": now() - timedelta(days=api.services.unseal.settings.request_days, seconds=1)},
        )
    third = attack.file()
    stale = api.call(Role.COMPLIANCE, "GET", f"/unseal/requests/{first['id']}").json()
    assert stale["status"] == "expired"
    attack.take("first request expired, a new one filed")
    attack.approve(B, third)
    attack.take("B approved the new request")
    denied = api.client.post(
        f"/unseal/requests/{third['id']}/deny", json={"why": "No nexus."}, headers=u.auth(C)
    )
    assert denied.status_code == 200
    attack.take("new request denied")
    if api.dep.db.is_sqlite:  # erased rows leave bytes in pages and WAL until the next purge
        assert api.dep.db.scrub_marker.exists()
    purge_mod.purge(api.dep)
    attack.take("after the purge")
    return attack


def test_two_requests_for_one_item_open_nothing_from_any_copy(api: Api, tmp_path: Path) -> None:
    attack = _run_attack(api, tmp_path)
    evidence_id = attack.u.evidence_id
    # Nothing was released, and the partials A and B sent appear in no copy.
    assert _released(api) == 0
    assert {p[0] for p in attack.partials.values()} == {1, 2}
    for copy in attack.copies:
        for officer, (_, value, proof) in attack.partials.items():
            for needle in (value, proof, value.hex().encode(), proof.hex().encode()):
                assert needle not in copy.raw, f"{officer}'s partial is in the copy: {copy.step}"
    # The attack harness works: the two real partials do open the item ...
    pair = [Partial(i, d) for i, d, _ in attack.partials.values()]
    crop, frame = unpack_evidence(_opens(attack.sealed, attack.public_key, evidence_id, pair))
    assert (crop, frame) == (CROP, FRAME) and crop.startswith(JPEG)
    # ... but no pair of anything found in all the copies, taken at any moments, opens it.
    assert sum(len(c.rows) for c in attack.copies) == 3  # A's row twice, B's once: sealed
    assert not {d for _, d, _ in attack.partials.values()} & _candidates(attack.copies)
    assert attack.any_pair_opens() == 0

    # The legitimate release: two officers approve the same request.
    fourth = attack.file()
    attack.approve(A, fourth)
    attack.take("A approved the legitimate request")
    released = attack.u.approve(B, fourth)
    assert released.status_code == 200 and released.json()["status"] == "released"
    attack.take("released")
    assert attack.copies[-1].rows == []  # erased at release
    assert attack.any_pair_opens() == 0
    for part in ("crop", "frame"):
        image = api.call(
            Role.INVESTIGATOR, "GET", f"/unseal/requests/{fourth['id']}/image?part={part}"
        )
        assert image.status_code == 200 and image.content.startswith(JPEG)


def test_what_the_holder_of_the_server_secret_can_combine(api: Api, tmp_path: Path) -> None:
    """SPEC §7.6: with keys/server.key, one copy gives only what that copy's one open request's
    own approvals allow (here one partial: nothing opens); a stored partial opens for no other
    request or share; copies made during two different requests do combine (the stated limit),
    and a copy made after both ended and a purge ran holds neither."""
    attack = _run_attack(api, tmp_path)
    key = api.services.secret.subkey("unseal-partial")
    found: list[set[tuple[int, bytes]]] = []
    for copy in attack.copies:
        opened: set[tuple[int, bytes]] = set()
        for row, ctx in itertools.product(copy.rows, attack.contexts):
            try:
                value = open_partial(key, ctx, row["share_index"], bytes(row["sealed"]))
            except SealingError:
                continue
            opened.add((row["share_index"], value))
        found.append(opened)
    assert [len(f) for f in found] == [0, 1, 1, 0, 1, 0, 0]
    row = attack.copies[1].rows[0]
    with pytest.raises(SealingError):
        open_partial(key, attack.contexts[1], row["share_index"], bytes(row["sealed"]))
    with pytest.raises(SealingError):
        open_partial(key, attack.contexts[0], row["share_index"] % 3 + 1, bytes(row["sealed"]))
    across = [Partial(*next(iter(found[1]))), Partial(*next(iter(found[4])))]
    assert _opens(attack.sealed, attack.public_key, attack.u.evidence_id, across)
    for earlier in (attack.copies[1], attack.copies[4]):
        assert bytes(earlier.rows[0]["sealed"]) not in attack.copies[-1].raw


def test_concurrent_filings_for_one_item_open_one_request(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    with api.dep.db.read() as conn:
        investigator = get_user(conn, "investigator-1")
    go = threading.Barrier(4)
    outcomes: list[object] = []

    def file() -> None:
        go.wait()
        try:
            info = api.services.unseal.request(
                investigator,
                evidence_id=u.evidence_id,
                case_number="SPD-2026-9",
                justification="Hit-and-run on Elm Street; the image identifies the vehicle.",
            )
            outcomes.append(info.id)
        except Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=file) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    filed = [o for o in outcomes if isinstance(o, uuid.UUID)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(filed) == 1 and len(refused) == 3, outcomes
    assert all(str(filed[0]) in str(e) for e in refused)
    with api.dep.db.read() as conn:
        pending = conn.execute(
            text("SELECT count(*) FROM unseal_requests WHERE status = 'pending'")
        ).scalar_one()
    assert pending == 1


def test_the_database_refuses_a_second_open_request(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partial unique index holds even when the check before the insert saw nothing (two
    filings racing on PostgreSQL): the loser gets the same refusal, naming the open request."""
    u = setup_unseal(api, tmp_path)
    first = u.file()
    real = UnsealService._open_request
    calls: list[int] = []

    def blind_once(self: UnsealService, conn: Any, evidence_id: uuid.UUID) -> uuid.UUID | None:
        calls.append(1)
        return None if len(calls) == 1 else real(self, conn, evidence_id)

    monkeypatch.setattr(UnsealService, "_open_request", blind_once)
    answer = api.call(
        Role.INVESTIGATOR,
        "POST",
        "/unseal/requests",
        json={
            "evidence_id": str(u.evidence_id),
            "case_number": "SPD-2026-10",
            "justification": "Hit-and-run on Elm Street; the image identifies the vehicle.",
        },
    )
    assert answer.status_code == 409 and str(first["id"]) in answer.json()["error"]["message"]
    assert len(calls) == 2  # the check was blind; the index refused the insert
    with api.dep.db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM unseal_requests")).scalar_one() == 1


def test_the_upgrade_erases_plaintext_partials_and_keeps_one_open_request(home: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from privplate.deployment import Deployment
    from privplate.store.database import MIGRATIONS_DIR
    from privplate.store.types import UTCDateTime

    with Deployment.open(home) as dep:
        assert not dep.db.scrub_marker.exists()  # a fresh deployment erased nothing
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        item, other = uuid.uuid4(), uuid.uuid4()
        older, newer, alone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        t0 = now() - timedelta(hours=2)
        with dep.db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007_alert_outcomes")
            requests = sa.table(
                "unseal_requests",
                *(sa.column(c) for c in ("requested_by", "case_number", "justification")),
                *(sa.column(c) for c in ("status", "reason")),
                *(sa.column(c, sa.Uuid()) for c in ("id", "evidence_id", "share_set_id")),
                *(sa.column(c, UTCDateTime()) for c in ("created_at", "evidence_observed_at")),
            )
            conn.execute(
                sa.insert(requests),
                [
                    {
                        "id": rid,
                        "evidence_id": ev,
                        "share_set_id": uuid.uuid4(),
                        "requested_by": "investigator-1",
                        "case_number": "SPD-1",
                        "justification": "j",
                        "status": "pending",
                        "reason": "",
                        "created_at": at,
                        "evidence_observed_at": t0,
                    }
                    for rid, ev, at in (
                        (older, item, t0),
                        (newer, item, t0 + timedelta(minutes=5)),
                        (alone, other, t0),
                    )
                ],
            )
            approvals = sa.table(
                "unseal_approvals",
                sa.column("request_id", sa.Uuid()),
                *(sa.column(c) for c in ("share_index", "officer", "partial", "proof")),
                *(sa.column(c, UTCDateTime()) for c in ("created_at", "expires_at")),
            )
            conn.execute(
                sa.insert(approvals),
                [
                    {
                        "request_id": rid,
                        "share_index": i,
                        "officer": f"compliance-{i}",
                        "partial": bytes([i]) * 32,
                        "proof": bytes([i]) * 64,
                        "created_at": t0,
                        "expires_at": t0 + timedelta(days=1),
                    }
                    for rid, i in ((older, 1), (newer, 2))
                ],
            )
            command.upgrade(cfg, "head")
            conn.commit()
        with dep.db.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM unseal_approvals")).scalar_one() == 0
            rows = conn.execute(text("SELECT id, status FROM unseal_requests")).all()
    status: dict[uuid.UUID, str] = {uuid.UUID(str(r.id)): r.status for r in rows}
    assert status == {older: "pending", newer: "expired", alone: "pending"}
    # SQLite: the erased plaintext's bytes are zeroed by the next purge.
    assert dep.db.scrub_marker.exists() or not dep.db.is_sqlite
