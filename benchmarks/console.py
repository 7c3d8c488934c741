"""Console benchmarks: how fast the pages answer with a realistic store behind them, how soon a
hit reaches an operator's open page in Chromium, and what an officer's in-browser approval
costs.

1. Server time to render the operator's dashboard, the investigator's search answer (a POST
   that runs the policy-checked search over 30 daily epochs) and the alerts page, with
   ``--preload`` reads stored (1M by default, through ``Deployment.ingest``) and 10,000 live
   hotlist entries (p50/p99). In-process (Starlette's TestClient, cookie session, CSRF token
   as the browser sends it), so the figures are the server's time without a network.
2. Ingest-to-screen latency in Chromium: the operator's alerts page open in headless Chromium
   (Debian's /usr/bin/chromium) on a real ``privplate`` server (uvicorn, one worker); a signed
   ``POST /ingest`` of a read that hits a hotlist entry; the time from sending it to the alert's
   element being in the page (stamped by a MutationObserver in the page; same clock) (p50/p95).
3. Officer approval in the browser: ``benchmarks/console_crypto.py`` (opening a share file at
   the CLI's "moderate" Argon2id limits, then partial + proof, next to PyNaCl in the same run).

    .venv/bin/python benchmarks/console.py --quick     # smoke run, about a minute
    .venv/bin/python benchmarks/console.py             # 1M reads stored
    .venv/bin/python benchmarks/console.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Only counts and timings are printed, never plate text.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import console_crypto
import httpx
import server as srv  # benchmarks/server.py: the populated deployment and the real server
from core import percentile, postgres_schema, random_plate
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright

from privplate.api import create_app
from privplate.deployment import Deployment
from privplate.hotlists import EntryIn
from privplate.hotlists.sources import HotlistSource
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.services import Services
from privplate.tokens import canonical_plate

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOTLIST = "bench-console"
ENTRIES = 10_000
ENTRY_BATCH = 1_000
PASSWORD = "benchmark console passphrase"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# The query and hotlist benchmarks ask far more than a day's default quotas.
QUOTAS = {
    "PRIVPLATE_QUERIES__PER_USER_PER_DAY": "10000",
    "PRIVPLATE_QUERIES__PER_DEPLOYMENT_PER_DAY": "1000000",
    "PRIVPLATE_HOTLISTS__ENTRIES_PER_USER_PER_DAY": "1000000",
}


@dataclass(frozen=True)
class Sizes:
    preload: int
    present_plates: int
    renders: int
    alerts: int
    entries: int


FULL = Sizes(preload=1_000_000, present_plates=1_000, renders=300, alerts=100, entries=ENTRIES)
QUICK = Sizes(preload=20_000, present_plates=100, renders=40, alerts=15, entries=2_000)


def _web_users(home: Path) -> None:
    with Deployment.open(home, actor="bench") as dep:
        for role in (Role.OPERATOR, Role.INVESTIGATOR):
            accounts.create_user(
                db=dep.db,
                audit=dep.audit,
                actor="bench",
                name=f"web-{role.value}",
                role=role,
                password=PASSWORD,
            )


def _hotlist(home: Path, rng: random.Random, count: int) -> list[str]:
    """``count`` live entries on one list, added in batches as an operator would import them;
    returns the canonical plates (kept in memory only, to make hits)."""
    plates: list[str] = []
    seen: set[str] = set()
    with Deployment.open(home, actor="bench") as dep, Services(dep) as services:
        services.hotlists.create(
            actor="user:web-operator", name=HOTLIST, source=HotlistSource.LOCAL_BOLO
        )
        while len(plates) < count:
            batch: list[EntryIn] = []
            while len(batch) < min(ENTRY_BATCH, count - len(plates)):
                canonical = canonical_plate(random_plate(rng))
                if canonical in seen:
                    continue
                seen.add(canonical)
                batch.append(EntryIn(plate=canonical, reason="benchmark", case_number="BENCH-C"))
            services.hotlists.add_entries(actor="user:web-operator", hotlist=HOTLIST, entries=batch)
            plates.extend(e.plate for e in batch)
    return plates


def _sign_in(client: TestClient, name: str) -> str:
    form = client.get("/console/sign-in")
    answer = client.post(
        "/console/sign-in",
        data={"csrf": CSRF.findall(form.text)[0], "name": name, "password": PASSWORD},
        follow_redirects=False,
    )
    if answer.status_code != 303:
        raise SystemExit(f"console sign-in failed ({answer.status_code})")
    return str(CSRF.findall(client.get("/console/account").text)[0])


def _timed(label: str, runs: int, call: Callable[[int], int]) -> None:
    for i in range(5):  # warm-up
        call(i)
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        status = call(i)
        samples.append((time.perf_counter() - start) * 1e3)
        if status != 200:
            raise SystemExit(f"{label}: answered {status}")
    samples.sort()
    print(
        f"  {label:<44} p50 {percentile(samples, 50):7.1f} ms   p99 "
        f"{percentile(samples, 99):7.1f} ms   ({runs} requests)"
    )


def bench_renders(setup: srv.Setup, sizes: Sizes, rng: random.Random) -> None:
    os.environ.update(QUOTAS)
    app = create_app(setup.home, run_scheduler=False)
    present = list(setup.present)
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(days=srv.WINDOW_EPOCHS)).strftime("%Y-%m-%dT%H:%M"),
        "end": now.strftime("%Y-%m-%dT%H:%M"),
    }
    print(
        f"[{setup.label}] server time per page, {setup.reads:,} reads and "
        f"{sizes.entries:,} hotlist entries stored:"
    )
    with TestClient(app, base_url="https://bench") as client:
        operator = TestClient(app, base_url="https://bench")
        _sign_in(operator, "web-operator")
        investigator = TestClient(app, base_url="https://bench")
        csrf = _sign_in(investigator, "web-investigator")
        _timed(
            "operator dashboard (GET)",
            sizes.renders,
            lambda _: operator.get("/console/operator").status_code,
        )
        _timed(
            "alerts page (GET)",
            sizes.renders,
            lambda _: operator.get("/console/operator/alerts").status_code,
        )

        def search(i: int) -> int:
            # Half the searches are for plates that were seen, half for plates that were not.
            plate = present[i % len(present)] if i % 2 == 0 else random_plate(rng)
            answer = investigator.post(
                "/console/investigator/search",
                data={
                    "csrf": csrf,
                    "plate": plate,
                    **window,
                    "purpose": "stolen-vehicle",
                    "case_number": f"BENCH-{i}",
                    "justification": "Benchmark: vehicle reported stolen from the lot.",
                },
            )
            return answer.status_code

        _timed("search answer (POST, 30-day window)", sizes.renders, search)
        del client


_OBSERVE = """() => {
  window.__seen = {};
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes)
      if (n.id && n.id.startsWith('alert-')) window.__seen[n.id] = Date.now();
  }).observe(document.getElementById('alerts'), {childList: true});
}"""


def bench_alert_to_screen(
    setup: srv.Setup, sizes: Sizes, rng: random.Random, hot: Sequence[str]
) -> None:
    os.environ.update(QUOTAS)
    with Deployment.open(setup.home, actor="bench") as dep:
        key = dep.keyring.current_key()
    with srv.server(setup) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(base + "/console/sign-in")
        page.get_by_label("User name").fill("web-operator")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(base + "/console/operator/alerts")
        page.wait_for_selector("#live-status:has-text('Live')")
        page.evaluate(_OBSERVE)
        samples: list[float] = []
        with httpx.Client(base_url=base, timeout=60.0) as client:
            for i in range(sizes.alerts + 3):
                plate = rng.choice(hot)
                read = srv.make_read(
                    setup, rng, key, datetime.now(UTC) - timedelta(seconds=1), plate
                )
                sent = time.time() * 1e3
                answer = srv.signed_post(client, setup.device, "/ingest", srv.batch_body([read]))
                alerts = answer.json().get("alerts", []) if answer.status_code == 200 else []
                if len(alerts) != 1:
                    raise SystemExit(f"a hotlisted read raised {len(alerts)} alerts")
                element = f"alert-{alerts[0]}"
                page.wait_for_selector(f"#{element}", timeout=10_000)
                shown = page.evaluate(f"window.__seen['{element}']")
                if i >= 3:
                    samples.append(float(shown) - sent)
        browser.close()
    samples.sort()
    print(
        f"[{setup.label}] ingest to alert on the operator's page in Chromium, "
        f"{len(samples)} hits: p50 {percentile(samples, 50):.1f} ms, p95 "
        f"{percentile(samples, 95):.1f} ms, max {samples[-1]:.1f} ms"
    )


def run(label: str, database_url: str, home: Path, sizes: Sizes, seed: int) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    setup = srv.prepare(label, home, database_url, now)
    srv.preload(
        setup,
        rng,
        srv.Sizes(
            ingest_batches=0,
            preload=sizes.preload,
            present_plates=sizes.present_plates,
            queries=0,
            alerts=0,
        ),
    )
    _web_users(home)
    os.environ.update(QUOTAS)
    hot = _hotlist(home, rng, sizes.entries)
    bench_renders(setup, sizes, rng)
    bench_alert_to_screen(setup, sizes, rng, hot)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="privplate-console-bench-") as tmp:
        root = Path(tmp)
        run("sqlite", f"sqlite:///{root / 'sqlite.db'}", root / "sqlite", sizes, args.seed)
        if args.postgres:
            with postgres_schema(args.postgres) as url:
                run("postgres", url, root / "postgres", sizes, args.seed)
    print("officer approval in the browser (benchmarks/console_crypto.py):")
    console_crypto.main(["--quick"] if args.quick else [])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
