"""The tamper-evident audit log: RFC 6962 Merkle tree, signed checkpoints, verification."""

from privplate.audit.entries import Entry, canonical_json
from privplate.audit.log import AuditLog, StoredEntry
from privplate.audit.public import public_note
from privplate.audit.signing import (
    AuditSigner,
    Checkpoint,
    create_signing_key,
    read_checkpoint,
    read_signing_key,
)
from privplate.audit.verify import VerifyReport, verify_log

__all__ = [
    "AuditLog",
    "AuditSigner",
    "Checkpoint",
    "Entry",
    "StoredEntry",
    "VerifyReport",
    "canonical_json",
    "create_signing_key",
    "public_note",
    "read_checkpoint",
    "read_signing_key",
    "verify_log",
]
