"""Times in request bodies must be RFC 3339 text with a zone: numbers and zone-less times are
refused with 422 naming the field, before anything is looked up or stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from privplate.identity.roles import Role
from tests import factories
from tests.api_support import Api, now
from tests.test_api_policy import query_body


@pytest.mark.parametrize(
    "start", [1_790_000_000, "1790000000", "2026-11-20T00:00:00", "2026-11-20", "yesterday"]
)
def test_query_times_must_be_rfc3339_with_a_zone(api: Api, start: Any) -> None:
    answer = api.call(Role.INVESTIGATOR, "POST", "/queries", json=query_body(start=start))
    assert answer.status_code == 422, answer.text
    assert "start" in answer.text and str(start) not in answer.text
    with api.dep.db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM queries").scalar_one() == 0


@pytest.mark.parametrize("start", ["2026-11-20T00:00:00Z", "2026-11-20t00:00:00.5+01:00"])
def test_rfc3339_query_times_pass(api: Api, start: str) -> None:
    answer = api.call(Role.INVESTIGATOR, "POST", "/queries", json=query_body(start=start))
    assert answer.status_code != 422, answer.text


def test_a_device_batch_with_a_numeric_time_is_refused_whole(api: Api) -> None:
    read = factories.read(api.dep, "7ABC123", observed_at=now())
    batch = json.loads(api.batch_body([read]))
    batch["reads"][0]["observed_at"] = int(now().timestamp())
    answer = api.signed("POST", "/ingest", json.dumps(batch).encode())
    assert answer.status_code == 422 and "observed_at" in answer.text
    with api.dep.db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM reads").scalar_one() == 0
    assert api.ingest([read]).status_code == 200  # the same read with an RFC 3339 time
