"""The OpenAPI schema documents every operation: a summary, the error shape, and examples."""

from __future__ import annotations

from typing import Any

from tests.api_support import Api


def test_every_operation_has_a_summary_and_documented_errors(api: Api) -> None:
    schema = api.app.openapi()
    for path, item in schema["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert op.get("summary"), f"{where} has no summary"
            for status in ("401", "403", "422"):
                assert status in op["responses"], f"{where} does not document {status}"


def test_request_bodies_carry_examples(api: Api) -> None:
    schema = api.app.openapi()
    components: dict[str, Any] = schema["components"]["schemas"]
    for name in ("QueryIn", "EntryBody", "HotlistIn", "CameraIn", "DeviceIn", "UserIn"):
        props = components[name]["properties"]
        assert any("examples" in p for p in props.values()), f"{name} has no examples"


def _fields(schema: dict[str, Any], node: Any, seen: set[str]) -> set[str]:
    """Every property name reachable from ``node`` through $refs."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                found |= _fields(schema, schema["components"]["schemas"][name], seen)
        found |= set(node.get("properties", {}))
        for value in node.values():
            found |= _fields(schema, value, seen)
    elif isinstance(node, list):
        for value in node:
            found |= _fields(schema, value, seen)
    return found


def test_no_route_lists_or_counts_reads_without_a_plate(api: Api) -> None:
    """Reads leave the API only as the answer to a plate query, or as hotlist alerts (the
    plate is the list's own entry). Nothing else returns a read id."""
    schema = api.app.openapi()
    returning_reads = sorted(
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if "read_id" in _fields(schema, op.get("responses", {}).get("200", {}), set())
        or "read_id" in _fields(schema, op.get("responses", {}).get("201", {}), set())
    )
    # The run of an approved search answers the plate query that was filed (its plate sealed
    # to the request, SPEC §10.6), through the same QueryService.run.
    assert returning_reads == [
        "GET /alerts",
        "POST /queries",
        "POST /search-approvals/{approval_id}/run",
    ]
    assert "plate" in schema["components"]["schemas"]["QueryIn"]["required"]
