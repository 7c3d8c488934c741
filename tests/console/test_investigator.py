"""In Chromium, as an investigator: the search form offers only the allowed purposes, a search
the policy refuses shows the policy's reason, an allowed one finds the read (camera, time,
confidence, evidence) without the plate ever on screen or in a URL; my searches; my unseal
requests, with withdrawal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.console.conftest import CAMERA, CHROMIUM, CHROMIUM_ARGS, Console
from tests.console.investigation import (
    JUSTIFICATION,
    file_unseal,
    fits_a_phone,
    ingest_sealed_read,
    no_plate_in_any_url,
    screen_ok,
    search,
)


def test_refused_searches_show_the_policys_reason_and_an_allowed_one_finds_the_read(
    console: Console,
) -> None:
    plate = "7KQ4101"
    ingest_sealed_read(console, plate)
    page = console.page("ivan")

    page.goto(console.url + "/console/investigator/search")
    assert page.locator("#plate").get_attribute("autocomplete") == "off"
    offered = page.locator("#purpose option").evaluate_all("os => os.map(o => o.value)")
    assert "stolen-vehicle" in offered
    assert "immigration-enforcement" not in offered  # forbidden: not even selectable
    assert page.get_by_text("At most 31 days").is_visible()
    screen_ok(console, page, "investigator-search")

    # A justification that reveals a forbidden purpose: refused in the policy's words.
    search(
        console,
        page,
        plate,
        case="CON-INV-1",
        justification="Locate the driver for a deportation hearing next week, per request.",
    )
    alert = page.get_by_role("alert")
    assert "the justification mentions 'deportation', which indicates a forbidden purpose" in (
        alert.inner_text()
    )
    assert page.locator("ol.results").count() == 0
    assert page.locator("#plate").input_value() == ""  # never typed back in
    screen_ok(console, page, "investigator-search-refused", plate)

    # A window over the limit: refused, naming the limit.
    now = datetime.now(UTC)
    search(console, page, plate, case="CON-INV-1", start=now - timedelta(days=40), end=now)
    assert "the time window is longer than 31 days (queries.max_window_days)" in (
        page.get_by_role("alert").inner_text()
    )
    # The form comes back filled from the search's record (no plate in it).
    assert page.locator("#case_number").input_value() == "CON-INV-1"
    screen_ok(console, page, "investigator-search-window-refused", plate)

    # Allowed: the read, its camera, time, confidence, and that evidence is available.
    search(console, page, plate, case="CON-INV-1")
    assert page.get_by_role("status").filter(has_text="1 read found").is_visible()
    result = page.locator("ol.results > li")
    assert result.count() == 1
    text = result.inner_text()
    assert CAMERA in text
    assert "90%" in text
    assert "available (sealed)" in text
    assert page.get_by_text("Request unseal of this image").is_visible()
    screen_ok(console, page, "investigator-search-answer", plate)
    fits_a_phone(console, page, "investigator-search-answer-phone")

    # My searches: all three on the record, outcomes and reasons, never the plate.
    page.goto(console.url + "/console/investigator/searches")
    rows = page.locator("tbody tr").filter(has_text="CON-INV-1")
    assert rows.count() == 3
    assert rows.filter(has_text="answered").count() == 1
    assert rows.filter(has_text="denied").count() == 2
    assert rows.filter(has_text="mentions 'deportation'").count() == 1
    screen_ok(console, page, "investigator-searches", plate)

    no_plate_in_any_url(console)
    assert not [v for v in console.violations if "/console/" in v]


def test_my_unseal_requests_list_and_withdraw(console: Console) -> None:
    plate = "7KQ4102"
    ingest_sealed_read(console, plate)
    page = console.page("ivan")
    request_id = file_unseal(
        console, page, plate, case="CON-INV-2", justification="The frame shows the driver."
    )
    assert page.get_by_role("status").filter(has_text="Unseal request filed").is_visible()
    row = page.locator("tbody tr").filter(has_text="CON-INV-2")
    assert "pending" in row.inner_text() and "0 of 2" in row.inner_text()
    screen_ok(console, page, "investigator-unseal", plate)
    fits_a_phone(console, page, "investigator-unseal-phone")

    with page.expect_navigation():
        row.get_by_role("button", name="Withdraw").click()
    assert page.get_by_role("status").filter(has_text="Request withdrawn").is_visible()
    row = page.locator("tbody tr").filter(has_text="CON-INV-2")
    assert "withdrawn" in row.inner_text()
    assert row.get_by_role("button").count() == 0

    # Nothing to show for a withdrawn request.
    page.goto(f"{console.url}/console/investigator/unseal/{request_id}/image")
    assert "Not released: this request is withdrawn" in page.get_by_role("alert").inner_text()
    assert page.locator("img").count() == 0
    screen_ok(console, page, "investigator-image-not-released", plate)

    # A refused request (the policy's words again) comes back on the list page.
    search(console, page, plate, case="CON-INV-2")
    result = page.locator("ol.results > li").first
    result.locator("summary").click()
    result.get_by_label("Justification for seeing the image").fill("short")
    with page.expect_navigation():
        result.get_by_role("button", name="Request unseal").click()
    assert "a justification of at least 20 characters is required" in (
        page.get_by_role("alert").inner_text()
    )
    no_plate_in_any_url(console)
    assert not [v for v in console.violations if "/console/" in v]


def test_a_search_sent_as_a_page_navigation_is_not_run(console: Console) -> None:
    """Without the page's script the form would post as a navigation, whose body (the plate)
    the browser keeps in its session history: the server refuses it without searching."""
    plate = "7KQ4103"
    console.plates.add(plate)
    browser = console.playwright.chromium.launch(  # type: ignore[attr-defined]
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    try:
        # A throwaway in-memory profile: nothing of it is written to disk.
        page = browser.new_context(java_script_enabled=False).new_page()
        page.on("request", lambda r: console.urls.append(r.url))
        console.sign_in(page, "ivan")
        page.goto(console.url + "/console/investigator/search")
        page.locator("#plate").fill(plate)
        page.locator("#purpose").select_option("stolen-vehicle")
        page.locator("#case_number").fill("CON-INV-3")
        page.locator("#justification").fill(JUSTIFICATION)
        with page.expect_navigation():
            page.get_by_role("button", name="Search", exact=True).click()
        assert page.url.endswith("/console/investigator/search?sent=page")
        assert "not searched: this browser sent the search as a page" in (
            page.get_by_role("alert").inner_text()
        )
        assert plate not in page.content()
    finally:
        browser.close()
    ivan = console.page("ivan")
    ivan.goto(console.url + "/console/investigator/searches")
    assert ivan.locator("tbody tr").filter(has_text="CON-INV-3").count() == 0  # never recorded
    no_plate_in_any_url(console)
