"""Known-answer vectors for audit entries, MACs and checkpoints (crypto/vectors/audit.json)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from privplate.audit.entries import Entry, decode_entry, encode_entry, parse_time
from privplate.audit.merkle import MerkleTree, leaf_hash
from privplate.audit.note import NoteVerifier, key_hash, sign_note
from privplate.audit.signing import (
    FORMAT_NOTE,
    FORMAT_V1,
    AuditSigner,
    Checkpoint,
    checkpoint_body,
    note_text,
    read_checkpoint,
    sign_checkpoint,
)
from privplate.errors import AuditError
from tests.conftest import vectors

AUDIT = vectors("audit")
SIGNER = AuditSigner(bytes.fromhex(str(AUDIT["signing_seed"])))
NOTES = vectors("checkpoint_note")
#: A witness's checkpoint file as `privplate audit checkpoint --out` wrote it before notes
#: (made by that code from audit.json's checkpoint): it must keep verifying.
V1_FILE = Path(__file__).resolve().parent.parent / "crypto" / "vectors" / "checkpoint_v1_file.json"


def test_keys_derive_from_the_seed() -> None:
    assert SIGNER.public_key.hex() == AUDIT["public_key"]
    assert SIGNER.origin == AUDIT["origin"]
    assert SIGNER.entry_mac(0, b"\x00" * 32) != SIGNER.entry_mac(1, b"\x00" * 32)


@pytest.mark.parametrize("vec", AUDIT["entries"], ids=lambda v: v["entry"]["action"])  # type: ignore[arg-type]
def test_entry_vectors(vec: dict[str, object]) -> None:
    raw = vec["entry"]
    assert isinstance(raw, dict)
    entry = Entry(raw["seq"], parse_time(raw["time"]), raw["actor"], raw["action"], raw["details"])
    data = encode_entry(entry)
    assert data.decode() == vec["canonical"]
    assert decode_entry(data) == entry
    assert leaf_hash(data).hex() == vec["leaf_hash"]
    assert SIGNER.entry_mac(entry.seq, leaf_hash(data)).hex() == vec["mac"]


def test_checkpoint_vector() -> None:
    cp = AUDIT["checkpoint"]
    assert isinstance(cp, dict)
    tree = MerkleTree(bytes.fromhex(v["leaf_hash"]) for v in AUDIT["entries"])  # type: ignore[union-attr, index]
    assert tree.root().hex() == cp["root"]
    time = datetime.fromisoformat(cp["time"])
    body = checkpoint_body(SIGNER.origin, cp["tree_size"], tree.root(), time)
    assert body.decode() == cp["body"]
    assert SIGNER.sign(body).hex() == cp["signature"]  # Ed25519 is deterministic
    signed = Checkpoint(
        SIGNER.origin,
        cp["tree_size"],
        tree.root(),
        time,
        SIGNER.public_key,
        bytes.fromhex(cp["signature"]),
    )
    signed.verify_signature(SIGNER.public_key)
    with pytest.raises(AuditError, match="invalid signature"):
        Checkpoint(
            SIGNER.origin,
            cp["tree_size"] + 1,
            tree.root(),
            time,
            SIGNER.public_key,
            signed.signature,
        ).verify_signature()


@pytest.mark.parametrize(
    "mutation",
    [
        lambda s: s.replace('"v":1', '"v":2'),
        lambda s: s.replace(",", ", ", 1),
        lambda s: s.replace('"seq":1', '"seq":01'),
        lambda s: s[:-1] + ',"extra":1}',
    ],
)
def test_non_canonical_entries_are_refused(mutation: object) -> None:
    canonical = str(AUDIT["entries"][1]["canonical"])  # type: ignore[index]
    with pytest.raises(AuditError):
        decode_entry(mutation(canonical).encode())  # type: ignore[operator]


# -- checkpoints as C2SP signed notes (crypto/vectors/checkpoint_note.json) -------------------


def test_note_key_vector() -> None:
    assert NOTES["signing_seed"] == AUDIT["signing_seed"]
    assert NOTES["public_key"] == SIGNER.public_key.hex()
    verifier = SIGNER.note_verifier
    assert verifier.name == NOTES["key_name"] == SIGNER.origin  # key name = origin
    assert f"{verifier.key_hash:08x}" == NOTES["key_hash"]
    assert verifier.key_hash == key_hash(SIGNER.origin, 0x01, SIGNER.public_key)
    assert verifier.vkey() == NOTES["vkey"]
    parsed = NoteVerifier.parse(str(NOTES["vkey"]))
    assert parsed.public_key == SIGNER.public_key and parsed.name == SIGNER.origin


@pytest.mark.parametrize("vec", NOTES["checkpoints"], ids=lambda v: f"size-{v['tree_size']}")  # type: ignore[arg-type]
def test_note_vectors(vec: dict[str, Any]) -> None:
    root = bytes.fromhex(vec["root"])
    assert note_text(SIGNER.origin, vec["tree_size"], root) == vec["text"]
    # The signing time is not signed: any time gives the same note.
    for when in (datetime(2026, 12, 1, tzinfo=UTC), datetime(1999, 1, 1, tzinfo=UTC)):
        signed = sign_checkpoint(SIGNER, vec["tree_size"], root, when)
        assert signed.format == FORMAT_NOTE
        assert signed.signature.hex() == vec["signature"]
        assert signed.to_note() == vec["note"]
        signed.verify_signature(SIGNER.public_key)
    opened = Checkpoint.from_note(vec["note"], SIGNER.note_verifier)
    assert (opened.tree_size, opened.root, opened.time) == (vec["tree_size"], root, None)
    assert opened.signature.hex() == vec["signature"]
    opened.verify_signature(SIGNER.public_key)
    assert read_checkpoint(vec["note"], SIGNER.public_key) == opened
    # The JSON wrapper of a note round-trips, with its time beside the signed text.
    wrapped = Checkpoint.from_json(signed.to_json())
    assert wrapped == signed and wrapped.to_note() == vec["note"]


def test_the_old_checkpoint_file_still_verifies() -> None:
    text = V1_FILE.read_text(encoding="utf-8")
    cp = AUDIT["checkpoint"]
    assert isinstance(cp, dict)
    old = read_checkpoint(text, SIGNER.public_key)
    assert old.format == FORMAT_V1 and old.body().decode() == cp["body"]
    assert old.signature.hex() == cp["signature"]
    old.verify_signature(SIGNER.public_key)
    assert old.to_json() + "\n" == text  # today's code writes such a file byte for byte
    with pytest.raises(AuditError, match="cannot be written as a signed note"):
        old.to_note()


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda n: n.replace("\n3\n", "\n4\n", 1), "does not verify"),
        (lambda n: n.replace("gQ//", "gQ/+", 1), "does not verify"),
        (lambda n: n.replace("\n3\n", "\n03\n", 1), "does not verify"),
        (lambda n: n.replace("privplate/688c", "privplate/688d", 1), "does not verify"),
        (lambda n: n.replace("privplate/688c", "privplate/688d"), "no signature"),
        (lambda n: n.replace("\n\n", "\nextension\n\n", 1), "does not verify"),
    ],
)
def test_edited_notes_are_refused(edit: Any, reason: str) -> None:
    note = NOTES["checkpoints"][0]["note"]  # type: ignore[index]
    with pytest.raises(AuditError, match=reason):
        Checkpoint.from_note(edit(note), SIGNER.note_verifier)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{origin}\n3\n{root}\nextension\n", "exactly three lines"),
        ("{origin}\n03\n{root}\n", "not a decimal"),
        ("{origin}\n+3\n{root}\n", "not a decimal"),
        ("{origin}\n\u0663\n{root}\n", "not a decimal"),  # an Arabic-Indic three
        ("{origin}\n9223372036854775808\n{root}\n", "out of range"),
        ("{origin}\n3\n{root_short}\n", "32-byte hash"),
        ("{origin}\n3\n{root_hex}\n", "32-byte hash"),
        ("{origin}\n3\nnot*base64\n", "not base64"),
        ("{origin}\n3\n{root_unpadded}\n", "not base64"),
        ("privplate/0000000000000000\n3\n{root}\n", "origin does not match"),
    ],
)
def test_note_texts_privplate_never_signs_are_refused(text: str, reason: str) -> None:
    """Well signed (by the deployment's key) but not a checkpoint privplate writes."""
    root = bytes.fromhex(str(AUDIT["checkpoint"]["root"]))  # type: ignore[index]
    filled = text.format(
        origin=SIGNER.origin,
        root=base64.b64encode(root).decode(),
        root_short=base64.b64encode(root[:31]).decode(),
        root_hex=root.hex(),
        root_unpadded=base64.b64encode(root).decode().rstrip("="),
    )
    signed = sign_note(filled, SIGNER.note_signer)
    with pytest.raises(AuditError, match=reason):
        Checkpoint.from_note(signed, SIGNER.note_verifier)


def test_a_note_by_another_key_is_refused() -> None:
    other = AuditSigner(bytes(32))
    note = sign_checkpoint(other, 3, bytes(32), datetime.now(UTC)).to_note()
    with pytest.raises(AuditError, match="no signature on the note is by a key given"):
        read_checkpoint(note, SIGNER.public_key)
