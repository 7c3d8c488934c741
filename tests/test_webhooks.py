"""Webhook delivery: signed POSTs, retries, and a redirect counted as a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from privplate.alerts import verify_body
from privplate.deployment import Deployment
from privplate.services import Services
from tests.webhook_support import Receiver, hotlist_of, outbox, plates, raise_alerts, wait_for


def test_a_delivery_is_signed_and_counted(dep: Deployment) -> None:
    receiver = Receiver()
    with Services(dep) as services:
        _, secret = services.webhooks.create(actor="admin", url=receiver.url + "/hook")
        hotlist_of(services, plates(1))
        [alert] = raise_alerts(services, plates(1))
        wait_for(lambda: services.webhooks.delivered == 1, "the delivery")
        services.webhooks.stop()
        assert (services.webhooks.delivered, services.webhooks.failed) == (1, 0)
    receiver.close()
    [receipt] = receiver.receipts
    headers, body = receipt.headers, receipt.body
    assert receipt.path == "/hook"
    assert verify_body(
        bytes.fromhex(secret), headers["X-Privplate-Timestamp"], body,
        headers["X-Privplate-Signature"],
    )  # fmt: skip
    [row] = outbox(dep)
    assert headers["X-Privplate-Delivery"] == str(row.id)
    sent = json.loads(body)
    assert sent["delivery"] == str(row.id) and sent["alert"]["id"] == alert.id


def test_a_redirect_is_a_failed_delivery_and_is_not_followed(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVPLATE_WEBHOOKS__MAX_ATTEMPTS", "4")
    monkeypatch.setenv("PRIVPLATE_WEBHOOKS__FIRST_RETRY_SECONDS", "0")
    elsewhere = Receiver()
    receiver = Receiver(lambda _n: 302, location=elsewhere.url + "/landing")
    with Deployment.open(home) as dep, Services(dep) as services:
        services.webhooks.create(actor="admin", url=receiver.url + "/hook")
        hotlist_of(services, plates(1))
        raise_alerts(services, plates(1))
        wait_for(lambda: services.webhooks.failed == 1, "giving up on the delivery")
        services.webhooks.stop()
        assert (services.webhooks.delivered, services.webhooks.failed) == (0, 1)
        [row] = outbox(dep)
    receiver.close()
    elsewhere.close()
    assert (row.attempts, row.last_result) == (4, "302")
    assert len(receiver.receipts) == 4  # the first try and three retries
    assert elsewhere.receipts == []  # the signature never went to the redirect's address
