"""The server's signature on its receipt for a device's batch (``POST /ingest``).

An edge drops a batch from its spool once the server answers that it holds it. Its proof of the
server's identity (the signed epoch answer, privplate/devices/epoch_answer.py) is fresh only
for the request it answered: on a plain-HTTP link, whoever answers a later upload could make
the edge drop a batch that was never stored. So the receipt is signed with the same audit key,
the one the edge pinned, over the request it answers and the batch it names::

    "privplate/v1/batch-receipt" || 0x00 || canonical JSON of
        {device_id, nonce (hex, the request's X-Privplate-Nonce), batch_id (UUID, lower case
         with hyphens), digest (hex SHA-256 of the request body), inserted, duplicates, expired}

(keys sorted, no white space, ASCII, as epoch answers). The edge fills in the batch id and the
digest from the batch it sent, so a receipt for another batch, or for other bytes under the
same id, does not verify; nor does one copied from an earlier request (its nonce). A retry
answered from the stored receipt is signed afresh over its own request's nonce.

A refusal of the batch as it is (a camera the device may not report for, a batch id re-used
with other bytes, a read the store refuses) is signed too, under its own tag, over the request,
the bytes, the HTTP status, the error type and its message::

    "privplate/v1/batch-refusal" || 0x00 || canonical JSON of
        {device_id, nonce, digest, status, error, message}

An edge sets a refused batch aside only when that signature verifies; any other refusal might
be anybody's, so the batch stays in the spool. See crypto/SPEC.md §10.4.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from privplate.audit.note import NoteVerifier
from privplate.devices.epoch_answer import signed_message, verify_signed

DOMAIN = b"privplate/v1/batch-receipt\x00"
#: The server's refusal of a batch as it is (SPEC §10.4): an edge sets a batch aside (out of the
#: way of the rest, kept for an operator) only on a refusal signed for its request and bytes.
REFUSAL_DOMAIN = b"privplate/v1/batch-refusal\x00"


def _count(value: Any) -> int:
    # bool is an int to Python, and int() would take "3" or 3.9: a count is a JSON integer.
    if type(value) is not int:
        raise TypeError("a count is an integer")
    return value


def receipt_message(
    *,
    device_id: str,
    nonce: bytes,
    batch_id: uuid.UUID,
    digest: bytes,
    inserted: int,
    duplicates: int,
    expired: int,
) -> bytes:
    """The exact bytes the server signs (see the module)."""
    claims = {
        "device_id": device_id,
        "nonce": nonce.hex(),
        "batch_id": str(batch_id),
        "digest": digest.hex(),
        "inserted": int(inserted),
        "duplicates": int(duplicates),
        "expired": int(expired),
    }
    return signed_message(DOMAIN, claims)


def verify_receipt(
    verifier: NoteVerifier,
    answer: Mapping[str, Any],
    *,
    device_id: str,
    nonce: bytes,
    batch_id: uuid.UUID,
    digest: bytes,
) -> bool:
    """True if ``answer`` carries the pinned key's signature over this request, this batch (as
    the edge sent it) and the counts the answer states."""
    return verify_signed(
        verifier,
        answer,
        lambda: receipt_message(
            device_id=device_id,
            nonce=nonce,
            batch_id=batch_id,
            digest=digest,
            inserted=_count(answer["inserted"]),
            duplicates=_count(answer["duplicates"]),
            expired=_count(answer["expired"]),
        ),
    )


def refusal_message(
    *, device_id: str, nonce: bytes, digest: bytes, status: int, error: str, message: str
) -> bytes:
    """The exact bytes the server signs when it refuses a batch: the request (nonce), the
    bytes refused (digest; no batch id, which an unreadable body would not give) and the
    whole answer (HTTP status, error type and message: the message reaches the edge's log
    and the set-aside batch's reason, so nobody on the path may rewrite it)."""
    claims = {
        "device_id": device_id,
        "nonce": nonce.hex(),
        "digest": digest.hex(),
        "status": int(status),
        "error": error,
        "message": message,
    }
    return signed_message(REFUSAL_DOMAIN, claims)


def verify_refusal(
    verifier: NoteVerifier,
    answer: Mapping[str, Any],
    *,
    device_id: str,
    nonce: bytes,
    digest: bytes,
    status: int,
) -> bool:
    """True if the error ``answer`` (``{"error": {"type", "message"}, "signature"}``) carries
    the pinned key's signature over this request, these bytes, this status, its type and its
    message."""

    def message() -> bytes:
        error, text = answer["error"]["type"], answer["error"]["message"]
        if not isinstance(error, str) or not isinstance(text, str):
            raise TypeError("an error type and message are text")
        return refusal_message(
            device_id=device_id, nonce=nonce, digest=digest, status=status, error=error,
            message=text,
        )  # fmt: skip

    return verify_signed(verifier, answer, message)
