"""Signed transparency reports: the report key (vectors), the file `privplate report --out`
writes, `privplate report verify` on the deployment and with only the published key, the
API's signed copies, and what makes verification fail (an edit, another key, a rewritten log)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from privplate.audit.note import NoteVerifier, open_note, split_note
from privplate.audit.signing import AuditSigner
from privplate.cli.main import app as cli
from privplate.deployment import Deployment
from privplate.errors import AuditError
from privplate.store.models import AuditCheckpoint, AuditEntry
from privplate.transparency.signed import (
    open_report,
    read_facts,
    report_signer,
    report_verifier,
    sign_report,
)
from tests.api_support import Api
from tests.conftest import vectors

VEC = vectors("report")
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_the_report_key_vectors() -> None:
    signer = AuditSigner(bytes.fromhex(str(VEC["signing_seed"])))
    assert signer.report_seed().hex() == VEC["report_seed"]
    note_signer = report_signer(signer)
    assert note_signer.verifier.public_key.hex() == VEC["public_key"]
    assert note_signer.verifier.vkey() == VEC["vkey"]
    assert sign_report(str(VEC["text"]), signer) == VEC["signed_note"]
    text, facts = open_report(str(VEC["signed_note"]), NoteVerifier.parse(str(VEC["vkey"])))
    assert text == VEC["text"]
    checkpoint = VEC["checkpoint"]
    assert isinstance(checkpoint, dict)
    assert (facts.origin, facts.tree_size, facts.root.hex()) == (
        checkpoint["origin"],
        checkpoint["tree_size"],
        checkpoint["root"],
    )
    assert [facts.period_start.isoformat(), facts.period_end.isoformat()] == VEC["period"]
    # Not the audit key, not the checkpoint key name.
    assert note_signer.verifier.public_key != signer.public_key
    assert note_signer.name != signer.origin


def test_a_note_text_holds_no_tab_or_carriage_return() -> None:
    signer = AuditSigner.generate()
    signed = sign_report("a\tb\r\nc", signer)
    text, _ = split_note(signed)
    assert text == "a b\nc\n"
    open_note(signed, [report_verifier(signer)])


def _published(api: Api, tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / ("report.json" if "--json" in extra else "report.md")
    code, output = invoke("report", "--out", str(out), *extra, "--dir", str(api.home))
    assert code == 0, output
    return out


@pytest.mark.parametrize("kind", ["markdown", "json"])
def test_a_published_report_verifies_on_the_deployment_and_with_its_key(
    api: Api, tmp_path: Path, kind: str
) -> None:
    out = _published(api, tmp_path, *(["--json"] if kind == "json" else []))
    text, _ = split_note(out.read_text(encoding="utf-8"))
    facts = read_facts(text)
    # The report names a checkpoint the log signed (a fresh one: the log had grown).
    stored = api.dep.audit.note_checkpoint(facts.tree_size)
    assert stored is not None and stored.root == facts.root
    code, output = invoke("report", "verify", str(out), "--dir", str(api.home))
    assert code == 0, output
    assert f"signature verified: {kind} report for {facts.period_start.isoformat()}" in output
    assert f"of {facts.tree_size} entries" in output and "still extends it" in output
    vkey = api.client.get("/.well-known/privplate/report-key").text.strip()
    assert vkey == report_verifier(api.dep.audit.signer).vkey()
    code, output = invoke("report", "verify", str(out), "--key", vkey)
    assert code == 0, output
    assert "signature verified" in output and "still extends" not in output


def test_an_edited_report_fails(api: Api, tmp_path: Path) -> None:
    out = _published(api, tmp_path, "--json")
    vkey = report_verifier(api.dep.audit.signer).vkey()
    signed = out.read_text(encoding="utf-8")
    report = json.loads(split_note(signed)[0])
    stored = report["reads"]["reads_stored"]
    edited = signed.replace(f'"reads_stored": {stored}', f'"reads_stored": {stored + 1}', 1)
    assert edited != signed
    out.write_text(edited, encoding="utf-8")
    code, output = invoke("report", "verify", str(out), "--key", vkey)
    assert code == 1 and "changed after signing" in output
    out.write_text(split_note(signed)[0], encoding="utf-8")  # the signature cut off
    code, output = invoke("report", "verify", str(out), "--key", vkey)
    assert code == 1 and "not a signed note" in output


def test_verify_checks_the_file_as_published(api: Api, tmp_path: Path) -> None:
    """The bytes of the file, not a copy with translated line ends (which Go's verifier
    refuses, and whose SHA-256 is not the one recorded); a file that is not UTF-8 is refused
    in words, not with a traceback."""
    out = _published(api, tmp_path)
    vkey = report_verifier(api.dep.audit.signer).vkey()
    signed = out.read_bytes()
    crlf = tmp_path / "crlf.md"
    crlf.write_bytes(signed.replace(b"\n", b"\r\n"))
    code, output = invoke("report", "verify", str(crlf), "--key", vkey)
    assert code == 1 and "not CRLF" in output
    binary = tmp_path / "binary.md"
    binary.write_bytes(signed + b"\xff")
    code, output = invoke("report", "verify", str(binary), "--key", vkey)
    assert code == 1 and "is not UTF-8 text" in output
    code, output = invoke("report", "verify", str(out), "--key", vkey)
    assert code == 0, output


def test_another_deployments_key_or_log_fails(api: Api, tmp_path: Path) -> None:
    out = _published(api, tmp_path)
    other = AuditSigner.generate()
    code, output = invoke("report", "verify", str(out), "--key", report_verifier(other).vkey())
    assert code == 1 and "signed by another key" in output
    # A report signed by another log's key but naming this log's checkpoint is refused too.
    text, _ = split_note(out.read_text(encoding="utf-8"))
    with pytest.raises(AuditError, match="signed by its own log's report key"):
        open_report(sign_report(text, other), report_verifier(other))


def test_a_report_of_a_rewritten_log_fails_on_the_deployment(api: Api, tmp_path: Path) -> None:
    out = _published(api, tmp_path)
    facts = read_facts(split_note(out.read_text(encoding="utf-8"))[0])
    with Deployment.open(api.home) as dep:
        with dep.db.write() as conn:
            conn.execute(delete(AuditEntry).where(AuditEntry.seq >= facts.tree_size - 2))
            conn.execute(delete(AuditCheckpoint))
        for i in range(5):
            dep.audit.record(actor="insider", action="test.rewritten", details={"i": i})
        dep.audit.sign_if_grown()
    code, output = invoke("report", "verify", str(out), "--dir", str(api.home))
    assert code == 1 and "never signed a checkpoint" in output
    # The offline check still passes: the signature is good, the history is what changed.
    code, output = invoke(
        "report", "verify", str(out), "--key", report_verifier(api.dep.audit.signer).vkey()
    )
    assert code == 0, output


def test_the_api_serves_signed_copies(api: Api) -> None:
    verifier = report_verifier(api.dep.audit.signer)
    markdown = api.client.get("/transparency.md?days=7&signed=true")
    assert markdown.status_code == 200
    text, facts = open_report(markdown.text, verifier)
    assert text == api.client.get("/transparency.md?days=7").text
    assert facts.kind == "markdown"
    signed_json = api.client.get("/transparency?days=7&signed=true")
    assert signed_json.headers["content-type"].startswith("text/plain")
    text, facts = open_report(signed_json.text, verifier)
    assert json.loads(text) == api.client.get("/transparency?days=7").json()
    assert facts.kind == "json"
