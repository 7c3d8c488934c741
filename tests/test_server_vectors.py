"""Known-answer vectors for the server's schemes (crypto/vectors/server.json, SPEC §10)."""

from __future__ import annotations

import base64
from typing import Any

import nacl.signing

from privplate.alerts import sign_body, verify_body
from privplate.devices.protocol import DeviceKey, parse_headers, signed_message, verify_signature
from privplate.hotlists.box import PlateBox
from privplate.server_secret import ServerSecret
from tests.conftest import vectors

V: dict[str, Any] = vectors("server")


def test_device_request_message_and_signature() -> None:
    d = V["device_request"]
    key = DeviceKey("edge-1", bytes.fromhex(d["seed"]))
    assert key.public_key.hex() == d["public_key"]
    message = signed_message(
        d["method"],
        d["path"],
        d["timestamp"],
        bytes.fromhex(d["nonce"]),
        bytes.fromhex(d["body_hex"]),
    )
    assert message.hex() == d["message_hex"]
    signature = nacl.signing.SigningKey(key.seed).sign(message).signature
    assert signature.hex() == d["signature"]
    headers = {
        "X-Privplate-Device": "edge-1",
        "X-Privplate-Timestamp": str(d["timestamp"]),
        "X-Privplate-Nonce": d["nonce"],
        "X-Privplate-Signature": base64.b64encode(signature).decode(),
    }
    verify_signature(
        key.public_key, parse_headers(headers), d["method"], d["path"], bytes.fromhex(d["body_hex"])
    )


def test_server_subkeys_and_hotlist_mac() -> None:
    s = V["server_subkeys"]
    secret = ServerSecret(bytes.fromhex(s["secret"]))
    for purpose, expected in s["subkeys"].items():
        assert secret.subkey(purpose).hex() == expected
    assert PlateBox(secret).mac(V["hotlist_mac"]["canonical"]).hex() == V["hotlist_mac"]["mac"]


def test_webhook_signature() -> None:
    w = V["webhook"]
    body = bytes.fromhex(w["body_hex"])
    secret = bytes.fromhex(w["secret"])
    assert sign_body(secret, w["timestamp"], body) == w["signature"]
    assert verify_body(secret, str(w["timestamp"]), body, w["signature"])
    assert not verify_body(secret, str(w["timestamp"] + 1), body, w["signature"])
