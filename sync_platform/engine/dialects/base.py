"""What every database implements, in two parts (as data-diff splits PostgresqlDialect from
PostgreSQL):

- a `SqlDialect`: the SQL idioms of one database, with no connection: quoting, types, casts, the
  diff contract's canonical text and row hash, key order, locking and statement shapes. Pure
  functions of names and columns, testable without a server.
- a `Database`: one database reached by a URL, speaking its dialect: connections and sessions,
  reflection, streaming reads, atomic bulk loads. `ServerDatabase` adds what the server databases
  share: SQLAlchemy reflection and the small connection pool the diff's many short queries use.

Every hook the diff and the loaders need is abstract, and a concrete subclass that lacks one is
refused when its class is defined (at import), not when a run reaches the missing method.
"""

from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property, partial
from typing import NamedTuple, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from ..columns import Column, Kind, TableName, TableSchema
from ..errors import LoadFailed, QueryTimeout, Stalled, TableNotFound, UnsupportedColumn
from ..filters import Where

_ORDER_TERM = re.compile(r"^\s*(?P<column>\"[^\"]+\"|`[^`]+`|[^\s,]+)(?:\s+(?P<direction>asc|desc))?\s*$", re.I)


class _Complete:
    """Refuses, when a concrete subclass is defined, one that leaves an abstract hook unimplemented
    (`abstract=True` in the class statement marks an intermediate base)."""

    def __init_subclass__(cls, abstract: bool = False, **kwargs):
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        missing = sorted(name for name, _ in inspect.getmembers(cls) if getattr(_, "__isabstractmethod__", False))
        if missing:
            raise TypeError(f"{cls.__module__}.{cls.__name__} does not implement {', '.join(missing)} "
                            "(see docs/new-dialect.md)")


class LoadFile(Protocol):
    """One verified export file, readable as CSV text or as canonical Arrow batches."""

    rows: int

    def csv_chunks(self) -> Iterator[bytes | memoryview]: ...

    def record_batches(self) -> Iterator[pa.RecordBatch]: ...


@dataclass(frozen=True)
class Unloadable:
    """Values of some kinds that a database cannot hold: a load refuses them, naming each."""

    kinds: frozenset[Kind]
    found: Callable[[pa.Array], pa.Array]  # a boolean mask of the values it cannot hold
    reason: str  # ends the refusal's sentence: "... holds inf at key id=4, <reason>"


def read_marker(tag: str) -> str:
    """The comment that marks a read's statement (tags are hex: nothing to escape)."""
    return f"/* sync_platform read {tag} */ "


def key_text(schema: TableSchema, batch: pa.RecordBatch, row: int) -> str:
    """`id=4` (the primary key's values at that row), or `row 5` for a table without one."""
    if not schema.primary_key:
        return f"row {row + 1}"
    return ", ".join(f"{k}={batch.column(schema.names.index(k))[row].as_py()}" for k in schema.primary_key)


class SqlDialect(_Complete, ABC, abstract=True):
    """The SQL idioms of one database. `timezone` is the session time zone (the task's
    source_timezone), which some idioms name (reading a naive timestamp as an instant)."""

    name: str
    quote_char = '"'
    type_sql: dict[Kind, str]  # the SQL type of each kind; DECIMAL unbounded, takes (p,s)
    varchar_sql = "varchar"  # takes (n) for bounded strings
    char_sql = "char"  # takes (n) for fixed-length (padded) strings
    max_identifier_length: int | None = None  # bytes; longer table names cannot be created
    row_locator: str | None = None  # the hidden column that addresses a row of a table without a primary key
    param = "?"  # the driver's placeholder for a bound value
    param_escapes_percent = False  # the driver reads `%` in SQL text as a placeholder
    # A SELECT's suffix that holds the rows it returns against concurrent change until the write
    # session commits ("" where beginning the session already locks out every other writer).
    lock_rows_sql = " FOR UPDATE"
    keys_per_statement = 1000  # keys a key_in condition holds at most (drivers cap bound values)
    # Kinds whose typed equality in this database is exactly the contract's equality, so that a
    # diff between two databases of this dialect may hash the typed values (native_row_hash_sql).
    natively_hashable: frozenset[Kind] = frozenset()
    # Values of the contract this database cannot hold (each load refuses them before writing).
    unloadable: tuple[Unloadable, ...] = ()

    def __init__(self, timezone: str = "UTC"):
        self.timezone = timezone

    # --- identifiers and statements -------------------------------------------------------------
    def quote(self, identifier: str) -> str:
        q = self.quote_char
        return q + identifier.replace(q, q + q) + q

    def qualified(self, table: TableName) -> str:
        return ".".join(self.quote(p) for p in (table.schema, table.name) if p)

    def render(self, statement: Where) -> tuple[str, tuple]:
        """The statement as this driver takes it: SQL with its placeholders, and the bound values."""
        return statement.sql(self.param, escape_percent=self.param_escapes_percent), self.bind(statement)

    def bind(self, where: Where) -> tuple:
        """The where's values as this database's driver binds them."""
        return tuple(self.param_value(v) for v in where.params)

    def param_value(self, value):
        """A value (a key read from either side, a filter value) as this database binds it."""
        return value

    def order_by_sql(self, order_by: str, schema: TableSchema) -> str:
        """`col [asc|desc], ...` checked against the table's columns and re-quoted."""
        terms = []
        for term in order_by.split(","):
            match = _ORDER_TERM.match(term)
            column = match and match["column"].strip('"`')
            if not match or column not in schema.names:
                raise ValueError(
                    f"import_order_by term {term.strip()!r} is not 'column [asc|desc]' with a column of "
                    f"the table; columns are {schema.names}"
                )
            terms.append(f"{self.quote(column)} {(match['direction'] or 'asc').upper()}")
        return ", ".join(terms)

    def select_expression(self, column: Column) -> str:
        """How a column is selected so the driver hands back its canonical value."""
        return self.quote(column.name)

    def select_sql(self, table: TableName, schema: TableSchema, where: Where | None, order_by: str | None,
                   tag: str | None = None) -> Where:
        """The export's SELECT, as SQL text around the filter's bound values; `tag` marks it in the
        server's list of running statements, so cancel_read can find it."""
        columns = ", ".join(self.select_expression(c) for c in schema.columns)
        tail = f" ORDER BY {self.order_by_sql(order_by, schema)}" if order_by else ""
        return Where.statement(f"{read_marker(tag) if tag else ''}SELECT {columns} FROM {self.qualified(table)}", where,
                               tail)

    def column_type_sql(self, column: Column) -> str:
        """The SQL type this database gives a column of that kind."""
        if column.kind is Kind.DECIMAL and column.precision:
            return f"{self.type_sql[Kind.DECIMAL]}({column.precision},{column.scale or 0})"
        if column.kind is Kind.STRING and column.length:
            return f"{self.char_sql if column.padded else self.varchar_sql}({column.length})"
        return self.type_sql[column.kind]

    def create_table_sql(self, table: TableName, schema: TableSchema) -> str:
        lines = [
            f"{self.quote(c.name)} {self.column_type_sql(c)}{'' if c.nullable else ' NOT NULL'}" for c in schema.columns
        ]
        if schema.primary_key:
            lines.append(f"PRIMARY KEY ({', '.join(self.quote(k) for k in schema.primary_key)})")
        return f"CREATE TABLE {self.qualified(table)} (\n  " + ",\n  ".join(lines) + "\n)"

    def delete_round_sql(self, table: TableName, where: Where | None, keys: tuple[str, ...], limit: int) -> Where:
        """DELETE at most `limit` rows matching `where`, chosen by their key (primary key, or the
        row locator): one round of a cleanup."""
        key_list = ", ".join(k if k == self.row_locator else self.quote(k) for k in keys)
        chosen = Where.statement(f"SELECT {key_list} FROM {self.qualified(table)}", where, f" LIMIT {int(limit)}")
        parts = list(chosen.parts)
        parts[0] = f"DELETE FROM {self.qualified(table)} WHERE ({key_list}) IN ({parts[0]}"
        parts[-1] += ")"
        return Where(tuple(parts), chosen.params)

    def after_key(self, keys: Sequence[str], key: Sequence) -> Where:
        """The rows after `key` in the order of the key columns `keys` (lexicographic), with a
        plain range on the first column, which planners read as a range of the index (a row-value
        comparison, MariaDB's, not)."""
        columns = [self.quote(k) for k in keys]
        if len(columns) == 1:
            return Where((f"{columns[0]} > ", ""), (key[0],))
        parts = ("(" + ", ".join(columns) + ") > (", *[", "] * (len(columns) - 1), f") AND {columns[0]} >= ", "")
        return Where(parts, (*key, key[0]))

    def key_compare_sql(self, keys_sql: list[str], op: str, key: Sequence) -> tuple[str, tuple]:
        """SQL comparing key columns (`keys_sql`) with a key's values in row order (lexicographic:
        `op` is <, <=, > or >=), and its bound values: `(k1, k2) < (?, ?)`."""
        params = tuple(self.param_value(v) for v in key)
        if len(keys_sql) == 1:
            return f"{keys_sql[0]} {op} {self.param}", params
        return f"({', '.join(keys_sql)}) {op} ({', '.join(self.param for _ in key)})", params

    def key_in(self, columns: list[Column], keys: Sequence[tuple]) -> tuple[str, tuple]:
        """SQL true for the rows whose key (`columns`) is one of `keys` (values from any side's
        driver), and its bound values: `(k1, k2) IN ((?, ?), ...)`."""
        names = [self.quote(c.name) for c in columns]
        if len(names) == 1:
            sql = f"{names[0]} IN ({', '.join(self.param for _ in keys)})"
        else:
            one = "(" + ", ".join(self.param for _ in names) + ")"
            sql = f"({', '.join(names)}) IN ({', '.join(one for _ in keys)})"
        return sql, tuple(self.param_value(v) for key in keys for v in key)

    # --- loads ------------------------------------------------------------------------------------
    def refuse_unloadable(self, table: TableName, schema: TableSchema, batch: pa.RecordBatch) -> None:
        """Raise LoadFailed naming the table, column, key and reason of the first value of the
        batch this database cannot hold."""
        for column, array in zip(schema.columns, batch.columns):
            for rule in self.unloadable:
                if column.kind not in rule.kinds:
                    continue
                mask = rule.found(array)
                if pc.any(mask).as_py():
                    row = pc.index(mask, True).as_py()
                    raise LoadFailed(
                        f"cannot load table {table}: column {column.name} holds {array[row].as_py()!r} at key "
                        f"{key_text(schema, batch, row)}, {rule.reason}; nothing was loaded"
                    )

    @staticmethod
    def check_loaded(table: TableName, loaded: int, expected: int | Callable[[], int]) -> None:
        """`expected`: the export's row count, or what gives it once the files are exhausted (an
        import that overlaps its export learns the count from the manifest written last)."""
        expected = expected() if callable(expected) else expected
        if loaded != expected:
            raise LoadFailed(f"loaded {loaded} rows into {table} but the export holds {expected}; rolled back")

    # --- the diff contract (see ../diff/): each database renders it in its own SQL --------------
    @abstractmethod
    def canonical_text_sql(self, column: Column) -> str:
        """SQL rendering the column's value as its canonical text (the contract in columns.py and
        diff/__init__.py)."""

    @abstractmethod
    def naive_as_utc_sql(self, column: Column) -> str:
        """A naive timestamp column, read as wall-clock time in `self.timezone`, rendered as the
        canonical text of that instant in UTC: how it compares with a timestamptz column (raise
        UnsupportedColumn where the database cannot convert time zones)."""

    @abstractmethod
    def row_hash_sql(self, text_sql: str) -> str:
        """SQL turning a row's encoded text into a non-negative 60-bit integer: the last 15 hex
        digits of its md5, as every dialect computes it."""

    @abstractmethod
    def byte_length_sql(self, text_sql: str) -> str:
        """SQL counting the UTF-8 bytes of a text, every byte (a NUL character included)."""

    @abstractmethod
    def int_div_sql(self, dividend_sql: str, divisor: int) -> str:
        """SQL dividing two integers, rounding toward zero, as an integer."""

    @abstractmethod
    def key_sql(self, column: Column) -> str:
        """A key column as compared and ordered by the diff (byte order for text on every side)."""

    def concat_sql(self, parts: list[str]) -> str:
        """SQL concatenating text expressions (none of them NULL)."""
        return " || ".join(parts)

    def checksum_sum_sql(self, hash_sql: str) -> str:
        """SQL aggregate of row hashes whose value, read as an integer mod 2^64, is the checksum."""
        return f"sum({hash_sql})"

    def native_row_hash_sql(self, values_sql: list[str]) -> str | None:
        """A 64-bit hash of a row of typed values and canonical texts, usable when BOTH sides are
        this dialect; None when it has none (then row_hash_sql of the encoded row is used)."""
        return None

    def no_time_zones(self, column: Column) -> UnsupportedColumn:
        """The refusal of naive_as_utc_sql for a database that cannot convert time zones."""
        return UnsupportedColumn(
            f"{self.name} cannot convert column {column.name!r} from {self.timezone} to UTC; compare it with a "
            "column of the same kind (timestamp with timestamp)"
        )


Query = Callable[[str, tuple], list[tuple]]


class ScanPieces(NamedTuple):
    conditions: list[str]
    workers: int = 1  # pieces read at once: the parallelism one query over the table would have had


def follows_key(order_by: str | None, keys: Sequence[str]) -> bool:
    """Whether reading in `order_by` (`col [asc|desc], ...`, None: any order) is reading in the
    key's ascending order."""
    if order_by is None:
        return True
    terms = [term.split() for term in order_by.split(",")]
    return ([t[0].strip('"`') for t in terms] == list(keys)
            and all(len(t) == 1 or t[1].lower() == "asc" for t in terms))


def ranges_at(value_sql: str, cuts: Sequence[str]) -> list[str]:
    """Disjoint conditions covering every value of `value_sql`, cut at the ascending SQL literals
    `cuts`; the first and last ranges are open, so values beyond the cuts (rows added since they
    were read) fall in one too."""
    inner = [f"{value_sql} >= {low} AND {value_sql} < {high}" for low, high in zip(cuts, cuts[1:])]
    return [f"{value_sql} < {cuts[0]}", *inner, f"{value_sql} >= {cuts[-1]}"] if cuts else [f"{value_sql} IS NOT NULL"]


def integer_ranges(column_sql: str, low: int, high: int, pieces: int) -> list[str]:
    """`pieces` ranges of equal width over low..high of a non-null integer column."""
    width = -(-(high - low + 1) // pieces)
    return ranges_at(column_sql, [str(cut) for cut in range(low + width, high + 1, width)])


class WriteSession:
    """One write transaction on one connection (see Database.write_session): reads and writes in it
    see and hold the same rows until it commits."""

    def __init__(self, connection):
        self.connection = connection

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def execute(self, sql: str, params: tuple = ()) -> int:
        """Run one data-changing statement; rows affected."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.rowcount
        finally:
            cursor.close()

    def execute_many(self, sql: str, rows: Iterable[tuple]) -> None:
        cursor = self.connection.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()


class Database(_Complete, ABC, abstract=True):
    """A database reached by a SQLAlchemy-style URL, speaking `dialect_class`'s SQL. `timezone` is
    the session time zone (the task's source_timezone): it decides how the database reads timestamp
    literals in WHERE clauses and renders timestamptz values as text."""

    dialect_class: type[SqlDialect]
    loads_csv_text = False  # replace_rows reads LoadFile.csv_chunks() (else record_batches())
    # replace_rows reads each file from the store itself (load.StoredFile: a path or s3:// location,
    # verified and pinned to a version), instead of bytes the import fetched.
    reads_store_files = False
    # Where it does: the name of the database's own credentials for the store (the run config's
    # mppsql_server_name, e.g. a DuckDB secret), instead of the store config's keys.
    store_secret: str | None = None
    read_holds_gil = False  # read_batches blocks every Python thread while it waits (watchdog.py)
    # Seconds one read-only query() may run before the server cancels it (QueryTimeout); None: no limit.
    statement_timeout: float | None = None
    # Seconds a write (an import's, a cleanup round's) may wait for a lock another session holds
    # before the server stops it (Stalled: heartbeat_timeout); None: the database's own limit.
    lock_timeout: float | None = None

    def __init__(self, url: str, timezone: str = "UTC"):
        self.url = url
        self.timezone = timezone
        self.dialect = self._make_dialect()

    def _make_dialect(self) -> SqlDialect:
        return self.dialect_class(self.timezone)

    @property
    @abstractmethod
    def label(self) -> str:
        """The database for messages: kind and URL without its password, or the file."""

    def lock_waited(self) -> Stalled:
        return Stalled(
            f"a write on {self.label} waited over {self.lock_timeout:g} s (heartbeat_timeout) for a lock another "
            "session holds and was stopped on the server; its transaction rolled back, nothing changed. Find the "
            "session holding the table's locks (PostgreSQL: pg_locks and pg_stat_activity; MySQL: SHOW "
            "PROCESSLIST), or raise heartbeat_timeout"
        )

    def _bound_lock_waits(self, connection) -> None:  # noqa: B027 - a database without the setting keeps its own
        """Apply lock_timeout to the write connection's session (called only when it is set)."""

    def _is_lock_timeout(self, error: BaseException) -> bool:
        """Whether the error is the server stopping a statement past lock_timeout."""
        return False

    @contextmanager
    def bounded_lock_waits(self, connection) -> Iterator[None]:
        """Within the block, the connection's lock waits end after lock_timeout, as Stalled."""
        if self.lock_timeout:
            self._bound_lock_waits(connection)
        try:
            yield
        except Exception as error:
            if self.lock_timeout and self._is_lock_timeout(error):
                raise self.lock_waited() from None
            raise

    def timed_out(self) -> QueryTimeout:
        return QueryTimeout(
            f"a query on {self.label} ran longer than {self.statement_timeout:g} s, its time limit, and was cancelled "
            "on the server"
        )

    # --- connections ----------------------------------------------------------------------------
    @abstractmethod
    def check_connection(self) -> None:
        """Raise DatabaseUnreachable with the driver's reason if the database cannot be reached."""

    @abstractmethod
    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run one read-only query (under statement_timeout) and return all its rows."""

    @contextmanager
    def consistent_queries(self, workers: int = 1) -> Iterator[list[Query]]:
        """`workers` query functions, one per thread, that all read one state of the database
        (one snapshot), whatever commits meanwhile: a pass split into scan pieces counts every row
        once. Here, for a database without scan pieces: its one query reads one state anyway."""
        yield [self.query] * workers

    def close(self) -> None:  # noqa: B027 - a no-op unless the database pools connections
        """Release pooled connections (query() may keep some)."""

    @abstractmethod
    def _write_connection(self):
        """A new DB-API connection inside a write transaction (begun, or begun implicitly by the
        driver at its first statement)."""

    @contextmanager
    def write_session(self) -> Iterator[WriteSession]:
        """A transaction committed when the block ends and rolled back on any exception,
        BaseException included (a run termination), on a connection of its own."""
        connection = self._write_connection()
        try:
            with self.bounded_lock_waits(connection):
                yield WriteSession(connection)
            connection.commit()
        except BaseException:
            try:
                connection.rollback()
            except Exception:  # noqa: BLE001, S110 - e.g. interrupted mid-query; closing rolls back on the server
                pass
            raise
        finally:
            connection.close()

    def execute_write(self, statement: Where) -> int:
        """Run one data-changing statement in its own transaction, committed; rows affected."""
        with self.write_session() as session:
            return session.execute(*self.dialect.render(statement))

    def count_rows(self, table: TableName, where: Where | None = None) -> int:
        statement = Where.statement(f"SELECT count(*) FROM {self.dialect.qualified(table)}", where)
        return int(self.query(*self.dialect.render(statement))[0][0])

    # --- tables ---------------------------------------------------------------------------------
    @abstractmethod
    def table_exists(self, table: TableName) -> bool: ...

    @abstractmethod
    def schema_exists(self, schema: str) -> bool:
        """Whether the database has that schema (MySQL: that database)."""

    @abstractmethod
    def list_tables(self, schema: str | None = None) -> list[str]:
        """The base tables (not views) of `schema` (default: the connection's), sorted by name."""

    @abstractmethod
    def reflect(self, table: TableName) -> TableSchema:
        """The table's columns and primary key; TableNotFound if it does not exist."""

    @abstractmethod
    def estimated_rows(self, table: TableName) -> int | None:
        """The table's row count as the database estimates it without counting (its statistics),
        for progress reports; None when it has none."""

    def scan_pieces(self, table: TableName, schema: TableSchema, rows_per_piece: int) -> ScanPieces | None:
        """Conditions splitting the whole table into disjoint physical pieces of about
        `rows_per_piece` rows, each read by a range of the table's own storage order (no sort, no
        full scan per piece), so that a pass over the table can report progress piece by piece;
        None: the table is read in one query."""
        return None

    # --- bulk I/O -------------------------------------------------------------------------------
    @abstractmethod
    def read_batches(
        self, table: TableName, schema: TableSchema, where: Where | None = None, order_by: str | None = None,
        tag: str | None = None, snapshot: str | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the rows as canonical Arrow batches, never holding the table in memory. `tag`
        marks the statement for cancel_read; `snapshot`: read in that exported snapshot
        (shared_snapshot), where the database can share one."""

    can_share_snapshot = False  # shared_snapshot and chunk_conditions work: chunked exports

    @contextmanager
    def shared_snapshot(self) -> Iterator[tuple[object, str]]:
        """(connection, snapshot id): a transaction whose snapshot other connections can read in,
        held open for the block. Only where can_share_snapshot."""
        raise NotImplementedError(f"{self.label} cannot share a snapshot between connections")
        yield  # noqa: B901 - a generator, for the contextmanager

    def table_identity(self, table: TableName, connection=None) -> dict | None:
        """What must be unchanged for an interrupted export to be resumed (journal.py), read on
        `connection` (a chunked export's snapshot) when given; None: never resumed."""
        return None

    def ordered_key(self, table: TableName, schema: TableSchema, where: Where | None,
                    order_by: str | None) -> tuple[str, ...] | None:
        """The primary key, where one query reads the rows matching `where` in its order at no
        cost (the table is stored in it: no sort) and its values read back compare exactly; an
        interrupted one-query export then resumes after the last key it wrote (journal.py).
        None: such an export restarts from the first row."""
        return None

    def chunk_conditions(self, snapshot_connection, table: TableName, schema: TableSchema, where: Where | None,
                         order_by: str | None, chunks: int, key_order: bool = True) -> list[Where] | None:
        """About `chunks` conditions that split the rows matching `where` into disjoint ranges,
        in the order of `order_by` when given, of the primary key when `key_order` (else in
        whatever order the table is cheapest to split); None when the table cannot be split so."""
        return None

    @abstractmethod
    def cancel_read(self, tag: str) -> None:
        """Cancel, on the server, the read whose statement carries `tag` (called from another
        thread: the stall watchdog); the read then fails with the driver's error."""

    @abstractmethod
    def replace_rows(
        self, table: TableName, schema: TableSchema, files: Iterable[LoadFile], expected_rows: int,
        where: Where | None = None,
    ) -> int:
        """In ONE transaction: create the table if missing, delete the rows matching `where` (all
        rows when None), bulk-load `files`, check the row count, commit. Any failure or interruption
        (including BaseException such as a run termination) rolls back: readers see the old rows or
        the new, never a mix. Returns the number of rows loaded."""


class ServerDatabase(Database, abstract=True):
    """A database behind a server (PostgreSQL, MySQL): tables reflected through SQLAlchemy's
    inspector, and query() served from a small pool of connections, each with the session's
    settings and statement timeout."""

    kind_label: str  # "PostgreSQL", "MySQL": for messages

    def __init__(self, url: str, timezone: str = "UTC"):
        from sqlalchemy.engine import make_url

        self.sa_url = make_url(url)
        self.display = self.sa_url.render_as_string(hide_password=True)
        self._idle: list = []  # pooled connections for query(); list.pop/append are atomic
        super().__init__(url, timezone)

    @property
    def label(self) -> str:
        return f"{self.kind_label} {self.display}"

    @abstractmethod
    def _connect(self):
        """A new DB-API connection with the session's settings (time zone, modes)."""

    @abstractmethod
    def _limit_statements(self, connection) -> None:
        """Apply statement_timeout to the connection's session."""

    @abstractmethod
    def _fetch(self, connection, sql: str, params: tuple) -> list[tuple]:
        """Run one query on the connection and fetch its rows (the driver's idiom)."""

    @abstractmethod
    def _is_timeout(self, error: Exception) -> bool:
        """Whether the error is the server cancelling a query past statement_timeout."""

    @abstractmethod
    def _column(self, sa_type, table: TableName, name: str, nullable: bool) -> Column:
        """The column a reflected SQLAlchemy type maps to (UnsupportedColumn if none)."""

    @property
    @abstractmethod
    def sqlalchemy_url(self):
        """The URL SQLAlchemy's inspector connects with (driver chosen)."""

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self._idle:
            conn = self._idle.pop()
        else:
            conn = self._connect()
            if self.statement_timeout:
                self._limit_statements(conn)
        try:
            rows = self._fetch(conn, sql, params)
            conn.rollback()  # read-only: end the snapshot, keep the connection
        except Exception as error:
            conn.close()
            if self.statement_timeout and self._is_timeout(error):
                raise self.timed_out() from None
            raise
        except BaseException:
            conn.close()
            raise
        self._idle.append(conn)
        return list(rows)

    @contextmanager
    def consistent_queries(self, workers: int = 1) -> Iterator[list[Query]]:
        """Connections of their own in one snapshot: the first opens it (_open_snapshot), the
        others join it (_join_snapshot, where the database can share one); all end with the block."""
        if workers > 1 and not self.can_share_snapshot:
            raise ValueError(f"{self.label} cannot share a snapshot between connections (workers={workers})")
        connections = []
        try:
            for index in range(workers):
                connection = self._connect()
                connections.append(connection)
                if self.statement_timeout:
                    self._limit_statements(connection)
                if index == 0:
                    snapshot = self._open_snapshot(connection, shared=workers > 1)
                else:
                    self._join_snapshot(connection, snapshot)
            yield [partial(self._snapshot_query, connection) for connection in connections]
        finally:
            for connection in connections:
                with suppress(Exception):  # a connection the server already dropped
                    connection.rollback()
                connection.close()

    def _snapshot_query(self, connection, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return list(self._fetch(connection, sql, params))
        except Exception as error:
            if self.statement_timeout and self._is_timeout(error):
                raise self.timed_out() from None
            raise

    @abstractmethod
    def _open_snapshot(self, connection, shared: bool) -> str | None:
        """Begin the connection's read transaction in a snapshot of its own; `shared`: export it,
        returning what _join_snapshot takes."""

    def _join_snapshot(self, connection, snapshot: str | None) -> None:
        raise NotImplementedError(f"{self.label} cannot share a snapshot between connections")

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _write_connection(self):
        return self._connect()

    @cached_property
    def engine(self):
        import sqlalchemy as sa

        return sa.create_engine(self.sqlalchemy_url, poolclass=sa.pool.NullPool)

    def _reflection_schema(self, table: TableName) -> str | None:
        return table.schema

    def reflect(self, table: TableName) -> TableSchema:
        import sqlalchemy as sa

        if not self.table_exists(table):
            raise TableNotFound(f"table {table} does not exist in {self.label}")
        inspector = sa.inspect(self.engine)
        schema = self._reflection_schema(table)
        columns = tuple(
            self._column(c["type"], table, c["name"], c["nullable"])
            for c in inspector.get_columns(table.name, schema=schema)
        )
        primary_key = tuple(inspector.get_pk_constraint(table.name, schema=schema)["constrained_columns"])
        return TableSchema(columns=columns, primary_key=primary_key)
