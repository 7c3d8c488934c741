"""Go's own verifier checks privplate's checkpoints: tests/go/checkpointverify, built against
Debian's golang-go and golang-golang-x-mod-dev in GOPATH mode (no module download, no
network), opens the public checkpoint note with note.Open and checks inclusion and consistency
proofs fetched from the public endpoints with tlog.CheckRecord and tlog.CheckTree.

Missing Go fails under CI (CI=true; .ci/run installs it) and skips elsewhere, with the reason.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from privplate.audit.log import AuditLog
from privplate.audit.merkle import leaf_hash
from privplate.audit.note import NoteSigner, sign_note
from privplate.audit.public import consistency_hashes, hash_lines, public_note
from privplate.audit.signing import AuditSigner
from privplate.store.models import AuditEntry
from tests.api_support import Api
from tests.conftest import vectors

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "go" / "checkpointverify"
GOCODE = Path("/usr/share/gocode")
SUMDB = GOCODE / "src" / "golang.org" / "x" / "mod" / "sumdb"
BASE = "/.well-known/privplate"


def _missing() -> str | None:
    if shutil.which("go") is None:
        return "no `go` (apt install golang-go golang-golang-x-mod-dev)"
    if not (SUMDB / "note" / "note.go").exists() or not (SUMDB / "tlog" / "tlog.go").exists():
        return f"no {SUMDB} (apt install golang-golang-x-mod-dev)"
    return None


@pytest.fixture(scope="module")
def checkpointverify(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs Go to check checkpoints with Go's verifier: {missing}")
        pytest.skip(missing)
    work = tmp_path_factory.mktemp("go")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        # GOPATH mode against Debian's packaged sources: nothing is fetched.
        "GOPATH": f"{work / 'gopath'}:{GOCODE}",
        "GO111MODULE": "off",
        "GOFLAGS": "-mod=mod",
        "GOCACHE": str(work / "cache"),
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    binary = work / "checkpointverify"
    built = subprocess.run(
        ["go", "build", "-o", str(binary), "."],
        cwd=SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    return binary


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Verifier:
    binary: Path
    folder: Path

    def file(self, name: str, content: str | bytes) -> str:
        path = self.folder / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", newline="\n")
        else:
            path.write_bytes(content)
        return str(path)

    def run(self, vkey: str, checkpoint: str, **files: str | bytes | int) -> Run:
        args = [
            str(self.binary),
            "-vkey",
            vkey.strip(),
            "-checkpoint",
            self.file("new", checkpoint),
        ]
        for flag, value in files.items():
            given = str(value) if flag == "index" else self.file(flag, value)  # type: ignore[arg-type]
            args += [f"-{flag}", given]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def go(checkpointverify: Path, tmp_path: Path) -> Verifier:
    return Verifier(checkpointverify, tmp_path)


def test_go_opens_the_vector_notes(go: Verifier) -> None:
    notes = vectors("checkpoint_note")
    for vec in notes["checkpoints"]:  # type: ignore[attr-defined]
        done = go.run(str(notes["vkey"]), vec["note"])
        root = base64.b64encode(bytes.fromhex(vec["root"])).decode()
        assert done.returncode == 0, done.stderr
        assert f"size {vec['tree_size']} root {root}" in done.stdout


@dataclass
class Published:
    vkey: str
    old_note: str
    new_note: str
    old_size: int
    new_size: int
    index: int
    entry: bytes
    leaf: bytes
    inclusion: str
    consistency: str


def _publish(api: Api) -> Published:
    """Two checkpoints of a real deployment's log, and the proofs, as a witness fetches them."""
    audit = api.dep.audit
    first = audit.checkpoint()
    old_note = api.client.get(f"{BASE}/checkpoint").text
    for i in range(7):
        api.dep.add_camera(f"go-{i}")
    second = audit.checkpoint()
    assert second.tree_size == first.tree_size + 7
    new_note = api.client.get(f"{BASE}/checkpoint").text
    index = first.tree_size + 3  # an entry the old checkpoint did not cover
    with api.dep.db.read() as conn:
        entry, leaf = conn.execute(
            sa.select(AuditEntry.entry, AuditEntry.leaf_hash).where(AuditEntry.seq == index)
        ).one()
    inclusion = api.client.get(f"{BASE}/inclusion?index={index}&size={second.tree_size}")
    consistency = api.client.get(f"{BASE}/consistency?old={first.tree_size}&new={second.tree_size}")
    assert inclusion.status_code == consistency.status_code == 200
    assert entry is not None  # nothing was pruned
    return Published(
        vkey=api.client.get(f"{BASE}/audit-key").text,
        old_note=old_note,
        new_note=new_note,
        old_size=first.tree_size,
        new_size=second.tree_size,
        index=index,
        entry=bytes(entry),
        leaf=bytes(leaf),
        inclusion=inclusion.text,
        consistency=consistency.text,
    )


def _all(p: Published, **changes: str | bytes | int) -> dict[str, str | bytes | int]:
    files: dict[str, str | bytes | int] = {
        "entry": p.entry,
        "index": p.index,
        "inclusion": p.inclusion,
        "old": p.old_note,
        "consistency": p.consistency,
    }
    files.update(changes)
    return files


def test_go_verifies_a_deployments_checkpoints_and_proofs(api: Api, go: Verifier) -> None:
    p = _publish(api)
    done = go.run(p.vkey, p.new_note, **_all(p))
    assert done.returncode == 0, done.stderr
    # tlog.RecordHash over the entry's bytes is privplate's stored leaf hash.
    assert f"leaf {p.leaf.hex()}\n" in done.stdout
    assert f"entry {p.index} is included" in done.stdout
    assert f"consistent from {p.old_size} to {p.new_size}" in done.stdout
    # Entry 0, and the last entry, too (the shortest and the right-edge paths).
    for index in (0, p.new_size - 1):
        with api.dep.db.read() as conn:
            entry = conn.execute(
                sa.select(AuditEntry.entry).where(AuditEntry.seq == index)
            ).scalar_one()
        assert entry is not None
        proof = api.client.get(f"{BASE}/inclusion?index={index}&size={p.new_size}").text
        done = go.run(p.vkey, p.new_note, entry=bytes(entry), index=index, inclusion=proof)
        assert done.returncode == 0, done.stderr


def _flip(proof: str, line: int = 0) -> str:
    hashes = proof.splitlines()
    raw = bytearray(base64.b64decode(hashes[line]))
    raw[0] ^= 1
    hashes[line] = base64.b64encode(bytes(raw)).decode()
    return "\n".join(hashes) + "\n"


def test_go_rejects_what_it_must(api: Api, go: Verifier) -> None:
    p = _publish(api)
    origin, size, root, *_ = p.new_note.split("\n")
    old_root = p.old_note.split("\n")[2]
    other_root = base64.b64encode(bytes(32)).decode()
    stranger = AuditSigner.generate()
    text = p.new_note[: p.new_note.index("\n\n") + 1]
    # The deployment's key name, another key: Go finds no key it knows.
    impostor = sign_note(text, NoteSigner(origin, bytes(range(32))))
    bad_sig = "invalid signature"
    no_key = "no verifiable signatures"
    included = f"in the tree of {p.new_size}: invalid transparency proof"
    consistent = f"consistency from {p.old_size} to {p.new_size}"
    cases: list[tuple[str, str, str, dict[str, str | bytes | int], str]] = [
        ("tampered root", p.vkey, p.new_note.replace(root, other_root, 1), {}, bad_sig),
        ("tampered size", p.vkey, p.new_note.replace(f"\n{size}\n", "\n9\n", 1), {}, bad_sig),
        ("wrong key", stranger.note_verifier.vkey(), p.new_note, {}, no_key),
        ("impostor under our name", p.vkey, impostor, {}, no_key),
        (
            "wrong inclusion proof",
            p.vkey,
            p.new_note,
            _all(p, inclusion=_flip(p.inclusion)),
            included,
        ),
        (
            "short inclusion proof",
            p.vkey,
            p.new_note,
            _all(p, inclusion="".join(p.inclusion.splitlines(keepends=True)[:-1])),
            included,
        ),
        ("wrong index", p.vkey, p.new_note, _all(p, index=p.index + 1), included),
        (
            "edited entry",
            p.vkey,
            p.new_note,
            _all(p, entry=p.entry.replace(b'"seq":', b'"seq": ', 1)),
            included,
        ),
        (
            "wrong consistency proof",
            p.vkey,
            p.new_note,
            _all(p, consistency=_flip(p.consistency, -1)),
            consistent,
        ),
        (
            "old and new swapped",
            p.vkey,
            p.old_note,
            {"old": p.new_note, "consistency": p.consistency},
            f"consistency from {p.new_size} to {p.old_size}",
        ),
        (
            "tampered old root",
            p.vkey,
            p.new_note,
            _all(p, old=p.old_note.replace(old_root, other_root, 1)),
            bad_sig,
        ),
    ]
    for what, vkey, note, files, reason in cases:
        done = go.run(vkey, note, **files)
        assert done.returncode == 1, f"{what}: Go accepted it\n{done.stdout}"
        assert done.stderr.startswith("checkpointverify: ") and reason in done.stderr, (
            what,
            done.stderr,
        )


def test_go_catches_a_rewritten_log(api: Api, go: Verifier) -> None:
    """Someone with the database and the signing key (the server) rewrites an entry the old
    checkpoint covers and signs a new checkpoint: the log's own proof no longer connects."""
    p = _publish(api)
    dep = api.dep
    forged = p.entry.replace(b"go-3", b"go-X")
    assert forged != p.entry
    leaf = leaf_hash(forged)
    for i in range(2):
        dep.add_camera(f"after-{i}")
    with dep.db.write() as conn:
        conn.execute(
            sa.update(AuditEntry)
            .where(AuditEntry.seq == 2)  # inside the old checkpoint
            .values(entry=forged, leaf_hash=leaf, mac=dep.audit.signer.entry_mac(2, leaf))
        )
    rewritten = AuditLog(dep.db, dep.audit.signer)  # reads the rewritten leaves afresh
    third = rewritten.checkpoint()
    proof = hash_lines(consistency_hashes(rewritten, p.old_size, third.tree_size))
    done = go.run(p.vkey, public_note(rewritten), old=p.old_note, consistency=proof)
    assert done.returncode == 1 and "consistency from" in done.stderr, done.stdout
    # The honest log's proof between the two earlier checkpoints still checks.
    done = go.run(p.vkey, p.new_note, old=p.old_note, consistency=p.consistency)
    assert done.returncode == 0, done.stderr
