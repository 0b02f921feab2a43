"""What the command line prints: Rich renderings for a person on stdout, the API's
JSON for `--json`, and refusals on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from clients.gateway import Problem

PIPED_WIDTH = 200
"""Output that goes to a file or a pipe is not folded at 80 columns: ids are copied
from it whole."""


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout or stderr (looked up at each call, so that a
    redirected stream is the one written to)."""
    made = Console(stderr=stderr, highlight=False)
    if not made.is_terminal:
        made.width = PIPED_WIDTH
    return made


def print_json(body: Any) -> None:
    sys.stdout.write(json.dumps(body, indent=2) + "\n")


def as_page(items: list[Any]) -> dict[str, Any]:
    """Every item of a list that the API pages, in the shape of one page."""
    return {"items": items, "next_cursor": None}


def print_list(
    items: list[Any],
    *,
    as_json: bool,
    title: str,
    headers: Sequence[str],
    row: Callable[[Any], Sequence[Any]],
) -> None:
    """A list the API pages, read whole: one page of JSON, or a table of a row per item."""
    if as_json:
        print_json(as_page(items))
    else:
        console().print(table(title, headers, (row(item) for item in items)))


def problem_lines(problem: Problem) -> list[str]:
    """The problem's detail, then one line per field error."""
    lines = [str(problem)]
    lines += [f"  {name or 'body'}: {message}" for name, message in problem.field_errors.items()]
    return lines


def problem_line(problem: Problem) -> str:
    """The problem on one line, its field errors after its detail."""
    fields = "; ".join(
        f"{name or 'body'}: {message}" for name, message in problem.field_errors.items()
    )
    return f"{problem} ({fields})" if fields else str(problem)


def refuse(problem: Problem) -> None:
    sys.stderr.write("\n".join(problem_lines(problem)) + "\n")


def complain(message: str) -> None:
    sys.stderr.write(message + "\n")


def table(title: str | None, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A table of figures as they came (None as an empty cell); ids never wrap, nor does
    the title, and a table without rows says so."""
    cells = [[cell_text(cell) for cell in row] for row in rows]
    shown = Table(
        title=title,
        title_justify="left",
        min_width=len(title or ""),
        caption=None if cells else "None.",
    )
    for header in headers:
        shown.add_column(header, no_wrap=header == "id" or header.endswith(" id"))
    for row in cells:
        shown.add_row(*row)
    return shown


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
