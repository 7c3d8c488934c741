"""A flood of refused device requests is on the record without flooding the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from privplate.deployment import Deployment
from privplate.devices import DeviceKey
from privplate.devices.refusals import RefusalLog
from privplate.transparency import build_report
from tests import factories
from tests.api_support import CAMERA, Api


def entries(dep: Deployment) -> list[dict[str, object]]:
    return [
        e.entry.details
        for e in dep.audit.entries(action="devices.request_refused")
        if e.entry is not None
    ]


def test_one_entry_per_kind_and_window_with_the_rest_counted(dep: Deployment) -> None:
    clock = [1000.0]
    log = RefusalLog(dep.audit, window_seconds=60, clock=lambda: clock[0])
    for _ in range(50):
        log.refused(path="/ingest", reason="the signature does not match the request")
    log.refused(path="/ingest", reason="request time is 301 seconds off")
    log.refused(path="/ingest", reason="request time is 999 seconds off")  # same kind
    assert len(entries(dep)) == 2
    clock[0] += 61
    log.refused(path="/ingest", reason="the signature does not match the request")
    log.refused(path="/ingest", reason="the signature does not match the request")
    log.flush()  # at shutdown: the one counted in the new window, and the skew one
    details = entries(dep)
    assert details[2]["similar_refusals_not_recorded"] == 49
    flushed = {d["reason"]: d["similar_refusals_not_recorded"] for d in details[3:]}
    assert flushed == {
        "the signature does not match the request": 1,
        "request time is 301 seconds off": 1,
    }
    # The transparency report counts every refusal, recorded or counted.
    now = datetime.now(UTC)
    report = build_report(dep, start=now - timedelta(days=1), end=now + timedelta(minutes=1))
    assert report["oversight"]["refused_device_requests"] == 54


def test_a_flood_of_bad_requests_adds_one_entry(api: Api) -> None:
    stranger = DeviceKey.generate("edge-9")
    body = api.batch_body([factories.read(api.dep, "1ABC234", camera_id=CAMERA)])
    before = len(entries(api.dep))
    for _ in range(40):
        assert api.signed("POST", "/ingest", body, key=stranger).status_code == 401
    assert len(entries(api.dep)) == before + 1
