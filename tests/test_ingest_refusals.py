"""Which refusals of POST /ingest are signed: those of the batch as it is, never the server's
own failures (an edge sets a batch aside on a signed refusal, and in time drops it)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from typing import Any

import pytest

from privplate.devices.batch_receipt import verify_refusal
from privplate.errors import AuditError, KeyringError, SealingError
from tests import factories
from tests.api_support import CAMERA, Api


def post(api: Api, body: bytes) -> tuple[int, dict[str, Any], bytes]:
    """Status, answer and the request's nonce."""
    headers = api.device.sign_request("POST", "/ingest", body)
    answer = api.client.post(
        "/ingest", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    return answer.status_code, answer.json(), bytes.fromhex(headers["X-Privplate-Nonce"])


def signed_for(api: Api, body: bytes, status: int, answer: dict[str, Any], nonce: bytes) -> bool:
    return verify_refusal(
        api.dep.audit.signer.note_verifier,
        answer,
        device_id=api.device.device_id,
        nonce=nonce,
        digest=hashlib.sha256(body).digest(),
        status=status,
    )


def test_refusals_of_the_batch_are_signed_for_its_request_and_bytes(api: Api) -> None:
    api.dep.add_camera("gate-9")  # known, but not this device's
    read = factories.read(api.dep, "1ABC234", camera_id=CAMERA)
    late = factories.read(api.dep, "1ABC235", camera_id=CAMERA)
    stale = replace(late, epoch_id=999)  # an epoch this deployment never made
    foreign = factories.read(api.dep, "1ABC236", camera_id="gate-9")
    batch_id = uuid.uuid4()
    first = api.batch_body([read], batch_id)
    assert api.signed("POST", "/ingest", first).status_code == 200
    cases = [
        (api.batch_body([late], batch_id), 409, "conflict"),  # the id again, other bytes
        (api.batch_body([stale]), 400, "ingest_rejected"),
        (api.batch_body([foreign]), 403, "device_not_allowed"),
    ]
    for body, status, kind in cases:
        got, answer, nonce = post(api, body)
        assert (got, answer["error"]["type"]) == (status, kind)
        assert signed_for(api, body, got, answer, nonce)
        assert not signed_for(api, body, got, answer, bytes(16))  # another request's
        assert not signed_for(api, first, got, answer, nonce)  # other bytes


@pytest.mark.parametrize("failure", [KeyringError, SealingError, AuditError])
def test_the_servers_own_failures_are_not_signed(
    api: Api, monkeypatch: pytest.MonkeyPatch, failure: type[Exception]
) -> None:
    """A key, seal or audit failure while storing is the server's trouble, not the batch's: it
    is answered unsigned, so the edge keeps the batch and sends it again."""

    def fails(*_args: Any) -> None:
        raise failure("the server could not store this batch")

    monkeypatch.setattr(api.services.hotlist_tokens, "match", fails)
    body = api.batch_body([factories.read(api.dep, "1ABC234", camera_id=CAMERA)])
    status, answer, nonce = post(api, body)
    assert status >= 400 and "signature" not in answer
    assert not signed_for(api, body, status, answer, nonce)
