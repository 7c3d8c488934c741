"""What retention works on, and nothing more: the database, the keyring, the audit log, who is
acting, and the jurisdiction's windows. A :class:`privplate.deployment.Deployment` provides
all of it; retention never needs (or imports) the whole deployment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from privplate.audit import AuditLog
from privplate.jurisdiction import WINDOW_NAMES, WindowName
from privplate.settings import Settings
from privplate.store.database import Database
from privplate.tokens.keyring import Keyring


@dataclass(frozen=True)
class RetentionRules:
    """The deployment's windows (its preset, with any lawful overrides) and purge cadence."""

    preset: str
    windows: Mapping[WindowName, timedelta]
    purge_interval: timedelta
    #: How long a device's request nonce must be remembered (twice the accepted clock skew).
    nonce_window: timedelta

    def window(self, kind: WindowName) -> timedelta:
        return self.windows[kind]

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionRules:
        return cls(
            preset=settings.retention.preset,
            windows={kind: settings.retention_window(kind) for kind in WINDOW_NAMES},
            purge_interval=timedelta(seconds=settings.retention.purge_interval_seconds),
            nonce_window=2 * timedelta(seconds=settings.server.device_request_max_age_seconds),
        )


class RetentionScope(Protocol):
    @property
    def db(self) -> Database: ...
    @property
    def keyring(self) -> Keyring: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def actor(self) -> str: ...
    @property
    def rules(self) -> RetentionRules: ...
