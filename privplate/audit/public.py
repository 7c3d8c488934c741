"""What the deployment publishes for witnesses, with no sign-in: the latest signed checkpoint
note, the verifier key, and the proofs a witness checks against signed checkpoints.

One function per answer, called by the API's /.well-known/privplate/ routes and the CLI alike,
so the note a witness fetches and the file `privplate audit checkpoint --out` writes are the
same bytes.

Proofs are answered only up to sizes the deployment signed a checkpoint of. A proof to an
unsigned size leads to a root nobody can check, and answering one would let anyone probe the
log's size between checkpoints (an inclusion proof for size n + 1 exists once entry n does),
which would time each privileged action to the request instead of to the signing interval.
It also makes every answer a function of signed data that never changes, so caches may keep it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from privplate.audit.cosigners import cosignature_lines
from privplate.audit.log import AuditLog
from privplate.audit.signing import MAX_TREE_SIZE
from privplate.errors import AuditError, InvalidRequest, NotFound

__all__ = [
    "WELL_KNOWN",
    "consistency_hashes",
    "hash_lines",
    "inclusion_hashes",
    "public_key",
    "public_note",
]

#: Where the server publishes these (README and crypto/SPEC.md §8.4.10 name the same paths).
WELL_KNOWN = "/.well-known/privplate"


def public_note(audit: AuditLog, size: int | None = None) -> str:
    """The signed checkpoint note of ``size`` entries (default: the latest), as published:
    with the cosignatures accepted for it (audit/cosigners.py)."""
    found = audit.note_checkpoint(size)
    if found is None:
        raise NotFound(
            "no checkpoint has been signed yet (the server signs one at start and every "
            "audit.checkpoint_interval_minutes; `privplate audit checkpoint` signs one now)"
            if size is None
            else f"no signed checkpoint note of {size} entries"
        )
    # The witnesses' cosignatures of that checkpoint follow the log's own signature line, so
    # one fetch gives a client both (c2sp.org/tlog-cosignature).
    return found.to_note() + "".join(line.render() for line in cosignature_lines(audit, found))


def public_key(audit: AuditLog) -> str:
    """The verifier key (name+hash+base64) witnesses and Go's note.NewVerifier take."""
    return audit.signer.note_verifier.vkey()


def _signed_size(audit: AuditLog, size: int, what: str) -> None:
    # One message whether the size is beyond the log or between checkpoints: the answer must
    # not tell the log's current size (see the module docstring).
    if not 0 < size <= MAX_TREE_SIZE or not audit.has_checkpoint(size):
        raise InvalidRequest(f"{what} {size} is not the size of a signed checkpoint")
    if size > audit.tree().size:
        raise AuditError(
            f"the audit log holds fewer entries than its checkpoint of {size}: the log was "
            "truncated (run `privplate audit verify`)"
        )


def consistency_hashes(audit: AuditLog, old: int, new: int) -> list[bytes]:
    """RFC 6962 PROOF(old, D[new]) (RFC 9162 order), ``new`` a signed size, 0 < old <= new."""
    if not 0 < old <= new:
        raise InvalidRequest("a consistency proof needs 0 < old <= new")
    _signed_size(audit, new, "new")
    return audit.consistency_proof(old, new)


def inclusion_hashes(audit: AuditLog, index: int, size: int) -> list[bytes]:
    """RFC 6962 PATH(index, D[size]), leaf to root, ``size`` a signed size, index < size."""
    if not 0 <= index < size:
        raise InvalidRequest("an inclusion proof needs 0 <= index < size")
    _signed_size(audit, size, "size")
    return audit.inclusion_proof(index, size)


def hash_lines(hashes: Sequence[bytes]) -> str:
    """One standard base64 hash per line, each ending in a newline (empty for no hashes)."""
    return "".join(base64.b64encode(h).decode() + "\n" for h in hashes)
