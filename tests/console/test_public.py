"""The public screens in real Chromium, signed out: the transparency report shows the numbers
of the report built in Python from the same deployment, with its charts; the policy; and the
signed checkpoint, downloaded and checked with the deployment's audit key."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from privplate.audit.signing import Checkpoint
from privplate.console.charts import bar_chart
from privplate.errors import PurposeDenied
from privplate.identity import accounts
from privplate.jurisdiction import Purpose, get_preset
from privplate.policy.queries import QueryRequest
from privplate.policy.rules import PurposePolicy
from privplate.services import Services
from privplate.transparency import build_report, period_ending
from tests import factories
from tests.console.conftest import CAMERA, Console

MINE = re.compile(r"/console/public/")
#: The report's numbers the page shows, by the data-metric names the page gives them.
METRICS = {
    "searches.total": lambda r: r["searches"]["total"],
    "searches.refused": lambda r: r["searches"]["total"] - r["searches"]["answered"],
    "alerts.total": lambda r: r["alerts"]["total"],
    "unseal.released": lambda r: r["unseal"]["released"],
    "reads.active_cameras": lambda r: r["reads"]["active_cameras"],
}


def _clean(console: Console, page, name: str) -> None:  # type: ignore[no-untyped-def]
    console.shot(page, name)
    assert console.axe(page) == [], name


def _two_searches(console: Console) -> None:
    """One allowed search and one refused for its purpose, so the report has something to
    count whatever ran before."""
    plate = "7KQ5108"
    console.plates.add(plate)
    now = datetime.now(UTC)
    with console.deployment() as dep, Services(dep) as services:
        with dep.db.read() as conn:
            ivan = accounts.get_user(conn, "ivan")
        allowed = QueryRequest(
            plate=plate,
            start=now - timedelta(days=2),
            end=now,
            purpose=Purpose.STOLEN_VEHICLE,
            case_number="PUB-2026-1",
            justification="public report test: a vehicle reported stolen at the gate",
        )
        services.queries.run(ivan, allowed)
        with pytest.raises(PurposeDenied):
            services.queries.run(
                ivan,
                QueryRequest(
                    plate=plate,
                    start=now - timedelta(days=2),
                    end=now,
                    purpose=Purpose.IMMIGRATION_ENFORCEMENT,
                    case_number="PUB-2026-2",
                    justification="public report test: a purpose this deployment forbids",
                ),
            )


#: Readings this module stores at the console's camera, by how many days ago (UTC day).
READS_DAYS_AGO = {1: 2, 3: 1}


def _reads_on_two_days(console: Console) -> None:
    """Readings at the camera on two earlier days, through the product's ingest path, so the
    per-day chart has days with readings and days without whatever ran before."""
    now = datetime.now(UTC)
    with console.deployment() as dep, Services(dep) as services:
        reads = []
        for days_ago, n in READS_DAYS_AGO.items():
            for i in range(n):
                plate = f"4PD{days_ago}{i}17"
                console.plates.add(plate)
                observed = now - timedelta(days=days_ago)
                reads.append(factories.read(dep, plate, camera_id=CAMERA, observed_at=observed))
        result, _ = services.ingest(reads, actor="test-setup")
        assert result.inserted == len(reads)


def _per_day_shown(page, expected: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Each camera's per-day chart and table show build_report's series, day by day."""
    by_camera: dict[str, dict[str, int]] = {}
    for row in expected["reads"]["per_camera_per_day"]:
        by_camera.setdefault(row["camera_id"], {})[row["day"]] = row["reads"]
    assert sorted(by_camera) == sorted(expected["reads"]["per_camera"])
    boxes = page.locator("details.per-day")
    assert [b.get_attribute("data-camera") for b in boxes.all()] == sorted(by_camera)
    today = datetime.now(UTC).date()
    for camera, days in by_camera.items():
        box = page.locator(f'details.per-day[data-camera="{camera}"]')
        assert box.get_attribute("open") is not None  # a 30-day period shows them unfolded
        rows = box.locator("table.chart-data tbody tr").all()
        table = {r.locator("th").inner_text(): int(r.locator("td").inner_text()) for r in rows}
        assert table == days and len(days) == 30
        assert sum(days.values()) == expected["reads"]["per_camera"][camera]["reads"]
        assert box.locator("rect.bar").count() == sum(1 for n in days.values() if n)
        title = box.locator("svg title").text_content() or ""
        for day, n in days.items():
            assert f"{day} {n}" in title
    mine = by_camera[CAMERA]
    for days_ago, n in READS_DAYS_AGO.items():
        assert mine[(today - timedelta(days=days_ago)).isoformat()] >= n


def test_the_public_report_shows_the_reports_numbers_with_charts(console: Console) -> None:
    _reads_on_two_days(console)
    _two_searches(console)
    page = console.public_page()
    page.goto(console.url + "/console/public/report")
    with console.deployment() as dep:
        start, end = period_ending(datetime.now(UTC).date(), 30)
        expected = build_report(dep, start=start, end=end)
    assert expected["searches"]["total"] >= 2
    for name, value in METRICS.items():
        shown = page.locator(f'[data-metric="{name}"]').inner_text()
        assert int(shown) == value(expected), name
    # Each count is also drawn: bars for the purposes searched, a title naming every value.
    purposes = page.locator("svg#chart-purposes")
    assert purposes.get_attribute("role") == "img"
    title = purposes.locator("title").text_content() or ""
    for purpose, n in expected["searches"]["by_purpose"].items():
        assert f"{purpose} {n}" in title
    bars = purposes.locator("rect.bar")
    assert bars.count() == sum(1 for n in expected["searches"]["by_purpose"].values() if n)
    table = {
        r.locator("th").inner_text(): int(r.locator("td").inner_text())
        for r in page.locator("#chart-purposes-data tbody tr").all()
    }
    assert table == expected["searches"]["by_purpose"]
    counts = {
        "chart-reads": sum(v["reads"] for v in expected["reads"]["per_camera"].values()),
        "chart-outcomes": expected["searches"]["total"],
        "chart-alert-lists": expected["alerts"]["total"],
        "chart-alert-cameras": expected["alerts"]["total"],
        "chart-alert-outcomes": sum(expected["alerts"]["outcomes_reported"].values()),
        "chart-unseal": sum(expected["unseal"].values()),
    }
    for chart, total in counts.items():
        # Drawn when there is something to draw; the table of its numbers is always there.
        assert page.locator(f"svg#{chart} title").count() == (1 if total else 0), chart
        assert page.locator(f"#{chart}-data").count() == 1, chart
    outcomes = page.locator("#chart-outcomes-data").inner_text()
    assert "refused: denied by policy" in outcomes
    _per_day_shown(page, expected)
    _clean(console, page, "public-report")
    page.set_viewport_size({"width": 375, "height": 800})
    _clean(console, page, "public-report-phone")
    page.set_viewport_size({"width": 1200, "height": 900})
    page.get_by_label("Report period", exact=True).select_option("7")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    assert "(7.0 days)" in page.locator("#report-period").inner_text()
    week = page.locator(f'details.per-day[data-camera="{CAMERA}"] table.chart-data tbody tr')
    assert week.count() == 7
    page.get_by_label("Report period", exact=True).select_option("90")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    box = page.locator(f'details.per-day[data-camera="{CAMERA}"]')
    assert box.get_attribute("open") is None  # 90 rows a camera: folded until opened
    box.locator("summary").click()
    assert box.get_attribute("open") is not None and box.locator("svg").is_visible()
    assert box.locator("table.chart-data tbody tr").count() == 90
    _clean(console, page, "public-report-quarter")
    assert [v for v in console.violations if MINE.search(v)] == []


def test_the_public_policy_page(console: Console) -> None:
    page = console.public_page()
    page.goto(console.url + "/console/public/policy")
    with console.deployment() as dep:
        rules = PurposePolicy.from_settings(dep.settings)
        preset = get_preset(dep.settings.retention.preset)
        windows = {
            name: dep.settings.retention_window(name)
            for name in ("non_hit_reads", "hit_reads", "evidence")
        }
    rows = page.locator("#policy-purposes tbody tr").all()
    status = {r.locator("th").inner_text(): r.locator("td").first.inner_text() for r in rows}
    assert {p for p, s in status.items() if s == "allowed"} == {p.value for p in rules.allowed}
    assert {p for p, s in status.items() if s == "forbidden"} >= {p.value for p in rules.forbidden}
    assert page.locator("#policy-sources").inner_text().splitlines() == list(preset.sources)
    window_text = page.locator("#policy-windows").inner_text()
    for value in windows.values():
        assert f"{value.days} days" in window_text
    assert "Limits" in page.locator("#limits-h").inner_text()
    assert page.locator("#policy-limits tbody tr").count() >= 5
    _clean(console, page, "public-policy")
    assert [v for v in console.violations if MINE.search(v)] == []


def test_the_public_checkpoint_is_shown_and_downloads_signed(console: Console) -> None:
    with console.deployment() as dep:
        signed = dep.audit.checkpoint()
        public_key = dep.audit.signer.public_key
    page = console.public_page()
    page.goto(console.url + "/console/public/checkpoint")
    shown = int(page.locator("#cp-size").inner_text())
    assert shown >= signed.tree_size  # later tests may sign newer ones; never older
    assert page.locator("#cp-key").inner_text() == public_key.hex()
    _clean(console, page, "public-checkpoint")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the signed checkpoint").click()
    text = Path(download.value.path()).read_text()
    checkpoint = Checkpoint.from_json(text)
    checkpoint.verify_signature(public_key)
    assert checkpoint.tree_size == shown
    assert checkpoint.root.hex() == page.locator("#cp-root").inner_text()
    # No entry's content travels with it: the size, the root and the signature only.
    assert "details" not in text and "actor" not in text
    assert [v for v in console.violations if MINE.search(v)] == []


def test_a_chart_escapes_its_labels_and_carries_no_style() -> None:
    chart = bar_chart("chart-x", "Alerts by hotlist", {'<script>"x"</script>': 3, "b&c": 0})
    svg = str(chart.svg())
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "b&amp;c" in svg
    assert "style" not in svg
    assert svg.count('class="bar"') == 1  # a zero draws no bar, only its value
    assert '<title id="chart-x-title">' in svg and 'aria-labelledby="chart-x-title"' in svg
    with pytest.raises(ValueError, match="chart id"):
        bar_chart('x" onload="alert(1)', "t", {})
