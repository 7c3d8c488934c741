"""The console by keyboard alone: skip link first, sign in, move between screens, sign out."""

from __future__ import annotations

from tests.console.conftest import Console


def _tab_to(page, predicate: str, limit: int = 40) -> None:  # type: ignore[no-untyped-def]
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const e = document.activeElement; return {predicate}; }})()"):
            return
    raise AssertionError(f"Tab never reached: {predicate}")


def test_sign_in_navigate_and_sign_out_by_keyboard(console: Console) -> None:
    ctx = console.context("keyboard")  # a signed-out browser of its own
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.goto(console.url + "/console/sign-in")
    # The user name field has the focus on arrival.
    assert page.evaluate("document.activeElement.id") == "name"
    page.keyboard.type("olive")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(console.password("olive"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/operator")
    # On every page the first Tab stop is the skip link, and it leads to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    # Every screen is one link away; reach "Alerts" by Tab and open it with Enter.
    _tab_to(page, "e.tagName === 'A' && e.textContent.trim() === 'Alerts'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/operator/alerts")
    assert page.get_by_role("heading", name="Live alerts").is_visible()
    _tab_to(page, "e.tagName === 'BUTTON' && e.textContent.trim() === 'Sign out'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/sign-in")
    assert console.violations == []
