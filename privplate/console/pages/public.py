"""Public console screens, no sign-in: the transparency report with charts, the policy, and the
audit log's current signed checkpoint.

The report is ``build_report``'s, the one ``privplate report`` and ``GET /transparency`` publish,
drawn as server-side SVG charts beside tables of the same numbers. A checkpoint is a tree size,
a root hash and a signature (no entry content), published so that anyone can keep one and later
hold the deployment to it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from privplate.audit.proofs import latest_checkpoint
from privplate.console.charts import Chart, bar_chart
from privplate.console.policy_view import SHARING_RULES, policy_view
from privplate.console.render import page
from privplate.console.sessions import CONSOLE_PUBLIC, services_of
from privplate.deployment import Deployment
from privplate.errors import NotFound
from privplate.jurisdiction import format_duration
from privplate.transparency import build_report, period_ending

router = APIRouter(include_in_schema=False)
Public = Depends(CONSOLE_PUBLIC)
#: A public page must not let anyone make the server re-read the audit log at will: a report
#: is rebuilt only when the log has grown since (or after this long, for the read counts).
CACHE_SECONDS = 300.0


class Period(IntEnum):
    WEEK = 7
    MONTH = 30
    QUARTER = 90
    YEAR = 365


@dataclass
class _Cached:
    built: float
    log_size: int
    report: dict[str, Any]


class ReportCache:
    """One report per period, shared by every visitor; built under a lock so a burst of
    visitors builds it once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: dict[int, _Cached] = {}

    def get(self, dep: Deployment, days: int) -> dict[str, Any]:
        with self._lock:
            size = dep.audit.size()
            hit = self._reports.get(days)
            if (
                hit is not None
                and hit.log_size == size
                and time.monotonic() - hit.built < CACHE_SECONDS
            ):
                return hit.report
            start, end = period_ending(datetime.now(UTC).date(), days)
            report = build_report(dep, start=start, end=end)
            self._reports[days] = _Cached(time.monotonic(), size, report)
            return report


_cache_lock = threading.Lock()


def _cache(request: Request) -> ReportCache:
    with _cache_lock:
        state = request.app.state
        if not hasattr(state, "console_reports"):
            state.console_reports = ReportCache()
        cache: ReportCache = state.console_reports
        return cache


def _days(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))


def report_charts(report: dict[str, Any]) -> dict[str, Chart]:
    """The report's counts as charts, each named for the section that shows it."""
    searches, alerts = report["searches"], report["alerts"]
    answered = int(searches["answered"])
    matched = int(searches["answered_with_a_match"])
    outcomes = {
        "answered, a match": matched,
        "answered, no match": answered - matched,
        **{f"refused: {k.replace('_', ' ')}": int(v) for k, v in searches["refused"].items()},
    }
    per_camera = {k: int(v["reads"]) for k, v in report["reads"]["per_camera"].items()}
    return {
        "reads": bar_chart("chart-reads", "Readings stored per camera", per_camera),
        "purposes": bar_chart("chart-purposes", "Searches by purpose", searches["by_purpose"]),
        "outcomes": bar_chart("chart-outcomes", "Searches by outcome", outcomes),
        "alert_lists": bar_chart("chart-alert-lists", "Alerts by hotlist", alerts["by_hotlist"]),
        "alert_cameras": bar_chart("chart-alert-cameras", "Alerts by camera", alerts["by_camera"]),
        "alert_outcomes": bar_chart(
            "chart-alert-outcomes", "Alert outcomes reported", alerts["outcomes_reported"]
        ),
        "unseal": bar_chart("chart-unseal", "Image unseal requests", report["unseal"]),
        "purges": bar_chart(
            "chart-purges",
            "Deleted by the retention purge",
            {
                "readings": report["retention"]["reads_deleted"],
                "sealed images": report["retention"]["evidence_deleted"],
                "epoch keys destroyed": report["retention"]["epoch_keys_destroyed"],
            },
        ),
    }


def per_day_charts(report: dict[str, Any]) -> list[tuple[str, Chart]]:
    """One small chart per camera of its readings on each UTC day of the period, in camera
    order (chart ids by position: a camera id may hold '.' or '_', which an id may not)."""
    days: dict[str, dict[str, int]] = {}
    for row in report["reads"]["per_camera_per_day"]:
        days.setdefault(str(row["camera_id"]), {})[str(row["day"])] = int(row["reads"])
    return [
        (camera, bar_chart(f"chart-day-reads-{i}", f"Readings per day at {camera}", counts))
        for i, (camera, counts) in enumerate(sorted(days.items()))
    ]


@router.get("/console/public/report", dependencies=[Public], response_class=HTMLResponse)
async def report(
    request: Request,
    days: Annotated[Period, Query(description="7, 30, 90 or 365 whole days")] = Period.MONTH,
) -> Response:
    dep = services_of(request).dep
    built = await run_in_threadpool(_cache(request).get, dep, int(days))
    policy = built["policy"]
    return page(
        request,
        "public_report.html",
        title="Transparency report",
        report=built,
        charts=report_charts(built),
        day_charts=per_day_charts(built),
        days=int(days),
        periods=[int(p) for p in Period],
        windows={k: _days(v) for k, v in policy["windows_seconds"].items()},
        audit_kept=_days(policy["audit_entries_kept_seconds"]),
        sharing_rule=SHARING_RULES.get(policy["out_of_state_sharing"], ""),
        generated=datetime.fromisoformat(built["generated_at"]),
        start=datetime.fromisoformat(built["period"]["start"]),
        end=datetime.fromisoformat(built["period"]["end"]),
    )


@router.get("/console/public/policy", dependencies=[Public], response_class=HTMLResponse)
def policy(request: Request) -> Response:
    return page(
        request,
        "public_policy.html",
        title="Policy",
        view=policy_view(services_of(request).dep.settings),
        show_changes=False,
    )


@router.get("/console/public/checkpoint", dependencies=[Public], response_class=HTMLResponse)
def checkpoint(request: Request) -> Response:
    audit = services_of(request).dep.audit
    found = latest_checkpoint(audit)
    return page(
        request,
        "public_checkpoint.html",
        title="Signed checkpoint of the audit log",
        checkpoint=found,
        body=found.body().decode() if found is not None else "",
        public_key=audit.signer.public_key.hex(),
        origin=audit.signer.origin,
    )


@router.get("/console/public/checkpoint.json", dependencies=[Public])
def checkpoint_file(request: Request) -> Response:
    """The latest checkpoint as GET /audit/checkpoint gives it to auditors, as a file."""
    found = latest_checkpoint(services_of(request).dep.audit)
    if found is None:
        raise NotFound("no checkpoint has been signed yet")
    return Response(
        found.to_json(),
        media_type="application/json",
        headers={
            "Content-Disposition": (
                f'attachment; filename="privplate-checkpoint-{found.tree_size}.json"'
            )
        },
    )
