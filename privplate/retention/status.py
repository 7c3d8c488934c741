"""What retention promises and whether it is keeping the promise right now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from privplate.deployment import Deployment
from privplate.retention.purge import oldest_remaining_read


@dataclass(frozen=True)
class RetentionStatus:
    preset: str
    non_hit_window: timedelta
    purge_interval: timedelta
    oldest_read_age: timedelta | None

    @property
    def bound(self) -> timedelta:
        """The guarantee: no non-held read is ever older than window + purge interval."""
        return self.non_hit_window + self.purge_interval

    @property
    def within_bound(self) -> bool:
        return self.oldest_read_age is None or self.oldest_read_age <= self.bound

    def as_dict(self) -> dict[str, object]:
        return {
            "preset": self.preset,
            "non_hit_window_seconds": int(self.non_hit_window.total_seconds()),
            "purge_interval_seconds": int(self.purge_interval.total_seconds()),
            "bound_seconds": int(self.bound.total_seconds()),
            "oldest_non_held_read_age_seconds": None
            if self.oldest_read_age is None
            else round(self.oldest_read_age.total_seconds(), 3),
            "within_bound": self.within_bound,
        }


def retention_status(dep: Deployment, now: datetime | None = None) -> RetentionStatus:
    now = now or datetime.now(UTC)
    oldest = oldest_remaining_read(dep, now)
    return RetentionStatus(
        preset=dep.settings.retention.preset,
        non_hit_window=dep.settings.retention_window("non_hit_reads"),
        purge_interval=timedelta(seconds=dep.settings.retention.purge_interval_seconds),
        oldest_read_age=None if oldest is None else now - oldest,
    )
