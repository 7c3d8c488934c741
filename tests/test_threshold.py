"""Shamir over the Ed25519 scalar field, partial decryptions with Chaum-Pedersen proofs, and
their combination: any T of N open an item, T-1 do not, forged or misdirected partials fail."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privplate.ceremony.reconstruct import reconstruct_secret
from privplate.errors import SealingError
from privplate.sealing import ecies, group
from privplate.threshold import (
    Partial,
    combine_partials,
    lagrange_at_zero,
    prove_partial,
    split,
    verify_partial,
)
from privplate.threshold.dleq import Proof

ROOT = Path(__file__).resolve().parent.parent


def _item(public_key: bytes) -> tuple[uuid.UUID, bytes, bytes]:
    evidence_id = uuid.uuid4()
    blob = ecies.seal(b"PPEV" + b"\0\0\0\1" + b"x" + b"frame", public_key, evidence_id=evidence_id)
    return evidence_id, blob, ecies.parse_sealed(blob).ephemeral


@settings(max_examples=40, deadline=None)
@given(
    secret=st.integers(min_value=1, max_value=group.GROUP_ORDER - 1),
    n=st.integers(min_value=2, max_value=7),
    data=st.data(),
)
def test_any_threshold_subset_rebuilds_the_secret_and_fewer_do_not(
    secret: int, n: int, data: st.DataObject
) -> None:
    t = data.draw(st.integers(min_value=2, max_value=n))
    x = group.scalar_from_int(secret)
    shares = split(x, shares=n, threshold=t)
    subset = data.draw(st.permutations(shares)).__getitem__(slice(0, t))
    assert reconstruct_secret(subset, t) == x
    fewer = subset[: t - 1]
    if len(fewer) >= 1:
        lambdas = lagrange_at_zero([s.index for s in fewer])
        guess = (
            sum(group.scalar_to_int(lambdas[s.index]) * group.scalar_to_int(s.value) for s in fewer)
            % group.GROUP_ORDER
        )
        assert guess != secret


def test_split_refuses_bad_parameters() -> None:
    x = group.random_scalar()
    for shares, threshold in [(3, 1), (2, 3), (300, 2)]:
        with pytest.raises(SealingError):
            split(x, shares=shares, threshold=threshold)


@pytest.mark.parametrize(("n", "t"), [(3, 2), (5, 3)])
def test_any_t_of_n_partials_open_an_item_and_t_minus_1_do_not(n: int, t: int) -> None:
    x, public_key = ecies.generate_keypair()
    shares = split(x, shares=n, threshold=t)
    evidence_id, blob, ephemeral = _item(public_key)
    context = b"request-1"
    partials = {}
    for share in shares:
        value, proof = prove_partial(share.value, ephemeral, context)
        verify_partial(share.commitment, ephemeral, value, proof, context)
        partials[share.index] = Partial(share.index, value)
    for subset in itertools.combinations(partials.values(), t):
        shared = combine_partials(list(subset), t)
        opened = ecies.open_with_shared_point(blob, shared, public_key, evidence_id=evidence_id)
        assert opened.endswith(b"frame")
    # T-1 partials, combined as if they were enough: the derived key fails authentication.
    few = list(partials.values())[: t - 1]
    with pytest.raises(SealingError, match="needed"):
        combine_partials(few, t)
    lambdas = lagrange_at_zero([p.index for p in few])
    wrong: bytes | None = None
    for p in few:
        term = group.mul(lambdas[p.index], p.value)
        wrong = term if wrong is None else group.add(wrong, term)
    assert wrong is not None
    with pytest.raises(SealingError, match="failed authentication"):
        ecies.open_with_shared_point(blob, wrong, public_key, evidence_id=evidence_id)


def test_forged_misdirected_and_foreign_partials_fail_the_proof() -> None:
    x, public_key = ecies.generate_keypair()
    shares = split(x, shares=3, threshold=2)
    _, _, ephemeral = _item(public_key)
    value, proof = prove_partial(shares[0].value, ephemeral, b"request-1")
    # Forged: a random point with the honest proof, or a tampered proof.
    with pytest.raises(SealingError):
        verify_partial(
            shares[0].commitment,
            ephemeral,
            group.base_mul(group.random_scalar()),
            proof,
            b"request-1",
        )
    bad = Proof(proof.challenge, group.scalar_from_int(group.scalar_to_int(proof.response) + 1))
    with pytest.raises(SealingError):
        verify_partial(shares[0].commitment, ephemeral, value, bad, b"request-1")
    # Made for another request.
    with pytest.raises(SealingError):
        verify_partial(shares[0].commitment, ephemeral, value, proof, b"request-2")
    # From a share outside this ceremony (another dealing of another key).
    other = split(group.random_scalar(), shares=3, threshold=2)
    value2, proof2 = prove_partial(other[0].value, ephemeral, b"request-1")
    with pytest.raises(SealingError):
        verify_partial(shares[0].commitment, ephemeral, value2, proof2, b"request-1")
    # Duplicate shares cannot stand in for two officers.
    with pytest.raises(SealingError, match="distinct"):
        combine_partials([Partial(1, value), Partial(1, value)], 2)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_only_the_ceremony_imports_the_secret_reconstruction() -> None:
    users = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "privplate").rglob("*.py")
        if any(m.startswith("privplate.ceremony.reconstruct") for m in _imports(p))
    )
    assert users == ["privplate/ceremony/ceremony.py"]
    for folder in ("api", "unseal", "threshold", "alerts", "hotlists", "policy"):
        for path in (ROOT / "privplate" / folder).rglob("*.py"):
            imported = _imports(path)
            assert not any(m.startswith("privplate.ceremony") for m in imported), path
            assert not any(m.startswith("privplate.vision") for m in imported), path


def test_the_running_server_never_loads_the_reconstruction_or_vision() -> None:
    forbidden = (
        "privplate.ceremony.reconstruct",
        "privplate.ceremony.ceremony",
        "privplate.vision",
    )
    code = (
        "import sys, privplate.api.app, privplate.services, privplate.cli.main;"
        f"print(','.join(m for m in sys.modules if m.startswith({forbidden!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
