"""Bar charts in the terminal: one row per day, operation or key, its bar as long as
its share of the largest value, drawn to an eighth of a character."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table

EIGHTHS = " ▏▎▍▌▋▊▉"
FULL = "█"
BAR_WIDTH = 40


@dataclass(frozen=True)
class Bar:
    """One row: its label, the value its bar shows, and further figures beside it."""

    label: str
    value: int
    figures: tuple[int, ...] = ()


def bar(value: int, largest: int, width: int = BAR_WIDTH) -> str:
    """`value`'s bar when `largest` fills `width` characters; a value above zero is never
    drawn as nothing, however small beside the largest."""
    if value <= 0 or largest <= 0:
        return ""
    eighths = max(round(min(value, largest) / largest * width * 8), 1)
    whole, rest = divmod(eighths, 8)
    return FULL * whole + (EIGHTHS[rest] if rest else "")


def bar_chart(
    bars: Sequence[Bar], *, title: str, headers: Sequence[str], width: int = BAR_WIDTH
) -> Table:
    """The bars with their numbers; `headers` name the label, the value and each figure.
    A last row gives the totals; a chart without rows says so."""
    largest = max((row.value for row in bars), default=0)
    chart = Table(
        title=title,
        title_justify="left",
        min_width=len(title),
        caption=None if bars else "Nothing in this period.",
        show_footer=len(bars) > 1,
    )
    label, value, *figures = headers
    chart.add_column(label, footer="total", no_wrap=True)
    chart.add_column("", width=width, no_wrap=True)
    chart.add_column(value, justify="right", footer=str(sum(row.value for row in bars)))
    for index, figure in enumerate(figures):
        total = sum(row.figures[index] for row in bars)
        chart.add_column(figure, justify="right", footer=str(total))
    for row in bars:
        chart.add_row(
            row.label,
            bar(row.value, largest, width),
            str(row.value),
            *(str(figure) for figure in row.figures),
        )
    return chart
