"""The deployment's periodic jobs on several processes and hosts: one process leads the purge
and the audit checkpoints, and every process keeps its keys current.

Every process tries for the lead each acquire tick (the purge interval, at most 5 s), so a
dead leader's jobs move to another process within one tick; a leader checks that it still
leads just before each of its jobs, and on taking the lead runs them at once (the last leader
may have died in the middle of a purge). Every process, leading or not, refreshes its keys each
purge interval, so a KEK rotation or a destroyed epoch reaches it within one interval.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from privplate.deployment import Deployment
from privplate.hotlists.tokens import HotlistTokens
from privplate.store.leadership import Leadership
from privplate.tokens.keyring import Keyring

log = logging.getLogger("privplate.leader")

#: Longest wait between two tries for the lead: a dead leader's successor starts within it.
ACQUIRE_TICK_SECONDS = 5


def acquire_tick(purge_interval_seconds: int) -> int:
    """Seconds between tries for the lead: short enough to hand over within one interval."""
    return min(purge_interval_seconds, ACQUIRE_TICK_SECONDS)


class LeaderTick:
    """The job every process runs each acquire tick: keep or take the lead."""

    def __init__(self, leadership: Leadership, on_lead: Callable[[], None]) -> None:
        self.leadership = leadership
        self.on_lead = on_lead

    def __call__(self) -> None:
        was = self.leadership.is_leader
        if self.leadership.hold() and not was:
            self.on_lead()


def leader_only(leadership: Leadership, job: Callable[[], object]) -> Callable[[], None]:
    """``job``, run only while this process leads (checked just before it starts)."""

    def run() -> None:
        if leadership.check():
            job()

    return run


def refresh_keys(keyring: Keyring, hotlist_tokens: HotlistTokens | None = None) -> None:
    """Catch up with a rotation or destruction another process did (privplate.tokens.keyring
    Keyring.refresh), and sync the current epoch's hotlist tokens."""
    try:
        before = keyring.kek_generation
        keyring.refresh()
        if hotlist_tokens is not None:
            hotlist_tokens.refresh()
    except Exception as exc:
        # The next refresh tries again; a generation miss meanwhile re-reads the files anyway.
        log.error("key refresh failed: %s", type(exc).__name__)
        return
    if keyring.kek_generation != before:
        log.info("key-encryption key generation %d now in use", keyring.kek_generation)


def leader_metrics(dep: Deployment) -> list[str]:
    """Prometheus lines of this process's lead and key state (ids and generations only)."""
    return [
        "# HELP privplate_leader 1 while this process leads the purge and audit checkpoints.",
        "# TYPE privplate_leader gauge",
        f"privplate_leader {int(dep.leadership.is_leader)}",
        "# HELP privplate_kek_generation Key-encryption key generation this process holds.",
        "# TYPE privplate_kek_generation gauge",
        f"privplate_kek_generation {dep.keyring.kek_generation}",
        "# HELP privplate_current_epoch Id (start, Unix seconds) of the current token epoch.",
        "# TYPE privplate_current_epoch gauge",
        f"privplate_current_epoch {dep.keyring.current_key().epoch_id}",
        "# TYPE privplate_worker_pid gauge",
        f"privplate_worker_pid {os.getpid()}",
    ]
