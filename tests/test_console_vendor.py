"""The console's third-party browser files are exactly what web/package-lock.json pins.

Checked here independently of web/vendor.py (which writes the manifest), so a bug there cannot
hide a changed file: versions and integrity against the lock, file hashes against the
manifest, and, when web/node_modules exists (CI runs `npm ci` in web/, which itself verifies
each tarball against the lock's integrity), byte equality with the installed packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
NODE_MODULES = WEB / "node_modules"
STATIC = ROOT / "privplate" / "console" / "static"
VENDOR = STATIC / "vendor"
MANIFEST: list[dict[str, Any]] = json.loads((VENDOR / "MANIFEST.json").read_text())["files"]
LOCK: dict[str, Any] = json.loads((WEB / "package-lock.json").read_text())
PINNED: dict[str, str] = json.loads((WEB / "package.json").read_text())["dependencies"]
ON_CI = os.environ.get("CI") == "true"


def by_file(entry: dict[str, Any]) -> str:
    return str(entry["file"])


def test_lock_is_v3_and_pins_exact_versions() -> None:
    assert LOCK["lockfileVersion"] == 3
    assert set(PINNED) == {"libsodium-wrappers-sumo", "libsodium-sumo", "axe-core"}
    for package, version in PINNED.items():
        assert version[0].isdigit(), f"{package} must be pinned exactly, not {version}"
        assert LOCK["packages"][f"node_modules/{package}"]["version"] == version
    assert PINNED["axe-core"].startswith("4.")


@pytest.mark.parametrize("entry", MANIFEST, ids=by_file)
def test_manifest_entry_matches_the_lock(entry: dict[str, Any]) -> None:
    locked = LOCK["packages"][f"node_modules/{entry['package']}"]
    assert entry["version"] == locked["version"]
    assert entry["integrity"] == locked["integrity"]
    assert entry["resolved"] == locked["resolved"]
    assert entry["resolved"].startswith("https://registry.npmjs.org/")
    assert entry["file"] == f"{entry['package']}/{Path(entry['path']).name}"


@pytest.mark.parametrize("entry", MANIFEST, ids=by_file)
def test_vendored_file_hash_matches_the_manifest(entry: dict[str, Any]) -> None:
    data = (VENDOR / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]


@pytest.mark.parametrize("entry", MANIFEST, ids=by_file)
def test_vendored_file_is_the_installed_package_file(entry: dict[str, Any]) -> None:
    if not NODE_MODULES.is_dir():
        if ON_CI:
            pytest.fail("CI must run `npm ci --ignore-scripts` in web/ before the tests")
        pytest.skip("web/node_modules is absent (run `npm ci` in web/ to compare)")
    package = NODE_MODULES / entry["package"]
    assert json.loads((package / "package.json").read_text())["version"] == entry["version"]
    assert (package / entry["path"]).read_bytes() == (VENDOR / entry["file"]).read_bytes()


def test_every_package_has_its_licence_and_code() -> None:
    for package in PINNED:
        roles = {e["role"] for e in MANIFEST if e["package"] == package}
        assert roles == {"code", "license"}, package
        for e in MANIFEST:
            if e["package"] == package and e["role"] == "license":
                assert (VENDOR / e["file"]).stat().st_size > 0


def test_vendor_folder_holds_only_manifest_files() -> None:
    listed = {e["file"] for e in MANIFEST} | {"MANIFEST.json"}
    present = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()}
    assert present == listed


# Markers of the vendored libraries' builds; privplate's own static files must not carry them
# (third-party code belongs in vendor/, where the manifest accounts for it).
THIRD_PARTY_MARKERS = ("Emscripten", "libsodium.js", "axe-core", "@license")


def test_nothing_third_party_outside_vendor() -> None:
    for path in STATIC.rglob("*"):
        if path.is_file() and VENDOR not in path.parents:
            text = path.read_text(encoding="utf-8", errors="replace")
            for marker in THIRD_PARTY_MARKERS:
                assert marker not in text, f"{path.relative_to(ROOT)} looks third-party"
            assert path.stat().st_size < 64 * 1024, f"{path.relative_to(ROOT)} is suspiciously big"


def test_vendor_script_check_agrees() -> None:
    args = [sys.executable, str(WEB / "vendor.py"), "--check"]
    if ON_CI:
        args.append("--require-node-modules")
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
