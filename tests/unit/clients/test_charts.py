"""The usage chart: each bar as long as its share of the largest, to an eighth of a
character, with the numbers beside it and their totals."""

from __future__ import annotations

import io

from rich.console import Console

from clients.cli.charts import Bar, bar, bar_chart


def shown(bars: list[Bar], width: int = 20) -> str:
    """The chart as a terminal 120 columns wide shows it."""
    out = io.StringIO()
    Console(file=out, width=120).print(
        bar_chart(bars, title="Spent", headers=("day", "credits", "spends"), width=width)
    )
    return out.getvalue()


def rendered(bars: list[Bar], width: int = 20) -> list[list[str]]:
    """The chart's rows (the header's too) as cells."""
    return [
        [cell.strip() for cell in line.replace("┃", "│").split("│")[1:-1]]
        for line in shown(bars, width).splitlines()
        if line.replace("┃", "│").count("│") == 5
    ]


def test_the_largest_value_fills_the_width_and_the_others_their_share() -> None:
    assert bar(80, 80, width=10) == "█" * 10
    assert bar(40, 80, width=10) == "█" * 5
    assert bar(10, 80, width=10) == "█▎"


def test_nothing_spent_is_no_bar_and_a_little_is_never_nothing() -> None:
    assert bar(0, 80, width=10) == ""
    assert bar(0, 0, width=10) == ""
    assert bar(1, 10_000, width=10) == "▏"


def test_the_chart_shows_each_row_its_bar_its_numbers_and_the_totals() -> None:
    rows = rendered(
        [Bar("2026-12-01", 30, (3,)), Bar("2026-12-02", 120, (12,)), Bar("2026-12-03", 0, (0,))]
    )

    assert rows[0] == ["day", "", "credits", "spends"]
    by_day = {row[0]: row for row in rows[1:]}
    assert by_day["2026-12-02"][1:] == ["█" * 20, "120", "12"]
    assert by_day["2026-12-01"][1:] == ["█" * 5, "30", "3"]
    assert by_day["2026-12-03"][1:] == ["", "0", "0"]
    assert by_day["total"][1:] == ["", "150", "15"]


def test_a_chart_of_nothing_says_so() -> None:
    assert rendered([]) == [["day", "", "credits", "spends"]]
    assert "Nothing in this period." in shown([])
