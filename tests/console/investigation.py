"""What the investigator and officer browser tests share: a read with sealed evidence put on
the console's deployment, and the steps a person takes in the page (search, file an unseal
request, approve with a share file)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from privplate.sealing import seal
from privplate.sealing.layout import pack_evidence
from privplate.services import Services
from privplate.store import EvidenceIn
from tests import factories
from tests.console.conftest import CAMERA, Console
from tests.unseal_support import CROP, FRAME

JUSTIFICATION = "Vehicle reported stolen from the Elm Street lot; the owner's statement is on file."
#: Argon2id at the share file's limits and a page load: generous, never asserted as a timing.
APPROVAL_TIMEOUT_MS = 120_000


def ingest_sealed_read(console: Console, plate: str, *, hours_ago: float = 2.0) -> uuid.UUID:
    """A read of ``plate`` at gate-1 with an evidence item sealed to the deployment's current
    evidence key (the fixture's ceremony), through the product's one ingest path. Returns the
    evidence id."""
    console.plates.add(plate)
    evidence_id = uuid.uuid4()
    observed = datetime.now(UTC) - timedelta(hours=hours_ago)
    with console.deployment() as dep, Services.open(dep) as services:
        public_key = services.evidence_public_key()
        assert public_key is not None, "the fixture's ceremony set an evidence key"
        sealed = seal(
            pack_evidence(CROP, FRAME), bytes.fromhex(public_key), evidence_id=evidence_id
        )
        read = factories.read(
            dep, plate, camera_id=CAMERA, observed_at=observed, evidence_id=evidence_id
        )
        result, _ = services.ingest(
            [read], [EvidenceIn(evidence_id, CAMERA, observed, sealed)], actor="test-setup"
        )
        assert result.inserted == 1
    return evidence_id


def local(value: datetime) -> str:
    """A time as the form's datetime-local fields take it (UTC, to the minute)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def search(  # type: ignore[no-untyped-def]
    console: Console,
    page,
    plate: str,
    *,
    case: str,
    purpose: str = "stolen-vehicle",
    justification: str = JUSTIFICATION,
    start: datetime | None = None,
    end: datetime | None = None,
) -> None:
    """Fill the search form and send it; the answer (or the refusal) replaces the page's main
    part, the page itself staying where it was."""
    console.plates.add(plate)
    page.goto(console.url + "/console/investigator/search")
    page.locator("#plate").fill(plate)
    if start is not None:
        page.locator("#start").fill(local(start))
    if end is not None:
        page.locator("#end").fill(local(end))
    page.locator("#purpose").select_option(purpose)
    page.locator("#case_number").fill(case)
    page.locator("#justification").fill(justification)
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/console/investigator/search")
    ):
        page.get_by_role("button", name="Search", exact=True).click()
    # The page's script sent it with fetch (no navigation) and puts the answer in place.
    page.wait_for_selector("main:not([aria-busy])")
    assert page.url == console.url + "/console/investigator/search"


def file_unseal(  # type: ignore[no-untyped-def]
    console: Console, page, plate: str, *, case: str, justification: str
) -> str:
    """Search for ``plate``, then request the unseal of its one result from the answer page.
    Returns the new request's id, read from the requester's list (its withdraw form)."""
    search(console, page, plate, case=case)
    result = page.locator("ol.results > li").first
    result.locator("summary").click()
    result.get_by_label("Justification for seeing the image").fill(justification)
    with page.expect_navigation():
        result.get_by_role("button", name="Request unseal").click()
    assert page.url.endswith("/console/investigator/unseal?done=filed"), page.url
    row = page.locator("tbody tr").filter(has_text=case)
    action = row.locator("form").get_attribute("action") or ""
    assert action.endswith("/withdraw"), action
    return action.split("/")[-2]


def approve_in_browser(  # type: ignore[no-untyped-def]
    console: Console, page, officer: str, request_id: str, *, share_of: str | None = None
) -> None:
    """``officer`` opens the request, picks a share file (their own, or ``share_of``'s lent
    to them), types its passphrase and approves: the page computes the partial and its
    proof, and posts them."""
    holder = share_of or officer
    page.goto(f"{console.url}/console/officer/unseal/{request_id}")
    page.locator("#share-file").set_input_files(str(console.shares[holder]))
    page.locator("#share-passphrase").fill(console.share_passphrase(holder))
    with page.expect_navigation(timeout=APPROVAL_TIMEOUT_MS):
        page.get_by_role("button", name="Approve", exact=True).click()
    page.wait_for_load_state()


def no_plate_in_any_url(console: Console) -> None:
    leaked = [u for u in console.urls for p in console.plates if p.lower() in u.lower()]
    assert leaked == []


def screen_ok(console: Console, page, name: str, *plates: str) -> None:  # type: ignore[no-untyped-def]
    """Every screen: its screenshot, no serious axe violation, and none of ``plates`` in it."""
    console.shot(page, name)
    assert console.axe(page) == []
    html = page.content()
    for plate in plates:
        assert plate not in html


def fits_a_phone(console: Console, page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Readable at 375px: nothing wider than the screen (tables scroll in their own box)."""
    size = page.viewport_size
    page.set_viewport_size({"width": 375, "height": 800})
    try:
        console.shot(page, name)
        wider = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > 375)
                .map(e => `${e.tagName}.${e.className}`)"""
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, wider
    finally:
        page.set_viewport_size(size)
