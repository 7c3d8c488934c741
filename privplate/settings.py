"""Deployment settings: ``privplate.toml`` in the deployment directory, then ``PRIVPLATE_*``.

Environment variables win over the file (``PRIVPLATE_EPOCH_SECONDS=60``; nested keys use a
double underscore: ``PRIVPLATE_RETENTION__PRESET=maine``). :func:`load_settings` refuses an
unsafe or inconsistent deployment with a message that says what to change.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from privplate.errors import ConfigError
from privplate.retention.presets import WINDOW_NAMES, WindowName, get_preset, parse_duration
from privplate.tokens.canonical import DEFAULT_CONFUSABLES, validate_fold_table
from privplate.tokens.kek import check_private

CONFIG_FILENAME = "privplate.toml"
_toml_path: ContextVar[Path | None] = ContextVar("privplate_toml_path", default=None)


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
        return tuple(sources)

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


def resolve_home(home: Path | str | None) -> Path:
    """``--dir`` if given, else ``PRIVPLATE_HOME``, else the current directory."""
    if home is not None:
        return Path(home).expanduser().resolve()
    env = os.environ.get("PRIVPLATE_HOME")
    return Path(env).expanduser().resolve() if env else Path.cwd().resolve()


def load_settings(home: Path | str | None = None, **overrides: Any) -> Settings:
    """Read and validate the deployment's settings, turning every problem into a ConfigError."""
    resolved = resolve_home(home)
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
    finally:
        _toml_path.reset(token)


__all__ = [
    "CONFIG_FILENAME",
    "WINDOW_NAMES",
    "IngestSettings",
    "PlateSettings",
    "RetentionSettings",
    "Settings",
    "load_settings",
    "resolve_home",
]
