#!/usr/bin/env python3
"""Copy the pinned browser files from web/node_modules into privplate/console/static/vendor/
and write vendor/MANIFEST.json; ``--check`` verifies the vendor folder instead (tests, CI).

Standard library only, so it runs with any python3 and no virtualenv. The files are copied
byte for byte: nothing third-party is edited, minified or bundled here, so each one can be
compared with the tarball npm fetched and checked against package-lock.json's integrity.

    cd web && npm ci && cd .. && python3 web/vendor.py          # regenerate
    python3 web/vendor.py --check [--require-node-modules]      # verify
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parent
ROOT = WEB.parent
LOCK = WEB / "package-lock.json"
NODE_MODULES = WEB / "node_modules"
VENDOR = ROOT / "privplate" / "console" / "static" / "vendor"
MANIFEST = VENDOR / "MANIFEST.json"

#: (package, path inside the package tarball, role). Each lands in vendor/<package>/<basename>.
#: libsodium is the UMD build, loaded by classic <script src>: the ESM build of the wrappers
#: imports "libsodium-sumo" by bare name, which a browser resolves only through an import map,
#: an inline script the console's CSP forbids.
FILES: tuple[tuple[str, str, str], ...] = (
    ("libsodium-sumo", "dist/modules-sumo/libsodium-sumo.js", "code"),
    ("libsodium-sumo", "LICENSE", "license"),
    ("libsodium-wrappers-sumo", "dist/modules-sumo/libsodium-wrappers.js", "code"),
    ("libsodium-wrappers-sumo", "LICENSE", "license"),
    ("axe-core", "axe.min.js", "code"),
    ("axe-core", "LICENSE", "license"),
    ("axe-core", "LICENSE-3RD-PARTY.txt", "license"),
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def locked(package: str) -> dict[str, str]:
    entry = json.loads(LOCK.read_text(encoding="utf-8"))["packages"][f"node_modules/{package}"]
    return {k: entry[k] for k in ("version", "integrity", "resolved")}


def dest(package: str, path: str) -> str:
    """Where a file goes, relative to vendor/."""
    return f"{package}/{Path(path).name}"


def expected_entries() -> list[dict[str, str]]:
    return [
        {"file": dest(p, path), "package": p, **locked(p), "path": path, "role": role}
        for p, path, role in FILES
    ]


def generate() -> None:
    if not NODE_MODULES.is_dir():
        sys.exit("web/node_modules is missing: run `npm ci` in web/ first")
    entries = []
    for entry in expected_entries():
        package = entry["package"]
        installed = json.loads((NODE_MODULES / package / "package.json").read_text())["version"]
        if installed != entry["version"]:
            sys.exit(f"{package} {installed} is installed but the lock says {entry['version']}")
        source = NODE_MODULES / package / entry["path"]
        target = VENDOR / entry["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        entries.append({**entry, "sha256": sha256(target)})
    wanted = {e["file"] for e in entries}
    for stale in sorted(VENDOR.rglob("*")):
        if (
            stale.is_file()
            and stale != MANIFEST
            and stale.relative_to(VENDOR).as_posix() not in wanted
        ):
            stale.unlink()
    manifest = {
        "about": "Third-party browser files, copied unmodified from npm by web/vendor.py.",
        "lockfile": "web/package-lock.json",
        "files": entries,
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"vendored {len(entries)} files into {VENDOR.relative_to(ROOT)}\n")


def check(require_node_modules: bool) -> list[str]:
    """Every problem found, in words; empty when the vendor folder is what the lock pins."""
    problems: list[str] = []
    files = json.loads(MANIFEST.read_text(encoding="utf-8"))["files"]
    recorded = [{k: v for k, v in e.items() if k != "sha256"} for e in files]
    if recorded != expected_entries():
        problems.append("MANIFEST.json does not match package-lock.json and FILES: regenerate it")
    listed = {e["file"] for e in files}
    for path in VENDOR.rglob("*"):
        name = path.relative_to(VENDOR).as_posix()
        if path.is_file() and path != MANIFEST and name not in listed:
            problems.append(f"vendor/{name} is not in MANIFEST.json")
    have_modules = NODE_MODULES.is_dir()
    if require_node_modules and not have_modules:
        problems.append("web/node_modules is missing (run `npm ci` in web/)")
    for e in files:
        target = VENDOR / e["file"]
        if not target.is_file():
            problems.append(f"vendor/{e['file']} is missing")
            continue
        if sha256(target) != e["sha256"]:
            problems.append(f"vendor/{e['file']} does not match its sha256 in MANIFEST.json")
        if have_modules:
            source = NODE_MODULES / e["package"] / e["path"]
            if not source.is_file() or source.read_bytes() != target.read_bytes():
                problems.append(f"vendor/{e['file']} differs from node_modules/{e['package']}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify instead of regenerating")
    parser.add_argument(
        "--require-node-modules",
        action="store_true",
        help="with --check: fail when web/node_modules is missing instead of skipping the "
        "byte-for-byte comparison with it",
    )
    args = parser.parse_args()
    if not args.check:
        generate()
        return
    problems = check(args.require_node_modules)
    for problem in problems:
        sys.stderr.write(problem + "\n")
    if problems:
        sys.exit(1)
    unchecked = "" if NODE_MODULES.is_dir() else " (no web/node_modules: tarballs not compared)"
    sys.stdout.write(f"vendor folder matches package-lock.json{unchecked}\n")


if __name__ == "__main__":
    main()
