"""Inclusion proofs for single audit entries, bound to a signed checkpoint when one covers them.

An auditor (or anyone handed the file) checks a proof with nothing but this module and the
deployment's audit public key: the entry's canonical JSON hashes to the leaf, the RFC 6962 path
leads from the leaf to the root, and the root is the one a checkpoint signed for that tree size.
An entry newer than the latest checkpoint is proven against the current tree head instead,
which nobody has signed yet: the proof says so, and holds once a later checkpoint covers it.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

from sqlalchemy import select

from privplate.audit.log import AuditLog
from privplate.audit.merkle import leaf_hash, verify_inclusion
from privplate.audit.signing import Checkpoint
from privplate.errors import AuditError, NotFound
from privplate.store.models import AuditEntry

PROOF_FORMAT = "privplate-audit-inclusion-proof"


@dataclass(frozen=True)
class InclusionProof:
    seq: int
    #: The entry's canonical JSON as hashed; None once retention pruned its content (the leaf
    #: hash stays, so the proof still shows that *an* entry #seq is in the log).
    entry: bytes | None
    leaf_hash: bytes
    tree_size: int
    root: bytes
    path: tuple[bytes, ...]
    #: The signed tree head of ``tree_size`` entries, or None for an unsigned current head.
    checkpoint: Checkpoint | None

    def verify(self, expected_public_key: bytes | None = None) -> None:
        """Raise AuditError unless the entry, the path, the root and (if any) the checkpoint's
        signature all agree."""
        if self.entry is not None and not hmac.compare_digest(
            leaf_hash(self.entry), self.leaf_hash
        ):
            raise AuditError(f"entry #{self.seq}: its content does not hash to its leaf")
        if self.checkpoint is not None:
            if self.checkpoint.tree_size != self.tree_size or not hmac.compare_digest(
                self.checkpoint.root, self.root
            ):
                raise AuditError("the proof's tree head is not the one its checkpoint signed")
            self.checkpoint.verify_signature(expected_public_key)
        verify_inclusion(self.leaf_hash, self.seq, self.tree_size, self.path, self.root)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": PROOF_FORMAT,
                "version": 1,
                "seq": self.seq,
                "entry": None if self.entry is None else self.entry.decode("ascii"),
                "leaf_hash": self.leaf_hash.hex(),
                "tree_size": self.tree_size,
                "root": self.root.hex(),
                "path": [h.hex() for h in self.path],
                "checkpoint": None
                if self.checkpoint is None
                else json.loads(self.checkpoint.to_json()),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> InclusionProof:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != PROOF_FORMAT:
                raise ValueError("not a privplate audit inclusion proof")
            if data.get("version") != 1:
                raise ValueError("unsupported version")
            seq, size = data["seq"], data["tree_size"]
            if type(seq) is not int or type(size) is not int:
                raise ValueError("seq and tree_size must be integers")
            cp = data.get("checkpoint")
            return cls(
                seq=seq,
                entry=None if data["entry"] is None else str(data["entry"]).encode("ascii"),
                leaf_hash=bytes.fromhex(data["leaf_hash"]),
                tree_size=size,
                root=bytes.fromhex(data["root"]),
                path=tuple(bytes.fromhex(h) for h in data["path"]),
                checkpoint=None if cp is None else Checkpoint.from_json(json.dumps(cp)),
            )
        except (ValueError, KeyError, TypeError, UnicodeError) as exc:
            raise AuditError(f"inclusion proof file is malformed ({exc})") from None

    @property
    def signed(self) -> bool:
        return self.checkpoint is not None


def latest_checkpoint(audit: AuditLog) -> Checkpoint | None:
    stored = audit.checkpoints()
    return stored[-1] if stored else None


def prove_inclusion(audit: AuditLog, seq: int) -> InclusionProof:
    """The proof that entry ``seq`` is in the log: against the latest signed checkpoint if it
    covers the entry, else against the current (unsigned) tree head."""
    with audit.db.read() as conn:
        row = conn.execute(
            select(AuditEntry.entry, AuditEntry.leaf_hash).where(AuditEntry.seq == seq)
        ).first()
    if row is None:
        raise NotFound(f"audit entry #{seq} does not exist")
    tree = audit.tree()
    checkpoint = latest_checkpoint(audit)
    if checkpoint is not None and (seq >= checkpoint.tree_size or checkpoint.tree_size > tree.size):
        checkpoint = None
    size = tree.size if checkpoint is None else checkpoint.tree_size
    return InclusionProof(
        seq=seq,
        entry=None if row.entry is None else bytes(row.entry),
        leaf_hash=bytes(row.leaf_hash),
        tree_size=size,
        # The root the proof leads to is recomputed from the leaves, never copied from the
        # checkpoint: if the log was rewritten since, verify() says so.
        root=tree.root(size),
        path=tuple(tree.inclusion_proof(seq, size)),
        checkpoint=checkpoint,
    )
