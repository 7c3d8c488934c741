"""The auditor's and the administrator's screens in real Chromium: the audit log filtered and
paged, its verification, a signed checkpoint and an inclusion proof downloaded and checked in
Python with the deployment's audit key; users, API keys, webhooks and sharing agreements
managed through the forms; the effective policy; and a role refused another role's page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from privplate.audit.proofs import InclusionProof
from privplate.audit.signing import Checkpoint
from privplate.identity import accounts
from privplate.identity.api_keys import list_api_keys
from privplate.jurisdiction import get_preset
from privplate.policy import sharing
from privplate.policy.rules import PurposePolicy
from tests.console.conftest import Console

#: The screens these tests open: CSP violations on them are this file's to answer for.
MINE = re.compile(r"/console/(auditor|admin|public)/")
PAGER_ACTOR = "test-auditor-pager"


def _clean(console: Console, page, name: str) -> None:  # type: ignore[no-untyped-def]
    console.shot(page, name)
    assert console.axe(page) == [], name


def _violations(console: Console) -> list[str]:
    return [v for v in console.violations if MINE.search(v)]


def test_the_auditor_browses_verifies_and_checks_proofs(console: Console) -> None:
    with console.deployment() as dep:
        # 55 entries of one actor: more than a page (50), so the pager has an older page.
        for i in range(55):
            dep.audit.record(actor=PAGER_ACTOR, action="test.pager", details={"n": i})
        signed = dep.audit.checkpoint()
        public_key = dep.audit.signer.public_key
    page = console.page("audra")
    page.goto(console.url + "/console/auditor/audit")
    assert page.locator("table.audit tbody tr").count() >= 10
    _clean(console, page, "auditor-audit-log")

    page.get_by_label("Actor").fill(PAGER_ACTOR)
    page.get_by_label("Action (or its start)").fill("test.")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    rows = page.locator("table.audit tbody tr")
    assert rows.count() == 50
    actors = rows.locator("td:nth-child(3)").all_inner_texts()
    assert set(actors) == {PAGER_ACTOR}
    assert set(rows.locator("td:nth-child(4)").all_inner_texts()) == {"test.pager"}
    assert '"n":54' in rows.first.inner_text().replace(" ", "")  # newest first
    _clean(console, page, "auditor-audit-log-filtered")
    page.get_by_role("link", name="Older entries").click()
    page.wait_for_load_state()
    assert page.locator("table.audit tbody tr").count() == 5
    assert "actor=test-auditor-pager" in page.url

    # A time range that ends before the entries were written finds none of them.
    page.goto(console.url + "/console/auditor/audit")
    page.get_by_label("Actor").fill(PAGER_ACTOR)
    page.get_by_label("Until (UTC)").fill(
        (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    )
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert page.get_by_text("No entry matches these filters.").is_visible()
    page.get_by_label("Until (UTC)").fill("")
    page.get_by_label("From (UTC)").fill(
        (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    )
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert page.locator("table.audit tbody tr").count() == 50

    # An entry covered by the checkpoint: its proof verifies on the page and from the file.
    page.locator("table.audit tbody tr").first.get_by_role("link").click()
    page.wait_for_load_state()
    assert page.locator("#proof-result").inner_text().startswith("Verified")
    assert f"{signed.tree_size} entries" in page.locator("#proof-result").inner_text()
    _clean(console, page, "auditor-inclusion-proof")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the inclusion proof").click()
    proof = InclusionProof.from_json(Path(download.value.path()).read_text())
    assert proof.checkpoint is not None and proof.checkpoint.root == signed.root
    assert proof.entry is not None and PAGER_ACTOR.encode() in proof.entry
    proof.verify(public_key)
    assert _violations(console) == []


def test_the_auditor_sees_the_verification_and_downloads_a_checkpoint(console: Console) -> None:
    with console.deployment() as dep:
        signed = dep.audit.checkpoint()
        public_key = dep.audit.signer.public_key
    page = console.page("audra")
    page.goto(console.url + "/console/auditor/verify")
    assert page.locator("#verify-result").inner_text().startswith("OK")
    assert int(page.locator("#verify-entries").inner_text()) >= signed.tree_size
    _clean(console, page, "auditor-verify")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the signed checkpoint").click()
    assert download.value.suggested_filename.startswith("privplate-checkpoint-")
    checkpoint = Checkpoint.from_json(Path(download.value.path()).read_text())
    checkpoint.verify_signature(public_key)
    assert checkpoint.tree_size >= signed.tree_size

    # Filters the API refuses are refused here too, with the reason on the page.
    page.goto(console.url + "/console/auditor/audit?action=Not%20An%20Action")
    assert page.get_by_role("alert").inner_text().count("action:") == 1
    assert _violations(console) == []


def test_the_admin_manages_users_and_api_keys(console: Console) -> None:
    page = console.page("adam")
    page.goto(console.url + "/console/admin/users")
    _clean(console, page, "admin-users")
    page.get_by_label("User name").fill("aa-newcomer")
    page.get_by_label("Role").select_option("investigator")
    page.get_by_label("Agency (optional)").fill("Springfield PD")
    page.get_by_label(re.compile("^Password")).fill("aa newcomer passphrase")
    page.get_by_role("button", name="Add user").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text().startswith("Added aa-newcomer (investigator)")
    row = page.locator("#user-aa-newcomer")
    assert "Springfield PD" in row.inner_text() and "active" in row.inner_text()
    row.get_by_role("button", name="Disable aa-newcomer").click()
    page.wait_for_load_state()
    assert "disabled" in page.locator("#user-aa-newcomer").inner_text()

    # A service account (no password) and its key: the secret is shown once, then revoked.
    page.get_by_label("User name").fill("aa-scraper")
    page.get_by_label("Role").select_option("auditor")
    page.get_by_role("button", name="Add user").click()
    page.wait_for_load_state()
    page.get_by_label("Account for the key").select_option("aa-scraper")
    page.get_by_label("Label (what uses it)").fill("aa metrics")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_load_state()
    secret = page.locator("#secret").inner_text()
    key_id = page.locator("#secret-id").inner_text()
    assert secret.startswith("ppk_") and secret not in page.url
    _clean(console, page, "admin-api-key-created")
    with console.deployment() as dep:
        owner = accounts.user_for_bearer(db=dep.db, secret=secret)
        assert owner is not None and owner.name == "aa-scraper"
    page.get_by_role("link", name="Back to users and API keys").click()
    page.wait_for_load_state()
    assert secret not in page.content()  # listed by id and label only
    page.locator(f"#key-{key_id}").get_by_role("button", name=re.compile("^Revoke")).click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text() == f"Revoked API key {key_id}."
    with console.deployment() as dep:
        assert accounts.user_for_bearer(db=dep.db, secret=secret) is None
        assert key_id not in {str(k.id) for k in list_api_keys(db=dep.db)}
        by_name = {u.name: u for u in accounts.list_users(db=dep.db)}
    assert by_name["aa-newcomer"].disabled and not by_name["aa-scraper"].disabled

    # A refusal comes back in the form's context, with the service's words.
    page.get_by_label("User name").fill("aa-newcomer")
    page.get_by_label("Role").select_option("operator")
    page.get_by_role("button", name="Add user").click()
    page.wait_for_load_state()
    assert "already exists" in page.get_by_role("alert").inner_text()
    assert _violations(console) == []


def test_the_admin_manages_webhooks_and_sharing_and_reads_the_policy(console: Console) -> None:
    page = console.page("adam")
    page.goto(console.url + "/console/admin/webhooks")
    page.get_by_label("Receiver URL (http:// or https://)").fill("https://hooks.example.test/aa")
    page.get_by_role("button", name="Add webhook").click()
    page.wait_for_load_state()
    hook_id = page.locator("#secret-id").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", page.locator("#secret").inner_text())
    page.get_by_role("link", name="Back to webhooks").click()
    page.wait_for_load_state()
    hook = page.locator(f"#hook-{hook_id}")
    assert "active" in hook.inner_text()
    _clean(console, page, "admin-webhooks")
    # Deactivated again at once: no other test's alerts go to a receiver that isn't there.
    hook.get_by_role("button", name=re.compile("^Deactivate")).click()
    page.wait_for_load_state()
    assert "deactivated" in page.locator(f"#hook-{hook_id}").inner_text()

    page.goto(console.url + "/console/admin/sharing")
    _clean(console, page, "admin-sharing")
    page.get_by_label("Agency", exact=True).fill("AA Shelbyville PD")
    page.get_by_label("Signed document (reference)").fill("AA-MOU-2026-14")
    page.get_by_label("stolen-vehicle").check()
    page.get_by_label("missing-person").check()
    expires = (datetime.now(UTC) + timedelta(days=90)).date()
    page.get_by_label("In force until (the end of that day, UTC)").fill(expires.isoformat())
    page.get_by_role("button", name="Record agreement").click()
    page.wait_for_load_state()
    assert (
        page.get_by_role("status").inner_text() == "Recorded the agreement with AA Shelbyville PD."
    )
    with console.deployment() as dep:
        made = [a for a in sharing.list_agreements(db=dep.db) if a.agency == "AA Shelbyville PD"]
    assert len(made) == 1 and {p.value for p in made[0].purposes} == {
        "stolen-vehicle",
        "missing-person",
    }
    assert made[0].expires_at.date() == expires
    row = page.locator(f"#agreement-{made[0].id}")
    assert "in force" in row.inner_text()
    row.get_by_role("button", name=re.compile("^Revoke")).click()
    page.wait_for_load_state()
    assert "revoked" in page.locator(f"#agreement-{made[0].id}").inner_text()

    page.goto(console.url + "/console/admin/policy")
    with console.deployment() as dep:
        rules = PurposePolicy.from_settings(dep.settings)
        preset = get_preset(dep.settings.retention.preset)
    allowed = {
        r.locator("th").inner_text()
        for r in page.locator("#policy-purposes tbody tr").all()
        if "allowed" in r.locator("td").first.inner_text()
    }
    assert allowed == {p.value for p in rules.allowed}
    forbidden_row = page.locator("#policy-purposes tr", has_text="immigration-enforcement")
    assert "forbidden" in forbidden_row.inner_text()
    assert page.locator("#policy-sources").inner_text().splitlines() == list(preset.sources)
    assert page.locator("#policy-windows tbody tr").count() == 5
    _clean(console, page, "admin-policy")
    assert _violations(console) == []


def test_a_role_is_refused_another_roles_screens(console: Console) -> None:
    page = console.page("olive")
    for path in ("/console/admin/users", "/console/auditor/audit", "/console/admin/policy"):
        answer = page.goto(console.url + path)
        assert answer is not None and answer.status == 403, path
        assert "may not open this page" in page.get_by_role("alert").inner_text()
    console.shot(page, "admin-refused-operator")
    assert console.axe(page) == []
    investigator = console.page("ivan")
    answer = investigator.goto(console.url + "/console/auditor/verify")
    assert answer is not None and answer.status == 403
    # Signed out: the sign-in form, not the page.
    public = console.public_page()
    public.goto(console.url + "/console/admin/users")
    assert public.url.endswith("/console/sign-in")
    with console.deployment() as dep:
        refused = list(dep.audit.entries(actor="user:olive", action="access.denied"))
    assert {e.entry.details["path"] for e in refused if e.entry} >= {
        "/console/admin/users",
        "/console/auditor/audit",
        "/console/admin/policy",
    }
