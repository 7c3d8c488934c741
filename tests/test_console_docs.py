"""The README shows three console screens; the images it names are in the repository (copies
of screenshots the browser suite writes to artifacts/screenshots/)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_shows_three_console_screenshots_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]+\]\((docs/screenshots/[\w-]+\.png)\)", readme)
    assert len(images) == 3
    for image in images:
        data = (ROOT / image).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), image
        assert len(data) > 10_000, image
