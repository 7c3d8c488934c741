"""Known-answer vectors for the threshold unseal (crypto/vectors/unseal.json, SPEC §7.6)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from privplate.errors import SealingError
from privplate.sealing import ecies, group
from privplate.threshold import Partial, combine_partials, lagrange_at_zero, verify_partial
from privplate.threshold.dleq import prove_partial
from privplate.threshold.shamir import split_with
from tests.conftest import vectors

CASES: list[dict[str, Any]] = vectors("unseal")["cases"]  # type: ignore[assignment]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['threshold']}-of-{c['officers']}")
def test_unseal_vectors(case: dict[str, Any]) -> None:
    x = bytes.fromhex(case["secret_x"])
    coefficients = [group.scalar_to_int(bytes.fromhex(c)) for c in case["coefficients"]]
    shares = split_with(x, coefficients, shares=case["officers"])
    assert group.base_mul(x).hex() == case["public_X"]
    ephemeral = bytes.fromhex(case["R"])
    assert group.base_mul(bytes.fromhex(case["ephemeral_r"])).hex() == case["R"]
    context = bytes.fromhex(case["context"])
    for share, expected in zip(shares, case["partials"], strict=True):
        assert share.value.hex() == expected["share"]
        assert share.commitment.hex() == expected["commitment"]
        partial, proof = prove_partial(
            share.value, ephemeral, context, nonce=bytes.fromhex(expected["k"])
        )
        assert partial.hex() == expected["partial"]
        assert (proof.challenge.hex(), proof.response.hex()) == (
            expected["proof_c"],
            expected["proof_s"],
        )
        verify_partial(share.commitment, ephemeral, partial, proof, context)
        # The integer check: s = k + c*x_i mod l.
        c, s = (group.scalar_to_int(bytes.fromhex(expected[f])) for f in ("proof_c", "proof_s"))
        k, xi = group.scalar_to_int(bytes.fromhex(expected["k"])), group.scalar_to_int(share.value)
        assert s == (k + c * xi) % group.GROUP_ORDER
    blob = bytes.fromhex(case["sealed"])
    public_key = bytes.fromhex(case["public_X"])
    evidence_id = uuid.UUID(case["evidence_id"])
    for subset in case["subsets"]:
        indices = subset["indices"]
        lambdas = lagrange_at_zero(indices)
        assert {str(i): lambdas[i].hex() for i in indices} == subset["lagrange"]
        partials = [Partial(i, bytes.fromhex(case["partials"][i - 1]["partial"])) for i in indices]
        shared = combine_partials(partials, case["threshold"])
        assert shared.hex() == subset["shared_S"]
        assert shared == group.mul(x, ephemeral)  # S = x*R without ever using x in the combination
        assert ecies.derive_item_key(shared, ephemeral, public_key).hex() == subset["item_key"]
        for sealed in (blob, bytes.fromhex(case["sealed_v1"])):
            opened = ecies.open_with_shared_point(
                sealed, shared, public_key, evidence_id=evidence_id
            )
            assert opened.hex() == case["plaintext"]


def test_stored_partial_vector() -> None:
    """SPEC §7.6, partials at rest: sealed to the request context and share index under
    subkey(unseal-partial); another request, share or key does not open it."""
    from privplate.server_secret import ServerSecret
    from privplate.unseal.partials import associated_data, open_partial, seal_partial

    v: dict[str, Any] = vectors("unseal")["stored_partial"]  # type: ignore[assignment]
    case = CASES[v["case"]]
    partial = case["partials"][v["share_index"] - 1]
    key = ServerSecret(bytes.fromhex(v["server_secret"])).subkey("unseal-partial")
    assert key.hex() == v["subkey"]
    context, index = bytes.fromhex(case["context"]), v["share_index"]
    assert associated_data(context, index).hex() == v["associated_data"]
    proof = bytes.fromhex(partial["proof_c"] + partial["proof_s"])
    assert (bytes.fromhex(partial["partial"]) + proof).hex() == v["plaintext"]
    sealed = seal_partial(
        key,
        context,
        index,
        bytes.fromhex(partial["partial"]),
        proof,
        nonce=bytes.fromhex(v["nonce"]),
    )
    assert sealed.hex() == v["sealed"]
    assert open_partial(key, context, index, sealed).hex() == partial["partial"]
    other_request = context[:28] + bytes(16) + context[44:]  # another request id Q
    for args in (
        (key, other_request, index),
        (key, context, index + 1),
        (bytes(32), context, index),
    ):
        with pytest.raises(SealingError):
            open_partial(*args, sealed)
