"""The console's in-browser officer approval (static/js/officer-approve.js) in real Chromium.

The static folder is served to the page by Playwright's request interception, with the
console's exact Content-Security-Policy, so the test needs no server: what runs is the module
and the vendored libsodium as a browser loads them. Results are checked against the Python
implementation (crypto/vectors/unseal.json, prove/verify_partial, share files from
seal_share), and any CSP violation during a test fails it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from privplate.ceremony.sharefile import ShareFile, read_share_file, seal_share, write_share_file
from privplate.sealing import group
from privplate.threshold import verify_partial
from privplate.threshold.dleq import Proof
from privplate.threshold.shamir import Share, split
from privplate.unseal.workflow import request_context
from tests.conftest import vectors

try:
    from playwright.sync_api import Page, Playwright, Route, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = "/usr/bin/chromium"
ON_CI = os.environ.get("CI") == "true"
if not ON_CI and (sync_playwright is None or not Path(CHROMIUM).exists()):
    pytest.skip("needs Playwright and /usr/bin/chromium", allow_module_level=True)

STATIC = Path(__file__).resolve().parent.parent / "privplate" / "console" / "static"
ORIGIN = "https://console.test"
MODULE = "/static/js/officer-approve.js"
#: The console's policy, verbatim: 'wasm-unsafe-eval' is there for libsodium's WebAssembly
#: only; no JS eval, no inline script or style.
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".json": "application/json",
    ".html": "text/html",
    ".css": "text/css",
}
#: Installed first by a classic script (the CSP forbids inline ones): collects violations.
LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""
TEST_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>test</title>
<script src="/csp-listener.js"></script>
<script type="module" src="{MODULE}"></script>
</head><body><main><h1>crypto test page</h1></main></body></html>"""
PASSPHRASE = "correct horse battery staple"
LIBSODIUM_ERRORS = ("Refused to", "Content Security Policy", "Aborted(", "wasm")


@dataclass
class Site:
    """What the intercepted origin serves, and what the page posted back."""

    policy: str = CSP
    pages: dict[str, str] = field(default_factory=lambda: {"/test.html": TEST_PAGE})
    posts: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def handle(self, route: Route) -> None:
        request = route.request
        path = urlsplit(request.url).path
        headers = {"Content-Security-Policy": self.policy, "X-Content-Type-Options": "nosniff"}
        if path == "/submit" and request.method == "POST":
            self.posts.append(request.post_data or "")
            route.fulfill(status=200, headers=headers, content_type="text/html", body="<p>ok</p>")
            return
        body: bytes | None = None
        if path in self.pages:
            body = self.pages[path].encode()
        elif path == "/csp-listener.js":
            body = LISTENER.encode()
        elif path.startswith("/static/"):
            file = (STATIC / path.removeprefix("/static/")).resolve()
            if file.is_relative_to(STATIC) and file.is_file():
                body = file.read_bytes()
        if body is None:
            route.fulfill(status=404, headers=headers, body="not found")
            return
        content_type = CONTENT_TYPES.get(Path(path).suffix, "application/octet-stream")
        route.fulfill(status=200, headers=headers, content_type=content_type, body=body)


@pytest.fixture(scope="module")
def playwright(playwright_session: Playwright) -> Iterator[Playwright]:
    assert sync_playwright is not None, "Playwright is required under CI=true"
    yield playwright_session


def open_page(
    playwright: Playwright, site: Site, path: str = "/test.html", *, ready: bool = True
) -> Page:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )
    page = browser.new_context().new_page()
    page.on("console", lambda m: site.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: site.console.append(f"pageerror: {e}"))
    page.route(f"{ORIGIN}/**", site.handle)
    page.goto(f"{ORIGIN}{path}")
    if ready:
        page.evaluate(f"async () => {{ const m = await import('{MODULE}'); await m.ready(); }}")
    return page


def violations(page: Page, site: Site) -> list[str]:
    found: list[str] = page.evaluate("() => window.__cspViolations")
    return found + [m for m in site.console if m.startswith(("error", "pageerror", "warning"))]


@pytest.fixture(scope="module")
def module_page(playwright: Playwright) -> Iterator[tuple[Page, Site]]:
    site = Site()
    page = open_page(playwright, site)
    yield page, site
    page.context.browser.close()  # type: ignore[union-attr]


@pytest.fixture
def js(module_page: tuple[Page, Site]) -> Iterator[Page]:
    """The shared test page; after each test, no CSP violation and no console error."""
    page, site = module_page
    yield page
    assert violations(page, site) == []


def call(page: Page, body: str, *args: Any) -> Any:
    """Run ``body`` (JS statements using ``m``, the module, and ``args``) in the page."""
    return page.evaluate(
        f"async (args) => {{ const m = await import('{MODULE}'); {body} }}", list(args)
    )


PROVE = """
const [share, r, context, k] = args;
const out = m.provePartial(m.fromHex(share), m.fromHex(r), m.fromHex(context),
                           k === null ? undefined : m.fromHex(k));
return [m.toHex(out.partial), m.toHex(out.c), m.toHex(out.s)];
"""


CASES: list[dict[str, Any]] = vectors("unseal")["cases"]  # type: ignore[assignment]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['threshold']}-of-{c['officers']}")
def test_prove_partial_reproduces_the_vectors(js: Page, case: dict[str, Any]) -> None:
    for p in case["partials"]:
        got = call(js, PROVE, p["share"], case["R"], case["context"], p["k"])
        assert got == [p["partial"], p["proof_c"], p["proof_s"]]


def test_partials_with_random_nonces_verify_in_python(js: Page) -> None:
    x = group.random_scalar()
    shares = split(x, shares=3, threshold=2)
    ephemeral = group.base_mul(group.random_scalar())
    context = request_context(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    proofs = set()
    for share in shares:
        for _ in range(2):
            partial, c, s = call(js, PROVE, share.value.hex(), ephemeral.hex(), context.hex(), None)
            proof = Proof(bytes.fromhex(c), bytes.fromhex(s))
            verify_partial(share.commitment, ephemeral, bytes.fromhex(partial), proof, context)
            assert partial == group.mul(share.value, ephemeral).hex()
            proofs.add(c)
        # Bound to the context: the same partial does not verify for another request.
        other = request_context(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
        with pytest.raises(Exception, match="does not verify"):
            verify_partial(share.commitment, ephemeral, bytes.fromhex(partial), proof, other)
    assert len(proofs) == 6  # fresh nonces each time


def test_request_context_matches_python(js: Page) -> None:
    for _ in range(5):
        ids = [uuid.uuid4() for _ in range(3)]
        got = call(js, "return m.toHex(m.requestContext(...args));", *map(str, ids))
        assert got == request_context(*ids).hex()
    upper = [str(i).upper() for i in ids]
    assert call(js, "return m.toHex(m.requestContext(...args));", *upper) == got


@pytest.mark.parametrize(
    "bad", ["not-a-uuid", "00000000-0000-0000-0000-00000000012", "{00000000-0000-0000-0000-0000}"]
)
def test_request_context_refuses_a_non_uuid(js: Page, bad: str) -> None:
    ok = str(uuid.uuid4())
    message = call(
        js,
        "try { m.requestContext(...args); return null; } catch (e) { return e.message; }",
        ok,
        bad,
        ok,
    )
    assert message == "the evidence id is not a UUID"


PROVE_ERROR = """
const [share, r] = args;
try { m.provePartial(m.fromHex(share), m.fromHex(r), new Uint8Array(8)); return null; }
catch (e) { return e.message; }
"""
IDENTITY = "01" + "00" * 31
NOT_A_POINT = "evidence point R is not a valid Ed25519 group element"
SMALL_ORDER = "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"  # order 2
L_BYTES = group.GROUP_ORDER.to_bytes(32, "little").hex()


@pytest.mark.parametrize(
    ("share", "point", "message"),
    [
        ("01" + "00" * 31, IDENTITY, NOT_A_POINT),
        ("01" + "00" * 31, SMALL_ORDER, NOT_A_POINT),
        ("01" + "00" * 31, "00" * 31 + "80", NOT_A_POINT),
        ("00" * 32, group.BASE_POINT.hex(), "scalar must encode an integer in [1, l)"),
        (L_BYTES, group.BASE_POINT.hex(), "scalar must encode an integer in [1, l)"),
    ],
)
def test_prove_partial_refuses_bad_points_and_scalars(
    js: Page, share: str, point: str, message: str
) -> None:
    assert call(js, PROVE_ERROR, share, point) == message


def make_share_file(
    tmp_path: Path, strength: str = "interactive", public_key: bytes | None = None
) -> tuple[Share, ShareFile, str]:
    x = group.random_scalar()
    share = split(x, shares=3, threshold=2)[1]
    sealed = seal_share(
        share,
        PASSPHRASE,
        ceremony_id=uuid.uuid4(),
        officer="alice",
        threshold=2,
        officers=3,
        public_key=public_key or group.base_mul(x),
        strength=strength,  # type: ignore[arg-type]
    )
    path = tmp_path / "alice.share.json"
    write_share_file(path, sealed)
    return share, read_share_file(path), path.read_text()


OPEN = """
const [text, passphrase, expected] = args;
try {
  const share = m.openShare(text, passphrase, expected);
  return {index: share.index, value: m.toHex(share.value), ceremony: share.ceremony};
} catch (e) { return {error: e.message, name: e.name}; }
"""


@pytest.mark.parametrize("strength", ["interactive", "moderate"])
def test_open_share_gives_the_python_share(js: Page, tmp_path: Path, strength: str) -> None:
    share, sealed, text = make_share_file(tmp_path, strength)
    assert sealed.open(PASSPHRASE).value == share.value
    expected = {"publicKey": sealed.public_key.hex(), "shareSetId": str(sealed.ceremony_id)}
    got = call(js, OPEN, text, PASSPHRASE, expected)
    assert got == {"index": 2, "value": share.value.hex(), "ceremony": str(sealed.ceremony_id)}


def test_open_share_refusals(js: Page, tmp_path: Path) -> None:
    _, _, text = make_share_file(tmp_path)
    wrong = "wrong passphrase for this share file (or the file was altered)"
    assert call(js, OPEN, text, PASSPHRASE + "!", {})["error"] == wrong
    data = json.loads(text)
    box = bytearray(base64.b64decode(data["box"]))
    box[30] ^= 1
    tampered = json.dumps({**data, "box": base64.b64encode(box).decode()})
    assert call(js, OPEN, tampered, PASSPHRASE, {})["error"] == wrong
    other_key = group.base_mul(group.random_scalar()).hex()
    assert call(js, OPEN, text, PASSPHRASE, {"publicKey": other_key})["error"] == (
        "this share file belongs to another evidence key"
    )
    assert call(js, OPEN, text, PASSPHRASE, {"shareSetId": str(uuid.uuid4())})["error"] == (
        "this share file is from another key ceremony (its shares no longer count here)"
    )
    # A file whose commitment is another share's: opened fine, but refused after opening.
    stranger = group.base_mul(group.random_scalar()).hex()
    assert (
        call(js, OPEN, json.dumps({**data, "commitment": stranger}), PASSPHRASE, {})["error"]
        == "the share does not match its commitment; the file is corrupt"
    )
    assert call(js, OPEN, json.dumps({**data, "format": "x"}), PASSPHRASE, {})["error"] == (
        "this is not a privplate share file (wrong format)"
    )
    assert call(js, OPEN, "{", PASSPHRASE, {})["name"] == "ApproveError"
    costly = {**data, "kdf": {**data["kdf"], "memlimit": 2 * 1024**3}}
    assert "cost above" in call(js, OPEN, json.dumps(costly), PASSPHRASE, {})["error"]


def approve_page(
    request_id: uuid.UUID, sealed: ShareFile, evidence_id: uuid.UUID, ephemeral: bytes
) -> str:
    """The approve form exactly as the console renders it, posting to the test origin."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>approve</title>
<script src="/csp-listener.js"></script>
<script type="module" src="{MODULE}"></script>
</head><body><main>
<form id="officer-approve" method="post" action="{ORIGIN}/submit"
      data-request-id="{request_id}" data-evidence-id="{evidence_id}"
      data-share-set-id="{sealed.ceremony_id}" data-ephemeral="{ephemeral.hex()}"
      data-public-key="{sealed.public_key.hex()}" data-threshold="{sealed.threshold}">
  <input type="hidden" name="csrf" value="tok-123">
  <input type="hidden" name="share_index"> <input type="hidden" name="partial">
  <input type="hidden" name="proof">
  <label for="share-file">Your share file</label>
  <input id="share-file" type="file" accept=".json,application/json">
  <label for="share-passphrase">Passphrase</label>
  <input id="share-passphrase" type="password" autocomplete="off">
  <p id="approve-status" role="status" aria-live="polite"></p>
  <button type="submit">Approve</button>
</form></main></body></html>"""


@pytest.fixture
def form_site(
    playwright: Playwright, tmp_path: Path
) -> Iterator[tuple[Page, Site, dict[str, Any]]]:
    share, sealed, _ = make_share_file(tmp_path)
    ids = {"request": uuid.uuid4(), "evidence": uuid.uuid4()}
    ephemeral = group.base_mul(group.random_scalar())
    site = Site()
    site.pages["/approve.html"] = approve_page(ids["request"], sealed, ids["evidence"], ephemeral)
    page = open_page(playwright, site, "/approve.html")
    facts = {"share": share, "sealed": sealed, "ephemeral": ephemeral, "path": tmp_path, **ids}
    yield page, site, facts
    page.context.browser.close()  # type: ignore[union-attr]


def test_approve_form_posts_only_index_partial_proof_and_csrf(
    form_site: tuple[Page, Site, dict[str, Any]],
) -> None:
    page, site, facts = form_site
    page.set_input_files("#share-file", str(facts["path"] / "alice.share.json"))
    page.fill("#share-passphrase", PASSPHRASE)
    page.click("button[type=submit]")
    page.wait_for_url(f"{ORIGIN}/submit")
    assert len(site.posts) == 1
    body = parse_qs(site.posts[0], keep_blank_values=True, strict_parsing=True)
    assert sorted(body) == ["csrf", "partial", "proof", "share_index"]
    assert body["csrf"] == ["tok-123"]
    assert PASSPHRASE not in site.posts[0] and facts["share"].value.hex() not in site.posts[0]
    share: Share = facts["share"]
    assert body["share_index"] == [str(share.index)]
    proof = bytes.fromhex(body["proof"][0])
    assert len(body["proof"][0]) == 128
    context = request_context(facts["request"], facts["evidence"], facts["sealed"].ceremony_id)
    verify_partial(
        share.commitment,
        facts["ephemeral"],
        bytes.fromhex(body["partial"][0]),
        Proof.from_bytes(proof),
        context,
    )
    assert [m for m in site.console if m.startswith(("error", "pageerror"))] == []


def test_approve_form_reports_a_wrong_passphrase_and_posts_nothing(
    form_site: tuple[Page, Site, dict[str, Any]],
) -> None:
    page, site, facts = form_site
    page.set_input_files("#share-file", str(facts["path"] / "alice.share.json"))
    page.fill("#share-passphrase", PASSPHRASE + "x")
    page.click("button[type=submit]")
    status = page.locator("#approve-status")
    status.filter(has_text="Not approved").wait_for()
    assert status.text_content() == (
        "Not approved: wrong passphrase for this share file (or the file was altered)."
    )
    assert page.input_value("#share-passphrase") == ""
    assert page.is_enabled("button[type=submit]")
    assert site.posts == []
    assert violations(page, site) == []


def test_the_violation_listener_sees_a_blocked_wasm_compile(playwright: Playwright) -> None:
    """Control: without 'wasm-unsafe-eval' the same page reports a violation, so the empty
    lists the other tests assert are not the listener's blindness."""
    site = Site(policy=CSP.replace(" 'wasm-unsafe-eval'", ""))
    page = open_page(playwright, site, ready=False)
    try:
        failed = call(page, "try { await m.ready(); return null; } catch (e) { return e.message; }")
        assert failed == "libsodium did not initialise (is WebAssembly allowed?)"
        assert any(v.startswith("script-src") for v in violations(page, site))
    finally:
        page.context.browser.close()  # type: ignore[union-attr]


def test_the_verified_policy_is_the_one_the_console_sends() -> None:
    from privplate.console.security import CSP as SERVED

    assert SERVED == CSP


def test_no_chromium_skip_under_ci() -> None:
    if ON_CI:
        assert shutil.which(CHROMIUM) is not None
