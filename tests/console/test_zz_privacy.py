"""After the whole browser suite (this module runs last): no plate any test typed, imported or
ingested is in a Chromium profile (cache, history, local storage, session files), in the
server's access and application log, in the database, or in any URL a page requested."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import unquote

from tests.console.conftest import Console
from tests.privacy import dump_database, hits_in_bytes, hits_in_files, needles


def _search_once(console: Console) -> None:
    """A search typed into the form, so the scan has a plate to look for even when this module
    runs alone."""
    plate = "9ZZ" + "".join(secrets.choice("0123456789") for _ in range(4))
    console.plates.add(plate)
    page = console.page("ivan")
    page.goto(console.url + "/console/investigator/search")
    page.get_by_label("Plate").fill(plate)
    page.get_by_label("Case number").fill("PRIV-SCAN-1")
    page.get_by_label("Justification").fill("Privacy scan of the browser suite: stolen vehicle.")
    purpose = page.get_by_label("Purpose")
    options = purpose.locator("option").all_inner_texts()
    stolen = next((o for o in options if "stolen" in o.lower()), options[0])
    purpose.select_option(label=stolen)
    page.get_by_role("button", name="Search").click()
    page.wait_for_load_state()


def test_no_plate_left_in_the_browser_the_logs_the_database_or_a_url(console: Console) -> None:
    _search_once(console)
    assert console.plates, "the suite registered no plates"
    console.close_browsers()  # Chromium writes its profile out when it closes
    profile_files = [p for p in Path(console.profiles).rglob("*") if p.is_file()]
    assert len(profile_files) > 20, "no browser profile to scan"
    assert any(p.name == "History" for p in profile_files)
    leaks = hits_in_files(profile_files, console.plates)
    assert leaks == {}, f"plates in the Chromium profiles: {leaks}"
    log = console.log.read_bytes()
    assert b'"POST /console/' in log  # the access log is on, and is what was scanned
    assert hits_in_bytes(log, console.plates) == []
    assert hits_in_bytes(dump_database(console.database_url), console.plates) == []
    forms = needles(console.plates)
    bad = [u for u in console.urls if any(n in unquote(u).encode() for n in forms)]
    bad += [u for u in console.urls if any(n in unquote(u).upper().encode() for n in forms)]
    assert bad == [], f"plates in request URLs: {bad}"
    assert len(console.urls) > 10
    assert console.violations == [], console.violations
