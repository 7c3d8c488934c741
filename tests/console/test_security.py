"""In Chromium: the session cookie as the browser keeps it, a form on another site that posts
to the console, and a page that tries to run inline script under the console's CSP."""

from __future__ import annotations

from tests.console.conftest import Console

EVIL = "http://evil.test"


def test_the_browser_keeps_the_session_cookie_httponly_secure_strict(console: Console) -> None:
    ctx = console.context("audra")
    cookies = {c["name"]: c for c in ctx.cookies()}
    session = cookies["__Host-privplate"]
    assert session["httpOnly"] is True
    assert session["secure"] is True
    assert session["sameSite"] == "Strict"
    assert session["path"] == "/"
    page = console.page("audra")
    # Script in the page cannot read it.
    assert "privplate" not in page.evaluate("document.cookie")


def test_a_form_on_another_site_cannot_change_anything(console: Console) -> None:
    """A signed-in operator visits a hostile page that posts to the console's password form:
    SameSite=Strict keeps the cookie home, and the server refuses the post anyway."""
    ctx = console.context("olive")
    page = ctx.new_page()
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    evil_html = f"""<!doctype html><html><body>
      <form id="f" method="post" action="{console.url}/console/account/password">
        <input name="current" value="x"><input name="new" value="hijacked passphrase!">
        <input name="again" value="hijacked passphrase!"><input name="csrf" value="guess">
      </form><script src="{EVIL}/go.js"></script></body></html>"""
    page.route(f"{EVIL}/", lambda r: r.fulfill(body=evil_html, content_type="text/html"))
    page.route(
        f"{EVIL}/go.js",
        lambda r: r.fulfill(
            body="document.getElementById('f').submit()", content_type="text/javascript"
        ),
    )
    page.goto(f"{EVIL}/")
    page.wait_for_url(f"{console.url}/**")
    page.wait_for_load_state()
    assert any(u.endswith("/console/account/password") for u in posted)
    # Not signed in as far as that post went (no cookie sent): the sign-in form answered.
    assert "/console/sign-in" in page.url or "Refused" in page.content()
    page.close()
    # Olive is still signed in with her own password: the post changed nothing.
    own = console.page("olive")
    own.goto(console.url + "/console/account")
    assert own.get_by_role("heading", name="Your account").is_visible()


def test_the_csp_blocks_inline_script_on_console_pages(console: Console) -> None:
    page = console.public_page()
    page.goto(console.url + "/console/sign-in")
    before = len(console.violations)
    # An attacker's inline script (as an injected <script> would be) does not run.
    page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__pwned = true'; document.body.appendChild(s); }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.__pwned === true") is False
    assert len(console.violations) > before  # Chromium reported it
    del console.violations[before:]  # an expected violation, not the pages' own


def test_sign_in_page_is_accessible_and_clean(console: Console) -> None:
    page = console.public_page()
    page.goto(console.url + "/console/sign-in")
    console.shot(page, "sign-in")
    assert console.axe(page) == []
    page = console.page("adam")
    page.goto(console.url + "/console/account")
    console.shot(page, "account")
    assert console.axe(page) == []
    assert not [v for v in console.violations if "/console/" in v]


def test_behind_a_tls_proxy_the_origin_check_uses_the_public_origin(console: Console) -> None:
    """Deployed behind nginx/Caddy on the same host, the browser's Origin is the public https
    one; uvicorn's proxy headers (trusted from 127.0.0.1) make it the request's own, so a
    sign-in through the proxy works and one from elsewhere does not."""
    import re

    import httpx

    public = "https://console.example.org"
    proxied = {"Host": "console.example.org", "X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=console.url, follow_redirects=False) as client:
        form = client.get("/console/sign-in", headers=proxied)
        pre = form.headers["set-cookie"].split(";", 1)[0]
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        body = {"csrf": csrf, "name": "audra", "password": console.password("audra")}
        for origin, expected in ((public, 303), ("http://console.example.org", 403)):
            answer = client.post(
                "/console/sign-in",
                data=body,
                headers={**proxied, "Origin": origin, "Cookie": pre},
            )
            assert answer.status_code == expected, (origin, answer.status_code)
