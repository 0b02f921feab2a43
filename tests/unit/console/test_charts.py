"""The usage charts: bars in proportion to the largest figure, and no text of the API
ever read as markup."""

from __future__ import annotations

import re

from services.console.charts import bar_chart


def bar_widths(svg: str) -> list[int]:
    return [int(width) for width in re.findall(r'<rect [^>]*width="(\d+)"', svg)]


def test_each_bar_is_as_long_as_its_figure_in_proportion_to_the_largest() -> None:
    widths = bar_widths(str(bar_chart("Per day", [("a", 50), ("b", 100), ("c", 25)])))
    assert widths[1] == 2 * widths[0] == 4 * widths[2]


def test_a_label_from_the_api_is_text_not_markup() -> None:
    svg = str(bar_chart("Per key", [("<script>alert(1)</script>", 3)]))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_a_period_without_figures_says_so() -> None:
    assert "Nothing in this period" in str(bar_chart("Per day", []))
