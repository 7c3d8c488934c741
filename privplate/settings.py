"""Deployment settings: ``privplate.toml`` in the deployment directory, then ``PRIVPLATE_*``.

Environment variables win over the file (``PRIVPLATE_EPOCH_SECONDS=60``; nested keys use a
double underscore: ``PRIVPLATE_RETENTION__PRESET=maine``). :func:`load_settings` refuses an
unsafe or inconsistent deployment with a message that says what to change.
"""

from __future__ import annotations

import os
import re
import tomllib
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from privplate.errors import ConfigError
from privplate.jurisdiction import (
    DEFAULT_ALLOWED,
    DEFAULT_FORBIDDEN,
    WINDOW_NAMES,
    Purpose,
    WindowName,
    get_preset,
    parse_duration,
)
from privplate.tokens.canonical import DEFAULT_CONFUSABLES, validate_fold_table
from privplate.tokens.kek import check_private

CONFIG_FILENAME = "privplate.toml"
#: Written by `privplate edge enrol` (privplate/edge/enrolment.py); its ``settings`` member
#: (the server's URL, its plate folding) applies below privplate.toml and PRIVPLATE_*.
ENROLMENT_FILENAME = "enrolment.json"
_toml_path: ContextVar[Path | None] = ContextVar("privplate_toml_path", default=None)
#: A cosignature/v1 verifier key: name, 8 hex digits, base64 of 0x04 and a 32-byte key.
_WITNESS_VKEY = re.compile(r"[^\s+]+\+[0-9a-f]{8}\+B[A-Za-z0-9+/]{43}")


class PlateSettings(BaseModel):
    fold_confusables: bool = False
    confusables: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CONFUSABLES))

    @field_validator("confusables")
    @classmethod
    def _check_table(cls, value: dict[str, str]) -> dict[str, str]:
        return dict(validate_fold_table(value))

    @property
    def fold_table(self) -> dict[str, str] | None:
        return self.confusables if self.fold_confusables else None


class RetentionSettings(BaseModel):
    preset: str = "vendor-default-30d"
    #: Per-window overrides, e.g. ``non_hit_reads = "3d"``; shorter than the preset is always OK.
    windows: dict[WindowName, str] = Field(default_factory=dict)
    allow_longer_than_preset: bool = False
    #: How often the purge runs (server scheduler or `privplate retention run`), in seconds.
    purge_interval_seconds: int = Field(default=300, ge=1, le=86_400)

    def window(self, name: WindowName) -> timedelta:
        if name in self.windows:
            return parse_duration(self.windows[name])
        return get_preset(self.preset).windows[name]

    def check(self) -> None:
        preset = get_preset(self.preset)
        for name, text in self.windows.items():
            value = parse_duration(text)
            if value <= timedelta(0) and name != "non_hit_reads":
                raise ConfigError(
                    f"retention.windows.{name} must be longer than 0 (got {text!r}); "
                    "only non_hit_reads may be 0s (hits-only)"
                )
            if value > preset.windows[name] and not self.allow_longer_than_preset:
                raise ConfigError(
                    f"retention.windows.{name} = {text!r} is longer than the "
                    f"{preset.name} preset allows; shorten it, or set "
                    "retention.allow_longer_than_preset = true (the override is audited)"
                )


class IngestSettings(BaseModel):
    max_batch_reads: int = Field(default=5_000, ge=1, le=100_000)
    max_future_skew_seconds: int = Field(default=300, ge=0, le=86_400)
    max_tokens_per_read: int = Field(default=8, ge=1, le=64)


#: A share from 0 to 1, kept on the record (the configuration digest in the audit log) as its
#: decimal text: audit entries hold no floats, whose JSON forms differ between languages.
Share = Annotated[
    float, Field(ge=0.0, le=1.0), PlainSerializer(str, return_type=str, when_used="json")
]


class QuerySettings(BaseModel):
    """The only search there is ("was this plate seen"), and who may ask it how often."""

    allowed_purposes: list[Purpose] = Field(default_factory=lambda: list(DEFAULT_ALLOWED))
    #: Forbidden whatever else says otherwise; the preset's forbidden purposes are added.
    forbidden_purposes: list[Purpose] = Field(default_factory=lambda: list(DEFAULT_FORBIDDEN))
    #: Extra words or phrases that deny a query when found in its justification or case number.
    forbidden_terms: list[str] = Field(default_factory=list)
    #: Extra lexicon files (TOML, the format of retention/lexicon/, relative paths from the
    #: deployment directory) with a deployment's own terms for a forbidden purpose, e.g. local
    #: programme or unit names: the shipped lexicon cannot know every county's euphemism.
    lexicon_files: list[Path] = Field(default_factory=list, max_length=50)
    per_user_per_day: int = Field(default=25, ge=1, le=10_000)
    per_deployment_per_day: int = Field(default=500, ge=1, le=1_000_000)
    #: Longest time window one query may cover.
    max_window_days: int = Field(default=31, ge=1, le=3_650)
    min_justification_chars: int = Field(default=20, ge=1, le=500)
    #: Share of answered searches drawn at random into the compliance review queue (spot
    #: checks), besides every search the screen found near a forbidden term: a search nobody
    #: may ever look at is one nobody is accountable for. 0 turns the random draw off.
    spot_check_share: Share = 0.05
    #: Purposes whose searches wait for a second person (a compliance officer, never the
    #: requester) to approve them before they run, e.g. ["felony-investigation"]; the rest
    #: (amber alerts...) run at once. Empty: every search runs at once.
    approval_required: list[Purpose] = Field(default_factory=list)
    #: A pending search nobody decided on expires (and its encrypted plate is deleted) after
    #: this long: a request is for an investigation under way, not a standing watch.
    approval_hours: int = Field(default=24, ge=1, le=24 * 14)
    #: An approved search must be run by its requester within this long, or it expires too.
    approved_run_hours: int = Field(default=24, ge=1, le=24 * 7)


class HotlistSettings(BaseModel):
    #: Caps, so that a "hotlist" cannot become a way to enumerate plates.
    max_entries_per_list: int = Field(default=10_000, ge=1, le=1_000_000)
    max_entries_total: int = Field(default=10_000, ge=1, le=1_000_000)
    entries_per_user_per_day: int = Field(default=2_000, ge=1, le=1_000_000)
    #: How long an entry stays live when its creator gives no expiry.
    default_entry_days: int = Field(default=30, ge=1, le=3_650)
    #: Share of hand-made entries (not CSV imports) drawn at random into the compliance
    #: review queue: an entry typed by hand is the other way to watch one person.
    spot_check_share: Share = 0.05


class UnsealSettings(BaseModel):
    #: An officer's approval (partial decryption) counts for this long.
    approval_hours: int = Field(default=24, ge=1, le=24 * 30)
    #: A request nobody decided on expires after this many days.
    request_days: int = Field(default=7, ge=1, le=365)
    #: After release, the requester may fetch the image for this long.
    release_hours: int = Field(default=24, ge=1, le=24 * 30)


class AuditSettings(BaseModel):
    #: The server signs a checkpoint of the audit log this often, when the log has grown since
    #: the latest one, and once at start if none was ever signed; 0: never (then only
    #: `privplate audit checkpoint` signs).
    checkpoint_interval_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    #: Witnesses whose cosignatures the server accepts and publishes on its checkpoint, as
    #: the vkeys `privplate audit witness --init` prints (name+hash+key, algorithm 0x04):
    #: the council clerk's, an auditor's. A cosignature authenticates itself, so these keys
    #: are the only gate on POST /.well-known/privplate/cosignature.
    witnesses: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("witnesses")
    @classmethod
    def _check_witnesses(cls, value: list[str]) -> list[str]:
        # Form only (the key hash is checked where the key is used, audit/cosigners.py):
        # importing the note code here would make the settings depend on the audit package.
        names = [v.strip().partition("+")[0] for v in value]
        for vkey in value:
            if not _WITNESS_VKEY.fullmatch(vkey.strip()):
                raise ValueError(
                    f"{vkey!r} is not a witness key: give the name+hash+key line that "
                    "`privplate audit witness --init` printed"
                )
        if len(set(names)) != len(names):
            raise ValueError("two witnesses have the same name")
        return [v.strip() for v in value]


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=1, le=65_535)
    #: Secret from which the hotlist, webhook and session keys are derived (mode 0600).
    secret_file: Path = Path("keys/server.key")
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    #: A session unused for this long is refused (its holder signs in again).
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60 * 30)
    #: Failed sign-ins are counted over this window, per account name and per client address
    #: (identity/throttle.py); at the limit, sign-in is refused until the oldest ages out.
    sign_in_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    sign_in_max_failures_per_account: int = Field(default=5, ge=1, le=1_000)
    sign_in_max_failures_per_address: int = Field(default=20, ge=1, le=100_000)
    #: Refused device enrolment codes (unknown, used, expired) per client address over this
    #: window (the sign-in throttle's rows, keyed apart); at the limit, POST /devices/enrol
    #: answers 429 until the oldest ages out.
    enrolment_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    enrolment_max_failures_per_address: int = Field(default=10, ge=1, le=100_000)
    #: Largest request body accepted (device batches carry sealed images).
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    #: How old a signed device request may be, and how far ahead of the server's clock.
    device_request_max_age_seconds: int = Field(default=300, ge=10, le=86_400)
    #: Run the retention purge inside the server process (APScheduler).
    run_purge_scheduler: bool = True


class WebhookSettings(BaseModel):
    """Webhook delivery from the outbox (privplate.alerts.webhooks)."""

    #: How long a worker's claim on a delivery lasts; one that died mid-delivery is retried
    #: by another once it runs out, so it must outlast one attempt.
    lease_seconds: float = Field(default=60.0, ge=1.0, le=3_600.0)
    attempt_timeout_seconds: float = Field(default=5.0, gt=0.0, le=300.0)
    #: Attempts before a delivery is given up as failed; retries wait first_retry_seconds,
    #: then four times as long each time (with jitter), at most an hour.
    max_attempts: int = Field(default=10, ge=1, le=100)
    first_retry_seconds: float = Field(default=0.5, ge=0.0, le=3_600.0)

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> WebhookSettings:
        if self.lease_seconds <= self.attempt_timeout_seconds:
            raise ValueError("webhooks.lease_seconds must be longer than attempt_timeout_seconds")
        return self


#: An MQTT topic prefix: levels of letters, digits, '_', '-' or '.', split by '/'.
_MQTT_PREFIX = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


class MqttTlsSettings(BaseModel):
    """TLS to the broker (``[mqtt.tls]``); paths are relative to the deployment directory."""

    enabled: bool = False
    #: The CA bundle that signed the broker's certificate; empty: the system's CAs.
    ca_file: Path | None = None
    #: A client certificate and its key, for brokers that authenticate clients by certificate.
    cert_file: Path | None = None
    key_file: Path | None = None
    #: Skip the check that the certificate names the broker's host: for tests only.
    insecure: bool = False

    @model_validator(mode="after")
    def _key_with_cert(self) -> MqttTlsSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("mqtt.tls.key_file needs mqtt.tls.cert_file (the client certificate)")
        return self


class MqttSettings(BaseModel):
    """Alerts and camera state to an MQTT broker, with Home Assistant discovery
    (privplate.mqtt; needs the ``mqtt`` extra). Alerts go through the webhook outbox, so
    ``[webhooks]``'s lease, timeout and retry settings apply to them too."""

    enabled: bool = False
    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=1883, ge=1, le=65_535)
    tls: MqttTlsSettings = Field(default_factory=MqttTlsSettings)
    username: str = Field(default="", max_length=200)
    #: The broker password, or (better: not in privplate.toml) a file holding it (mode 0600).
    password: str = Field(default="", max_length=500, repr=False)
    password_file: Path | None = None
    #: A password sent without TLS to a broker that is not on this host is refused unless set.
    allow_plaintext_password: bool = False
    #: Each process connects as ``<client_id>-<random>``: two workers with one id would keep
    #: disconnecting each other.
    client_id: str = Field(default="privplate", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    #: privplate's own topics: ``<topic_prefix>/status``, ``<topic_prefix>/camera/<id>/...``.
    topic_prefix: str = "privplate"
    #: Home Assistant's discovery prefix (its MQTT integration's setting).
    discovery_prefix: str = "homeassistant"
    discovery: bool = True
    qos: Literal[0, 1, 2] = 1
    #: Retain discovery configs and camera state, so Home Assistant has them after a restart
    #: (alert events are never retained: a retained event would fire again on every restart).
    retain: bool = True
    #: The "hotlist alert" binary sensor turns off this long after a camera's last alert.
    alert_on_seconds: int = Field(default=300, ge=1, le=86_400)
    #: How often reads per minute, last contact and the alert sensor are published, and
    #: cameras added or deactivated by another process get their discovery config.
    state_interval_seconds: float = Field(default=60.0, ge=0.1, le=3_600.0)
    keepalive_seconds: int = Field(default=60, ge=5, le=3_600)

    @field_validator("topic_prefix", "discovery_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if len(value) > 200 or not _MQTT_PREFIX.fullmatch(value):
            raise ValueError(
                "must be topic levels of letters, digits, '_', '-' or '.' separated by '/', "
                "without wildcards (+, #) or empty levels, e.g. privplate or site-a/privplate"
            )
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> MqttSettings:
        if self.password and self.password_file is not None:
            raise ValueError("give mqtt.password or mqtt.password_file, not both")
        has_password = bool(self.password) or self.password_file is not None
        if has_password and not self.username:
            raise ValueError("mqtt.password needs mqtt.username")
        local = self.host in ("127.0.0.1", "::1", "localhost")
        in_clear = not self.tls.enabled and not local
        if has_password and in_clear and not self.allow_plaintext_password:
            raise ValueError(
                f"the MQTT password would cross the network in clear to {self.host}: set "
                "mqtt.tls.enabled = true (with mqtt.tls.ca_file for a private CA), or "
                "mqtt.allow_plaintext_password = true on a network you trust"
            )
        if self.topic_prefix == self.discovery_prefix:
            raise ValueError("mqtt.topic_prefix and mqtt.discovery_prefix must differ")
        return self


#: A daily window of local time, "HH:MM-HH:MM" (it may wrap past midnight; "00:00-24:00": all day).
_DAYTIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)")


class HealthSettings(BaseModel):
    """Edge devices' health reports (``POST /devices/health``) and the alerts they raise: a
    silent camera and a spool backlog, through the same channels as hotlist alerts
    (privplate.alerts.device_alerts). Checked by the deployment's leader."""

    enabled: bool = True
    #: How often the leader checks the latest reports.
    check_interval_seconds: int = Field(default=60, ge=5, le=3_600)
    #: A camera is silent when its last frame (or its device's last report) is older than this.
    silent_after_minutes: int = Field(default=10, ge=1, le=7 * 24 * 60)
    #: ... or, within daytime_hours, when it made no read for this long (0: never for reads).
    no_read_after_minutes: int = Field(default=120, ge=0, le=7 * 24 * 60)
    #: Local hours in which a camera is expected to read plates ("HH:MM-HH:MM").
    daytime_hours: str = "07:00-19:00"
    #: The deployment's time zone for daytime_hours (an IANA name, e.g. "America/Chicago").
    time_zone: str = "UTC"
    #: A device's spool is backed up when it holds more reads than this ...
    spool_backlog_reads: int = Field(default=10_000, ge=1, le=100_000_000)
    #: ... or its oldest waiting read is older than this.
    spool_backlog_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)

    @field_validator("daytime_hours")
    @classmethod
    def _check_daytime(cls, value: str) -> str:
        value = value.strip()
        match = _DAYTIME.fullmatch(value)
        if match is None or (match.group(3) == "24" and match.group(4) != "00"):
            raise ValueError('must be local hours "HH:MM-HH:MM", e.g. "07:00-19:00"')
        if value[:5] == value[6:]:
            raise ValueError('starts and ends at the same time; all day is "00:00-24:00"')
        return value

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "is not a time zone this machine knows (an IANA name such as "
                '"Europe/Berlin"; install tzdata if none are found)'
            ) from None
        return value

    def daytime(self) -> tuple[int, int]:
        """daytime_hours as minutes after local midnight: (start, end), end may be <= start."""
        start, end = self.daytime_hours.split("-")
        return _minutes(start), _minutes(end)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


CropName = Literal["plain", "gray", "wide", "tight", "deskew"]
#: The models in models/registry.toml (tests/test_vision_models.py keeps the two in step).
DetectorName = Literal[
    "yolov8n-plate-640",
    "yolov8n-plate-384",
    "yolo-v9-t-640-license-plate-end2end",
    "yolo-v9-t-384-license-plate-end2end",
]
RecognizerName = Literal["cct-xs-v1-global-model"]
#: How a track's read is made of its frames (privplate.edge.fusion): "stacked" from its plate
#: crops registered and averaged, "slots" from their OCR probabilities pooled, "best_frame"
#: from its most confident frame alone.
TrackFusion = Literal["stacked", "slots", "best_frame"]
DEFAULT_CROPS: tuple[CropName, ...] = ("plain", "gray", "wide", "tight")


class EdgeSettings(BaseModel):
    """The edge: which models, how plates are read, and where reads wait for the server."""

    detector: DetectorName = "yolov8n-plate-640"
    recognizer: RecognizerName = "cct-xs-v1-global-model"
    #: Explicit model files; otherwise looked up by registry name in models_dir.
    detector_path: Path | None = None
    recognizer_path: Path | None = None
    recognizer_config_path: Path | None = None
    #: Load a model whose sha256 differs from the registry's (a tampered model could miss plates).
    allow_unregistered_models: bool = False
    allow_download: bool = False
    #: onnxruntime threads per model; 0 uses every core. Pool threads sleep between runs
    #: (no spinning), so one camera's detector takes whatever share of the cores the OCR
    #: leaves it; with several cameras 1 lets each core detect for another camera.
    threads: int = Field(default=0, ge=0, le=256)
    #: Run a YOLOv8 detector on a rectangular input (the frame padded only to a multiple of
    #: 32, not to a square): same model, same scale, far less padding to compute.
    rect_inference: bool = True
    detector_confidence: float = Field(default=0.05, gt=0.0, lt=1.0)
    nms_iou: float = Field(default=0.45, gt=0.0, le=1.0)
    crop_variants: list[CropName] = Field(default_factory=lambda: list(DEFAULT_CROPS))
    #: Read the other crops only when the first crop's least sure slot is below this
    #: (0: never, 1: always).
    vote_below: float = Field(default=1.0, ge=0.0, le=1.0)
    #: Character prior of the deployment's region (a file in models/priors, e.g. "us"); "" = none.
    format_prior: str = ""
    #: Plate formats the deployment expects: files in models/formats ("us-ca"; "us-*" for every
    #: US file) and patterns of its own ("^[0-9][A-Z]{3}[0-9]{3}$"). Among the readings the OCR
    #: finds plausible one that matches is preferred; one that matches none is still reported.
    plate_formats: list[str] = Field(default_factory=list)
    plate_patterns: list[str] = Field(default_factory=list)
    #: Log-probability bonus of a reading that matches a declared format (the default of
    #: privplate.vision.formats.DEFAULT_WEIGHT).
    format_weight: float = Field(default=2.0, ge=0.0, le=50.0)
    alternates: int = Field(default=5, ge=0, le=7)
    alternate_ratio: float = Field(default=0.05, gt=0.0, le=1.0)
    #: Look for a plate read less sure than this again in a zoomed-in region around it and
    #: keep the surer reading (rectangular inference only; 0: never).
    refine_below: float = Field(default=0.9, ge=0.0, le=1.0)
    #: Longest side, in pixels, of the detector input for that region.
    refine_side: int = Field(default=320, ge=64, le=1280)
    #: A plate whose OCR confidence is lower is not reported (detector false positives).
    min_ocr_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    #: The same plate seen again within this many seconds belongs to the same read.
    track_seconds: float = Field(default=3.0, gt=0.0, le=600.0)
    #: How a track's read is made (TrackFusion). "stacked": the track's plate crops are aligned
    #: and averaged, read once, and the surer of that and the best frame's reading is kept;
    #: benchmarks/fusion.py measures it against "best_frame" and "slots" on a degraded video.
    #: The evidence image is the best frame whichever is chosen.
    track_fusion: TrackFusion = "stacked"
    max_fps: float = Field(default=0.0, ge=0.0)
    #: Share of pixels that must change between frames before detection runs again.
    motion_threshold: float = Field(default=0.002, ge=0.0, le=1.0)
    #: While every car in view was read the same way three sightings in a row, at least
    #: settled_confidence sure, only every settled_stride-th moving frame goes to detection
    #: (1: every frame).
    settled_stride: int = Field(default=3, ge=1, le=30)
    settled_confidence: float = Field(default=0.6, gt=0.0, le=1.0)
    evidence_frame_side: int = Field(default=640, ge=64, le=4096)
    spool_file: Path = Path("edge/spool.db")
    server_url: str = ""
    #: The server's audit key (note verifier key) whose signature the edge requires on its
    #: epoch keys; `privplate edge enrol` pins it in enrolment.json, this overrides that.
    server_key: str = ""
    device_id: str = ""
    device_key_file: Path = Path("keys/device.key")
    webhook_url: str = ""
    uplink_batch_reads: int = Field(default=200, ge=1, le=5_000)
    #: After sending a batch smaller than uplink_batch_reads, wait this long for more reads
    #: before the next upload. 0 sends as soon as anything is spooled; a city's devices use a
    #: few seconds (the server's cost is mostly per request: deploy/README.md, Sizing). A read
    #: that raised an alert at the edge is sent at once whatever this says.
    uplink_linger_seconds: float = Field(default=0.0, ge=0.0, le=60.0)
    #: Seconds an upload (or key fetch) may take before it counts as failed and is retried:
    #: a cut link shows as a timeout, so this bounds how long one attempt hangs on it.
    uplink_timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0)
    #: How often the edge sends its signed health report (POST /devices/health; 0: never).
    health_interval_seconds: float = Field(default=60.0, ge=0.0, le=3_600.0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRIVPLATE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = Path()
    database_url: str = "sqlite:///privplate.db"
    kek_file: Path = Path("keys/kek.key")
    audit_signing_key_file: Path = Path("keys/audit-signing.key")
    epoch_seconds: int = Field(default=86_400, ge=60)
    #: Hex of the evidence public key X from the key ceremony; empty until one was held.
    evidence_public_key: str = ""
    models_dir: Path | None = None
    plates: PlateSettings = Field(default_factory=PlateSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)
    queries: QuerySettings = Field(default_factory=QuerySettings)
    hotlists: HotlistSettings = Field(default_factory=HotlistSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    unseal: UnsealSettings = Field(default_factory=UnsealSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _toml_path.get()
        if toml_path is not None and toml_path.exists():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        if toml_path is not None and (toml_path.parent / ENROLMENT_FILENAME).exists():
            sources.append(_EnrolmentSource(settings_cls, toml_path.parent / ENROLMENT_FILENAME))
        return tuple(sources)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        # Parsed here so a mistyped URL is a settings error naming the field, not a traceback
        # from the engine; the message never repeats the URL (it may hold a password).
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                "is not a database URL (sqlite:///privplate.db or "
                "postgresql+psycopg://user@host/database)"
            ) from None
        return value

    @field_validator("evidence_public_key")
    @classmethod
    def _check_evidence_key(cls, value: str) -> str:
        value = value.strip().lower()
        if value and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
            raise ValueError("must be 64 hex characters (the X printed by the key ceremony)")
        return value

    @model_validator(mode="after")
    def _check_retention(self) -> Settings:
        self.retention.check()
        return self

    # -- derived paths ---------------------------------------------------------------------

    def path(self, value: Path) -> Path:
        """Resolve a configured path against the deployment directory."""
        return value if value.is_absolute() else self.home / value

    @property
    def kek_path(self) -> Path:
        return self.path(self.kek_file)

    @property
    def audit_signing_key_path(self) -> Path:
        return self.path(self.audit_signing_key_file)

    @property
    def server_secret_path(self) -> Path:
        return self.path(self.server.secret_file)

    @property
    def resolved_database_url(self) -> str:
        """SQLite paths in the config are relative to the deployment directory."""
        prefix = "sqlite:///"
        url = self.database_url
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.path(Path(url[len(prefix) :])))
        return url

    @property
    def evidence_public_key_bytes(self) -> bytes | None:
        return bytes.fromhex(self.evidence_public_key) if self.evidence_public_key else None

    def retention_window(self, name: WindowName) -> timedelta:
        return self.retention.window(name)

    def check_key_files(self) -> None:
        """Start-up check: the KEK must exist and be private to this user."""
        if not self.kek_path.exists():
            raise ConfigError(
                f"key-encryption key file {self.kek_path} is missing; run "
                f"`privplate init --dir {self.home}` or set kek_file in privplate.toml"
            )
        check_private(self.kek_path)


class _EnrolmentSource(PydanticBaseSettingsSource):
    """The settings an enrolled edge got from its server (the ``settings`` member of
    enrolment.json), the lowest-priority source: privplate.toml and PRIVPLATE_* still win."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # noqa: ARG002
        return None, field_name, False  # __call__ answers for all fields at once

    def __call__(self) -> dict[str, Any]:
        import json  # noqa: PLC0415 - only an enrolled edge reads it

        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{self.path} cannot be read ({type(exc).__name__}); remove it and enrol "
                "again (`privplate edge enrol --force`)"
            ) from None
        values = data.get("settings") if isinstance(data, dict) else None
        return dict(values) if isinstance(values, dict) else {}


def resolve_home(home: Path | str | None) -> Path:
    """``--dir`` if given, else ``PRIVPLATE_HOME``, else the current directory."""
    if home is not None:
        return Path(home).expanduser().resolve()
    env = os.environ.get("PRIVPLATE_HOME")
    return Path(env).expanduser().resolve() if env else Path.cwd().resolve()


def load_settings(home: Path | str | None = None, **overrides: Any) -> Settings:
    """Read and validate the deployment's settings, turning every problem into a ConfigError."""
    resolved = resolve_home(home)
    # A relative PRIVPLATE_MODELS_DIR is meant from where the command runs (the README's
    # `PRIVPLATE_MODELS_DIR=../shared/models privplate edge run --dir deployment`), unlike
    # paths in privplate.toml, which are relative to the deployment directory.
    from_env = os.environ.get("PRIVPLATE_MODELS_DIR")
    if from_env and "models_dir" not in overrides and not Path(from_env).is_absolute():
        overrides["models_dir"] = Path(from_env).resolve()
    token = _toml_path.set(resolved / CONFIG_FILENAME)
    try:
        return Settings(home=resolved, **overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(
            f"invalid configuration in {resolved / CONFIG_FILENAME} or PRIVPLATE_* variables: "
            f"{problems}"
        ) from None
    except SettingsError as exc:
        raise ConfigError(_unreadable(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{resolved / CONFIG_FILENAME} is not valid TOML: {exc}") from None
    finally:
        _toml_path.reset(token)


def _unreadable(exc: SettingsError) -> str:
    """What to do about an environment variable pydantic-settings could not even parse (a
    section or a list given as something other than JSON); the value is not repeated."""
    match = re.search(r'field "([a-z_]+)"', str(exc))
    if match is None:
        return f"PRIVPLATE_* variables cannot be read: {exc}"
    name = f"PRIVPLATE_{match.group(1).upper()}"
    hint = " (the CLI's server URL is PRIVPLATE_SERVER_URL)" if name == "PRIVPLATE_SERVER" else ""
    return (
        f"{name} (or a {name}__* variable) is not valid JSON ({exc.__cause__ or exc}){hint}: "
        f"set a section's keys one by one, {name}__KEY=VALUE, and a list as JSON, e.g. "
        '\'["a", "b"]\''
    )


__all__ = [
    "CONFIG_FILENAME",
    "ENROLMENT_FILENAME",
    "WINDOW_NAMES",
    "HotlistSettings",
    "IngestSettings",
    "MqttSettings",
    "MqttTlsSettings",
    "PlateSettings",
    "QuerySettings",
    "RetentionSettings",
    "ServerSettings",
    "Settings",
    "UnsealSettings",
    "load_settings",
    "resolve_home",
]
