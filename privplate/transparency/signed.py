"""Signed transparency reports: the published file is a C2SP signed note (c2sp.org/signed-note)
whose text is the report (Markdown or JSON) and whose one signature is the deployment's report
key, so anyone can check a copy from a council packet or a website with
`privplate report verify FILE --key VKEY` (or any signed-note verifier, e.g. Go's
``golang.org/x/mod/sumdb/note``).

The report key is derived from the audit signing seed under its own domain
(``AuditSigner.report_seed``): one key file, two keys, neither usable as the other (a report
cannot pass for a checkpoint: another key, another key name, ``<origin>/report``).

A report names the signed checkpoint it was built from (origin, size, root): on the
deployment, verification also checks that the log signed that checkpoint and still extends
it, so the numbers came from a log that was not rewritten since.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime

from privplate.audit.log import AuditLog
from privplate.audit.note import NoteError, NoteSigner, NoteVerifier, open_note, sign_note
from privplate.audit.signing import AuditSigner
from privplate.errors import AuditError

__all__ = [
    "CHECKPOINT_LINE",
    "ReportFacts",
    "check_against_log",
    "open_report",
    "read_facts",
    "report_signer",
    "report_verifier",
    "sign_report",
]

KEY_NAME_SUFFIX = "/report"
#: The Markdown line that names the checkpoint, in a form `read_facts` finds again.
CHECKPOINT_LINE = "Checkpoint: `{origin}` size {tree_size} root `{root}`"
_CHECKPOINT_RE = re.compile(r"^Checkpoint: `(\S+)` size (\d+) root `([A-Za-z0-9+/=]+)`", re.M)
_PERIOD_RE = re.compile(r"^Period: (\S+) to (\S+) ", re.M)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def report_signer(signer: AuditSigner) -> NoteSigner:
    return NoteSigner(signer.origin + KEY_NAME_SUFFIX, signer.report_seed())


def report_verifier(signer: AuditSigner) -> NoteVerifier:
    """Its ``vkey()`` is what /.well-known/privplate/report-key serves."""
    return report_signer(signer).verifier


def sign_report(text: str, signer: AuditSigner) -> str:
    """The report as a signed note. A note's text holds no control character but the newline
    (Go's verifier refuses the whole note otherwise): CRLF becomes LF, a tab or other control
    character (only a hand-typed agency name could bring one) a space."""
    clean = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    if not clean.endswith("\n"):
        clean += "\n"
    return sign_note(clean, report_signer(signer))


@dataclass(frozen=True)
class ReportFacts:
    """What a report says about itself: its format, its period and its checkpoint."""

    kind: str  # "json" or "markdown"
    period_start: datetime
    period_end: datetime
    origin: str
    tree_size: int
    root: bytes

    def describe(self) -> str:
        return (
            f"{self.kind} report for {self.period_start.isoformat()} to "
            f"{self.period_end.isoformat()}, built from checkpoint {self.origin} of "
            f"{self.tree_size} entries, root {base64.b64encode(self.root).decode()}"
        )


def read_facts(text: str) -> ReportFacts:
    """Period and checkpoint of a report's text (JSON or the Markdown render_markdown writes)."""
    try:
        if text.lstrip().startswith("{"):
            data = json.loads(text)
            log, period = data["audit_log"], data["period"]
            checkpoint = log["latest_checkpoint"]
            return ReportFacts(
                "json",
                datetime.fromisoformat(period["start"]),
                datetime.fromisoformat(period["end"]),
                str(log["origin"]),
                int(checkpoint["tree_size"]),
                bytes.fromhex(checkpoint["root"]),
            )
        period_match = _PERIOD_RE.search(text)
        checkpoint_match = _CHECKPOINT_RE.search(text)
        if period_match is None or checkpoint_match is None:
            raise ValueError("no period or checkpoint line")
        return ReportFacts(
            "markdown",
            datetime.fromisoformat(period_match.group(1)),
            datetime.fromisoformat(period_match.group(2)),
            checkpoint_match.group(1),
            int(checkpoint_match.group(2)),
            base64.b64decode(checkpoint_match.group(3), validate=True),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise AuditError(
            f"the report does not name its period and checkpoint as privplate writes them "
            f"({exc}): not a privplate transparency report, or one built from an empty log"
        ) from None


def open_report(note: str, verifier: NoteVerifier) -> tuple[str, ReportFacts]:
    """The report's text and facts, if ``note`` is signed by the report key ``verifier``; an
    AuditError saying what failed otherwise (edited text, another key, not a signed note)."""
    try:
        opened = open_note(note, [verifier])
    except NoteError as exc:
        raise AuditError(
            f"the report's signature does not check out with {verifier.name} ({exc}): it was "
            "changed after signing, or signed by another key"
        ) from None
    facts = read_facts(opened.text)
    if facts.origin + KEY_NAME_SUFFIX != verifier.name:
        raise AuditError(
            f"the report names log {facts.origin}, but is signed by {verifier.name}: a report "
            "is signed by its own log's report key"
        )
    return opened.text, facts


def check_against_log(audit: AuditLog, facts: ReportFacts) -> str:
    """On the deployment: the report's checkpoint is one this log signed, and the log still
    extends it. Returns what was checked; raises AuditError otherwise."""
    if facts.origin != audit.signer.origin:
        raise AuditError(f"the report is of log {facts.origin}, not of this deployment's")
    signed = [
        c
        for c in audit.checkpoints()
        if c.tree_size == facts.tree_size and c.public_key == audit.signer.public_key
    ]
    if not any(hmac.compare_digest(c.root, facts.root) for c in signed):
        raise AuditError(
            f"this log never signed a checkpoint of {facts.tree_size} entries with the report's "
            "root: the report was not built from this log's history"
        )
    tree = audit.tree()
    if tree.size < facts.tree_size:
        raise AuditError(
            f"log truncated: the report's checkpoint covers {facts.tree_size} entries, the log "
            f"now holds {tree.size}"
        )
    if not hmac.compare_digest(tree.root(facts.tree_size), facts.root):
        raise AuditError(
            f"log rewritten: its first {facts.tree_size} entries no longer have the root the "
            "report names"
        )
    return (
        f"the log signed that checkpoint and still extends it (now {tree.size} entries): the "
        "report's numbers come from history that was not rewritten since"
    )
