"""The jurisdiction's rules, in one leaf module: what a search may be for, how long each kind
of record is kept, how another state's agencies may be answered, and the presets (one TOML
file per jurisdiction in ``retention/``, each citing its source) they come from.

It imports nothing of privplate but errors, so settings, the query policy, retention and the
transparency report can all read it without importing each other.

Query purposes are a closed set, so a typo is a type error and the API schema lists them.
Which purposes a deployment allows comes from its settings; which are forbidden outright comes
from the settings and the jurisdiction preset (e.g. Illinois forbids reproductive-care
investigations).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Literal

from privplate.errors import ConfigError

# -- purposes ----------------------------------------------------------------------------------


class Purpose(StrEnum):
    STOLEN_VEHICLE = "stolen-vehicle"
    AMBER_ALERT = "amber-alert"
    SILVER_ALERT = "silver-alert"
    MISSING_PERSON = "missing-person"
    VIOLENT_FELONY = "violent-felony"
    FELONY_INVESTIGATION = "felony-investigation"
    HIT_AND_RUN = "hit-and-run"
    WANTED_PERSON = "wanted-person"
    # Named so that they can be forbidden by name and recognised when someone asks for them.
    IMMIGRATION_ENFORCEMENT = "immigration-enforcement"
    REPRODUCTIVE_HEALTH_CARE_INVESTIGATION = "reproductive-health-care-investigation"
    CIVIL_OR_PARKING = "civil-or-parking"


DEFAULT_ALLOWED: tuple[Purpose, ...] = (
    Purpose.STOLEN_VEHICLE,
    Purpose.AMBER_ALERT,
    Purpose.SILVER_ALERT,
    Purpose.MISSING_PERSON,
    Purpose.VIOLENT_FELONY,
    Purpose.FELONY_INVESTIGATION,
    Purpose.HIT_AND_RUN,
    Purpose.WANTED_PERSON,
)
#: privplate's own floor: whatever the preset says, these stay forbidden unless the deployment
#: removes them from ``queries.forbidden_purposes`` on purpose (and that change is audited).
DEFAULT_FORBIDDEN: tuple[Purpose, ...] = (Purpose.IMMIGRATION_ENFORCEMENT,)

# The terms that reveal a forbidden purpose in a justification or case number are data, one
# lexicon per purpose in retention/lexicon/, read by privplate.policy.screening.


# -- retention windows and presets ------------------------------------------------------------

WindowName = Literal["non_hit_reads", "hit_reads", "evidence", "hotlist_entries", "audit_entries"]
WINDOW_NAMES: tuple[WindowName, ...] = (
    "non_hit_reads",
    "hit_reads",
    "evidence",
    "hotlist_entries",
    "audit_entries",
)
SharingRule = Literal["forbidden", "agreement-required", "declaration-required"]

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str) -> timedelta:
    """``"3m"`` -> 3 minutes. Whole numbers with s, m, h, d or w; ``"0s"`` means not kept."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ConfigError(
            f"duration {text!r} is not understood: write a whole number and a unit "
            "s, m, h, d or w, e.g. '3m' or '21d'"
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def format_duration(value: timedelta) -> str:
    """For people: the two largest units, ``"30 days 5 minutes"``, ``"3 minutes"``."""
    left = int(value.total_seconds())
    parts = []
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        n, left = divmod(left, size)
        if n:
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts[:2]) or "0 seconds"


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    summary: str
    checked: str
    sources: tuple[str, ...]
    windows: dict[WindowName, timedelta]
    policy_choice: frozenset[str]
    forbidden_purposes: frozenset[str]
    out_of_state_sharing: SharingRule


def presets_dir() -> Path:
    """Installed wheels carry the presets as package data; a source checkout reads retention/."""
    packaged = Path(__file__).resolve().parent / "_data" / "retention"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / "retention"


def _parse(path: Path) -> Preset:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        windows_raw = data["windows"]
        windows: dict[WindowName, timedelta] = {
            name: parse_duration(windows_raw[name]) for name in WINDOW_NAMES
        }
        purpose = data.get("purpose", {})
        sharing = purpose.get("out_of_state_sharing", "agreement-required")
        if sharing not in ("forbidden", "agreement-required", "declaration-required"):
            raise ValueError(f"unknown out_of_state_sharing {sharing!r}")
        return Preset(
            name=data["name"],
            title=data["title"],
            summary=data["summary"],
            checked=data["checked"],
            sources=tuple(s["citation"] for s in data["sources"]),
            windows=windows,
            policy_choice=frozenset(windows_raw.get("policy_choice", [])),
            forbidden_purposes=frozenset(purpose.get("forbidden", [])),
            out_of_state_sharing=sharing,
        )
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"retention preset {path.name} is malformed: {exc}") from None


@cache
def load_presets() -> dict[str, Preset]:
    presets = {}
    for path in sorted(presets_dir().glob("*.toml")):
        preset = _parse(path)
        if preset.name != path.stem:
            raise ConfigError(f"retention preset {path.name} must be named {preset.name}.toml")
        presets[preset.name] = preset
    return presets


def get_preset(name: str) -> Preset:
    presets = load_presets()
    try:
        return presets[name]
    except KeyError:
        known = ", ".join(sorted(presets))
        raise ConfigError(
            f"unknown retention preset {name!r}; set retention.preset to one of: {known}"
        ) from None
