"""An API under test: the app on a fresh deployment, a bearer key per role, a signed device."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from privplate.api import create_app
from privplate.deployment import Deployment
from privplate.devices import DeviceKey, IngestBatch
from privplate.identity import accounts
from privplate.identity.roles import USER_ROLES, Role
from privplate.services import Services
from privplate.store import ReadIn

CAMERA = "gate-1"
DEVICE = "edge-1"


@dataclass
class Api:
    home: Path
    client: TestClient
    keys: dict[Role, str]
    device: DeviceKey
    names: dict[Role, str] = field(default_factory=dict)

    @property
    def app(self) -> FastAPI:
        app: FastAPI = self.client.app  # type: ignore[assignment]
        return app

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def dep(self) -> Deployment:
        return self.services.dep

    def auth(self, role: Role | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"} if role is not None else {}

    def call(self, role: Role | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.auth(role), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def signed(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        key: DeviceKey | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        key = key or self.device
        signed = key.sign_request(method, path, body)
        all_headers = {**signed, "Content-Type": "application/json", **(headers or {})}
        return self.client.request(method, path, content=body, headers=all_headers)

    def batch_body(self, reads: list[ReadIn], batch_id: uuid.UUID | None = None) -> bytes:
        batch = IngestBatch.from_store(batch_id or uuid.uuid4(), reads, [])
        return json.dumps(batch.model_dump(mode="json")).encode()

    def ingest(self, reads: list[ReadIn]) -> httpx.Response:
        return self.signed("POST", "/ingest", self.batch_body(reads))


def make_users(dep: Deployment) -> tuple[dict[Role, str], dict[Role, str]]:
    """One service account per role, each with an API key (no Argon2 cost per test)."""
    keys: dict[Role, str] = {}
    names: dict[Role, str] = {}
    for role in USER_ROLES:
        name = f"{role.value}-1"
        accounts.create_user(
            db=dep.db, audit=dep.audit, actor="test", name=name, role=role, password=None
        )
        keys[role] = accounts.create_api_key(db=dep.db, audit=dep.audit, actor="test", name=name)[1]
        names[role] = name
    return keys, names


def open_api(home: Path, *, add_camera: bool = True) -> Iterator[Api]:
    from privplate.devices import registry

    with Deployment.open(home, actor="test-setup") as dep:
        if add_camera:
            dep.add_camera(CAMERA)
        keys, names = make_users(dep)
        device = DeviceKey.generate(DEVICE)
        registry.register_device(
            db=dep.db,
            audit=dep.audit,
            actor="test",
            device_id=DEVICE,
            public_key=device.public_key,
            cameras=[CAMERA],
        )
    app = create_app(home, run_scheduler=False)
    with TestClient(app) as client:
        yield Api(home, client, keys, device, names)


def now() -> datetime:
    return datetime.now(UTC)
