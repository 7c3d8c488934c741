"""The console's in-browser officer approval against the CLI's: opening a share file at the
CLI's "moderate" Argon2id limits, and partial + proof, in headless Chromium (the vendored
WebAssembly libsodium, under the console's CSP) and in PyNaCl in the same run. Browser times
are measured inside the page (performance.now), so Playwright round trips are not counted.
Prints figures; asserts nothing."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Route, sync_playwright

from privplate.ceremony.sharefile import read_share_file, seal_share, write_share_file
from privplate.sealing import group
from privplate.threshold import prove_partial, split

STATIC = Path(__file__).resolve().parent.parent / "privplate" / "console" / "static"
ORIGIN = "https://console.test"
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bench</title>
<script type="module" src="/static/js/officer-approve.js"></script></head><body></body></html>"""
PASSPHRASE = "correct horse battery staple"


def _serve(route: Route) -> None:
    path = urlsplit(route.request.url).path
    headers = {"Content-Security-Policy": CSP}
    if path == "/bench.html":
        route.fulfill(headers=headers, content_type="text/html", body=PAGE)
        return
    file = (STATIC / path.removeprefix("/static/")).resolve()
    if path.startswith("/static/") and file.is_relative_to(STATIC) and file.is_file():
        route.fulfill(headers=headers, content_type="text/javascript", body=file.read_bytes())
        return
    route.fulfill(status=404, headers=headers, body="")


def _p50_python(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


# Times openShare or provePartial inside the page; returns the median in milliseconds.
BROWSER = """async ([which, text, pass, r, context, runs]) => {
  const m = await import('/static/js/officer-approve.js');
  await m.ready();
  const share = m.openShare(text, pass);
  const samples = [];
  for (let i = 0; i < runs; i += 1) {
    const start = performance.now();
    if (which === "open") m.openShare(text, pass);
    else m.provePartial(share.value, m.fromHex(r), m.fromHex(context));
    samples.push(performance.now() - start);
  }
  samples.sort((x, y) => x - y);
  return samples[Math.floor(samples.length / 2)];
}"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    open_runs, prove_runs = (3, 50) if args.quick else (9, 500)
    x = group.random_scalar()
    share = split(x, shares=3, threshold=2)[0]
    sealed = seal_share(
        share,
        PASSPHRASE,
        ceremony_id=uuid.uuid4(),
        officer="alice",
        threshold=2,
        officers=3,
        public_key=group.base_mul(x),
        strength="moderate",
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alice.share.json"
        write_share_file(path, sealed)
        text = path.read_text()
        share_file = read_share_file(path)
    ephemeral = group.base_mul(group.random_scalar())
    context = b"privplate/v1/unseal-request\x00" + uuid.uuid4().bytes * 3
    py_open = _p50_python(lambda: share_file.open(PASSPHRASE), open_runs)
    py_prove = _p50_python(lambda: prove_partial(share.value, ephemeral, context), prove_runs)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page()
        page.route(f"{ORIGIN}/**", _serve)
        page.goto(f"{ORIGIN}/bench.html")
        common = [text, PASSPHRASE, ephemeral.hex(), context.hex()]
        js_open = page.evaluate(BROWSER, ["open", *common, open_runs])
        js_prove = page.evaluate(BROWSER, ["prove", *common, prove_runs])
        browser.close()
    mib = sealed.memlimit // 2**20
    print(f"open share file (Argon2id ops {sealed.opslimit}, {mib} MiB), p50 of {open_runs}:")
    print(f"  browser {js_open:.0f} ms, PyNaCl {py_open:.0f} ms, ratio {js_open / py_open:.2f}")
    print(f"partial + proof, p50 of {prove_runs}:")
    print(f"  browser {js_prove:.3f} ms, PyNaCl {py_prove:.3f} ms, ratio {js_prove / py_prove:.2f}")


if __name__ == "__main__":
    main()
