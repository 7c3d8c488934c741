"""The browser suite: one real ``privplate serve`` (a child process, its access and application
log in a file) on one deployment, driven by real Chromium through Playwright, one persistent
profile per person so that the privacy scan at the end (test_zz_privacy.py) can read what a
browser kept on disk.

Every request URL any page made is recorded, every CSP violation Chromium reports is collected,
and every plate a test types or ingests is registered in ``console.plates``: the scan looks for
exactly those.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import database_in

pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
#: Kept by CI (the clone's folder): one PNG per screen, named by the test that took it.
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CAMERA = "gate-1"
PASSWORD = "{} console passphrase"
SHARE_PASSPHRASE = "{} share passphrase"
# name -> (role, person). ivy holds an investigator and a compliance account (one person);
# ivy-cmp is made after the ceremony and holds NO share (a person with an investigator account
# cannot be dealt one): a test lends it another officer's share file to try approving ivy's
# own request, which must be refused because it is the requester.
USERS = {
    "olive": ("operator", None),
    "ivan": ("investigator", None),
    "cora": ("compliance", None),
    "cole": ("compliance", None),
    "cody": ("compliance", None),
    "audra": ("auditor", None),
    "adam": ("admin", None),
    "ivy": ("investigator", None),
}
LATER_USERS = {"ivy-cmp": ("compliance", "ivy")}
#: A second person for felony-investigation searches (no other test searches for it), and every
#: answered search drawn for a spot check, so that a test's own search is surely in the queue.
SEARCH_RULES = """
[queries]
approval_required = ["felony-investigation"]
spot_check_share = 1.0
"""
#: The key ceremony's officers (2 of 3); share files at console.shares[name].
OFFICERS = ("cora", "cole", "cody")

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI needs Debian's chromium at /usr/bin/chromium for the browser suite")
    pytest.skip("no /usr/bin/chromium (apt install chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Console:
    """The running console and what the suite watches of it."""

    url: str
    home: Path
    database_url: str
    log: Path
    profiles: Path
    shares: dict[str, Path]
    playwright: object
    plates: set[str] = field(default_factory=set)
    urls: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    contexts: dict[str, object] = field(default_factory=dict)

    def password(self, name: str) -> str:
        return PASSWORD.format(name)

    def share_passphrase(self, name: str) -> str:
        return SHARE_PASSPHRASE.format(name)

    def context(self, name: str):  # type: ignore[no-untyped-def]
        """``name``'s own Chromium (a persistent profile), signed in."""
        if name in self.contexts:
            return self.contexts[name]
        ctx = self.playwright.chromium.launch_persistent_context(  # type: ignore[attr-defined]
            str(self.profiles / name),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1200, "height": 900},
        )
        ctx.on("request", lambda r: self.urls.append(r.url))
        ctx.on("page", self._watch)
        for existing in ctx.pages:
            self._watch(existing)
        self.contexts[name] = ctx
        if name in USERS or name in LATER_USERS:
            self.sign_in(ctx.pages[0] if ctx.pages else ctx.new_page(), name)
        return ctx

    def _watch(self, page) -> None:  # type: ignore[no-untyped-def]
        def on_console(msg) -> None:  # type: ignore[no-untyped-def]
            if "Content Security Policy" in msg.text or "Refused to" in msg.text:
                self.violations.append(f"{page.url}: {msg.text}")

        page.on("console", on_console)

    def page(self, name: str):  # type: ignore[no-untyped-def]
        """A page of ``name``'s signed-in browser (the same tab each time)."""
        ctx = self.context(name)
        return ctx.pages[0] if ctx.pages else ctx.new_page()

    def public_page(self):  # type: ignore[no-untyped-def]
        return self.page("public")

    def sign_in(self, page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.goto(self.url + "/console/sign-in")
        page.get_by_label("User name").fill(name)
        page.get_by_label("Password").fill(self.password(name))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        assert "/console/sign-in" not in page.url, f"{name} could not sign in"

    def shot(self, page, name: str) -> Path:  # type: ignore[no-untyped-def]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def deployment(self):  # type: ignore[no-untyped-def]
        """The same deployment, opened beside the server (for setup the console doesn't do:
        an edge run, a ceremony)."""
        from privplate.deployment import Deployment

        return Deployment.open(self.home, actor="test-setup")

    def axe(self, page) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
        """axe-core's critical and serious violations on the page as it is now (the vendored,
        same-origin build: the CSP allows no other script)."""
        page.add_script_tag(url="/console/static/vendor/axe-core/axe.min.js")
        found: list[dict[str, object]] = page.evaluate(
            """async () => {
                const r = await axe.run(document, {resultTypes: ['violations']});
                return r.violations
                    .filter(v => v.impact === 'critical' || v.impact === 'serious')
                    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                                nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
            }"""
        )
        return found

    def close_browsers(self) -> None:
        for ctx in self.contexts.values():
            ctx.close()  # type: ignore[attr-defined]
        self.contexts.clear()


def _prepare(home: Path, shares_dir: Path) -> dict[str, Path]:
    """Users (with passwords), a camera and a held key ceremony, as an admin would set up."""
    from privplate.ceremony.ceremony import hold_ceremony
    from privplate.deployment import Deployment
    from privplate.identity import accounts
    from privplate.identity.roles import Role

    with Deployment.open(home, actor="test-setup") as dep:
        dep.add_camera(CAMERA)
        for name, (role, person) in USERS.items():
            accounts.create_user(
                db=dep.db,
                audit=dep.audit,
                actor="test-setup",
                name=name,
                role=Role(role),
                password=PASSWORD.format(name),
                person=person,
            )
        result = hold_ceremony(
            dep,
            officers=[(n, SHARE_PASSPHRASE.format(n)) for n in OFFICERS],
            threshold=2,
            out_dir=shares_dir,
            strength="interactive",
        )
        for name, (role, person) in LATER_USERS.items():
            accounts.create_user(
                db=dep.db,
                audit=dep.audit,
                actor="test-setup",
                name=name,
                role=Role(role),
                password=PASSWORD.format(name),
                person=person,
            )
    return dict(result.files)


@pytest.fixture(scope="session")
def console(
    tmp_path_factory: pytest.TempPathFactory, playwright_session: object
) -> Iterator[Console]:
    from privplate.deployment import init_deployment
    from privplate.settings import CONFIG_FILENAME

    root = tmp_path_factory.mktemp("console")
    db_gen = database_in(root, "console")
    database_url = next(db_gen)
    home = root / "deployment"
    init_deployment(home, database_url=database_url)
    with (home / CONFIG_FILENAME).open("a", encoding="utf-8") as config:
        config.write(SEARCH_RULES)
    shares = _prepare(home, root / "shares")
    port = free_port()
    log = root / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVPLATE_")}
    privplate = Path(sys.executable).parent / "privplate"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(privplate),
                "serve",
                "--dir",
                str(home),
                "--port",
                str(port),
                "--log-level",
                "debug",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError("privplate serve died: " + log.read_text()) from None
                time.sleep(0.1)
        found = Console(
            url=f"http://127.0.0.1:{port}",
            home=home,
            database_url=database_url,
            log=log,
            profiles=root / "profiles",
            shares=shares,
            playwright=playwright_session,
        )
        try:
            yield found
        finally:
            found.close_browsers()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        next(db_gen, None)
        shutil.rmtree(root / "profiles", ignore_errors=True)
