"""The retention promise over HTTP: /retention/status and the Prometheus /metrics."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from privplate.identity.roles import Role
from tests import factories
from tests.api_support import Api


def test_status_and_metrics_report_each_promise(api: Api) -> None:
    now = datetime.now(UTC)
    dep = api.dep
    hit = factories.read(dep, "HIT123", observed_at=now - timedelta(days=3))
    factories.ingest(dep, [hit], hits={hit.read_id}, now=now - timedelta(days=3))
    plain = factories.read(dep, "NEW123", observed_at=now - timedelta(hours=1))
    factories.ingest(dep, [plain], now=now - timedelta(hours=1))

    status = api.call(Role.AUDITOR, "GET", "/retention/status")
    assert status.status_code == 200, status.text
    body = status.json()
    promises = {p["kind"]: p for p in body["promises"]}
    assert set(promises) == {"non_hit_reads", "hit_reads", "evidence"}
    assert body["within_bound"] is True
    assert 3500 < body["oldest_non_held_read_age_seconds"] < 4000  # the non-hit, not the hit
    assert 3 * 86_400 - 60 < promises["hit_reads"]["oldest_non_held_age_seconds"] < 3 * 86_400 + 60

    text = api.call(Role.AUDITOR, "GET", "/metrics").text
    gauges = {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'privplate_oldest_non_held_age_seconds\{kind="(\w+)"\} ([\d.]+)', text
        )
    }
    assert gauges["evidence"] == 0.0 and 3500 < gauges["non_hit_reads"] < 4000
    assert gauges["hit_reads"] > 3 * 86_400 - 60
    assert "privplate_retention_within_bound 1" in text
    bound = re.search(r'privplate_retention_bound_seconds\{kind="non_hit_reads"\} (\d+)', text)
    assert bound is not None and int(bound.group(1)) == body["bound_seconds"]
    # Neither answer names a plate.
    assert "HIT123" not in text and "HIT123" not in status.text
