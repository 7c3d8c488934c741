"""Alerts and camera state to an MQTT broker, with Home Assistant MQTT discovery.

Per registered camera, Home Assistant discovers a device with four entities: reads per
minute and last contact (sensors), "hotlist alert" (a binary sensor, on for
``mqtt.alert_on_seconds`` after an alert) and an event entity firing on each alert. Alerts
reach the broker through the webhook outbox (its MQTT endpoint), so they are delivered at
least once by whichever process claims them, across restarts and dead workers. Nothing
published names a plate, a token or an image: an alert event carries the alert record's
hotlist entry (list, reason, case number), camera and times.

paho-mqtt comes with the ``mqtt`` extra and is imported only when a publisher starts.
"""

from privplate.mqtt.topics import StateValue, Topics

__all__ = ["StateValue", "Topics"]
