"""The auditor's verification page lists which witnesses cosigned which sizes of the log: the
same verification (verify_witnessed) and the same words (describe) as `privplate audit verify`."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

from sqlalchemy import update

from privplate.audit.cosignature import Cosigner
from privplate.audit.cosigners import accept_cosignature, configured_witnesses
from privplate.audit.note import split_note
from privplate.audit.public import public_note
from privplate.deployment import Deployment
from privplate.identity.roles import Role
from privplate.settings import CONFIG_FILENAME
from privplate.store.witness_models import AuditCosignature
from tests.console_support import open_console

WITNESS = "clerk.example/w1"


def _cosign_twice(home: Path, cosigner: Cosigner) -> list[int]:
    """Two checkpoints, each cosigned by the witness as `privplate audit witness` posts it."""
    sizes = []
    with Deployment.open(home, actor="test-setup") as dep:
        witnesses = configured_witnesses(dep.settings.audit.witnesses)
        for i in range(2):
            dep.audit.record(actor="test", action="test.grow", details={"i": i})
            signed = dep.audit.sign_if_grown()
            assert signed is not None
            text, _ = split_note(public_note(dep.audit))
            line = cosigner.cosign(text, int(time.time())).line().render()
            assert accept_cosignature(dep.audit, witnesses, text + "\n" + line).recorded == "new"
            sizes.append(signed.tree_size)
    return sizes


def test_the_verification_page_names_who_cosigned_which_size(home: Path) -> None:
    cosigner = Cosigner(WITNESS, bytes(range(32)))
    config = home / CONFIG_FILENAME
    config.write_text(
        config.read_text(encoding="utf-8")
        + f"\n[audit]\nwitnesses = {json.dumps([cosigner.vkey()])}\n",
        encoding="utf-8",
    )
    first, second = _cosign_twice(home, cosigner)
    clients = open_console(home)
    web = next(clients)
    try:
        for role in (Role.AUDITOR, Role.COMPLIANCE):
            answer = web.clients[role].get("/console/auditor/verify")
            assert answer.status_code == 200
            text = html.unescape(answer.text)
            assert (
                f"witness {WITNESS} (configured): cosigned 2 sizes ({first}, {second}); "
                f"latest {second} entries at"
            ) in text
            assert cosigner.vkey() in text
            assert "<strong>OK</strong>" in answer.text

        # A cosignature edited in the database is a problem the page names.
        with web.dep.db.write() as conn:
            conn.execute(
                update(AuditCosignature)
                .where(AuditCosignature.tree_size == first)
                .values(timestamp=AuditCosignature.timestamp + 1)
            )
        answer = web.clients[Role.AUDITOR].get("/console/auditor/verify")
        text = html.unescape(answer.text)
        assert "Problems found" in text
        assert (
            f"the stored cosignature by witness {WITNESS} of {first} entries does not verify"
            in (text)
        )
    finally:
        next(clients, None)
