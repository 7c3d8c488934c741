"""In Chromium: a device alert (a silent camera, raised by the real health check beside the
running server) arriving over SSE on the operator's open alerts page, shown as a camera problem
without outcome buttons, then marked cleared when the clearing row arrives; and the
operator making an enrolment code, shown once and kept nowhere in the browser's profile."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from privplate.deployment import Deployment
from tests.console.conftest import Console
from tests.device_alert_support import add_device, camera_back, silent_camera
from tests.privacy import hits_in_files

LIVE_TIMEOUT_MS = 30_000  # the SSE loop polls SQLite every second; not a timing assertion
CAMERA = "fleet-cam-1"
DEVICE = "fleet-box-1"


def test_a_device_alert_arrives_live_without_outcome_buttons(console: Console) -> None:
    with Deployment.open(console.home, actor="test-setup") as dep:
        dep.add_camera(CAMERA)
        device = add_device(dep, DEVICE, [CAMERA])
    page = console.page("olive")
    page.goto(console.url + "/console/operator/alerts")
    expect(page.locator("#live-status")).to_contain_text("Live:")

    with Deployment.open(console.home, actor="test-setup") as dep:
        raised = silent_camera(dep, device)
    item = page.locator(f"#alert-{raised.id}")
    expect(item).to_contain_text("Silent camera", timeout=LIVE_TIMEOUT_MS)
    expect(item).to_contain_text("What happened: camera silent: no frame.")
    expect(item).to_contain_text(f"at camera {CAMERA}, device {DEVICE}, since")
    expect(item.locator("[data-field=state]")).to_have_text("not cleared yet")
    expect(item).to_have_attribute("data-kind", "silent_camera")
    assert item.locator("button").count() == 0 and item.locator("form").count() == 0
    assert "Hotlist" not in item.inner_text()
    assert page.url.endswith("/console/operator/alerts")  # arrived live: no reload
    expect(page.locator("#live-status")).to_contain_text("New camera problem")
    console.shot(page, "operator-alerts-device")
    assert console.axe(page) == []

    # Frames again: the clearing row arrives, and marks the raised one cleared in place.
    with Deployment.open(console.home, actor="test-setup") as dep:
        cleared = camera_back(dep, device)
    clearing = page.locator(f"#alert-{cleared.id}")
    expect(clearing).to_contain_text("Silent camera cleared", timeout=LIVE_TIMEOUT_MS)
    expect(clearing).to_contain_text(f"this ends the problem of alert {raised.id}")
    expect(item.locator("[data-field=state]")).to_contain_text("cleared at")
    assert clearing.locator("button").count() == 0
    assert console.axe(page) == []

    # Reloaded, the server renders the same: both rows, no buttons on either.
    page.reload()
    expect(item.locator("[data-field=state]")).to_contain_text("cleared at")
    assert item.locator("button").count() == 0 and clearing.locator("button").count() == 0
    page.goto(console.url + "/console/operator")
    assert int(page.locator("#camera-problems-today").inner_text()) >= 1
    assert console.violations == []


def test_an_operator_makes_an_enrolment_code_that_stays_out_of_the_profile(
    console: Console,
) -> None:
    page = console.page("olive")
    page.get_by_role("link", name="Enrolment codes").click()
    page.wait_for_url("**/console/operator/enrolment-codes")
    assert console.axe(page) == []
    page.get_by_label("gate-1", exact=True).check()
    page.get_by_label("Device name (optional)").fill("north gate box")
    page.get_by_role("button", name="Make enrolment code").click()
    page.wait_for_load_state()
    code = page.locator("#secret").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){3}", code)
    code_id = page.locator("#secret-id").inner_text()
    console.shot(page, "operator-enrolment-code")
    assert console.axe(page) == []

    page.get_by_role("link", name="Back to enrolment codes").click()
    row = page.locator(f"#code-{code_id}")
    expect(row).to_contain_text("unused")
    expect(row).to_contain_text("north gate box")
    assert code not in page.content()
    assert not any(code in u or code.replace("-", "") in u for u in console.urls)
    assert console.violations == []

    # Chromium writes its profile out when it closes: the code is in no file of it.
    profile = Path(console.profiles) / "olive"
    console.contexts.pop("olive").close()  # type: ignore[attr-defined]
    files = [p for p in profile.rglob("*") if p.is_file()]
    assert any(p.name == "History" for p in files)
    assert hits_in_files(files, {code, code.replace("-", "")}) == {}
