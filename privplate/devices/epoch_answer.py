"""The server's signature on the epoch key it hands a device (``GET /device/epoch``).

An edge tokenizes plates with whatever epoch key it is given, and plates are a small space:
whoever chose that key can invert the edge's tokens by trying every plate. So the answer is
signed with the server's audit key, the key the edge pinned at enrolment (``server_key``, the
checkpoints' signer), over the answer and the device request it answers::

    "privplate/v1/device-epoch" || 0x00 || canonical JSON of
        {device_id, nonce (hex, the request's X-Privplate-Nonce), epoch_id, starts_at,
         ends_at (UTC, ISO 8601 with microseconds), sealed_key (base64), fold_confusables,
         confusables, evidence_public_key (hex or null)}

(keys sorted, no white space, ASCII; :func:`signed_message`, which the batch receipts of
privplate/devices/batch_receipt.py use too). The nonce is the device's own fresh one: a valid
signature proves that the server answering *now* holds the pinned key, not that someone once
copied a signed answer. A signed answer kept in the spool is checked again (same nonce) when
it is used offline. The NUL after the domain keeps these messages apart from signed notes
(checkpoints, cosignatures), whose text has no control characters. See crypto/SPEC.md §10.4.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from privplate.audit.note import NoteVerifier

DOMAIN = b"privplate/v1/device-epoch\x00"


def signed_message(domain: bytes, claims: Mapping[str, Any]) -> bytes:
    """``domain`` (ending in NUL) then the canonical JSON of ``claims``: what the server signs
    for a device."""
    canonical = json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return domain + canonical.encode("ascii")


def verify_signed(
    verifier: NoteVerifier, answer: Mapping[str, Any], message: Callable[[], bytes]
) -> bool:
    """True if ``answer["signature"]`` (base64) is the pinned key's over ``message()``; False
    also when the answer lacks a field ``message`` reads, or has one of the wrong type."""
    try:
        signed = message()
        signature = base64.b64decode(str(answer["signature"]), validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return False
    return verifier.verify(signed, signature)


def _instant(value: datetime | str) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError("epoch times carry a time zone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def epoch_message(
    *,
    device_id: str,
    nonce: bytes,
    epoch_id: int,
    starts_at: datetime | str,
    ends_at: datetime | str,
    sealed_key: bytes,
    fold_confusables: bool,
    confusables: Mapping[str, str],
    evidence_public_key: str | None,
) -> bytes:
    """The exact bytes the server signs (see the module)."""
    claims = {
        "device_id": device_id,
        "nonce": nonce.hex(),
        "epoch_id": int(epoch_id),
        "starts_at": _instant(starts_at),
        "ends_at": _instant(ends_at),
        "sealed_key": base64.b64encode(sealed_key).decode("ascii"),
        "fold_confusables": bool(fold_confusables),
        "confusables": dict(confusables),
        "evidence_public_key": evidence_public_key or None,
    }
    return signed_message(DOMAIN, claims)


def answer_message(answer: Mapping[str, Any], *, device_id: str, nonce: bytes) -> bytes:
    """:func:`epoch_message` of an answer as the edge received it (JSON values).
    ValueError (or KeyError, TypeError) if it is not an epoch answer."""
    return epoch_message(
        device_id=device_id,
        nonce=nonce,
        epoch_id=int(answer["epoch_id"]),
        starts_at=str(answer["starts_at"]),
        ends_at=str(answer["ends_at"]),
        sealed_key=base64.b64decode(str(answer["sealed_key"]), validate=True),
        fold_confusables=bool(answer.get("fold_confusables")),
        confusables=dict(answer.get("confusables") or {}),
        evidence_public_key=answer.get("evidence_public_key"),
    )


def verify_answer(
    verifier: NoteVerifier, answer: Mapping[str, Any], *, device_id: str, nonce: bytes
) -> bool:
    """True if ``answer`` carries the pinned key's signature over itself and this request."""
    return verify_signed(
        verifier, answer, lambda: answer_message(answer, device_id=device_id, nonce=nonce)
    )
