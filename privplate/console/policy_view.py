"""The effective policy as people read it, and where it departs from its jurisdiction preset.

Nothing here decides anything: the windows come from ``Settings.retention_window`` and the
purposes from ``PurposePolicy.from_settings``, the same calls retention and the search make.
This module only sets them beside the preset (and privplate's defaults) and names the source of
each rule, for the administrator's read-only view and the public policy page.
"""

from __future__ import annotations

from dataclasses import dataclass

from privplate.jurisdiction import (
    DEFAULT_ALLOWED,
    DEFAULT_FORBIDDEN,
    WINDOW_NAMES,
    Preset,
    Purpose,
    format_duration,
    get_preset,
)
from privplate.policy.rules import PurposePolicy
from privplate.settings import HotlistSettings, QuerySettings, Settings, UnsealSettings

WINDOW_LABELS = {
    "non_hit_reads": "Readings that matched no hotlist",
    "hit_reads": "Readings that matched a hotlist",
    "evidence": "Sealed images (evidence)",
    "hotlist_entries": "Hotlist entries, before they must be renewed",
    "audit_entries": "Audit log entries",
}
SHARING_RULES = {
    "forbidden": "Forbidden: no answers for out-of-state agencies",
    "agreement-required": "Only under a recorded sharing agreement",
    "declaration-required": "Only under a sharing agreement whose agency signed a declaration",
}


@dataclass(frozen=True)
class WindowRow:
    name: str
    label: str
    effective: str
    preset: str
    source: str
    #: "", "shorter" or "longer": how the deployment's setting departs from the preset.
    change: str


@dataclass(frozen=True)
class PurposeRow:
    purpose: str
    allowed: bool
    source: str
    #: True when the deployment's settings make this purpose differ from the defaults + preset.
    changed: bool


@dataclass(frozen=True)
class LimitRow:
    label: str
    effective: str
    default: str

    @property
    def changed(self) -> bool:
        return self.effective != self.default


@dataclass(frozen=True)
class PolicyView:
    preset: Preset
    windows: tuple[WindowRow, ...]
    purposes: tuple[PurposeRow, ...]
    #: Uses a preset forbids that are not search purposes (e.g. "sale" of data).
    forbidden_uses: tuple[str, ...]
    forbidden_terms: tuple[str, ...]
    sharing: str
    limits: tuple[LimitRow, ...]
    allow_longer_than_preset: bool

    @property
    def changes(self) -> int:
        return (
            sum(1 for w in self.windows if w.change)
            + sum(1 for p in self.purposes if p.changed)
            + sum(1 for limit in self.limits if limit.changed)
            + bool(self.forbidden_terms)
        )


def _windows(settings: Settings, preset: Preset) -> tuple[WindowRow, ...]:
    rows = []
    for name in WINDOW_NAMES:
        effective, baseline = settings.retention_window(name), preset.windows[name]
        if effective < baseline:
            change, source = "shorter", "this deployment's setting (shorter than the preset)"
        elif effective > baseline:
            change = "longer"
            source = "this deployment's setting (longer than the preset, allowed and audited)"
        elif name in preset.policy_choice:
            change, source = "", "privplate's conservative default (the source sets no number)"
        else:
            change, source = "", "; ".join(preset.sources)
        rows.append(
            WindowRow(
                name=name,
                label=WINDOW_LABELS[name],
                effective=format_duration(effective),
                preset=format_duration(baseline),
                source=source,
                change=change,
            )
        )
    return tuple(rows)


def _purposes(preset: Preset, rules: PurposePolicy) -> tuple[PurposeRow, ...]:
    by_preset = {p for p in Purpose if p.value in preset.forbidden_purposes}
    default_forbidden = set(DEFAULT_FORBIDDEN) | by_preset
    default_allowed = set(DEFAULT_ALLOWED) - default_forbidden
    rows = []
    for purpose in Purpose:
        allowed = purpose in rules.allowed
        if purpose in by_preset:
            source = f"forbidden by the {preset.title} preset ({'; '.join(preset.sources)})"
        elif purpose in rules.forbidden and purpose in DEFAULT_FORBIDDEN:
            source = "forbidden by privplate's default policy"
        elif purpose in rules.forbidden:
            source = "forbidden by this deployment's settings"
        elif allowed and purpose in DEFAULT_ALLOWED:
            source = "allowed by privplate's default policy"
        elif allowed:
            source = "allowed by this deployment's settings"
        else:
            source = "not among this deployment's allowed purposes"
        changed = allowed != (purpose in default_allowed) or (
            (purpose in rules.forbidden) != (purpose in default_forbidden)
        )
        rows.append(PurposeRow(purpose.value, allowed, source, changed))
    # Allowed first, then forbidden, each alphabetical: the list people look for.
    return tuple(sorted(rows, key=lambda r: (not r.allowed, r.purpose)))


def _limits(settings: Settings) -> tuple[LimitRow, ...]:
    q, q0 = settings.queries, QuerySettings()
    h, h0 = settings.hotlists, HotlistSettings()
    u, u0 = settings.unseal, UnsealSettings()

    def row(label: str, value: int, default: int, unit: str = "") -> LimitRow:
        return LimitRow(label, f"{value}{unit}", f"{default}{unit}")

    return (
        row("Longest period one search may cover", q.max_window_days, q0.max_window_days, " days"),
        row("Searches per investigator per day", q.per_user_per_day, q0.per_user_per_day),
        row(
            "Searches per deployment per day",
            q.per_deployment_per_day,
            q0.per_deployment_per_day,
        ),
        row(
            "Shortest justification",
            q.min_justification_chars,
            q0.min_justification_chars,
            " characters",
        ),
        row("Entries per hotlist", h.max_entries_per_list, h0.max_entries_per_list),
        row("Hotlist entries in all", h.max_entries_total, h0.max_entries_total),
        row(
            "Hotlist entries one person may add per day",
            h.entries_per_user_per_day,
            h0.entries_per_user_per_day,
        ),
        row("An officer's unseal approval counts for", u.approval_hours, u0.approval_hours, " h"),
        row("An undecided unseal request expires after", u.request_days, u0.request_days, " days"),
        row("A released image may be fetched for", u.release_hours, u0.release_hours, " h"),
    )


def policy_view(settings: Settings) -> PolicyView:
    preset = get_preset(settings.retention.preset)
    rules = PurposePolicy.from_settings(settings)
    purpose_values = {p.value for p in Purpose}
    return PolicyView(
        preset=preset,
        windows=_windows(settings, preset),
        purposes=_purposes(preset, rules),
        forbidden_uses=tuple(sorted(preset.forbidden_purposes - purpose_values)),
        forbidden_terms=tuple(settings.queries.forbidden_terms),
        sharing=SHARING_RULES.get(rules.out_of_state_sharing, str(rules.out_of_state_sharing)),
        limits=_limits(settings),
        allow_longer_than_preset=settings.retention.allow_longer_than_preset,
    )
