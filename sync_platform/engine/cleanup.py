"""Deleting rows from a source table in rounds: each round deletes at most `batch_size` rows
matching the filter, chosen by primary key (or the database's row locator when the table has
none), in its own short transaction, so the source never holds long locks or a huge undo log, and
an interruption keeps exactly the rounds already committed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .columns import TableName
from .dialects import Dialect
from .filters import RowFilter, Where


@dataclass(frozen=True)
class CleanupRequest:
    table: TableName
    where: RowFilter | None  # None: every row (the caller has made sure that is meant)
    batch_size: int = 10_000
    dry_run: bool = False  # only count the matching rows

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {self.batch_size})")


@dataclass
class CleanupProgress:
    statement: Where  # one round's DELETE, with its bound values
    matching: int  # rows matching when the cleanup started
    keyed_by: tuple[str, ...]
    rounds: int = 0
    rows_deleted: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    ended_at: datetime | None = None


def clean_in_rounds(
    dialect: Dialect, request: CleanupRequest, on_round: Callable[[CleanupProgress], None] | None = None
) -> CleanupProgress:
    """Delete until a round finds nothing left; `on_round` sees the progress after each commit."""
    schema = dialect.reflect(request.table)
    where = request.where.where(schema, dialect.quote) if request.where else None  # checks columns and values
    keys = schema.primary_key or ((dialect.row_locator,) if dialect.row_locator else ())
    progress = CleanupProgress(
        statement=dialect.delete_round_sql(request.table, where, keys, request.batch_size),
        matching=dialect.count_rows(request.table, where),
        keyed_by=keys,
    )
    if not request.dry_run:
        while deleted := dialect.execute_write(progress.statement):
            progress.rounds += 1
            progress.rows_deleted += deleted
            if on_round:
                on_round(progress)
    progress.ended_at = datetime.now(timezone.utc)
    return progress
