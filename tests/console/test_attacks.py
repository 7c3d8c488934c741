"""In Chromium, as an attacker would try: what a browser keeps of the operator's plate forms
(its session files, read after it closes), a hostile site that frames the console, reads its
live alert stream or posts to it, and a live stream that outlives its session.

Each browser here gets its own profile (not the shared per-person ones), so that what it kept
can be read as soon as it closes, without waiting for the suite's final privacy scan.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from playwright.sync_api import expect

from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, Console
from tests.privacy import hits_in_files

EVIL = "http://evil.test"


def _plate(prefix: str) -> str:
    return prefix + "".join(secrets.choice("0123456789") for _ in range(4))


class OwnBrowser:
    """``name`` signed in, in a Chromium with a profile of its own under the suite's profiles
    (so the final scan reads it too)."""

    def __init__(self, console: Console, name: str, profile: str, *, watch: bool = True) -> None:
        self.console = console
        self.profile = Path(console.profiles) / profile
        self.ctx = console.playwright.chromium.launch_persistent_context(  # type: ignore[attr-defined]
            str(self.profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1200, "height": 900},
        )
        self.ctx.on("request", lambda r: console.urls.append(r.url))
        self.page = self.ctx.pages[0] if self.ctx.pages else self.ctx.new_page()
        if watch:  # not for a hostile page: Chromium reports what the console's CSP refused
            self.ctx.on("page", console._watch)
            console._watch(self.page)
        console.sign_in(self.page, name)

    def close_and_scan(self, plates: set[str]) -> dict[str, list[str]]:
        """Close the browser (Chromium writes its session files out then) and look for the
        plates in every file of its profile."""
        self.ctx.close()
        files = [p for p in self.profile.rglob("*") if p.is_file()]
        assert any("Sessions" in str(p) or "Session" in p.name for p in files), (
            "Chromium wrote no session file to scan"
        )
        return hits_in_files(files, plates)


def _new_hotlist(console: Console, name: str) -> None:
    from privplate.hotlists import HotlistSource
    from privplate.services import Services

    with console.deployment() as dep, Services(dep) as services:  # type: ignore[no-untyped-call]
        services.hotlists.create(
            actor="test-setup", name=name, source=HotlistSource.STOLEN_VEHICLE, description=""
        )


def test_a_refused_hotlist_entry_leaves_its_plate_in_no_browser_file(console: Console) -> None:
    """A refused add-entry post (here: a case number with a space) answered with the form
    again would be a POST entry in the tab's history, its body (the plate) kept in the
    profile's session files. Added, refused, imported: none of the plates is on disk."""
    hotlist = "atk-refused-entry"
    _new_hotlist(console, hotlist)
    refused, added = _plate("7KR"), _plate("7KA")
    plates = {refused, added}
    console.plates.update(plates)
    browser = OwnBrowser(console, "olive", "attack-olive-entry")
    page = browser.page
    page.goto(console.url + f"/console/operator/hotlists/{hotlist}")
    page.get_by_label("Plate").fill(refused)
    page.get_by_label("Reason").fill("seen at the gate")
    page.get_by_label("Case number").fill("bad case number")
    page.get_by_role("button", name="Add entry").click()
    page.wait_for_load_state()
    expect(page.get_by_role("alert")).to_contain_text("case number")
    assert refused not in page.content()
    # The form is usable again at once, and a good entry goes in.
    page.get_by_label("Plate").fill(added)
    page.get_by_label("Reason").fill("seen at the gate")
    page.get_by_label("Case number").fill("ATK-1")
    page.get_by_role("button", name="Add entry").click()
    page.wait_for_url(f"**/console/operator/hotlists/{hotlist}?done=added")
    leaks = browser.close_and_scan(plates)
    assert leaks == {}, f"plates kept by the browser: {leaks}"


def _csv(path: Path, rows: list[list[str]]) -> Path:
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_a_csv_upload_leaves_its_plates_in_no_browser_file(
    console: Console, tmp_path: Path
) -> None:
    """The import is a navigation post of a file: Chromium keeps a file input's post as a
    reference to the file (its path), not its bytes. The preview (with problems, and without)
    and the import leave none of the file's plates in the profile."""
    hotlist = "atk-csv"
    _new_hotlist(console, hotlist)
    good, other, bad = _plate("7KC"), _plate("7KD"), "7K!" + _plate("")
    plates = {good, other, bad}
    console.plates.update(plates)
    header = ["plate", "reason", "case_number"]
    broken = _csv(tmp_path / "broken.csv", [header, [good, "stolen", "ATK-2"], [bad, "x", "ATK-2"]])
    fine = _csv(tmp_path / "fine.csv", [header, [good, "stolen", "ATK-2"], [other, "x", "ATK-2"]])
    browser = OwnBrowser(console, "olive", "attack-olive-csv")
    page = browser.page
    page.goto(console.url + f"/console/operator/hotlists/{hotlist}")
    page.get_by_label("CSV file").set_input_files(str(broken))
    page.get_by_role("button", name="Preview import").click()
    page.wait_for_load_state()
    expect(page.locator("#problems")).to_be_visible()
    page.goto(console.url + f"/console/operator/hotlists/{hotlist}")
    page.get_by_label("CSV file").set_input_files(str(fine))
    page.get_by_role("button", name="Preview import").click()
    page.wait_for_load_state()
    expect(page.locator("#preview-summary")).to_contain_text("2 rows ready to import")
    page.get_by_role("button", name=f"Import 2 entries into {hotlist}").click()
    page.wait_for_url(f"**/console/operator/hotlists/{hotlist}?done=imported")
    leaks = browser.close_and_scan(plates)
    assert leaks == {}, f"plates kept by the browser: {leaks}"


def _hostile(browser: OwnBrowser, html: str):  # type: ignore[no-untyped-def]
    """A page of another site (its own origin, no CSP of ours) in the signed-in browser."""
    page = browser.ctx.new_page()
    page.route(f"{EVIL}/", lambda r: r.fulfill(body=html, content_type="text/html"))
    page.goto(f"{EVIL}/")
    return page


def test_another_site_can_neither_frame_the_console_nor_read_its_alert_stream(
    console: Console,
) -> None:
    browser = OwnBrowser(console, "olive", "attack-olive-hostile", watch=False)
    try:
        page = _hostile(
            browser,
            f"""<!doctype html><html><body>
            <iframe id="f" src="{console.url}/console/operator/hotlists"></iframe>
            </body></html>""",
        )
        page.wait_for_load_state()
        framed = [f for f in page.frames if f is not page.main_frame]
        assert len(framed) == 1
        # Refused by frame-ancestors 'none' (and X-Frame-Options): Chromium shows its own
        # error page in the frame, not the console.
        assert "Hotlists" not in framed[0].content()
        assert not framed[0].url.startswith(console.url + "/console/operator")
        # An EventSource with credentials: the cookie stays home (SameSite=Strict), and no
        # CORS header lets the other site read an answer anyway.
        seen = page.evaluate(
            """url => new Promise(done => {
                const source = new EventSource(url, {withCredentials: true});
                const got = [];
                source.addEventListener('alert', e => got.push(e.data));
                source.onmessage = e => got.push(e.data);
                source.onerror = () => {
                    const state = source.readyState;
                    source.close();
                    done({state, got});
                };
            })""",
            f"{console.url}/console/operator/alerts/stream",
        )
        assert seen["got"] == []
        assert seen["state"] == 2  # CLOSED: refused for good, not retrying
    finally:
        browser.ctx.close()


def test_the_live_alerts_page_stops_when_the_session_is_signed_out(console: Console) -> None:
    """Signed out in another tab: the open alerts page's stream ends (the server checks the
    session while it streams) and the page says so, instead of staying 'Live'."""
    browser = OwnBrowser(console, "olive", "attack-olive-live")
    try:
        alerts = browser.page
        alerts.goto(console.url + "/console/operator/alerts")
        expect(alerts.locator("#live-status")).to_contain_text("Live")
        other = browser.ctx.new_page()
        other.goto(console.url + "/console/account")
        other.get_by_role("button", name="Sign out").click()
        other.wait_for_url("**/console/sign-in")
        expect(alerts.locator("#live-status")).to_contain_text("your session ended", timeout=60_000)
        assert console.axe(alerts) == []
    finally:
        browser.ctx.close()
    assert console.violations == []
