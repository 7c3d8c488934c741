"""The audit log's public face for witnesses (no sign-in, by design): the latest signed
checkpoint as a C2SP signed note, the verifier key, and the proofs between signed sizes.

Plain text, as the C2SP witness tools read it. The answers come from privplate.audit.public,
which the CLI uses too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from privplate.api.deps import Public, ServicesDep
from privplate.audit.public import (
    WELL_KNOWN,
    consistency_hashes,
    hash_lines,
    inclusion_hashes,
    public_key,
    public_note,
)
from privplate.audit.signing import MAX_TREE_SIZE

router = APIRouter(tags=["audit"])
_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}}
}
#: The checkpoint changes when the server signs (every audit.checkpoint_interval_minutes): a
#: minute's staleness costs a witness nothing, and spares the database a burst of polls.
_CHECKPOINT_CACHE = "public, max-age=60"
#: The key changes only with a new deployment key (which breaks every checkpoint anyway).
_KEY_CACHE = "public, max-age=86400"
#: A proof between signed sizes is the same bytes for ever.
_PROOF_CACHE = "public, max-age=86400, immutable"

Size = Annotated[int, Query(ge=1, le=MAX_TREE_SIZE, description="A signed checkpoint's size.")]


def _text(body: str, cache: str) -> PlainTextResponse:
    # PlainTextResponse adds "; charset=utf-8".
    return PlainTextResponse(body, headers={"Cache-Control": cache})


@router.get(
    f"{WELL_KNOWN}/checkpoint",
    summary="The latest signed checkpoint (C2SP tlog-checkpoint signed note)",
    dependencies=[Public],
    response_model=None,
    responses=_TEXT,
)
def checkpoint(services: ServicesDep) -> PlainTextResponse:
    return _text(public_note(services.dep.audit), _CHECKPOINT_CACHE)


@router.get(
    f"{WELL_KNOWN}/audit-key",
    summary="The audit key as a note verifier key (name+hash+base64)",
    dependencies=[Public],
    response_model=None,
    responses=_TEXT,
)
def audit_key(services: ServicesDep) -> PlainTextResponse:
    return _text(public_key(services.dep.audit) + "\n", _KEY_CACHE)


@router.get(
    f"{WELL_KNOWN}/consistency",
    summary="Consistency proof between two tree sizes (one base64 hash per line)",
    dependencies=[Public],
    response_model=None,
    responses=_TEXT,
)
def consistency(
    services: ServicesDep,
    old: Annotated[int, Query(ge=1, le=MAX_TREE_SIZE, description="The older size.")],
    new: Size,
) -> PlainTextResponse:
    return _text(hash_lines(consistency_hashes(services.dep.audit, old, new)), _PROOF_CACHE)


@router.get(
    f"{WELL_KNOWN}/inclusion",
    summary="Inclusion proof of one entry in a signed tree (one base64 hash per line)",
    dependencies=[Public],
    response_model=None,
    responses=_TEXT,
)
def inclusion(
    services: ServicesDep,
    index: Annotated[int, Query(ge=0, le=MAX_TREE_SIZE, description="The entry's number.")],
    size: Size,
) -> PlainTextResponse:
    return _text(hash_lines(inclusion_hashes(services.dep.audit, index, size)), _PROOF_CACHE)
