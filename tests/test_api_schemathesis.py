"""Schemathesis against the app's own OpenAPI schema: no 5xx answer, no schema violation.

Every operation is fuzzed in-process (schemathesis' ASGI transport, no network) as a caller
the route lets in (one role per operation, from TABLE in test_api_roles), so the generated
requests reach the handlers instead of bouncing off 401/403. Device operations get a real
Ed25519 signature over the exact bytes sent, computed on the final prepared request.

Deterministic and bounded: a fixed seed, derandomized Hypothesis, no example database, and a
small number of examples per operation. Runs on SQLite, or on PostgreSQL when
PRIVPLATE_TEST_DATABASE_URL is set (the ``api`` fixture picks the backend).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from privplate.api import create_app
from privplate.devices import DeviceKey
from privplate.identity.roles import Role
from tests import factories
from tests.api_support import Api, now
from tests.test_api_roles import TABLE

SEED = 20261122
MAX_EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The role each operation is called as, when several may call it: the first of these it allows.
ROLE_PREFERENCE = (
    Role.OPERATOR,
    Role.INVESTIGATOR,
    Role.COMPLIANCE,
    Role.ADMIN,
    Role.AUDITOR,
    Role.DEVICE,
)
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        # The app answers from a database that the fuzzed requests themselves fill, so slow
        # examples and filtered-out data are expected; they say nothing about the API.
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
        "generation": {
            "mode": "all",
            "deterministic": True,
            "max-examples": MAX_EXAMPLES,
            "database": "none",
        },
    }
)


class DeviceSignature(requests.auth.AuthBase):
    """Signs the final prepared request (method, path with query, body bytes) as the device."""

    def __init__(self, key: DeviceKey) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        assert request.method is not None and request.path_url
        request.headers.update(self.key.sign_request(request.method, request.path_url, body))
        return request


def credentials(api: Api, method: str, path: str) -> dict[str, Any]:
    """Transport arguments that let ``method path`` in: a bearer key or a device signature."""
    allowed = TABLE[(method.upper(), path)]
    if not allowed:
        return {}
    role = next(r for r in ROLE_PREFERENCE if r in allowed)
    if role is Role.DEVICE:
        return {"auth": DeviceSignature(api.device)}
    return {"headers": {"Authorization": f"Bearer {api.keys[role]}"}}


@pytest.fixture
def api_schema(
    api: Api, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[schemathesis.BaseSchema]:
    # schemathesis' lazy-schema runner reads (and rewrites, to name each operation's subtest)
    # the private `Node._nodeid`, which pytest >= 9.2 no longer has.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    # Query quotas high enough that fuzzed queries reach the handler instead of a 429 after
    # the 25th (quota refusals have their own tests).
    monkeypatch.setenv("PRIVPLATE_QUERIES__PER_USER_PER_DAY", "10000")
    monkeypatch.setenv("PRIVPLATE_QUERIES__PER_DEPLOYMENT_PER_DAY", "100000")
    # A second app on the same deployment (users, keys and the device the `api` fixture
    # registered): schemathesis runs its lifespan and sends requests to it in-process.
    app = create_app(api.home, run_scheduler=False)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    finally:
        shutdown_lifespans()


# `GET /alerts/stream` is Server-Sent Events that never end: it is left out here and covered
# by the alert tests, which read it with a client that disconnects.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(method="GET", path="/alerts/stream")


@schema.parametrize()
def test_no_server_error_and_responses_match_the_schema(case: schemathesis.Case, api: Api) -> None:
    case.call_and_validate(
        checks=CHECKS, **credentials(api, case.operation.method, case.operation.path)
    )


def _send(
    api_schema: schemathesis.BaseSchema,
    api: Api,
    method: str,
    path: str,
    status: int,
    **case: Any,
) -> Any:
    """One hand-built request through schemathesis, with the same credentials and checks."""
    response = (
        api_schema[path][method]
        .Case(**case)
        .call_and_validate(checks=CHECKS, **credentials(api, method, path))
    )
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def test_answers_with_data_match_the_schema(api_schema: schemathesis.BaseSchema, api: Api) -> None:
    """The fuzzer rarely builds a valid signed batch for a hotlisted plate, so the answers
    that carry reads, alerts and tokens are checked here with hand-built valid requests."""
    plate = "7ABC123"
    _send(api_schema, api, "POST", "/hotlists", 201, body={"name": "bolo", "source": "local-bolo"})
    entry = {"plate": plate, "reason": "reported stolen", "case_number": "SPD-2026-1"}
    _send(
        api_schema,
        api,
        "POST",
        "/hotlists/{name}/entries",
        201,
        path_parameters={"name": "bolo"},
        body={"entries": [entry]},
    )
    read = factories.read(api.dep, plate, camera_id="gate-1", alternates=["7A8C123"])
    batch = json.loads(api.batch_body([read]))
    first = _send(api_schema, api, "POST", "/ingest", 200, body=batch)
    assert first["inserted"] == 1 and len(first["alerts"]) == 1, first
    again = _send(api_schema, api, "POST", "/ingest", 200, body=batch)
    assert again["replayed"] is True, again

    alerts = _send(api_schema, api, "GET", "/alerts", 200)
    assert [a["id"] for a in alerts] == first["alerts"]
    tokens = _send(
        api_schema, api, "GET", "/device/hotlist-tokens", 200, query={"epoch_id": read.epoch_id}
    )
    assert tokens["tokens"], tokens
    _send(api_schema, api, "GET", "/device/epoch", 200)
    entries = _send(
        api_schema,
        api,
        "GET",
        "/hotlists/{name}/entries",
        200,
        path_parameters={"name": "bolo"},
        query={"reveal": True},
    )
    assert [e["plate"] for e in entries] == [plate]

    query = {
        "plate": plate,
        "start": (now() - timedelta(hours=1)).isoformat(),
        "end": (now() + timedelta(minutes=5)).isoformat(),
        "purpose": "stolen-vehicle",
        "case_number": "SPD-2026-1",
        "justification": "Vehicle reported stolen from the Elm St lot; owner statement.",
    }
    answer = _send(api_schema, api, "POST", "/queries", 200, body=query)
    assert [m["read_id"] for m in answer["matches"]] == [str(read.read_id)]
    _send(api_schema, api, "GET", "/queries/mine", 200)
    _send(api_schema, api, "GET", "/compliance/queries", 200)
    _send(api_schema, api, "GET", "/audit/entries", 200)
