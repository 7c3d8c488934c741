"""In Chromium, what issue #17 added for people who never open a terminal: a compliance
officer records a spot-check verdict (and is refused one about their own search); a
felony-investigation search waits for a second person, a compliance officer approves it (the
requester cannot, from any account, and an investigator has no way to the screen), the
requester runs it once and reads its answer, and a denial's note reaches the requester. The
plate is on no page, in no URL (test_zz_privacy.py scans the profiles and the database)."""

from __future__ import annotations

import uuid

from privplate.policy.queries import list_queries
from privplate.policy.review import SubjectKind, list_reviews
from tests.console.conftest import CAMERA, Console
from tests.console.investigation import (
    fits_a_phone,
    ingest_sealed_read,
    no_plate_in_any_url,
    screen_ok,
    search,
)

FELONY = "felony-investigation"
FELONY_WHY = "Armed robbery at the Elm Street pharmacy; a witness saw the car leave the lot."


def _review_of(console: Console, case: str) -> uuid.UUID:
    """The spot check drawn for the search recorded with ``case`` (the fixture draws every
    answered search)."""
    with console.deployment() as dep:
        query = next(q for q in list_queries(db=dep.db, limit=200) if q.case_number == case)
        found = [
            r
            for r in list_reviews(db=dep.db, kind=SubjectKind.SEARCH, limit=1000)
            if r.subject_id == query.id
        ]
    assert len(found) == 1, found
    return found[0].id


def test_an_officer_records_a_spot_check_verdict(console: Console) -> None:
    plate = "7KQ4301"
    ingest_sealed_read(console, plate)
    ivan = console.page("ivan")
    search(console, ivan, plate, case="CON-SPOT-1")
    assert ivan.get_by_role("status").filter(has_text="1 read found").is_visible()
    # Drawn or not, the requester's answer says nothing of it.
    assert "spot" not in ivan.locator("main").inner_text().lower()
    review_id = _review_of(console, "CON-SPOT-1")

    cora = console.page("cora")
    cora.goto(console.url + "/console/officer/flags")
    with cora.expect_navigation():
        cora.get_by_role("navigation", name="Main").get_by_role("link", name="Spot checks").click()
    link = cora.locator(f'a[href="/console/officer/spot-checks/{review_id}"]')
    row = cora.locator("#spot-checks tbody tr").filter(has=link)
    assert "ivan" in row.inner_text() and "random" in row.inner_text()
    assert "open" in row.inner_text()
    screen_ok(console, cora, "officer-spot-checks", plate)
    with cora.expect_navigation():
        link.click()
    subject = cora.locator("#subject").inner_text()
    for fact in ("CON-SPOT-1", "stolen-vehicle", "Elm Street lot", "answered"):
        assert fact in subject, fact
    screen_ok(console, cora, "officer-spot-check", plate)
    fits_a_phone(console, cora, "officer-spot-check-phone")

    # A note is required: the service's refusal in its words (the browser's check bypassed).
    cora.locator("#verdict-consistent").check()
    cora.locator("#note").evaluate("n => n.removeAttribute('required')")
    cora.locator("#note").fill("   ")
    with cora.expect_navigation():
        cora.get_by_role("button", name="Record the verdict").click()
    assert "a note of 1-2000 characters is required with a verdict" in (
        cora.get_by_role("alert").inner_text()
    )

    cora.locator("#verdict-needs-follow-up").check()
    cora.locator("#note").fill("Case file has no stolen-vehicle report yet; asked ivan for it.")
    with cora.expect_navigation():
        cora.get_by_role("button", name="Record the verdict").click()
    assert cora.url.endswith(f"/console/officer/spot-checks/{review_id}?done=recorded")
    assert cora.get_by_role("status").filter(has_text="Verdict recorded").is_visible()
    verdict = cora.locator("#verdict").inner_text()
    assert "needs-follow-up" in verdict and "cora" in verdict and "asked ivan" in verdict
    assert cora.locator("#verdict-form").count() == 0  # taken once

    cora.goto(console.url + "/console/officer/spot-checks?show=open")
    assert cora.locator(f'a[href="/console/officer/spot-checks/{review_id}"]').count() == 0
    with console.deployment() as dep:
        entries = list(dep.audit.entries(action="spot_checks.verdict", limit=50))
    assert any(e.entry and e.entry.details["review"] == str(review_id) for e in entries)
    no_plate_in_any_url(console)
    assert not [v for v in console.violations if "/console/" in v]


def test_an_officer_cannot_judge_their_own_search(console: Console) -> None:
    """ivy searches as an investigator; her compliance account (the same person) is refused
    the verdict, in the service's words."""
    plate = "7KQ4302"
    ingest_sealed_read(console, plate)
    search(console, console.page("ivy"), plate, case="CON-SPOT-2")
    review_id = _review_of(console, "CON-SPOT-2")
    own = console.page("ivy-cmp")
    own.goto(f"{console.url}/console/officer/spot-checks/{review_id}")
    own.locator("#verdict-consistent").check()
    own.locator("#note").fill("Looks fine to me.")
    with own.expect_navigation():
        own.get_by_role("button", name="Record the verdict").click()
    assert "this spot check is about your own search or entry: you cannot review it" in (
        own.get_by_role("alert").inner_text()
    )
    assert own.locator("#verdict-form").count() == 1  # still open, for another officer
    screen_ok(console, own, "officer-spot-check-own-refused", plate)


def test_a_search_needing_approval_waits_is_approved_and_runs_once(console: Console) -> None:
    plate = "7KQ4303"
    ingest_sealed_read(console, plate)
    ivan = console.page("ivan")
    search(console, ivan, plate, case="CON-APP-1", purpose=FELONY, justification=FELONY_WHY)
    pending = ivan.locator("#pending")
    assert "Waiting for approval" in pending.inner_text()
    request_id = pending.locator("code").inner_text()
    uuid.UUID(request_id)
    assert ivan.locator("ol.results").count() == 0  # nothing looked up
    assert ivan.locator("#plate").input_value() == ""
    screen_ok(console, ivan, "investigator-search-pending", plate)

    # The investigator has no way to decide: no menu item, and the screen refuses them.
    nav = ivan.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Search approvals").count() == 0
    answer = ivan.goto(console.url + "/console/officer/approvals")
    assert answer is not None and answer.status == 403
    ivan.goto(console.url + "/console/investigator/approvals")
    row = ivan.locator("#my-approvals tbody tr").filter(has_text="CON-APP-1")
    assert "pending" in row.inner_text() and request_id in row.inner_text()
    assert row.get_by_role("button", name="Run now").count() == 0
    screen_ok(console, ivan, "investigator-approvals-pending", plate)
    _approve_and_run(console, plate, request_id)


def _approve_and_run(console: Console, plate: str, request_id: str) -> None:
    ivan = console.page("ivan")
    # cora approves ivan's, reading purpose, case, justification and window, never the plate.
    cora = console.page("cora")
    cora.goto(console.url + "/console/officer/flags")
    with cora.expect_navigation():
        cora.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Search approvals"
        ).click()
    item = cora.locator("#approvals > li").filter(has_text="CON-APP-1")
    text = item.inner_text()
    for fact in (FELONY, "ivan", "Elm Street pharmacy", request_id):
        assert fact in text, fact
    screen_ok(console, cora, "officer-search-approvals", plate)
    fits_a_phone(console, cora, "officer-search-approvals-phone")
    item.get_by_label("Note (optional)").fill("Robbery report 26-4411 checked.")
    with cora.expect_navigation():
        item.get_by_role("button", name="Approve").click()
    assert cora.get_by_role("status").filter(has_text="Search approved").is_visible()
    assert cora.locator("#approvals > li").filter(has_text="CON-APP-1").count() == 0

    # ivan runs it from his list: the answer page, as a search's.
    ivan.goto(console.url + "/console/investigator/approvals")
    row = ivan.locator("#my-approvals tbody tr").filter(has_text="CON-APP-1")
    assert "approved" in row.inner_text() and "cora" in row.inner_text()
    with ivan.expect_navigation():
        row.get_by_role("button", name="Run now").click()
    assert ivan.get_by_role("status").filter(has_text="1 read found").is_visible()
    assert CAMERA in ivan.locator("ol.results > li").inner_text()
    screen_ok(console, ivan, "investigator-approved-search-answer", plate)

    # Once: the list shows it run, with no button; the record is an ordinary answered search.
    ivan.goto(console.url + "/console/investigator/approvals")
    row = ivan.locator("#my-approvals tbody tr").filter(has_text="CON-APP-1")
    assert "run" in row.inner_text()
    assert row.get_by_role("button").count() == 0
    ivan.goto(console.url + "/console/investigator/searches")
    records = ivan.locator("tbody tr").filter(has_text="CON-APP-1")
    assert records.count() == 1 and "answered" in records.inner_text()
    no_plate_in_any_url(console)
    assert not [v for v in console.violations if "/console/" in v]


def test_the_requester_cannot_approve_their_own_search_from_another_account(
    console: Console,
) -> None:
    """ivy's compliance account may not approve her own request (the same person)."""
    plate = "7KQ4305"
    console.plates.add(plate)
    ivy = console.page("ivy")
    search(console, ivy, plate, case="CON-APP-2", purpose=FELONY, justification=FELONY_WHY)
    own = console.page("ivy-cmp")
    own.goto(console.url + "/console/officer/approvals")
    mine = own.locator("#approvals > li").filter(has_text="CON-APP-2")
    with own.expect_navigation():
        mine.get_by_role("button", name="Approve").click()
    alert = own.get_by_role("alert").inner_text()
    assert "the requester cannot decide on their own search" in alert
    assert own.locator("#approvals > li").filter(has_text="CON-APP-2").count() == 1  # pending
    screen_ok(console, own, "officer-search-approval-own-refused", plate)


def test_a_denial_needs_a_note_and_reaches_the_requester(console: Console) -> None:
    plate = "7KQ4304"
    console.plates.add(plate)
    ivan = console.page("ivan")
    search(console, ivan, plate, case="CON-APP-3", purpose=FELONY, justification=FELONY_WHY)
    assert "Waiting for approval" in ivan.locator("#pending").inner_text()

    cole = console.page("cole")
    cole.goto(console.url + "/console/officer/approvals")
    item = cole.locator("#approvals > li").filter(has_text="CON-APP-3")
    # Without a note the service refuses (the browser's check bypassed).
    note = item.get_by_label("Reason for denying")
    note.evaluate("n => n.removeAttribute('required')")
    with cole.expect_navigation():
        item.get_by_role("button", name="Deny").click()
    assert "a denial needs a note saying why" in cole.get_by_role("alert").inner_text()
    item = cole.locator("#approvals > li").filter(has_text="CON-APP-3")
    item.get_by_label("Reason for denying").fill("No link between the vehicle and the case.")
    with cole.expect_navigation():
        item.get_by_role("button", name="Deny").click()
    assert cole.get_by_role("status").filter(has_text="Search denied").is_visible()

    ivan.goto(console.url + "/console/investigator/approvals")
    row = ivan.locator("#my-approvals tbody tr").filter(has_text="CON-APP-3")
    assert "denied" in row.inner_text() and "No link between the vehicle" in row.inner_text()
    assert row.get_by_role("button").count() == 0
    no_plate_in_any_url(console)


def test_the_verification_page_names_the_witnesses(console: Console) -> None:
    audra = console.page("audra")
    audra.goto(console.url + "/console/auditor/verify")
    assert audra.locator("#verify-result").filter(has_text="OK").count() == 1
    section = audra.locator("section").filter(has=audra.get_by_role("heading", name="Witnesses"))
    assert "No witness is configured" in section.inner_text()
