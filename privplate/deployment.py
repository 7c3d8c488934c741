"""A deployment's infrastructure: its settings, database, keyring and audit log, opened
together.

``init_deployment`` creates one (idempotently); ``Deployment.open`` is what every command, the
edge in single-box mode and the server use to reach the store. What happens to reads (ingest,
hotlist matching, alerts, searches) is the domain layer's, :class:`privplate.services.Services`,
built on top of a Deployment: there is one ingest path and the only search is the
policy-checked one.
"""

from __future__ import annotations

import getpass
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, delete

from privplate.audit import AuditLog, canonical_json, create_signing_key, read_signing_key
from privplate.errors import ConfigError, StoreError
from privplate.retention.scope import RetentionRules
from privplate.server_secret import create_server_secret
from privplate.settings import CONFIG_FILENAME, Settings, load_settings, resolve_home
from privplate.store import (
    CameraInfo,
    Database,
    IngestLimits,
    RetentionWindows,
    SqlEpochStorage,
    insert_camera,
)
from privplate.store.cameras import deactivate_camera
from privplate.store.leadership import Leadership
from privplate.store.server_models import HotlistToken, HotlistTokenEpoch
from privplate.tokens import kek as kekfile
from privplate.tokens.keyring import Keyring

CONFIG_TEMPLATE = """\
# privplate deployment configuration. Environment variables PRIVPLATE_* override these
# (nested keys with a double underscore, e.g. PRIVPLATE_RETENTION__PRESET=maine).

# SQLite path relative to this directory, or postgresql+psycopg://USER@HOST/DB
database_url = "{database_url}"
# Key-encryption key for the epoch keyring (mode 0600). It is replaced every time epoch keys
# are destroyed; never keep old copies, or destroyed epochs could be recovered from backups.
kek_file = "keys/kek.key"
# Ed25519 key that signs audit checkpoints (mode 0600). Back it up: witnesses' checkpoints
# are only verifiable against it.
audit_signing_key_file = "keys/audit-signing.key"
# Length of a token epoch in seconds (tokens of one plate differ across epochs).
epoch_seconds = {epoch_seconds}
# Evidence public key X from `privplate keys ceremony` (64 hex characters).
evidence_public_key = ""

[retention]
# One of the presets in retention/ (privplate presets lists them).
preset = "{preset}"

[plates]
# Fold look-alike characters (O->0, I->1, ...) before tokenizing. Edge and server must agree.
fold_confusables = false
"""


@dataclass
class InitReport:
    home: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def init_deployment(
    home: Path | str | None,
    *,
    database_url: str = "sqlite:///privplate.db",
    preset: str = "vendor-default-30d",
    epoch_seconds: int = 86_400,
) -> InitReport:
    """Create (or complete) a deployment in ``home``. Never overwrites existing keys or config."""
    root = resolve_home(home)
    report = InitReport(home=root)
    root.mkdir(parents=True, exist_ok=True)
    config = root / CONFIG_FILENAME
    if config.exists():
        report.kept.append(CONFIG_FILENAME)
    else:
        config.write_text(
            CONFIG_TEMPLATE.format(
                database_url=database_url, epoch_seconds=epoch_seconds, preset=preset
            ),
            encoding="utf-8",
        )
        report.created.append(CONFIG_FILENAME)
    settings = load_settings(root)
    keys_dir = settings.kek_path.parent
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys_dir, 0o700)
    if settings.kek_path.exists():
        report.kept.append(_shown(settings.kek_path, root))
    else:
        kekfile.write_kek(settings.kek_path, kekfile.new_kek(1))
        report.created.append(_shown(settings.kek_path, root))
    if settings.audit_signing_key_path.exists():
        report.kept.append(_shown(settings.audit_signing_key_path, root))
    else:
        create_signing_key(settings.audit_signing_key_path)
        report.created.append(_shown(settings.audit_signing_key_path, root))
    if create_server_secret(settings.server_secret_path):
        report.created.append(_shown(settings.server_secret_path, root))
    else:
        report.kept.append(_shown(settings.server_secret_path, root))
    Database(settings.resolved_database_url).migrate_and_dispose()
    report.created.append("database schema (migrated to the newest revision)")
    with Deployment.open(root, settings=settings, actor=cli_actor()) as dep:
        dep.keyring.current_key()  # the edge can tokenize at once
    return report


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def cli_actor() -> str:
    """Who is acting when a command runs on this machine: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def _settings_digest(settings: Settings) -> tuple[str, dict[str, object]]:
    # What governs behaviour (not where files live): retention, plates, epochs, ingest limits.
    summary = settings.model_dump(
        mode="json",
        include={
            "epoch_seconds",
            "evidence_public_key",
            "plates",
            "retention",
            "ingest",
            "queries",
            "hotlists",
        },
    )
    return hashlib.sha256(canonical_json(summary)).hexdigest(), summary


class Deployment:
    """Settings, database and keyring of one deployment."""

    def __init__(
        self, settings: Settings, db: Database, keyring: Keyring, audit: AuditLog, actor: str
    ) -> None:
        self.settings = settings
        self.db = db
        self.keyring = keyring
        self.audit = audit
        self.actor = actor
        #: Whether this process leads the deployment's periodic jobs (privplate.leader).
        self.leadership = Leadership(db)
        #: Called after a camera was added or deactivated and committed (the MQTT publisher
        #: announces or clears its Home Assistant discovery).
        self.camera_listeners: list[Callable[[], None]] = []

    @classmethod
    def open(
        cls,
        home: Path | str | None = None,
        *,
        settings: Settings | None = None,
        actor: str | None = None,
    ) -> Self:
        settings = settings or load_settings(home)
        if not (settings.home / CONFIG_FILENAME).exists() and not os.environ.get(
            "PRIVPLATE_DATABASE_URL"
        ):
            raise ConfigError(
                f"no deployment in {settings.home} ({CONFIG_FILENAME} is missing); run "
                f"`privplate init --dir {settings.home}` or pass --dir"
            )
        settings.check_key_files()
        db = Database(settings.resolved_database_url)
        current, head = db.schema_revision()
        if current != head:
            db.dispose()
            raise StoreError(
                f"database schema is at {current or 'nothing'}, expected {head}; run "
                f"`privplate init --dir {settings.home}` to migrate it"
            )
        try:
            audit = AuditLog(db, read_signing_key(settings.audit_signing_key_path))
            who = actor or cli_actor()

            def record_destruction(conn: Connection, epochs: Sequence[int], kek_gen: int) -> None:
                # Hotlist tokens of a destroyed epoch could only ever match its (now
                # unmatchable) reads; they go with the key.
                conn.execute(delete(HotlistToken).where(HotlistToken.epoch_id.in_(list(epochs))))
                conn.execute(
                    delete(HotlistTokenEpoch).where(HotlistTokenEpoch.epoch_id.in_(list(epochs)))
                )
                audit.append(
                    conn,
                    actor=who,
                    action="keys.epochs_destroyed",
                    details={"epochs": list(epochs), "kek_generation": kek_gen},
                )

            storage = SqlEpochStorage(db, on_destroy=record_destruction)
            keyring = Keyring(storage, settings.kek_path, epoch_seconds=settings.epoch_seconds)
            dep = cls(settings, db, keyring, audit, who)
            dep.record_configuration()
        except BaseException:
            db.dispose()
            raise
        return dep

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.leadership.release()
        self.db.dispose()

    def record_configuration(self) -> None:
        """Audit the effective configuration whenever it differs from the last one recorded.

        This is how a lengthened retention window, a new preset or a changed fold table lands
        in the audit log even when someone edits privplate.toml by hand.
        """
        digest, summary = _settings_digest(self.settings)
        last = next(
            iter(self.audit.entries(action="config.changed", newest_first=True, limit=1)), None
        )
        if (
            last is not None
            and last.entry is not None
            and last.entry.details.get("digest") == digest
        ):
            return
        self.audit.record(
            actor=self.actor,
            action="config.changed",
            details={"digest": digest, "settings": summary},
        )

    def add_camera(self, camera_id: str, name: str = "") -> CameraInfo:
        """Register a camera; the registration and its audit entry commit together."""
        with self.db.write() as conn:
            camera = insert_camera(conn, camera_id=camera_id, name=name)
            self.audit.append(
                conn,
                actor=self.actor,
                action="camera.added",
                details={"camera": camera_id, "name": name},
            )
        self._cameras_changed()
        return camera

    def deactivate_camera(self, camera_id: str) -> None:
        """Deactivate a camera (its reads are refused from now on), audited; Home Assistant
        loses its entities through the MQTT publisher."""
        with self.db.write() as conn:
            deactivate_camera(conn, camera_id=camera_id)
            self.audit.append(
                conn, actor=self.actor, action="camera.deactivated", details={"camera": camera_id}
            )
        self._cameras_changed()

    def _cameras_changed(self) -> None:
        for listener in self.camera_listeners:
            listener()

    @property
    def fold(self) -> dict[str, str] | None:
        return self.settings.plates.fold_table

    @property
    def rules(self) -> RetentionRules:
        """The jurisdiction's windows as retention applies them (privplate.retention)."""
        return RetentionRules.from_settings(self.settings)

    @property
    def windows(self) -> RetentionWindows:
        s = self.settings
        return RetentionWindows(
            non_hit_reads=s.retention_window("non_hit_reads"),
            hit_reads=s.retention_window("hit_reads"),
            evidence=s.retention_window("evidence"),
        )

    @property
    def limits(self) -> IngestLimits:
        ing = self.settings.ingest
        return IngestLimits(
            max_batch_reads=ing.max_batch_reads,
            max_future_skew=timedelta(seconds=ing.max_future_skew_seconds),
            max_tokens_per_read=ing.max_tokens_per_read,
        )
