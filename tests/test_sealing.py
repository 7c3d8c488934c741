"""Evidence sealing: vectors, round trips and tamper detection."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privplate.errors import SealingError
from privplate.sealing import (
    ecies,
    generate_keypair,
    group,
    open_sealed,
    open_with_shared_point,
    seal,
)
from tests.conftest import vectors

SEALING = vectors("sealing")["vectors"]


@pytest.mark.parametrize("vec", SEALING, ids=lambda v: f"{len(v['plaintext']) // 2}B")
def test_sealing_vectors(vec: dict[str, str]) -> None:
    x, big_x = bytes.fromhex(vec["secret_x"]), bytes.fromhex(vec["public_X"])
    r = bytes.fromhex(vec["ephemeral_r"])
    eid = uuid.UUID(vec["evidence_id"])
    assert group.base_mul(x) == big_x
    assert group.base_mul(r).hex() == vec["R"]
    assert group.mul(r, big_x).hex() == vec["shared_S"]
    assert group.mul(x, group.base_mul(r)).hex() == vec["shared_S"]
    assert (
        ecies.derive_item_key(bytes.fromhex(vec["shared_S"]), bytes.fromhex(vec["R"]), big_x).hex()
        == vec["item_key"]
    )
    blob = ecies.seal_with(
        bytes.fromhex(vec["plaintext"]),
        big_x,
        evidence_id=eid,
        ephemeral_secret=r,
        nonce=bytes.fromhex(vec["nonce"]),
    )
    assert blob.hex() == vec["sealed"]
    assert ecies.sealed_to(blob) == big_x
    assert open_sealed(bytes.fromhex(vec["sealed"]), x, evidence_id=eid).hex() == vec["plaintext"]
    # Items sealed before the key was named in the blob (PPS1) still open.
    legacy = bytes.fromhex(vec["sealed_v1"])
    assert ecies.sealed_to(legacy) is None
    assert open_sealed(legacy, x, evidence_id=eid).hex() == vec["plaintext"]


def test_an_item_sealed_to_another_key_says_so() -> None:
    _x, big_x = generate_keypair()
    other_x, other_big_x = generate_keypair()
    eid = uuid.uuid4()
    blob = seal(b"crop", big_x, evidence_id=eid)
    with pytest.raises(SealingError, match="another evidence key"):
        open_sealed(blob, other_x, evidence_id=eid)
    with pytest.raises(SealingError, match="another evidence key"):
        ecies.open_with_item_key(blob, bytes(32), other_big_x, evidence_id=eid)


KEYPAIR = generate_keypair()


@settings(max_examples=50)
@given(st.binary(max_size=4096))
def test_seal_open_round_trip(data: bytes) -> None:
    x, big_x = KEYPAIR
    eid = uuid.uuid4()
    blob = seal(data, big_x, evidence_id=eid)
    assert len(data) < 16 or data not in blob
    assert open_sealed(blob, x, evidence_id=eid) == data
    # The threshold path opens with S = x*R only; it must agree.
    parts = ecies.parse_sealed(blob)
    assert (
        open_with_shared_point(blob, group.mul(x, parts.ephemeral), big_x, evidence_id=eid) == data
    )


@settings(max_examples=50)
@given(st.binary(min_size=1, max_size=512), st.data())
def test_any_flipped_byte_fails(data: bytes, draw: st.DataObject) -> None:
    x, big_x = KEYPAIR
    eid = uuid.uuid4()
    blob = bytearray(seal(data, big_x, evidence_id=eid))
    pos = draw.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    blob[pos] ^= 1 << draw.draw(st.integers(min_value=0, max_value=7))
    with pytest.raises(SealingError):
        open_sealed(bytes(blob), x, evidence_id=eid)


def test_wrong_key_and_wrong_evidence_id_fail() -> None:
    x, big_x = KEYPAIR
    other, _ = generate_keypair()
    eid = uuid.uuid4()
    blob = seal(b"image", big_x, evidence_id=eid)
    with pytest.raises(SealingError, match="another evidence key"):
        open_sealed(blob, other, evidence_id=eid)
    legacy = ecies.MAGIC_V1 + blob[4 + 32 :]  # the same item without X in its header
    with pytest.raises(SealingError, match="authentication"):
        open_sealed(legacy, other, evidence_id=eid)
    with pytest.raises(SealingError, match="authentication"):
        open_sealed(blob, x, evidence_id=uuid.uuid4())


@pytest.mark.parametrize("bad", [b"", b"\x00" * 32, b"\x01" + b"\x00" * 31, b"\xff" * 32])
def test_invalid_public_keys_are_refused(bad: bytes) -> None:
    with pytest.raises(SealingError, match="not a valid"):
        seal(b"x", bad, evidence_id=uuid.uuid4())


@pytest.mark.parametrize("blob", [b"", b"PPS1", b"XXXX" + b"\x00" * 100])
def test_malformed_blobs_are_refused(blob: bytes) -> None:
    x, _ = KEYPAIR
    with pytest.raises(SealingError):
        open_sealed(blob, x, evidence_id=uuid.uuid4())
