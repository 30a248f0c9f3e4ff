"""Deleting rows from a source table in rounds, each round its own short transaction, so the source
never holds long locks or a huge undo log and an interruption keeps exactly the rounds committed.

A verified cleanup (the default) deletes a row only when the target holds the same row, proved in
the round that deletes it:

    source (one transaction)                               target
    1. SELECT key, key text, row hash  WHERE <slice>
       AND key > <last key seen>  ORDER BY key LIMIT n
       FOR UPDATE                 -- the rows are held ----> 2. SELECT key text, row hash
                                                               WHERE key IN (<the round's keys>)
    3. DELETE WHERE key IN (<keys whose hashes match>)
    4. COMMIT

The row hash is the data diff's (diff/queries.py): the canonical text of every column, so "the same
row" means what the data_diff check means by it. Rows missing from the target or different there
are kept and reported, and the next round starts after the last key seen, so a kept row is never
looked at twice. The lock (FOR UPDATE; SQLite's BEGIN IMMEDIATE) means no row can change between its
proof and its deletion; rows inserted meanwhile are not among the round's keys.

A table without a primary key has no key to prove rows by: it can only be cleaned unverified
(forced), by rounds of DELETE ... WHERE <slice> LIMIT n until one deletes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .columns import TableName
from .dialects import Database
from .diff.algorithms import slice_queries
from .diff.queries import SliceQueries
from .diff.values import DiffOptions, Side
from .errors import CleanupRefused
from .filters import RowFilter, Where


@dataclass(frozen=True)
class CleanupRequest:
    table: TableName
    where: RowFilter | None  # None: every row (the caller has made sure that is meant)
    batch_size: int = 10_000
    dry_run: bool = False  # only find out what would be deleted
    proof: Side | None = None  # the target table each deleted row must be found in, the same; None: unverified
    report_limit: int = 1000  # kept rows whose keys are reported

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {self.batch_size})")


@dataclass(frozen=True)
class KeptRow:
    key: tuple[str, ...]  # canonical text of each key column
    reason: str  # missing_in_target | changed


@dataclass
class CleanupProgress:
    slice: str  # the rows in scope: the filter's SQL and values ("every row")
    sql: str  # what one round runs, as the driver receives it (the history keeps it)
    summary: str  # the same, short enough to read: the row hash's expression left out
    params: tuple  # its bound values
    keyed_by: tuple[str, ...]
    verified: bool
    matching: int = 0  # rows of the slice seen (verified) / matching at the start (unverified)
    rounds: int = 0  # rounds committed
    rows_deleted: int = 0  # rows deleted by the committed rounds
    rows_not_verified: int = 0
    kept: list[KeptRow] = field(default_factory=list)  # up to report_limit of the rows not verified
    # The round being committed right now: its row count and one of its keys as the source driver
    # gave it (`probe`), so that after a kill one can tell whether it committed (see round_committed).
    in_flight: int = 0
    probe: tuple | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None

    @property
    def rows_proved(self) -> int:
        """Rows seen that the target holds identically: deleted, or deletable in a dry run."""
        return self.matching - self.rows_not_verified if self.verified else self.matching


def clean_in_rounds(
    database: Database, request: CleanupRequest, on_round: Callable[[CleanupProgress], None] | None = None
) -> CleanupProgress:
    """Delete the slice's rows round by round. `on_round` sees the progress of a verified round
    after its DELETE and just before its COMMIT (progress.in_flight rows), so a record it writes
    is never behind the database; an unverified round is reported after its commit."""
    schema = database.reflect(request.table)
    where = request.where.where(schema, database.dialect.quote) if request.where else None  # checks columns and values
    if request.proof is None:
        return _unverified_rounds(database, request, schema.primary_key, where, on_round)
    if not schema.primary_key:
        raise CleanupRefused(
            f"table {request.table} has no primary key, so its rows cannot be proved one by one against the target; "
            "give it a primary key, or force the cleanup to delete without proof"
        )
    source, target = row_proof(Side(database, request.table, where), request.proof, schema.primary_key)
    return _verified_rounds(source, target, request, on_round)


def row_proof(source: Side, target: Side, key: tuple[str, ...]) -> tuple[SliceQueries, SliceQueries]:
    """Both sides' queries for proving rows by primary key: every column compared, as the diff would."""
    return slice_queries(source, target, DiffOptions(key_columns=key), need_key=True)


def _verified_rounds(
    source: SliceQueries, target: SliceQueries, request: CleanupRequest, on_round: Callable | None
) -> CleanupProgress:
    database, dialect, width = source.database, source.dialect, len(source.keys)
    first_sql, first_params = source.next_rows_sql(None, request.batch_size, lock=not request.dry_run)
    key_list = ", ".join(dialect.quote(k.name) for k in source.keys)
    table, where = dialect.qualified(source.side.table), source.side.where
    delete = f"DELETE FROM {table} WHERE ({key_list}) IN (<the keys whose row hashes match>)"
    lock = dialect.lock_rows_sql if not request.dry_run else ""
    select = Where.statement(
        f"SELECT ({key_list}), row_hash({len(source.keys) + len(source.columns)} columns) FROM {table}",
        where,
        f" ORDER BY ({key_list}) LIMIT {request.batch_size}{lock}",
    )
    progress = CleanupProgress(
        sql=f"{first_sql};\n-- the target's rows with the same keys, then in the same transaction:\n{delete}",
        summary=f"{select.sql('?')}; {delete}",
        params=first_params, keyed_by=tuple(k.name for k in source.keys), verified=True, slice=_slice(where),
    )
    after = None
    try:
        while True:
            with database.write_session() as session:
                sql, params = source.next_rows_sql(after, request.batch_size, lock=not request.dry_run)
                rows = session.query(sql, params)
                if not rows:
                    break
                after = tuple(rows[-1][:width])
                in_target = target.hashes([tuple(r[:width]) for r in rows])
                proved = []
                for row in rows:
                    key, text, row_hash = tuple(row[:width]), tuple(row[width : 2 * width]), int(row[2 * width])
                    found = in_target.get(text)
                    if found == row_hash:
                        proved.append(key)
                        continue
                    progress.rows_not_verified += 1
                    if len(progress.kept) < request.report_limit:
                        progress.kept.append(KeptRow(text, "missing_in_target" if found is None else "changed"))
                progress.matching += len(rows)
                if request.dry_run or not proved:
                    continue
                deleted = _delete_keys(session, source, proved)
                if deleted != len(proved):  # the rows were locked: anything else is a bug, not data
                    raise CleanupRefused(
                        f"deleted {deleted} rows of {source.side.table} for {len(proved)} proved keys; rolled back"
                    )
                progress.in_flight, progress.probe = deleted, proved[0]
                if on_round:
                    on_round(progress)
            progress.rounds += 1  # the session committed on leaving the block
            progress.rows_deleted += progress.in_flight
            progress.in_flight, progress.probe = 0, None
    finally:
        progress.in_flight, progress.probe = 0, None  # a round interrupted before its commit was rolled back
        database.close()
        target.database.close()
    progress.ended_at = datetime.now(UTC)
    return progress


def _slice(where: Where | None) -> str:
    return str(where) if where is not None else "every row"


def _delete_keys(session, source: SliceQueries, keys: list[tuple]) -> int:
    dialect, deleted, step = source.dialect, 0, source.dialect.keys_per_statement
    for start in range(0, len(keys), step):
        condition, params = dialect.key_in(source.keys, keys[start : start + step])
        deleted += session.execute(f"DELETE FROM {dialect.qualified(source.side.table)} WHERE {condition}", params)
    return deleted


def round_committed(database: Database, table: TableName, keyed_by: tuple[str, ...], probe: tuple) -> bool:
    """Whether a round that was being committed when its process died did commit: its rows were
    deleted together, so one of its keys tells (True when that row is gone from the source). The
    read locks the row, so it waits for a transaction the dead process left behind (the server
    finishes a COMMIT it has begun) instead of reading the row as it was before."""
    schema, dialect = database.reflect(table), database.dialect
    condition, params = dialect.key_in([schema.column(k) for k in keyed_by], [probe])
    with database.write_session() as session:
        return not session.query(
            f"SELECT 1 FROM {dialect.qualified(table)} WHERE {condition}{dialect.lock_rows_sql}", params
        )


def _unverified_rounds(
    database: Database,
    request: CleanupRequest,
    primary_key: tuple[str, ...],
    where: Where | None,
    on_round: Callable | None,
) -> CleanupProgress:
    dialect = database.dialect
    keys = primary_key or ((dialect.row_locator,) if dialect.row_locator else ())
    statement = dialect.delete_round_sql(request.table, where, keys, request.batch_size)
    progress = CleanupProgress(
        sql=statement.sql("?"), summary=statement.sql("?"), params=statement.params, keyed_by=keys, verified=False,
        slice=_slice(where),
        matching=database.count_rows(request.table, where),
    )
    if not request.dry_run:
        while deleted := database.execute_write(statement):
            progress.rounds += 1
            progress.rows_deleted += deleted
            if on_round:
                on_round(progress)
    progress.ended_at = datetime.now(UTC)
    return progress
