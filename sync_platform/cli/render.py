"""Terminal output of the CLI: tables through rich, plain enough to read in a log or to split()."""

from __future__ import annotations

import io
import sys

from rich import box
from rich.console import Console
from rich.table import Table


def grid(headers: list[str], rows: list[list]) -> Table:
    """Columns two spaces apart, a rule under the header."""
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for header in headers:
        grid.add_column(header, no_wrap=True)
    for row in rows:
        grid.add_row(*(str(cell) for cell in row))
    return grid


def table(headers: list[str], rows: list[list]) -> str:
    """The grid as plain text, no trailing blanks: readable in a log, splittable by a script."""
    console = Console(file=io.StringIO(), width=10_000, color_system=None, highlight=False)
    console.print(grid(headers, rows))
    return "\n".join(line.rstrip() for line in console.file.getvalue().rstrip().splitlines())


def out(text: str) -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
