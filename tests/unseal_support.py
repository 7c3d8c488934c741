"""A deployment with a held key ceremony (3 officers, 2 needed) and one sealed evidence item."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from privplate.ceremony.ceremony import hold_ceremony
from privplate.ceremony.sharefile import ShareFile, read_share_file
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.sealing import seal
from privplate.sealing.layout import pack_evidence
from privplate.store import EvidenceIn
from privplate.threshold.dleq import prove_partial
from privplate.unseal.workflow import request_context
from tests import factories
from tests.api_support import CAMERA, Api, now

OFFICERS = ("compliance-1", "compliance-2", "compliance-3")
PASSPHRASE = "officer passphrase {}"


def _jpeg(width: int, height: int, seed: int) -> bytes:
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return bytes(encoded.tobytes())


CROP = _jpeg(160, 48, 1)
FRAME = _jpeg(640, 360, 2)


@dataclass
class Unseal:
    api: Api
    keys: dict[str, str]  # officer name -> bearer key
    shares: dict[str, ShareFile]
    evidence_id: uuid.UUID

    def auth(self, officer: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[officer]}"}

    def file(self, **overrides: object) -> dict[str, object]:
        body = {
            "evidence_id": str(self.evidence_id),
            "case_number": "SPD-2026-7",
            "justification": "Hit-and-run on Elm Street; the image identifies the vehicle.",
            **overrides,
        }
        answer = self.api.call(Role.INVESTIGATOR, "POST", "/unseal/requests", json=body)
        assert answer.status_code == 201, answer.text
        result: dict[str, object] = answer.json()
        return result

    def partial(
        self, officer: str, request: dict[str, object], *, share_of: str | None = None
    ) -> dict[str, object]:
        share_file = self.shares[share_of or officer]
        share = share_file.open(PASSPHRASE.format(share_of or officer))
        context = request_context(
            uuid.UUID(str(request["id"])),
            uuid.UUID(str(request["evidence_id"])),
            uuid.UUID(str(request["share_set_id"])),
        )
        value, proof = prove_partial(share.value, bytes.fromhex(str(request["ephemeral"])), context)
        return {"share_index": share.index, "partial": value.hex(), "proof": proof.to_bytes().hex()}

    def approve(
        self, officer: str, request: dict[str, object], body: dict[str, object] | None = None
    ):  # type: ignore[no-untyped-def]
        return self.api.client.post(
            f"/unseal/requests/{request['id']}/approvals",
            json=body or self.partial(officer, request),
            headers=self.auth(officer),
        )


def setup_unseal(api: Api, tmp_path: Path) -> Unseal:
    dep = api.dep
    keys = {"compliance-1": api.keys[Role.COMPLIANCE]}
    for name in OFFICERS[1:]:
        accounts.create_user(
            db=dep.db, audit=dep.audit, actor="test", name=name, role=Role.COMPLIANCE, password=None
        )
        keys[name] = accounts.create_api_key(db=dep.db, audit=dep.audit, actor="test", name=name)[1]
    result = hold_ceremony(
        dep,
        officers=[(n, PASSPHRASE.format(n)) for n in OFFICERS],
        threshold=2,
        out_dir=tmp_path / "shares",
        strength="interactive",
    )
    shares = {name: read_share_file(path) for name, path in result.files.items()}
    evidence_id = uuid.uuid4()
    observed = now()
    sealed = seal(pack_evidence(CROP, FRAME), result.public_key, evidence_id=evidence_id)
    read = factories.read(
        dep, "7ABC123", camera_id=CAMERA, observed_at=observed, evidence_id=evidence_id
    )
    factories.ingest(dep, [read], [EvidenceIn(evidence_id, CAMERA, observed, sealed)])
    return Unseal(api, keys, shares, evidence_id)
