"""Known-answer vectors for audit entries, MACs and checkpoints (crypto/vectors/audit.json)."""

from __future__ import annotations

from datetime import datetime

import pytest

from privplate.audit.entries import Entry, decode_entry, encode_entry, parse_time
from privplate.audit.merkle import MerkleTree, leaf_hash
from privplate.audit.signing import AuditSigner, Checkpoint, checkpoint_body
from privplate.errors import AuditError
from tests.conftest import vectors

AUDIT = vectors("audit")
SIGNER = AuditSigner(bytes.fromhex(str(AUDIT["signing_seed"])))


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
