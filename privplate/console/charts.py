"""Bar charts drawn on the server as inline SVG: no chart library, no script.

The CSP forbids ``style`` attributes, so the SVG uses geometry and presentation attributes
only (``x``, ``width``, ``text-anchor``) and classes that console.css colours. Each chart has a
``<title>`` naming every value (what a screen reader announces for ``role="img"``); the page
shows the same numbers in a table beside it, so nothing is only in the picture.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 480
LABEL_WIDTH = 200
VALUE_WIDTH = 50
ROW = 26
BAR = 18
PAD = 8
#: Long labels are cut in the picture (the table beside it has them in full).
MAX_LABEL_CHARS = 26
_ID = re.compile(r"[a-z][a-z0-9-]{0,40}")


@dataclass(frozen=True)
class Chart:
    """One horizontal bar chart: ``rows`` are (label, count) in the order drawn."""

    id: str
    title: str
    rows: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.id):
            raise ValueError("a chart id is lower-case letters, digits and '-'")
        if any(value < 0 for _, value in self.rows):
            raise ValueError("a bar chart counts things: no negative values")

    @property
    def total(self) -> int:
        return sum(value for _, value in self.rows)

    @property
    def empty(self) -> bool:
        return self.total == 0

    def summary(self) -> str:
        if not self.rows:
            return f"{self.title}: none"
        return f"{self.title}: " + "; ".join(f"{label} {value}" for label, value in self.rows)

    def svg(self) -> Markup:
        rows = self.rows or (("none", 0),)
        height = PAD * 2 + ROW * len(rows)
        scale_to = max((value for _, value in rows), default=0) or 1
        area = WIDTH - LABEL_WIDTH - VALUE_WIDTH - PAD
        title_id = f"{self.id}-title"
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{self.id}" '
            f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
            f'role="img" aria-labelledby="{title_id}" preserveAspectRatio="xMinYMin meet">',
            f'<title id="{title_id}">{escape(self.summary())}</title>',
        ]
        for i, (label, value) in enumerate(rows):
            top = PAD + i * ROW
            middle = top + ROW // 2
            length = round(area * value / scale_to)
            short = label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"
            parts.append(
                f'<text class="label" x="{LABEL_WIDTH - PAD}" y="{middle}" '
                f'text-anchor="end" dominant-baseline="middle">{escape(short)}</text>'
            )
            if length:
                parts.append(
                    f'<rect class="bar" x="{LABEL_WIDTH}" y="{top + (ROW - BAR) // 2}" '
                    f'width="{length}" height="{BAR}" data-value="{value}"></rect>'
                )
            parts.append(
                f'<text class="value" x="{LABEL_WIDTH + length + PAD // 2}" y="{middle}" '
                f'dominant-baseline="middle">{value}</text>'
            )
        parts.append("</svg>")
        # Every piece of text above went through escape(); the rest is numbers and constants.
        return Markup("".join(parts))  # noqa: S704


def bar_chart(id: str, title: str, counts: Mapping[str, int] | Iterable[tuple[str, int]]) -> Chart:
    """A chart of ``counts`` (a mapping keeps its order; so does a list of pairs)."""
    items = counts.items() if isinstance(counts, Mapping) else counts
    return Chart(id=id, title=title, rows=tuple((str(k), int(v)) for k, v in items))
