"""Inclusion proofs of single audit entries (privplate.audit.proofs), on SQLite and PostgreSQL:
bound to the latest signed checkpoint, checkable from their JSON alone, and refused when the
entry, the path, the root or the signature was tampered with."""

from __future__ import annotations

import json
from dataclasses import replace

import nacl.signing
import pytest
from sqlalchemy import text

from privplate.audit.log import AuditLog
from privplate.audit.proofs import InclusionProof, prove_inclusion
from privplate.deployment import Deployment
from privplate.errors import AuditError, NotFound


def _cameras(dep: Deployment, n: int) -> None:
    start = dep.audit.size()
    for i in range(start, start + n):
        dep.add_camera(f"incl-{i}")


def test_a_proof_against_the_signed_checkpoint_verifies_from_its_file(dep: Deployment) -> None:
    _cameras(dep, 9)
    signed = dep.audit.checkpoint()
    _cameras(dep, 3)  # entries after the checkpoint: the proof stays bound to the signed head
    proof = prove_inclusion(dep.audit, 4)
    assert proof.signed and proof.checkpoint == signed
    assert proof.tree_size == signed.tree_size and proof.root == signed.root
    assert proof.path and json.loads(proof.entry or b"")["seq"] == 4
    again = InclusionProof.from_json(proof.to_json())
    assert again == proof
    again.verify(dep.audit.signer.public_key)


def test_an_entry_newer_than_the_checkpoint_is_proven_against_the_current_head(
    dep: Deployment,
) -> None:
    _cameras(dep, 4)
    dep.audit.checkpoint()
    _cameras(dep, 2)
    last = dep.audit.size() - 1
    proof = prove_inclusion(dep.audit, last)
    assert not proof.signed
    assert proof.tree_size == dep.audit.size() and proof.root == dep.audit.tree().root()
    proof.verify(dep.audit.signer.public_key)
    # Once a later checkpoint covers the entry, its proof is bound to that one.
    later = dep.audit.checkpoint()
    assert prove_inclusion(dep.audit, last).checkpoint == later


def test_tampered_proofs_are_refused(dep: Deployment) -> None:
    _cameras(dep, 7)
    dep.audit.checkpoint()
    proof = prove_inclusion(dep.audit, 3)
    key = dep.audit.signer.public_key
    assert proof.entry is not None
    edited = proof.entry.replace(b"incl-", b"INCL-")
    with pytest.raises(AuditError, match="does not hash to its leaf"):
        replace(proof, entry=edited).verify(key)
    with pytest.raises(AuditError, match="does not lead to the given root"):
        replace(proof, path=(bytes(32), *proof.path[1:])).verify(key)
    with pytest.raises(AuditError, match="not the one its checkpoint signed"):
        replace(proof, root=bytes(32)).verify(key)
    other = bytes(nacl.signing.SigningKey.generate().verify_key)
    with pytest.raises(AuditError, match="different key"):
        proof.verify(other)


def test_a_rewritten_log_no_longer_proves_against_its_checkpoint(dep: Deployment) -> None:
    _cameras(dep, 6)
    dep.audit.checkpoint()
    # Someone with database access swaps a leaf hash; a fresh log object re-reads the tree.
    with dep.db.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_entries SET leaf_hash = :h WHERE seq = 2"), {"h": b"\1" * 32}
        )
    fresh = AuditLog(dep.db, dep.audit.signer)
    with pytest.raises(AuditError):
        prove_inclusion(fresh, 5).verify(dep.audit.signer.public_key)


def test_a_missing_entry_is_not_found(dep: Deployment) -> None:
    with pytest.raises(NotFound):
        prove_inclusion(dep.audit, dep.audit.size() + 10)


def test_a_malformed_file_is_named() -> None:
    with pytest.raises(AuditError, match="malformed"):
        InclusionProof.from_json('{"format": "something else"}')
