"""Witnesses post their cosignatures here (no sign-in: a cosignature authenticates itself,
and only the witness keys in audit.witnesses are accepted; audit/cosigners.py decides)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from privplate.api.deps import Public, ServicesDep
from privplate.audit.cosigners import MAX_BODY_BYTES, accept_cosignature, configured_witnesses
from privplate.audit.public import WELL_KNOWN
from privplate.errors import InvalidRequest

router = APIRouter(tags=["audit"])


class CosignatureOut(BaseModel):
    witness: str
    tree_size: int
    timestamp: int
    #: "new" (audited), "refreshed" (a later time kept) or "unchanged".
    recorded: str


async def _bounded_body(request: Request) -> str:
    # Read no more than a cosigned note can be, whatever the body claims to be.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise InvalidRequest(f"a cosigned checkpoint note is at most {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise InvalidRequest(f"a cosigned checkpoint note is at most {MAX_BODY_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("a cosigned checkpoint note is UTF-8 text") from None


@router.post(
    f"{WELL_KNOWN}/cosignature",
    summary="Add a witness's cosignature (C2SP tlog-cosignature) to a signed checkpoint",
    dependencies=[Public],
    response_model=CosignatureOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/plain": {"schema": {"type": "string", "maxLength": MAX_BODY_BYTES}}},
        }
    },
)
async def post_cosignature(request: Request, services: ServicesDep) -> CosignatureOut:
    body = await _bounded_body(request)
    dep = services.dep
    accepted = await run_in_threadpool(
        accept_cosignature,
        dep.audit,
        configured_witnesses(dep.settings.audit.witnesses),
        body,
    )
    return CosignatureOut(
        witness=accepted.witness,
        tree_size=accepted.tree_size,
        timestamp=accepted.timestamp,
        recorded=accepted.recorded,
    )
