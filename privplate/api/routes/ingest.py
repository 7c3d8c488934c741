"""Signed batches of token-only reads and sealed evidence from edge devices."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from privplate.api.deps import DeviceCaller, ServicesDep
from privplate.api.errors import ErrorAnswer, answer, refusal
from privplate.devices.batch_receipt import receipt_message, refusal_message
from privplate.devices.batches import IngestBatch
from privplate.devices.protocol import parse_headers
from privplate.devices.receipts import BatchReceipt, record_receipt, stored_batch
from privplate.devices.registry import check_cameras
from privplate.errors import Conflict, DeviceNotAllowed, IngestRejected, PrivplateError
from privplate.store.ingest import IngestResult

router = APIRouter(tags=["ingest"])

#: Refusals the batch itself causes, signed (privplate/devices/batch_receipt.py): sending the
#: same bytes again cannot help, so the edge sets the batch aside.
BATCH_REFUSALS = (IngestRejected, DeviceNotAllowed)


class SignedRefusal(ErrorAnswer):
    signature: str | None = Field(
        default=None,
        description="On a refusal of the batch as it is: the audit key's Ed25519 signature "
        "(base64) over this refusal, the request's nonce and the SHA-256 of the body "
        "(privplate/devices/batch_receipt.py); an edge sets the batch aside only if it "
        "verifies. Absent on other errors (a body that does not parse, a bad device signature).",
    )


def _signed(text: str) -> dict[str, Any]:
    return {"model": SignedRefusal, "description": text}


class IngestOut(BaseModel):
    batch_id: uuid.UUID
    inserted: int
    duplicates: int
    expired: int = Field(description="Reads already past retention on arrival (not kept).")
    replayed: bool = Field(description="True when this batch was stored by an earlier send.")
    alerts: list[int] = Field(description="Ids of the alerts this batch raised.")
    signature: str = Field(
        description="The audit key's Ed25519 signature (base64) over this receipt and the "
        "request's nonce (privplate/devices/batch_receipt.py); an edge drops the batch from its "
        "spool only if it verifies."
    )


@router.post(
    "/ingest",
    summary="Store a signed batch of reads from an edge device",
    response_model=IngestOut,
    responses={
        400: _signed("The batch is refused as it is (the message names the problem)"),
        403: _signed("A camera this device may not report for (device_not_allowed)"),
        409: _signed("This batch_id was stored with other bytes"),
    },
)
def ingest(
    batch: IngestBatch, device: DeviceCaller, services: ServicesDep, request: Request
) -> IngestOut | JSONResponse:
    """All-or-nothing per batch and idempotent: re-sending the same body with the same
    ``batch_id`` stores nothing twice and answers ``replayed: true``. Either way the receipt
    is signed over this request's nonce; so is a refusal of the batch as it is (the
    store's 400, 403 ``device_not_allowed``, 409), in the error answer's ``signature``."""
    digest: bytes = request.state.body_digest
    nonce = parse_headers(dict(request.headers)).nonce  # checked by the device guard
    prior = stored_batch(services.dep.db, device.id, batch.batch_id)
    if prior is not None:
        if prior.digest != digest:
            _refused(services, device.actor, batch.batch_id, "batch id re-used with other content")
            conflict = Conflict(
                "this batch_id was already stored with different content (tampered or "
                "re-serialized); a retry must send the same bytes"
            )
            return _refusal(services, device.id, nonce, digest, conflict)
        again = BatchReceipt(digest, 0, prior.inserted + prior.duplicates, prior.expired)
        return _answer(services, device.id, nonce, batch.batch_id, again, replayed=True)
    try:
        check_cameras(
            device, {r.camera_id for r in batch.reads} | {e.camera_id for e in batch.evidence}
        )
        reads, evidence = batch.to_store()

        def record_batch(conn: Connection, result: IngestResult) -> None:
            record_receipt(
                conn, device_id=device.id, batch_id=batch.batch_id, digest=digest, result=result
            )

        result, alerts = services.ingest(reads, evidence, actor=device.actor, then=record_batch)
    except BATCH_REFUSALS as exc:
        _refused(services, device.actor, batch.batch_id, str(exc))
        return _refusal(services, device.id, nonce, digest, exc)
    # Anything else (a key, seal or audit failure, the database away) is the server's trouble,
    # answered unsigned: the edge keeps the batch and sends it again, where a signed refusal
    # would have it set aside and, in time, dropped.
    stored = BatchReceipt(digest, result.inserted, result.duplicates, result.expired)
    return _answer(
        services, device.id, nonce, batch.batch_id, stored, alerts=[a.id for a in alerts]
    )


def _answer(
    services: ServicesDep,
    device_id: str,
    nonce: bytes,
    batch_id: uuid.UUID,
    receipt: BatchReceipt,
    *,
    replayed: bool = False,
    alerts: list[int] | None = None,
) -> IngestOut:
    """The receipt, signed over the request's nonce: an edge drops the batch from its spool
    only on it (privplate/devices/batch_receipt.py)."""
    message = receipt_message(
        device_id=device_id,
        nonce=nonce,
        batch_id=batch_id,
        digest=receipt.digest,
        inserted=receipt.inserted,
        duplicates=receipt.duplicates,
        expired=receipt.expired,
    )
    return IngestOut(
        batch_id=batch_id,
        inserted=receipt.inserted,
        duplicates=receipt.duplicates,
        expired=receipt.expired,
        replayed=replayed,
        alerts=alerts or [],
        signature=base64.b64encode(services.dep.audit.signer.sign(message)).decode(),
    )


def _refusal(
    services: ServicesDep,
    device_id: str,
    nonce: bytes,
    digest: bytes,
    exc: PrivplateError,
) -> JSONResponse:
    """The error answer for ``exc``, signed over the request and the bytes refused: an edge
    sets the batch aside only on it (privplate/devices/batch_receipt.py)."""
    status, kind = refusal(exc)
    text = str(exc)
    message = refusal_message(
        device_id=device_id, nonce=nonce, digest=digest, status=status, error=kind, message=text
    )
    signature = base64.b64encode(services.dep.audit.signer.sign(message)).decode()
    return answer(status, kind, text, extra={"signature": signature})


def _refused(services: ServicesDep, actor: str, batch_id: uuid.UUID, reason: str) -> None:
    services.dep.audit.record(
        actor=actor,
        action="ingest.refused",
        details={"batch": str(batch_id), "reason": reason},
    )
