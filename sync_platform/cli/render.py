"""Terminal output of the CLI: tables through rich, plain enough to read in a log or to split()."""

from __future__ import annotations

import io
import sys

from rich import box
from rich.console import Console
from rich.table import Table

from ..engine.progress import Progress


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


def progress_grid(reports: list[tuple[str, str, Progress]]) -> Table:
    """(run, table, its latest Progress) as bars: rows done of the expected, rows/s, ETA."""
    from rich.progress_bar import ProgressBar

    bars = Table(box=None, show_header=True, pad_edge=False, padding=(0, 1, 0, 0))
    with_runs = any(run for run, _, _ in reports)  # a stage run here, outside Dagster, has none
    for header in ("run", "table", "stage", "progress", "rows", "rows/s", "ETA")[0 if with_runs else 1:]:
        bars.add_column(header, no_wrap=True)
    for run, table_name, p in reports:
        total = p.total_rows or max(p.rows, 1)
        expected = f" of {'~' if p.estimated else ''}{p.total_rows:,}" if p.total_rows else ""
        eta = "done" if p.done else (f"{p.eta_s:,.0f} s" if p.eta_s is not None else "?")
        cells = [table_name, p.stage, ProgressBar(total=total, completed=min(p.rows, total), width=30),
                 f"{p.rows:,}{expected}", f"{p.rows_per_s:,.0f}", eta]
        bars.add_row(*([run] if with_runs else []), *cells)
    return bars
