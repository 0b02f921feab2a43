"""Bar charts drawn on the server as inline SVG: one bar per row, its length in
proportion to the largest, the figure written next to it. No script and no chart
library; the SVG scales to the page's width."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640
LABEL_WIDTH = 170
VALUE_WIDTH = 70
ROW_HEIGHT = 26
BAR_HEIGHT = 16


def bar_chart(title: str, rows: Sequence[tuple[str, int]], unit: str = "") -> Markup:
    """An accessible SVG (its title names it, each bar's title tells its figure)."""
    if not rows:
        return Markup('<p class="empty">Nothing in this period.</p>')
    largest = max(*(value for _, value in rows), 1)
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    height = ROW_HEIGHT * len(rows)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, value) in enumerate(rows):
        y = index * ROW_HEIGHT
        length = round(span * max(value, 0) / largest)
        shown = escape(f"{value:,}{unit}")
        parts.append(
            f'<g class="bar"><title>{escape(label)}: {shown}</title>'
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 17}" text-anchor="end">'
            f"{escape(_shortened(label))}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y + 5}" width="{max(length, 1)}" '
            f'height="{BAR_HEIGHT}" rx="2"></rect>'
            f'<text x="{LABEL_WIDTH + length + 6}" y="{y + 17}">{shown}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text in it was escaped)


def _shortened(label: str, longest: int = 24) -> str:
    return label if len(label) <= longest else label[: longest - 1] + "…"
