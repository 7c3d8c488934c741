"""The unseal workflow over the API: each refusal is refused or ends the request, is audited,
and releases nothing; two distinct officers release the item to its requester only."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, text

from privplate.identity.roles import Role
from privplate.store.models import Evidence
from privplate.unseal.watermark import jpeg_comments
from tests.api_support import Api, now
from tests.unseal_support import CROP, FRAME, setup_unseal

OTHER = "compliance-3"


def _refusals(api: Api) -> list[str]:
    return [
        str(e.entry.details["reason"])
        for e in api.dep.audit.entries(action="unseal.refused")
        if e.entry is not None
    ]


def _released(api: Api) -> int:
    with api.dep.db.read() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM unseal_requests WHERE release_box IS NOT NULL")
            ).scalar_one()
        )


def _image(api: Api, request: dict[str, Any], part: str = "crop") -> Any:
    return api.call(Role.INVESTIGATOR, "GET", f"/unseal/requests/{request['id']}/image?part={part}")


def test_two_officers_release_to_the_requester_only(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    request = u.file()
    assert request["status"] == "pending" and request["threshold"] == 2
    queue = api.call(Role.COMPLIANCE, "GET", "/unseal/requests?status=pending").json()
    assert [r["id"] for r in queue] == [request["id"]]
    first = u.approve("compliance-1", request)
    assert first.status_code == 200 and first.json()["status"] == "pending"
    assert _image(api, request).status_code == 403
    second = u.approve("compliance-3", request)
    assert second.status_code == 200 and second.json()["status"] == "released"
    with api.dep.db.read() as conn:  # T stored partials would rebuild S: none remain
        assert conn.execute(text("SELECT count(*) FROM unseal_approvals")).scalar_one() == 0
    crop = _image(api, request)
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    comments = jpeg_comments(crop.content)
    assert comments and str(request["id"]) in comments[0] and "investigator-1" in comments[0]
    assert crop.content.replace(b"\xff\xfe" + crop.content[4:6] + comments[0].encode(), b"") == CROP
    frame = _image(api, request, "frame")
    assert frame.status_code == 200 and jpeg_comments(frame.content)
    assert frame.content != FRAME  # the visible watermark was drawn on it
    # Nobody else fetches it: other roles are refused, and the audit shows the whole story.
    assert (
        api.call(Role.COMPLIANCE, "GET", f"/unseal/requests/{request['id']}/image").status_code
        == 403
    )
    actions = [e.action for e in api.dep.audit.entries() if e.action.startswith("unseal.")]
    assert actions == [
        "unseal.requested",
        "unseal.approved",
        "unseal.approved",
        "unseal.released",
        "unseal.fetched",
        "unseal.fetched",
    ]


def test_requester_cannot_approve(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    request = u.file()
    body = u.partial("compliance-1", request)
    answer = api.call(
        Role.INVESTIGATOR, "POST", f"/unseal/requests/{request['id']}/approvals", json=body
    )
    assert answer.status_code == 403
    assert _released(api) == 0
    denied = [e.entry.details for e in api.dep.audit.entries(action="access.denied") if e.entry]
    assert denied[-1]["path"].endswith("/approvals")


def test_same_officer_twice_and_a_replayed_partial(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    request = u.file()
    body = u.partial("compliance-1", request)
    assert u.approve("compliance-1", request, body).status_code == 200
    again = u.approve("compliance-1", request, body)
    assert again.status_code == 403 and "counts once" in again.json()["error"]["message"]
    # Another officer replays officer 1's partial: it is not their share.
    stolen = u.approve("compliance-2", request, body)
    assert stolen.status_code == 403 and "not one of yours" in stolen.json()["error"]["message"]
    assert _released(api) == 0
    assert len(_refusals(api)) == 2


def test_partial_for_another_request_or_forged_fails_the_proof(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    first = u.file()
    body = u.partial("compliance-1", first)
    forged = dict(
        body, partial=u.partial("compliance-2", first, share_of="compliance-2")["partial"]
    )
    answer = u.approve("compliance-1", first, forged)
    assert answer.status_code == 400
    # One open request per item: the second is filed once the first has ended.
    denied = api.client.post(
        f"/unseal/requests/{first['id']}/deny", json={"why": "Wrong case."}, headers=u.auth(OTHER)
    )
    assert denied.status_code == 200
    second = u.file()
    answer = u.approve("compliance-1", second, body)
    assert answer.status_code == 400 and "does not verify" in answer.json()["error"]["message"]
    assert _released(api) == 0
    assert len(_refusals(api)) == 2


def test_officer_not_in_the_ceremony(api: Api, tmp_path: Path) -> None:
    from privplate.identity import accounts

    u = setup_unseal(api, tmp_path)
    accounts.create_user(
        db=api.dep.db,
        audit=api.dep.audit,
        actor="t",
        name="outsider",
        role=Role.COMPLIANCE,
        password=None,
    )
    key = accounts.create_api_key(db=api.dep.db, audit=api.dep.audit, actor="t", name="outsider")[1]
    request = u.file()
    body = u.partial("compliance-1", request)
    answer = api.client.post(
        f"/unseal/requests/{request['id']}/approvals",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 403 and "not in the ceremony" in answer.json()["error"]["message"]
    assert _released(api) == 0


def test_expired_approval_does_not_count(api: Api, tmp_path: Path) -> None:
    import uuid

    from privplate.identity.accounts import get_user

    u = setup_unseal(api, tmp_path)
    request = u.file()
    body = u.partial("compliance-1", request)
    with api.dep.db.read() as conn:
        officer = get_user(conn, "compliance-1")
    api.services.unseal.approve(
        officer,
        uuid.UUID(str(request["id"])),
        share_index=int(body["share_index"]),
        partial=bytes.fromhex(str(body["partial"])),
        proof=bytes.fromhex(str(body["proof"])),
        now=now() - timedelta(hours=25),
    )
    answer = u.approve("compliance-2", request)
    assert answer.status_code == 200
    assert answer.json()["status"] == "pending" and answer.json()["approvals"] == 1
    assert _released(api) == 0
    # The officer whose approval lapsed may approve again; then it is released.
    assert u.approve("compliance-1", request).json()["status"] == "released"


def test_denial_after_one_approval_ends_the_request(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    request = u.file()
    assert u.approve("compliance-1", request).status_code == 200
    denied = api.client.post(
        f"/unseal/requests/{request['id']}/deny",
        json={"why": "No nexus to the case shown."},
        headers=u.auth("compliance-2"),
    )
    assert denied.status_code == 200 and denied.json()["status"] == "denied"
    late = u.approve("compliance-3", request)
    assert late.status_code == 403 and "already denied" in late.json()["error"]["message"]
    assert _image(api, request).status_code == 403
    assert _released(api) == 0


def test_purged_evidence_says_evidence_expired(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    pending = u.file()
    with api.dep.db.write() as conn:
        conn.execute(delete(Evidence.__table__))
    answer = api.call(
        Role.INVESTIGATOR,
        "POST",
        "/unseal/requests",
        json={
            "evidence_id": str(u.evidence_id),
            "case_number": "SPD-1",
            "justification": "Hit-and-run on Elm Street; the image identifies the vehicle.",
        },
    )
    assert answer.status_code == 410 and "evidence expired" in answer.json()["error"]["message"]
    late = u.approve("compliance-1", pending, u.partial("compliance-1", {**pending}))
    assert late.status_code == 410
    state = api.call(Role.COMPLIANCE, "GET", f"/unseal/requests/{pending['id']}").json()
    assert state["status"] == "evidence-expired"
    assert _released(api) == 0


def test_an_item_sealed_to_the_retired_key_after_a_rotation_still_opens(
    api: Api, tmp_path: Path
) -> None:
    """An edge that has not picked up the new key keeps sealing to the old one for a while;
    the blob names its key, so the request goes to the old key's officers, not the new."""
    import uuid

    from privplate.ceremony.ceremony import hold_ceremony
    from privplate.sealing import generate_keypair, seal
    from privplate.sealing.layout import pack_evidence
    from privplate.store import EvidenceIn
    from privplate.store.unseal_models import ShareSet
    from tests import factories
    from tests.api_support import CAMERA
    from tests.unseal_support import OFFICERS, PASSPHRASE

    u = setup_unseal(api, tmp_path)
    with api.dep.db.read() as conn:
        old_key = bytes(conn.execute(text("SELECT public_key FROM evidence_keys")).scalar_one())
    rotated = hold_ceremony(
        api.dep,
        officers=[(n, PASSPHRASE.format(n)) for n in OFFICERS],
        threshold=2,
        out_dir=tmp_path / "rotated",
        strength="interactive",
    )
    assert rotated.public_key != old_key
    late_id, observed = uuid.uuid4(), now() + timedelta(seconds=1)  # after the rotation
    sealed = seal(pack_evidence(CROP, FRAME), old_key, evidence_id=late_id)
    read = factories.read(api.dep, "7ABC124", camera_id=CAMERA, observed_at=observed)
    factories.ingest(api.dep, [read], [EvidenceIn(late_id, CAMERA, observed, sealed)])

    u.evidence_id = late_id
    request = u.file()
    sets = ShareSet.__table__
    with api.dep.db.read() as conn:
        share_set_key = conn.execute(
            select(sets.c.public_key).where(sets.c.id == uuid.UUID(str(request["share_set_id"])))
        ).scalar()
    assert share_set_key is not None and bytes(share_set_key) == old_key
    assert u.approve("compliance-1", request).status_code == 200  # old share files
    assert u.approve("compliance-2", request).json()["status"] == "released"
    assert _image(api, request).status_code == 200

    # An item sealed to a key no ceremony produced is refused when filed, naming the cause.
    stray_id = uuid.uuid4()
    stray = seal(b"x" * 64, generate_keypair()[1], evidence_id=stray_id)
    factories.ingest(api.dep, [], [EvidenceIn(stray_id, CAMERA, observed, stray)])
    answer = api.call(
        Role.INVESTIGATOR,
        "POST",
        "/unseal/requests",
        json={
            "evidence_id": str(stray_id),
            "case_number": "SPD-2",
            "justification": "Hit-and-run on Elm Street; the image identifies the vehicle.",
        },
    )
    assert answer.status_code == 404
    assert "no ceremony of this deployment produced" in answer.json()["error"]["message"]


def test_a_request_for_unknown_or_purged_evidence_is_refused_on_the_record(
    api: Api, tmp_path: Path
) -> None:
    import uuid

    setup_unseal(api, tmp_path)
    missing = uuid.uuid4()
    body = {
        "evidence_id": str(missing),
        "case_number": "SPD-2026-7",
        "justification": "Hit-and-run on Elm Street; the image identifies the vehicle.",
    }
    answer = api.call(Role.INVESTIGATOR, "POST", "/unseal/requests", json=body)
    assert answer.status_code == 410, answer.text
    refused = [e.entry.details for e in api.dep.audit.entries(action="unseal.refused") if e.entry]
    assert [d["subject"] for d in refused] == [str(missing)]
