"""SQLite: the embedded default. Values are dynamically typed, so each column's values are
converted to its canonical Arrow type on the way out and to SQLite's storage form on the way in
(timestamps and decimals as ISO/exact text, booleans as 0/1, binary as BLOB)."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from datetime import time as dt_time
from decimal import Context, Decimal
from functools import partial
from pathlib import Path
from uuid import UUID

import pyarrow as pa
import pyarrow.compute as pc

from ..columns import MAX_DECIMAL128_PRECISION, Column, Kind, TableName, TableSchema
from ..errors import DatabaseUnreachable, LoadFailed, TableNotFound
from ..filters import Where
from .base import Database, LoadFile, Query, ScanPieces, SqlDialect, Unloadable, follows_key, integer_ranges

_READ_BATCH_ROWS = 10_000

# Declared type -> kind, first match wins (SQLite accepts any type name; these follow its
# affinity rules and the names other databases write).
_DECLARED_TYPES: list[tuple[re.Pattern, Kind]] = [
    (re.compile(r"WITH TIME ZONE|TIMESTAMPTZ"), Kind.TIMESTAMPTZ),
    (re.compile(r"DATETIME|TIMESTAMP"), Kind.TIMESTAMP),
    (re.compile(r"^DATE"), Kind.DATE),
    (re.compile(r"^TIME"), Kind.TIME),
    (re.compile(r"BOOL"), Kind.BOOL),
    (re.compile(r"^(SMALLINT|INT2|TINYINT)"), Kind.INT16),
    (re.compile(r"^(INT|INT4|MEDIUMINT)$"), Kind.INT32),
    (re.compile(r"INT"), Kind.INT64),
    (re.compile(r"DEC|NUMERIC"), Kind.DECIMAL),
    (re.compile(r"REAL|FLOA|DOUB"), Kind.FLOAT64),
    (re.compile(r"BLOB|BINARY|BYTEA"), Kind.BINARY),
    (re.compile(r"UUID"), Kind.UUID),
    (re.compile(r"JSON"), Kind.JSON),
    (re.compile(r"CHAR|CLOB|TEXT|STRING|^$"), Kind.STRING),
]

_TYPE_SQL = {
    Kind.DECIMAL: "NUMERIC",
    Kind.INT16: "SMALLINT",
    Kind.INT32: "INT",
    Kind.INT64: "BIGINT",
    Kind.FLOAT32: "FLOAT4",  # stored as an 8-byte REAL like every float: read back as float64
    Kind.FLOAT64: "DOUBLE PRECISION",
    Kind.STRING: "TEXT",
    Kind.BOOL: "BOOLEAN",
    Kind.DATE: "DATE",
    Kind.TIMESTAMP: "TIMESTAMP",
    Kind.TIMESTAMPTZ: "TIMESTAMP WITH TIME ZONE",
    Kind.TIME: "TIME",
    Kind.BINARY: "BLOB",
    Kind.UUID: "UUID",
    Kind.JSON: "JSON",
}


def _column_from_declared(name: str, declared: str, notnull: bool) -> Column:
    upper = declared.upper().strip()
    args = [int(a) for a in re.findall(r"\d+", upper[upper.find("(") :])] if "(" in upper else []
    kind = next((k for pattern, k in _DECLARED_TYPES if pattern.search(upper)), Kind.STRING)
    if kind is Kind.DECIMAL:
        precision = args[0] if args else None
        scale = (args[1] if len(args) > 1 else 0) if args else None
        return Column(name, kind, not notnull, precision=precision, scale=scale)
    length = args[0] if kind is Kind.STRING and args else None
    return Column(name, kind, not notnull, length=length)


# --- reading: SQLite values -> canonical Arrow arrays --------------------------------------------
def _as_text(values: list) -> pa.Array:
    return pa.array([v if v is None or isinstance(v, str) else str(v) for v in values], pa.string())


def _decimals(column: Column) -> Callable[[list], pa.Array]:
    if column.arrow_type == pa.string():
        # Plain notation, as PostgreSQL prints numerics: 1.5e20 -> "150000000000000000000".
        return lambda values: pa.array(
            [None if v is None else format(Decimal(str(v)), "f") for v in values], pa.string()
        )
    quantum = Decimal(1).scaleb(-(column.scale or 0))
    wide = Context(prec=MAX_DECIMAL128_PRECISION + 2)  # the default context's 28 digits cannot hold decimal(38, s)
    # SQLite keeps NUMERIC values as REAL when that is lossless to 15 digits: str() gives them back.
    return lambda values: pa.array(
        [None if v is None else Decimal(str(v)).quantize(quantum, context=wide) for v in values], column.arrow_type
    )


def _reader(column: Column) -> Callable[[list], pa.Array]:
    kind, arrow_type = column.kind, column.arrow_type
    if kind is Kind.DECIMAL:
        return _decimals(column)
    if kind is Kind.TIME:  # Arrow has no string -> time cast
        return lambda values: pa.array(
            [None if v is None else dt_time.fromisoformat(v) for v in _as_text(values).to_pylist()], arrow_type
        )
    if kind in (Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ):
        return lambda values: _as_text(values).cast(arrow_type)
    if kind is Kind.BOOL:
        return lambda values: pa.array([None if v is None else bool(v) for v in values], pa.bool_())
    if kind is Kind.BINARY:
        return lambda values: pa.array(
            [v.encode() if isinstance(v, str) else v for v in values], pa.binary()
        )
    if kind in (Kind.STRING, Kind.UUID, Kind.JSON):
        return _as_text
    return lambda values: pa.array(values, arrow_type)


# --- writing: canonical Arrow -> SQLite storage values ----------------------------------------------
_STORED_AS_TEXT = {Kind.DECIMAL, Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ, Kind.TIME}


def _storage_columns(batch: pa.RecordBatch, schema: TableSchema) -> list[list]:
    columns = []
    for column, array in zip(schema.columns, batch.columns):
        if column.kind is Kind.DECIMAL and pa.types.is_decimal(array.type):
            # Plain notation (Arrow would write -0.0000000001 as -1E-10), as the canonical text reads it.
            columns.append([None if d is None else format(d, "f") for d in array.to_pylist()])
            continue
        if column.kind in _STORED_AS_TEXT:
            array = array.cast(pa.string())
        columns.append(array.to_pylist())
    return columns


def _md5_60(text: str | None) -> int | None:
    """The low 60 bits of the md5 of `text`, as PostgreSQL's ('x' || substr(md5(t), 18))::bit(60)."""
    return None if text is None else int(hashlib.md5(text.encode()).hexdigest()[17:], 16)


class _ExactSum:
    """sum() without SQLite's 64-bit overflow; the total comes back as text."""

    def __init__(self):
        self.total = 0

    def step(self, value):
        if value is not None:
            self.total += value

    def finalize(self):
        return str(self.total)


def _text_with_fraction(expr: str, whole: int, digits: int = 6) -> str:
    """ISO text padded or cut to `digits` fractional digits: '10:00:00' -> '10:00:00.000000'."""
    zeros = "0" * digits
    return (f"CASE WHEN length({expr}) = {whole} THEN {expr} || '.{zeros}' "
            f"ELSE substr({expr} || '{zeros}', 1, {whole + 1 + digits}) END")


# NUMERIC affinity stores a number of more than 15 significant digits as an 8-byte REAL, losing
# the rest; a declared type containing TEXT (and no INT) has TEXT affinity and keeps it exact.
_EXACT_DECIMAL_DIGITS = 15
_DECIMAL_AS_TEXT = "DECIMAL_TEXT"


def _numeric_affinity(declared: str) -> bool:
    """SQLite's affinity rules 1-3 in order: INT, then CHAR/CLOB/TEXT, then BLOB decide first."""
    upper = declared.upper()
    return not any(word in upper for word in ("INT", "CHAR", "CLOB", "TEXT", "BLOB")) and upper != ""


class SQLiteDialect(SqlDialect):
    name = "sqlite"
    type_sql = _TYPE_SQL
    varchar_sql = "VARCHAR"
    row_locator = "rowid"
    unloadable = (Unloadable(frozenset({Kind.FLOAT32, Kind.FLOAT64}), pc.is_nan,
                             "which SQLite cannot hold (SQLite stores NaN as NULL)"),)
    lock_rows_sql = ""  # BEGIN IMMEDIATE has locked out every other writer of the database

    def column_type_sql(self, column: Column) -> str:
        if column.kind is Kind.DECIMAL and (column.precision is None or column.precision > _EXACT_DECIMAL_DIGITS):
            exact = f"({column.precision},{column.scale or 0})" if column.precision else ""
            return f"{_DECIMAL_AS_TEXT}{exact}"
        return super().column_type_sql(column)

    def qualified(self, table: TableName) -> str:
        return self.quote(table.name)  # SQLite has no schemas beyond attached databases

    # --- data diff idioms: SQLite stores what the sync wrote (ISO text, REAL or exact text numbers) --
    def canonical_text_sql(self, column: Column) -> str:
        q = self.quote(column.name)
        text = f"CAST({q} AS TEXT)"
        kind = column.kind
        if kind in (Kind.INT16, Kind.INT32, Kind.INT64, Kind.BOOL):
            return f"CAST(CAST({q} AS INTEGER) AS TEXT)"
        if kind is Kind.DECIMAL:
            # Exact text (kept when more than 15 digits) loses only trailing zeros; REAL is printed
            # at the column's scale, then trimmed the same way; -0 becomes 0.
            trimmed = "rtrim(rtrim({v}, '0'), '.')"
            if column.scale:
                number = trimmed.format(v=f"printf('%.{column.scale}f', {q})")
            else:
                number = f"CAST(CAST({q} AS INTEGER) AS TEXT)" if column.precision else f"printf('%!.15g', {q})"
            exact = trimmed.format(v=q) if column.scale else q
            return (
                f"CASE WHEN typeof({q}) = 'text' THEN (CASE WHEN instr({q}, '.') > 0 THEN {exact} ELSE {q} END) "
                f"WHEN {q} = 0 THEN '0' ELSE {number} END"
            )
        if kind in (Kind.FLOAT32, Kind.FLOAT64):
            return f"lower(printf('%.14e', {q}))"  # infinities print as Inf, -Inf (SQLite holds no NaN)
        if kind is Kind.DATE:
            return f"substr({text}, 1, 10)"
        if kind is Kind.TIMESTAMP:
            return _text_with_fraction(f"replace({text}, 'T', ' ')", 19)
        if kind is Kind.TIMESTAMPTZ:  # stored in UTC with a trailing Z, as the sync writes it
            return _text_with_fraction(f"rtrim(replace({text}, 'T', ' '), 'Z')", 19)
        if kind is Kind.TIME:
            return _text_with_fraction(text, 8)
        if kind is Kind.BINARY:
            return f"lower(hex({q}))"
        if kind is Kind.UUID:
            return f"lower({text})"
        return text

    def naive_as_utc_sql(self, column: Column) -> str:
        raise self.no_time_zones(column)  # SQLite knows no time zones

    def byte_length_sql(self, text_sql: str) -> str:
        return f"length(CAST({text_sql} AS BLOB))"  # length() of a text stops at a NUL character

    def int_div_sql(self, dividend_sql: str, divisor: int) -> str:
        return f"({dividend_sql}) / {int(divisor)}"  # integer division of integers

    def key_sql(self, column: Column) -> str:
        return self.quote(column.name)  # BINARY collation: byte order already

    def row_hash_sql(self, text_sql: str) -> str:
        return f"sync_md5_60({text_sql})"

    def checksum_sum_sql(self, hash_sql: str) -> str:
        return f"sync_exact_sum({hash_sql})"

    def param_value(self, value):
        if isinstance(value, datetime):
            text = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
            return text.isoformat(sep=" ", timespec="microseconds") + ("Z" if value.tzinfo else "")
        if isinstance(value, Decimal):
            return format(value, "f")
        if isinstance(value, (date, dt_time, UUID)):
            return str(value)
        return value


class SQLiteDatabase(Database):
    dialect_class = SQLiteDialect

    def __init__(self, url: str, timezone: str = "UTC"):
        super().__init__(url, timezone)
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if not database or database == ":memory:":
            raise ValueError(f"SQLite URL {url!r} must name a database file (sqlite:///path/to/file.db)")
        self.path = Path(database)
        self._reads: dict[str, sqlite3.Connection] = {}  # tag -> connection of a read in progress

    @property
    def label(self) -> str:
        return f"SQLite {self.path}"

    def _connect(self, readonly: bool = False, any_thread: bool = False) -> sqlite3.Connection:
        if readonly and not self.path.exists():
            raise DatabaseUnreachable(f"SQLite database file {self.path} does not exist")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"{self.path.resolve().as_uri()}?mode={'ro' if readonly else 'rwc'}"
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            # any_thread: a connection opened here and used by one worker thread at a time
            return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30, check_same_thread=not any_thread)
        except sqlite3.Error as error:
            raise DatabaseUnreachable(f"cannot open SQLite database {self.path}: {error}") from None

    def check_connection(self) -> None:
        self._connect(readonly=self.path.exists()).close()

    def table_exists(self, table: TableName) -> bool:
        if not self.path.exists():
            return False
        with self._connect(readonly=True) as conn:
            return conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (table.name,)
            ).fetchone() is not None

    def _write_connection(self) -> sqlite3.Connection:
        conn = self._with_diff_functions(self._connect())
        self._begin_writing(conn)
        return conn

    def _begin_writing(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE: take the file's write lock, waiting at most lock_timeout for another
        writer (SQLite's one lock is the whole file, taken here, so no later statement waits)."""
        if self.lock_timeout:
            conn.execute(f"PRAGMA busy_timeout = {int(self.lock_timeout * 1000)}")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            conn.close()
            if self.lock_timeout and "locked" in str(error):
                raise self.lock_waited() from None
            raise

    @staticmethod
    def _with_diff_functions(conn: sqlite3.Connection) -> sqlite3.Connection:
        """The row hash and exact sum the diff's SQL calls (SQLite has neither built in)."""
        conn.create_function("sync_md5_60", 1, _md5_60, deterministic=True)
        conn.create_aggregate("sync_exact_sum", 1, _ExactSum)
        return conn

    def schema_exists(self, schema: str) -> bool:
        return schema == "main"  # attached databases aside, the one schema

    def estimated_rows(self, table: TableName) -> int | None:
        """The largest rowid: exact for a table rows are only added to, one index lookup."""
        try:
            rows = self.query(f"SELECT max(rowid) FROM {self.dialect.qualified(table)}")
        except Exception:  # noqa: BLE001 - a WITHOUT ROWID table has none: no estimate
            return None
        return int(rows[0][0] or 0)

    def ordered_key(self, table, schema, where, order_by) -> tuple[str, ...] | None:
        """The primary key when the table is stored in its order (an INTEGER PRIMARY KEY, the
        rowid itself, or a WITHOUT ROWID table) and the plan of the query in that order confirms
        it: a plain scan of the table, no index, no temporary b-tree to sort. Integer and text
        keys only (SQLite stores other kinds as text or numbers of its own choice)."""
        keys = schema.primary_key
        if not keys or not follows_key(order_by, keys) or any(
                schema.column(k).kind not in (Kind.INT16, Kind.INT32, Kind.INT64, Kind.STRING) for k in keys):
            return None
        sql, params = self.dialect.render(self.dialect.select_sql(table, schema, where, ", ".join(keys)))
        plan = [row[3] for row in self.query("EXPLAIN QUERY PLAN " + sql, params) if row[1] == 0]
        if not plan or not plan[0].startswith("SCAN ") or " USING " in plan[0] or any("TEMP B-TREE" in p for p in plan):
            return None
        return tuple(keys)

    def table_identity(self, table, connection=None) -> dict | None:
        """The database file's and its write-ahead log's size and modification time, with the
        file change counter (the header's bytes 24-27: every commit in rollback-journal mode) and
        the log's salts (its header's bytes 16-23: every restart of the log): every commit changes
        one of them (a WAL commit appends to the log)."""
        identity = {}
        for name, path, header in (("db", self.path, slice(24, 28)), ("wal", Path(f"{self.path}-wal"), slice(16, 24))):
            try:
                with path.open("rb") as file:
                    stat, head = os.fstat(file.fileno()), file.read(32)
            except FileNotFoundError:
                continue
            identity[name] = [stat.st_size, stat.st_mtime_ns, head[header].hex()]
        return identity or None

    def scan_pieces(self, table: TableName, schema: TableSchema, rows_per_piece: int) -> ScanPieces | None:
        """Ranges of equal width of the rowid, the order a rowid table is stored in (a WITHOUT
        ROWID table has none: one query)."""
        try:
            low, high = self.query(f"SELECT min(rowid), max(rowid) FROM {self.dialect.qualified(table)}")[0]
        except Exception:  # noqa: BLE001 - a WITHOUT ROWID table
            return None
        pieces = -(-((high or 0) - (low or 0) + 1) // rows_per_piece) if low is not None else 0
        return ScanPieces(integer_ranges("rowid", int(low), int(high), pieces)) if pieces >= 2 else None

    def list_tables(self, schema: str | None = None) -> list[str]:
        if schema not in (None, "main"):
            raise ValueError(f"SQLite database {self.path} has one schema, main (got {schema!r})")
        if not self.path.exists():
            raise DatabaseUnreachable(f"SQLite database {self.path} does not exist")
        with self._connect(readonly=True) as conn:
            rows = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            ).fetchall()
        return [r[0] for r in rows]

    def reflect(self, table: TableName) -> TableSchema:
        if not self.table_exists(table):
            raise TableNotFound(f"table {table} does not exist in SQLite database {self.path}")
        conn = self._connect(readonly=True)
        try:
            info = conn.execute(f"PRAGMA table_info({self.dialect.quote(table.name)})").fetchall()
        finally:
            conn.close()
        columns = tuple(
            _column_from_declared(name, declared or "", bool(notnull)) for _, name, declared, notnull, _, _ in info
        )
        primary_key = tuple(name for _, name, _, _, _, pk in sorted(info, key=lambda r: r[5]) if pk)
        return TableSchema(columns=columns, primary_key=primary_key)

    def read_batches(
        self, table, schema, where=None, order_by=None, tag=None, snapshot=None
    ) -> Iterator[pa.RecordBatch]:
        readers = [_reader(c) for c in schema.columns]
        conn = self._connect(readonly=True)
        if tag:
            self._reads[tag] = conn
        try:
            cursor = conn.execute(*self.dialect.render(self.dialect.select_sql(table, schema, where, order_by, tag)))
            while rows := cursor.fetchmany(_READ_BATCH_ROWS):
                columns = list(zip(*rows))
                yield pa.RecordBatch.from_arrays(
                    [read(list(values)) for read, values in zip(readers, columns)], schema=schema.arrow_schema
                )
        finally:
            self._reads.pop(tag, None)
            conn.close()

    def cancel_read(self, tag: str) -> None:
        conn = self._reads.get(tag)
        if conn is not None:
            conn.interrupt()  # thread-safe: the running statement fails with "interrupted"

    @contextmanager
    def consistent_queries(self, workers: int = 1) -> Iterator[list[Query]]:
        """One read transaction: its shared lock, taken by the first query, holds the file's
        state until the block ends (writers wait meanwhile, as they would for one long query)."""
        if workers > 1:
            raise ValueError(f"SQLite database {self.path}: one connection reads one snapshot (workers={workers})")
        conn = self._with_diff_functions(self._connect(readonly=True, any_thread=True))
        try:
            conn.execute("BEGIN")
            yield [partial(self._run, conn)]
        finally:
            conn.close()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = self._with_diff_functions(self._connect(readonly=True))
        try:
            return self._run(conn, sql, params)
        finally:
            conn.close()

    def _run(self, conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[tuple]:
        if self.statement_timeout:
            deadline = time.monotonic() + self.statement_timeout
            conn.set_progress_handler(lambda: time.monotonic() > deadline, 100_000)  # true: interrupt
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:
            if self.statement_timeout and str(error) == "interrupted":
                raise self.timed_out() from None
            raise
        finally:
            conn.set_progress_handler(None, 0)

    def _refuse_lossy_decimals(self, conn: sqlite3.Connection, table: TableName, schema: TableSchema) -> None:
        """An existing table whose wide decimal columns have NUMERIC affinity would keep 15 digits."""
        declared = {
            name: decl or ""
            for _, name, decl, *_ in conn.execute(f"PRAGMA table_info({self.dialect.quote(table.name)})")
        }
        for column in schema.columns:
            wide = column.kind is Kind.DECIMAL and (column.precision or 99) > _EXACT_DECIMAL_DIGITS
            if wide and _numeric_affinity(declared.get(column.name, "")):
                raise LoadFailed(
                    f"cannot load table {table}: column {column.name} is declared {declared[column.name]}, so SQLite "
                    "would "
                    f"keep only {_EXACT_DECIMAL_DIGITS} significant digits of its decimals; declare it "
                    f"{self.dialect.column_type_sql(column)} (TEXT affinity, exact) or drop the table to let the "
                    "import create it"
                )

    def replace_rows(self, table, schema, files: Iterable[LoadFile], expected_rows: int, where=None) -> int:
        sql = self.dialect
        insert = (
            f"INSERT INTO {sql.qualified(table)} ({', '.join(sql.quote(n) for n in schema.names)}) "
            f"VALUES ({', '.join('?' for _ in schema.columns)})"
        )
        conn = self._connect()
        self._begin_writing(conn)
        try:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table.name,)).fetchone():
                conn.execute(sql.create_table_sql(table, schema))
            else:
                self._refuse_lossy_decimals(conn, table, schema)
            conn.execute(*sql.render(Where.statement(f"DELETE FROM {sql.qualified(table)}", where)))
            loaded = 0
            for file in files:
                for batch in file.record_batches():
                    sql.refuse_unloadable(table, schema, batch)
                    conn.executemany(insert, zip(*_storage_columns(batch, schema)))
                    loaded += batch.num_rows
            sql.check_loaded(table, loaded, expected_rows)
            conn.execute("COMMIT")
            return loaded
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
