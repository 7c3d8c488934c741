"""In Chromium, as compliance officers: two officers approve an unseal in the browser (share
files chosen in the page, passphrases typed there) and the requester then sees the image; one
approval releases nothing; the requester's own approval, from their compliance account, is
refused; a denial's reason reaches the requester; legal holds are approved and released."""

from __future__ import annotations

from datetime import timedelta

from privplate.retention import holds as hold_store
from tests.console.conftest import Console
from tests.console.investigation import (
    approve_in_browser,
    file_unseal,
    fits_a_phone,
    ingest_sealed_read,
    no_plate_in_any_url,
    screen_ok,
    search,
)


def _image_loaded(page, element_id: str) -> bool:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        f"() => {{ const i = document.getElementById('{element_id}');"
        " return i !== null && i.complete; }"
    )
    width: int = page.eval_on_selector(f"#{element_id}", "i => i.naturalWidth")
    return width > 0


def _no_share_posted(console: Console, requests: list[tuple[str, str]]) -> None:
    """What the approve form sent: the index, partial, proof and CSRF token, nothing else."""
    assert requests, "the approval was posted"
    for _, body in requests:
        fields = {pair.split("=", 1)[0] for pair in body.split("&") if pair}
        assert fields == {"csrf", "share_index", "partial", "proof"}, fields


def _watch_approvals(page) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    posted: list[tuple[str, str]] = []

    def on_request(r) -> None:  # type: ignore[no-untyped-def]
        if r.method == "POST" and r.url.endswith("/approve"):
            posted.append((r.url, r.post_data or ""))

    page.on("request", on_request)
    return posted


def test_two_officers_approve_in_the_browser_and_the_requester_sees_the_image(
    console: Console,
) -> None:
    plate = "7KQ4201"
    ingest_sealed_read(console, plate)
    ivan = console.page("ivan")
    request_id = file_unseal(
        console,
        ivan,
        plate,
        case="CON-OFF-1",
        justification="Hit-and-run on Elm Street; the frame shows the vehicle and driver.",
    )

    cora = console.page("cora")
    cora.goto(console.url + "/console/officer/unseal")
    row = cora.locator("tbody tr").filter(has_text="CON-OFF-1")
    assert "ivan" in row.inner_text() and "Hit-and-run on Elm Street" in row.inner_text()
    assert "pending" in row.inner_text() and "0 of 2" in row.inner_text()
    screen_ok(console, cora, "officer-unseal-queue", plate)
    with cora.expect_navigation():
        row.get_by_role("link", name="Review").click()
    assert cora.url.endswith(f"/console/officer/unseal/{request_id}")
    form = cora.locator("form#officer-approve")
    assert form.get_attribute("data-request-id") == request_id
    assert form.get_attribute("data-threshold") == "2"
    # The share file and the passphrase can never be submitted.
    assert cora.locator("#share-file").get_attribute("name") is None
    assert cora.locator("#share-passphrase").get_attribute("name") is None
    screen_ok(console, cora, "officer-unseal-request", plate)
    fits_a_phone(console, cora, "officer-unseal-request-phone")

    posted = _watch_approvals(cora)
    approve_in_browser(console, cora, "cora", request_id)
    assert cora.get_by_role("status").filter(has_text="Your approval was recorded").is_visible()
    assert "1 of 2" in cora.locator("dl.facts").inner_text()
    screen_ok(console, cora, "officer-unseal-approved-once", plate)

    cole = console.page("cole")
    posted += _watch_approvals(cole)
    approve_in_browser(console, cole, "cole", request_id)
    facts = cole.locator("dl.facts").inner_text()
    assert "released" in facts
    _no_share_posted(console, posted)

    ivan.goto(console.url + "/console/investigator/unseal")
    row = ivan.locator("tbody tr").filter(has_text="CON-OFF-1")
    assert "released" in row.inner_text()
    with ivan.expect_navigation():
        row.get_by_role("link", name="View image").click()
    assert _image_loaded(ivan, "evidence-frame")
    assert _image_loaded(ivan, "evidence-crop")
    screen_ok(console, ivan, "investigator-image", plate)
    # The image answers no-store (nothing for the profile's cache to keep).
    answer = ivan.request.get(
        f"{console.url}/console/investigator/unseal/{request_id}/image/frame.jpg"
    )
    assert answer.status == 200
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["cache-control"] == "no-store"

    no_plate_in_any_url(console)
    assert not [v for v in console.violations if "/console/" in v]


def test_one_approval_releases_nothing(console: Console) -> None:
    plate = "7KQ4202"
    ingest_sealed_read(console, plate)
    ivan = console.page("ivan")
    request_id = file_unseal(
        console,
        ivan,
        plate,
        case="CON-OFF-2",
        justification="Stolen vehicle seen at the gate; the image confirms the make.",
    )
    cole = console.page("cole")
    approve_in_browser(console, cole, "cole", request_id)
    assert "1 of 2" in cole.locator("dl.facts").inner_text()
    assert "pending" in cole.locator("dl.facts").inner_text()

    ivan.goto(f"{console.url}/console/investigator/unseal/{request_id}/image")
    assert "Not released: this request is pending (1 of 2 approvals)" in (
        ivan.get_by_role("alert").inner_text()
    )
    assert ivan.locator("img").count() == 0
    screen_ok(console, ivan, "investigator-image-pending", plate)
    # The image itself is refused by the unseal service, in its words.
    ivan.goto(f"{console.url}/console/investigator/unseal/{request_id}/image/frame.jpg")
    assert "this request is pending, not released" in ivan.get_by_role("alert").inner_text()
    no_plate_in_any_url(console)
    assert not [v for v in console.violations if "/console/" in v]


def test_the_requester_cannot_approve_their_own_request_from_another_account(
    console: Console,
) -> None:
    plate = "7KQ4203"
    ingest_sealed_read(console, plate)
    ivy = console.page("ivy")
    request_id = file_unseal(
        console,
        ivy,
        plate,
        case="CON-OFF-3",
        justification="Missing person last seen near the gate; need the vehicle image.",
    )
    # ivy-cmp holds no share (ivy is an investigator too): she is lent cody's, and the
    # refusal is for being the requester, whatever the share.
    ivy_cmp = console.page("ivy-cmp")
    approve_in_browser(console, ivy_cmp, "ivy-cmp", request_id, share_of="cody")
    alert = ivy_cmp.get_by_role("alert").inner_text()
    assert "the requester cannot approve their own request, from any of their accounts" in alert
    assert "0 of 2" in ivy_cmp.locator("dl.facts").inner_text()
    screen_ok(console, ivy_cmp, "officer-unseal-own-refused", plate)
    no_plate_in_any_url(console)
    assert not [v for v in console.violations if "/console/" in v]


def test_a_denial_and_its_reason_reach_the_requester(console: Console) -> None:
    plate = "7KQ4204"
    ingest_sealed_read(console, plate)
    ivan = console.page("ivan")
    request_id = file_unseal(
        console,
        ivan,
        plate,
        case="CON-OFF-4",
        justification="Wanted person possibly driving this vehicle; need confirmation.",
    )
    cole = console.page("cole")
    cole.goto(f"{console.url}/console/officer/unseal/{request_id}")
    reason = "No warrant or case nexus shown for this vehicle."
    cole.get_by_label("Reason (the requester sees it)").fill(reason)
    with cole.expect_navigation():
        cole.get_by_role("button", name="Deny").click()
    assert cole.get_by_role("status").filter(has_text="The request was denied").is_visible()
    assert cole.locator("form#officer-approve").count() == 0  # nothing left to approve
    screen_ok(console, cole, "officer-unseal-denied", plate)

    cole.goto(console.url + "/console/officer/unseal?status=denied")
    assert cole.locator("tbody tr").filter(has_text="CON-OFF-4").count() == 1

    ivan.goto(console.url + "/console/investigator/unseal")
    row = ivan.locator("tbody tr").filter(has_text="CON-OFF-4")
    assert "denied" in row.inner_text()
    assert f"Reason: {reason}" in row.inner_text()
    screen_ok(console, ivan, "investigator-unseal-denied", plate)
    no_plate_in_any_url(console)
    assert not [v for v in console.violations if "/console/" in v]


def test_legal_holds_are_approved_and_released(console: Console) -> None:
    plate = "7KQ4205"
    evidence_id = ingest_sealed_read(console, plate)
    with console.deployment() as dep:
        hold_store.request_hold(
            db=dep.db,
            audit=dep.audit,
            kind=hold_store.HoldKind.EVIDENCE,
            target_id=evidence_id,
            case_number="CON-OFF-5",
            justification="Court order to preserve the image for trial.",
            requested_by="user:ivan",
            duration=timedelta(days=30),
        )
    cora = console.page("cora")
    cora.goto(console.url + "/console/officer/holds")
    row = cora.locator("tbody tr").filter(has_text=str(evidence_id))
    assert "awaiting approval" in row.inner_text()
    screen_ok(console, cora, "officer-holds", plate)
    with cora.expect_navigation():
        row.get_by_role("button", name="Approve").click()
    assert cora.get_by_role("status").filter(has_text="Legal hold approved").is_visible()
    row = cora.locator("tbody tr").filter(has_text="CON-OFF-5")
    assert "in force" in row.inner_text() and "user:cora" in row.inner_text()
    with cora.expect_navigation():
        row.get_by_role("button", name="Release").click()
    assert cora.get_by_role("status").filter(has_text="Legal hold released").is_visible()
    assert "released" in cora.locator("tbody tr").filter(has_text="CON-OFF-5").inner_text()
    no_plate_in_any_url(console)
    assert not [v for v in console.violations if "/console/" in v]


def test_officer_screens_refuse_an_investigator(console: Console) -> None:
    ivan = console.page("ivan")
    ivan.goto(console.url + "/console/officer/unseal")
    assert "your role (investigator) may not open this page" in (
        ivan.get_by_role("alert").inner_text()
    )


def test_flags_and_search_review(console: Console) -> None:
    """A denied search raises a flag; an officer sees it and closes it with a resolution, and
    finds the search in the review, filtered by outcome and investigator (GET: no plate)."""
    plate = "7KQ4206"
    ivan = console.page("ivan")
    search(
        console,
        ivan,
        plate,
        case="CON-OFF-6",
        justification="Hand the location to ICE for the removal proceedings of the owner.",
    )
    assert "mentions 'ICE'" in ivan.get_by_role("alert").inner_text()

    cora = console.page("cora")
    cora.goto(console.url + "/console/officer/flags")
    flag = cora.locator("ol.flags > li").filter(has_text="denied-query: ivan")
    assert flag.count() == 1
    screen_ok(console, cora, "officer-flags", plate)
    flag.get_by_label("Resolution").fill("Spoke with ivan: reminded of the purpose policy.")
    with cora.expect_navigation():
        flag.get_by_role("button", name="Close this flag").click()
    assert cora.get_by_role("status").filter(has_text="Flag reviewed").is_visible()
    assert cora.locator("ol.flags > li").filter(has_text="denied-query: ivan").count() == 0
    cora.goto(console.url + "/console/officer/flags?show=all")
    closed = cora.locator("ol.flags > li").filter(has_text="denied-query: ivan")
    assert "reminded of the purpose policy" in closed.first.inner_text()

    cora.goto(console.url + "/console/officer/searches")
    cora.get_by_label("Outcome").select_option("denied")
    cora.get_by_label("Investigator").select_option("ivan")
    with cora.expect_navigation():
        cora.get_by_role("button", name="Filter").click()
    assert "outcome=denied" in cora.url and "by=ivan" in cora.url
    shown = cora.locator("tbody tr").filter(has_text="CON-OFF-6")
    assert shown.count() == 1
    assert "mentions 'ICE'" in shown.inner_text()
    assert cora.locator("tbody tr").filter(has_text="answered").count() == 0
    screen_ok(console, cora, "officer-searches", plate)
    cora.get_by_label("Purpose").select_option("hit-and-run")
    with cora.expect_navigation():
        cora.get_by_role("button", name="Filter").click()
    assert cora.locator("tbody tr").filter(has_text="CON-OFF-6").count() == 0  # stolen-vehicle
    no_plate_in_any_url(console)
    assert not [v for v in console.violations if "/console/" in v]
