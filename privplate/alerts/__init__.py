"""Alerts raised when a read matches a hotlist: recorded, streamed, and sent to webhooks."""

from privplate.alerts.broker import AlertBroker
from privplate.alerts.records import AlertInfo, alerts_after, latest_alert_id, record_alerts
from privplate.alerts.webhooks import Webhooks, sign_body, verify_body

__all__ = [
    "AlertBroker",
    "AlertInfo",
    "Webhooks",
    "alerts_after",
    "latest_alert_id",
    "record_alerts",
    "sign_body",
    "verify_body",
]
