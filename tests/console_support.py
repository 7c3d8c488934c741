"""Console sessions without a browser: the app under TestClient over https (the session
cookie is Secure), one signed-in client per role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from privplate.api import create_app
from privplate.deployment import Deployment
from privplate.identity import accounts
from privplate.identity.roles import USER_ROLES, Role

CAMERA = "gate-1"
BASE = "https://testserver"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def password(name: str) -> str:
    return f"{name} console passphrase"


@dataclass
class ConsoleClients:
    app_client: TestClient
    clients: dict[Role, TestClient]
    csrf: dict[Role, str]
    names: dict[Role, str]

    @property
    def dep(self) -> Deployment:
        dep: Deployment = self.app_client.app.state.services.dep  # type: ignore[attr-defined]
        return dep

    def anonymous(self) -> TestClient:
        return TestClient(self.app_client.app, base_url=BASE)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, name: str, secret: str | None = None) -> str:
    """Sign ``client`` in through the form; the CSRF token of the signed-in session."""
    form = client.get("/console/sign-in")
    answer = client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(form.text), "name": name, "password": secret or password(name)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/console/account").text)


def open_console(home: Path) -> Iterator[ConsoleClients]:
    with Deployment.open(home, actor="test-setup") as dep:
        dep.add_camera(CAMERA)
        names = {}
        for role in USER_ROLES:
            name = f"{role.value}-web"
            accounts.create_user(
                db=dep.db,
                audit=dep.audit,
                actor="test",
                name=name,
                role=role,
                password=password(name),
            )
            names[role] = name
    app = create_app(home, run_scheduler=False)
    with TestClient(app, base_url=BASE) as main:
        clients: dict[Role, TestClient] = {}
        csrf: dict[Role, str] = {}
        for role, name in names.items():
            client = TestClient(app, base_url=BASE)
            csrf[role] = sign_in(client, name)
            clients[role] = client
        yield ConsoleClients(main, clients, csrf, names)
