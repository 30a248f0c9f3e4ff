"""MySQL / MariaDB. Reads stream through connectorx (Rust: the binary protocol straight into Arrow,
no per-value Python); everything else goes through PyMySQL (pure Python, so it installs everywhere
without a C client library, and it supports LOAD DATA LOCAL INFILE).

Reading: one query, streamed in Arrow batches; TIMESTAMP columns are read through CONVERT_TZ as UTC
instants and decimals as their exact text. Filter values are inlined as literals escaped exactly
as PyMySQL escapes bound parameters (connectorx takes none). Loading: the rows are rendered to a
temporary file of quoted CSV (NULL as the bare word NULL, binary as hex turned back by UNHEX) and bulk-loaded with
`LOAD DATA LOCAL INFILE` inside one transaction; any warning (a truncated or converted value)
aborts the load, since LOCAL turns MySQL's errors into warnings. A full refresh is a DELETE in
that transaction (TRUNCATE would commit on its own). The session time zone is the task's
source_timezone (named zones need the server's time zone tables); identifiers are quoted with
backticks.

Type mapping: tinyint(1) <-> boolean; unsigned integers widen (int unsigned -> bigint, bigint
unsigned -> decimal(20,0)); datetime <-> timestamp; TIMESTAMP (UTC-based) <-> timestamptz, within
MySQL's 1970-2038 range; char(n) <-> char(n); text/blob kinds <-> text/bytea; json <-> json;
decimals exact up to decimal(65,30) (an unbounded PostgreSQL numeric becomes decimal(65,30)). A
zero date (0000-00-00) has no equivalent anywhere else: exporting one fails naming the column.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import cached_property
from uuid import UUID

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..columns import Column, Kind, TableName, TableSchema
from ..errors import DatabaseUnreachable, LoadFailed, UnsupportedColumn
from ..filters import Where
from ..readahead import ReadAhead
from .base import LoadFile, ScanPieces, ServerDatabase, SqlDialect, Unloadable, follows_key, integer_ranges, read_marker

LOAD_LOCK_WAIT_S = 3600  # how long a load waits for another load of the same table

_READ_BATCH_ROWS = 65_536

_TYPE_SQL = {
    Kind.DECIMAL: "DECIMAL",
    Kind.INT16: "SMALLINT",
    Kind.INT32: "INT",
    Kind.INT64: "BIGINT",
    Kind.FLOAT32: "FLOAT",
    Kind.FLOAT64: "DOUBLE",
    Kind.STRING: "LONGTEXT",
    Kind.BOOL: "TINYINT(1)",
    Kind.DATE: "DATE",
    Kind.TIMESTAMP: "DATETIME(6)",
    Kind.TIMESTAMPTZ: "TIMESTAMP(6) NULL",
    Kind.TIME: "TIME(6)",
    Kind.BINARY: "LONGBLOB",
    Kind.UUID: "CHAR(36)",
    Kind.JSON: "JSON",
}
_UNBOUNDED_DECIMAL = "DECIMAL(65,30)"
# InnoDB's largest index key (innodb_large_prefix, DYNAMIC rows): a primary key's columns share it.
_MAX_KEY_BYTES = 3072
_FIXED_KEY_BYTES = {Kind.INT16: 2, Kind.INT32: 4, Kind.INT64: 8, Kind.FLOAT32: 4, Kind.FLOAT64: 8, Kind.BOOL: 1,
                    Kind.DATE: 3, Kind.TIMESTAMP: 8, Kind.TIMESTAMPTZ: 7, Kind.TIME: 6, Kind.UUID: 4 * 36}


def _key_bytes(column: Column) -> int | None:
    """Bytes a key column takes in an InnoDB index (utf8mb4: 4 a character); None: unbounded."""
    if column.kind is Kind.STRING:
        return 4 * column.length if column.length else None
    if column.kind in (Kind.BINARY, Kind.JSON):
        return None
    if column.kind is Kind.DECIMAL:
        return ((column.precision or 65) // 9 + 1) * 4
    return _FIXED_KEY_BYTES[column.kind]


# MySQL's TIMESTAMP holds 1970-01-01 00:00:01 to 2038-01-19 03:14:07.999999 UTC; DECIMAL at most 65
# digits, 30 of them after the point (what an unbounded numeric becomes).
_TIMESTAMP_RANGE = (
    datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
    datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
)
_UNLOADABLE = (
    Unloadable(frozenset({Kind.FLOAT32, Kind.FLOAT64}), lambda a: pc.or_(pc.is_nan(a), pc.is_inf(a)),
               "which MySQL/MariaDB FLOAT and DOUBLE cannot hold"),
    Unloadable(frozenset({Kind.TIMESTAMPTZ}),
               lambda a: pc.or_(pc.less(a, pa.scalar(_TIMESTAMP_RANGE[0], a.type)),
                                pc.greater_equal(a, pa.scalar(_TIMESTAMP_RANGE[1], a.type))),
               "outside MySQL TIMESTAMP's range (1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC)"),
    Unloadable(frozenset({Kind.DECIMAL}),
               lambda a: pc.match_substring_regex(a, r"\.\d{31,}|^-?\d{36,}") if pa.types.is_string(a.type)
               else pa.array([False] * len(a)),
               "more digits than MySQL's DECIMAL(65,30) holds (35 before the point, 30 after)"),
)
# Key kinds whose values, read and then inlined as literals, compare exactly with the stored ones
# (not floats, printed rounded; not TIMESTAMP columns, read as UTC and compared in the session's zone).
_EXACT_KEY_KINDS = frozenset({Kind.INT16, Kind.INT32, Kind.INT64, Kind.BOOL, Kind.DECIMAL, Kind.STRING, Kind.DATE,
                              Kind.TIMESTAMP, Kind.BINARY, Kind.UUID})
_NO_PAD_BINARY = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")  # MariaDB, MySQL 8
_STATEMENT_TIMEOUT_ERRORS = {1969, 3024}  # MariaDB max_statement_time, MySQL max_execution_time exceeded
_SESSION_SQL_MODE = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"


def _column(sa_type, table: TableName, name: str, nullable: bool) -> Column:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql
    from sqlalchemy.sql.sqltypes import _Binary

    def column(kind: Kind, **details) -> Column:
        return Column(name, kind, nullable, **details)

    unsigned = getattr(sa_type, "unsigned", False)
    if isinstance(sa_type, mysql.TINYINT):
        return column(Kind.BOOL) if sa_type.display_width == 1 else column(Kind.INT16)
    if isinstance(sa_type, mysql.YEAR):
        return column(Kind.INT16)
    if isinstance(sa_type, sa.SmallInteger):
        return column(Kind.INT32 if unsigned else Kind.INT16)
    if isinstance(sa_type, sa.BigInteger):
        return column(Kind.DECIMAL, precision=20, scale=0) if unsigned else column(Kind.INT64)
    if isinstance(sa_type, (sa.Integer, mysql.MEDIUMINT)):
        return column(Kind.INT64 if unsigned else Kind.INT32)
    if isinstance(sa_type, mysql.BIT):
        raise UnsupportedColumn(f"column {name!r} of {table} is BIT, which sync_platform cannot copy exactly")
    if isinstance(sa_type, mysql.FLOAT):
        return column(Kind.FLOAT32)
    if isinstance(sa_type, (mysql.DOUBLE, mysql.REAL, sa.Float)):
        return column(Kind.FLOAT64)
    if isinstance(sa_type, sa.Numeric):
        return column(Kind.DECIMAL, precision=sa_type.precision, scale=sa_type.scale or 0)
    if isinstance(sa_type, mysql.TIMESTAMP):
        return column(Kind.TIMESTAMPTZ)
    if isinstance(sa_type, sa.DateTime):
        return column(Kind.TIMESTAMP)
    if isinstance(sa_type, sa.Date):
        return column(Kind.DATE)
    if isinstance(sa_type, sa.Time):
        return column(Kind.TIME)
    if isinstance(sa_type, sa.JSON):
        return column(Kind.JSON)
    if isinstance(sa_type, _Binary):  # binary, varbinary and the blobs
        return column(Kind.BINARY)
    if isinstance(sa_type, sa.Uuid) or type(sa_type).__name__ == "UUID":
        return column(Kind.UUID)
    if isinstance(sa_type, (mysql.CHAR, mysql.NCHAR)):
        return column(Kind.STRING, length=sa_type.length, padded=True)
    if isinstance(sa_type, (sa.String, sa.Enum, mysql.SET)):
        return column(
            Kind.STRING,
            length=getattr(sa_type, "length", None) if isinstance(sa_type, (mysql.VARCHAR, mysql.NVARCHAR)) else None,
        )
    raise UnsupportedColumn(
        f"column {name!r} of {table} has type {sa_type}, which sync_platform cannot copy exactly; "
        f"supported kinds: {', '.join(k.value for k in Kind)}"
    )


def _canonical_batch(batch: pa.RecordBatch, schema: TableSchema) -> pa.RecordBatch:
    """connectorx's Arrow types (unsigned, int8 flags, large types, naive UTC instants, decimals
    read as text) cast to each column's canonical Arrow type; every cast is exact or fails."""
    arrays = []
    for column, array in zip(schema.columns, batch.columns):
        target = column.arrow_type
        if column.kind is Kind.BOOL:
            array = pc.not_equal(array, 0)
        elif column.kind is Kind.TIMESTAMPTZ:  # UTC wall-clock time (CONVERT_TZ in the SELECT)
            array = pc.assume_timezone(array, "UTC")
        if array.type != target:
            array = array.cast(target)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow_schema)


class MySQLDialect(SqlDialect):
    name = "mysql"
    quote_char = "`"
    type_sql = _TYPE_SQL
    varchar_sql = "VARCHAR"
    char_sql = "CHAR"
    max_identifier_length = 64
    row_locator = None  # no addressable row id; a cleanup round is DELETE ... LIMIT n anyway
    unloadable = _UNLOADABLE
    param = "%s"
    param_escapes_percent = True

    def __init__(self, timezone: str = "UTC", binary_collation: Callable[[], str] = lambda: "utf8mb4_bin"):
        super().__init__(timezone)
        self._binary_collation = binary_collation  # asks the server once which one it has

    @property
    def binary_collation(self) -> str:
        """utf8mb4 compared byte by byte *without* padding: under utf8mb4_bin (PAD SPACE) 'ss' equals
        'ss ', which other databases keep apart, as keys and in the diff's key order."""
        return self._binary_collation()

    def column_type_sql(self, column: Column) -> str:
        if column.kind is Kind.DECIMAL and not column.precision:
            return _UNBOUNDED_DECIMAL
        return super().column_type_sql(column)

    def _key_types(self, table: TableName, schema: TableSchema) -> dict[str, str]:
        """SQL types of the primary key's columns that fit InnoDB's 3072-byte key together: unbounded
        strings and binaries (which cannot be indexed as LONGTEXT/LONGBLOB) share what the
        bounded columns leave; bounded columns that alone exceed it are refused, naming them."""
        columns = [schema.column(k) for k in schema.primary_key]
        fixed = {c.name: _key_bytes(c) for c in columns}
        unbounded = [c for c in columns if fixed[c.name] is None]
        left = _MAX_KEY_BYTES - sum(b for b in fixed.values() if b is not None)
        if left < 0 or (unbounded and left < 4 * len(unbounded)):
            sizes = ", ".join(
                f"{c.name} {self.column_type_sql(c)}: {fixed[c.name] or 'unbounded'} bytes" for c in columns
            )
            raise LoadFailed(
                f"cannot create table {table}: its primary key ({sizes}) needs more than the {_MAX_KEY_BYTES} bytes "
                "an InnoDB key may have (utf8mb4 counts 4 bytes a character); create the table yourself with "
                "shorter key columns"
            )
        types = {}
        for c in unbounded:
            share = left // len(unbounded)
            types[c.name] = f"VARCHAR({share // 4})" if c.kind in (Kind.STRING, Kind.JSON) else f"VARBINARY({share})"
        return types

    def create_table_sql(self, table: TableName, schema: TableSchema) -> str:
        lines = []
        key_types = self._key_types(table, schema) if schema.primary_key else {}
        for c in schema.columns:
            sql_type = key_types.get(c.name) or self.column_type_sql(c)
            lines.append(f"{self.quote(c.name)} {sql_type}{'' if c.nullable else ' NOT NULL'}")
        if schema.primary_key:
            lines.append(f"PRIMARY KEY ({', '.join(self.quote(k) for k in schema.primary_key)})")
        return (f"CREATE TABLE {self.qualified(table)} (\n  " + ",\n  ".join(lines)
                + f"\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={self.binary_collation}")

    def select_expression(self, column: Column) -> str:
        name = self.quote(column.name)
        if column.kind is Kind.TIMESTAMPTZ:
            return f"CONVERT_TZ({name}, @@session.time_zone, '+00:00') AS {name}"
        if column.kind is Kind.DECIMAL:  # as exact text: connectorx would round decimals beyond 28 digits
            return f"CAST({name} AS CHAR) AS {name}"
        return name

    def session_sql(self) -> list[str]:
        """Every session's settings (PyMySQL's and connectorx's): strict mode, the task's time zone."""
        return [f"SET SESSION sql_mode = '{_SESSION_SQL_MODE}'", self.time_zone_sql(self.timezone)]

    @staticmethod
    def time_zone_sql(time_zone: str) -> str:
        from pymysql.converters import escape_string

        return f"SET SESSION time_zone = '{escape_string(time_zone)}'"

    def inline(self, statement: Where) -> str:
        """The statement with its values as SQL literals, escaped exactly as PyMySQL escapes the
        parameters it binds (connectorx takes no parameters)."""
        from pymysql.converters import escape_item

        out = []
        for index, part in enumerate(statement.parts):
            out.append(part)
            if index < len(statement.params):
                out.append(escape_item(self.param_value(statement.params[index]), "utf8mb4"))
        return "".join(out)

    def delete_round_sql(self, table: TableName, where: Where | None, keys: tuple[str, ...], limit: int) -> Where:
        # MySQL refuses LIMIT in an IN subquery, but deletes with ORDER BY ... LIMIT directly.
        order = f" ORDER BY {', '.join(self.quote(k) for k in keys)}" if keys else ""
        return Where.statement(f"DELETE FROM {self.qualified(table)}", where, f"{order} LIMIT {int(limit)}")

    # --- data diff idioms -------------------------------------------------------------------------
    def concat_sql(self, parts: list[str]) -> str:
        return f"CONCAT({', '.join(parts)})"

    def int_div_sql(self, dividend_sql: str, divisor: int) -> str:
        return f"({dividend_sql}) DIV {int(divisor)}"  # MySQL's / is exact decimal division

    def byte_length_sql(self, text_sql: str) -> str:
        return f"LENGTH({text_sql})"  # bytes, in the session's utf8mb4

    def canonical_text_sql(self, column: Column) -> str:
        q = self.quote(column.name)
        text = f"CAST({q} AS CHAR)"
        kind = column.kind
        if kind is Kind.DECIMAL:
            trimmed = f"TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {text}))"
            return f"(CASE WHEN {q} = 0 THEN '0' WHEN INSTR({text}, '.') > 0 THEN {trimmed} ELSE {text} END)"
        if kind in (Kind.FLOAT32, Kind.FLOAT64):
            return _scientific_sql(f"CAST({q} AS DOUBLE)")
        if kind is Kind.BOOL:
            return f"CAST(({q} <> 0) AS CHAR)"
        # Casts, not DATE_FORMAT: a '%' in the SQL would clash with PyMySQL's %s parameters.
        if kind is Kind.DATE:
            return text
        if kind is Kind.TIMESTAMP:
            return f"CAST(CAST({q} AS DATETIME(6)) AS CHAR)"
        if kind is Kind.TIMESTAMPTZ:
            return f"CAST(CAST(CONVERT_TZ({q}, @@session.time_zone, '+00:00') AS DATETIME(6)) AS CHAR)"
        if kind is Kind.TIME:
            return f"CAST(CAST({q} AS TIME(6)) AS CHAR)"
        if kind is Kind.BINARY:
            return f"LOWER(HEX({q}))"
        if kind is Kind.UUID:
            return f"LOWER({text})"
        return text

    def naive_as_utc_sql(self, column: Column) -> str:
        zone = self.timezone.replace("'", "''")
        return f"CAST(CAST(CONVERT_TZ({self.quote(column.name)}, '{zone}', '+00:00') AS DATETIME(6)) AS CHAR)"

    def row_hash_sql(self, text_sql: str) -> str:
        # The last 15 hex digits of the md5 (60 bits), as PostgreSQL's and SQLite's row hashes.
        return f"CAST(CONV(SUBSTRING(MD5({text_sql}), 18), 16, 10) AS UNSIGNED)"

    def key_sql(self, column: Column) -> str:
        q = self.quote(column.name)
        return f"{q} COLLATE {self.binary_collation}" if column.kind is Kind.STRING else q

    def param_value(self, value):
        if isinstance(value, datetime) and value.tzinfo:
            # Compared with TIMESTAMP columns, which the session reads in its time zone.
            from zoneinfo import ZoneInfo

            return value.astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None)
        if isinstance(value, UUID):
            return str(value)
        return value


class MySQLDatabase(ServerDatabase):
    dialect_class = MySQLDialect
    kind_label = "MySQL"
    read_holds_gil = True  # connectorx waits for the server holding the GIL: a sentinel process watches

    def __init__(self, url: str, timezone: str = "UTC"):
        super().__init__(url, timezone)
        self.sa_url = self.sa_url.set(drivername="mysql+pymysql")
        self.display = self.sa_url.render_as_string(hide_password=True)

    def _make_dialect(self) -> MySQLDialect:
        return MySQLDialect(self.timezone, binary_collation=lambda: self.binary_collation)

    @property
    def sqlalchemy_url(self):
        return self.sa_url

    @cached_property
    def binary_collation(self) -> str:
        found = {
            r[0]
            for r in self.query(
                "SELECT collation_name FROM information_schema.collations WHERE collation_name IN (%s, %s)",
                _NO_PAD_BINARY,
            )
        }
        return next((c for c in _NO_PAD_BINARY if c in found), "utf8mb4_bin")

    def _connect(self):
        import pymysql

        url = self.sa_url
        try:
            conn = pymysql.connect(
                host=url.host or "localhost", port=url.port or 3306, user=url.username, password=url.password or "",
                database=url.database, charset="utf8mb4", local_infile=True, autocommit=False,
            )
        except pymysql.err.OperationalError as error:
            raise DatabaseUnreachable(f"cannot connect to {self.label}: {error.args[-1]}") from None
        with conn.cursor() as cursor:
            for statement in self.dialect.session_sql():
                cursor.execute(statement)
        return conn

    def _limit_statements(self, connection) -> None:
        """MariaDB's max_statement_time (seconds), else MySQL's max_execution_time (milliseconds, SELECTs)."""
        import pymysql

        with connection.cursor() as cursor:
            try:
                cursor.execute(f"SET SESSION max_statement_time = {float(self.statement_timeout)}")
            except pymysql.err.OperationalError:
                cursor.execute(f"SET SESSION max_execution_time = {int(self.statement_timeout * 1000)}")

    def _bound_lock_waits(self, connection) -> None:
        """Row locks (InnoDB) and table locks (metadata: LOCK TABLES, DDL) alike; whole seconds."""
        seconds = max(1, round(self.lock_timeout))
        with connection.cursor() as cursor:
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {seconds}")
            cursor.execute(f"SET SESSION lock_wait_timeout = {seconds}")

    def _is_lock_timeout(self, error: BaseException) -> bool:
        import pymysql

        return isinstance(error, pymysql.err.OperationalError) and error.args[0] == 1205  # ER_LOCK_WAIT_TIMEOUT

    def _fetch(self, connection, sql: str, params: tuple) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params or None)
            return cursor.fetchall()

    def _open_snapshot(self, connection, shared: bool) -> str | None:
        """InnoDB's consistent read for the transaction (a snapshot cannot be shared)."""
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        return None

    def _is_timeout(self, error: Exception) -> bool:
        import pymysql

        return (
            isinstance(error, pymysql.err.OperationalError)
            and bool(error.args)
            and error.args[0] in _STATEMENT_TIMEOUT_ERRORS
        )

    def _column(self, sa_type, table, name, nullable) -> Column:
        return _column(sa_type, table, name, nullable)

    def check_connection(self) -> None:
        self._connect().close()

    def table_exists(self, table: TableName) -> bool:
        return bool(self.query(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name = %s",
            (table.schema, table.name),
        ))

    def schema_exists(self, schema: str) -> bool:
        return bool(self.query("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)))

    def estimated_rows(self, table: TableName) -> int | None:
        rows = self.query("SELECT table_rows FROM information_schema.tables WHERE table_schema = "
                          "COALESCE(%s, DATABASE()) AND table_name = %s", (table.schema, table.name))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def scan_pieces(self, table: TableName, schema: TableSchema, rows_per_piece: int) -> ScanPieces | None:
        """Ranges of equal width of the primary key's first column when it is an integer: InnoDB
        stores a table in its primary key's order, so each range is read as one stretch of it."""
        first = schema.column(schema.primary_key[0]) if schema.primary_key else None
        if first is None or first.kind not in (Kind.INT16, Kind.INT32, Kind.INT64):
            return None
        pieces = -(-(self.estimated_rows(table) or 0) // rows_per_piece)
        if pieces < 2:
            return None
        key = self.dialect.quote(schema.primary_key[0])
        low, high = self.query(f"SELECT min({key}), max({key}) FROM {self.dialect.qualified(table)}")[0]
        return None if low is None else ScanPieces(integer_ranges(key, int(low), int(high), pieces))

    def ordered_key(self, table, schema, where, order_by) -> tuple[str, ...] | None:
        """The primary key of an InnoDB table, which is stored in its order (a clustered index),
        when the plan of the query in that order confirms it: the table read by its primary key, no
        filesort (a filter could make a secondary index and a sort cheaper)."""
        keys = schema.primary_key
        if not keys or not follows_key(order_by, keys) or any(
                schema.column(k).kind not in _EXACT_KEY_KINDS for k in keys):
            return None
        ordered = self.dialect.select_sql(table, schema, where, ", ".join(keys))
        plan = self.query("EXPLAIN " + self.dialect.inline(ordered))
        if plan[0][5] != "PRIMARY" or any("filesort" in (row[9] or "") for row in plan):  # (then subqueries)
            return None
        return tuple(keys)

    def table_identity(self, table, connection=None) -> dict | None:
        """InnoDB's create_time (a rebuild: ALTER, TRUNCATE) and update_time, the second of the
        last commit that changed the table. InnoDB keeps update_time in memory only: it is NULL
        after a server restart, so a table not written since is never resumed, and a table
        written since the kill is not resumed either. A table written in this very second has no
        identity (a second write in the same second would leave update_time as it is)."""
        import pymysql

        connection = self._connect()
        try:
            try:  # MySQL 8 serves these columns from a cache, a day old by default: read them live
                self._fetch(connection, "SET SESSION information_schema_stats_expiry = 0", ())
            except pymysql.err.OperationalError:  # MariaDB: no such cache (nor variable)
                pass
            rows = self._fetch(
                connection,
                "SELECT engine, UNIX_TIMESTAMP(create_time), UNIX_TIMESTAMP(update_time), UNIX_TIMESTAMP() "
                "FROM information_schema.tables WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name = %s",
                (table.schema, table.name))
        finally:
            connection.close()
        if not rows:
            return None
        engine, created, updated, now = rows[0]
        if engine != "InnoDB" or updated is None or int(updated) >= int(now):
            return None
        return {"created": int(created), "updated": int(updated)}

    def list_tables(self, schema: str | None = None) -> list[str]:
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = COALESCE(%s, DATABASE()) "
            "AND table_type = 'BASE TABLE' ORDER BY table_name", (schema,),
        )
        return [r[0] for r in rows]

    # --- reading -----------------------------------------------------------------------------------
    def read_batches(
        self, table, schema, where=None, order_by=None, tag=None, snapshot=None
    ) -> Iterator[pa.RecordBatch]:
        """Streamed by connectorx (Rust, MySQL's binary protocol straight into Arrow): about 9x the
        rows/s of PyMySQL's unbuffered cursor, in batches, from one query (one snapshot). Its stream
        has no backpressure, so it is drained by a ReadAhead: memory bounded, the lag on disk."""
        import connectorx as cx

        sql = self.dialect.inline(self.dialect.select_sql(table, schema, where, order_by, tag))
        url = self.sa_url.set(drivername="mysql").render_as_string(hide_password=False)
        try:
            reader = cx.read_sql(url, sql, return_type="arrow_stream", batch_size=_READ_BATCH_ROWS,
                                 pre_execution_query=self.dialect.session_sql())
            for batch in ReadAhead(reader, f"{table} from {self.label}"):
                yield _canonical_batch(batch, schema)
        except BaseException as error:
            if type(error).__name__ != "PanicException":  # connectorx panics on values it cannot convert
                raise
            raise self._unreadable(table, schema, error) from None

    def cancel_read(self, tag: str) -> None:
        """KILL QUERY on the connection running the read (connectorx's own: found by its marker)."""
        marker = f"%{read_marker(tag).strip()}%"
        for (thread_id,) in self.query("SELECT id FROM information_schema.processlist WHERE info LIKE %s "
                                       "AND id <> CONNECTION_ID()", (marker,)):
            self.execute_write(Where.statement(f"KILL QUERY {int(thread_id)}", None))

    def _unreadable(self, table: TableName, schema: TableSchema, error: BaseException) -> Exception:
        """Name the column behind a value connectorx could not convert: in practice a zero date."""
        for column in schema.columns:
            if column.kind in (Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ):
                q = self.dialect.quote(column.name)
                if self.query(
                    f"SELECT 1 FROM {self.dialect.qualified(table)} WHERE CAST({q} AS CHAR) REGEXP '^0000|-00' LIMIT 1"
                ):
                    return UnsupportedColumn(
                        f"column {table}.{column.name} holds MySQL's zero date (a 0000 year, 00 month or 00 day), "
                        "which no other database can hold; fix those rows or leave them out with a source_where"
                    )
        return UnsupportedColumn(
            f"table {table} holds a value that cannot be read exactly: {str(error).splitlines()[0]}"
        )

    # --- loading -----------------------------------------------------------------------------------
    def replace_rows(self, table, schema, files: Iterable[LoadFile], expected_rows: int, where=None) -> int:
        """MySQL commits CREATE TABLE by itself, so a first load builds the table under a staging name
        and renames it into place after COMMIT (RENAME TABLE is atomic): a first load that is killed
        leaves no target table, only a staging table the next load drops. Loads of one table are
        serialized by a lock the server releases when the session ends, however it ends."""
        sql = self.dialect
        created, into = False, table
        conn = self._connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT GET_LOCK(%s, %s)", (self._load_lock(table), LOAD_LOCK_WAIT_S))
                if cursor.fetchone()[0] != 1:
                    raise LoadFailed(f"another run has been loading {table} for over {LOAD_LOCK_WAIT_S} s (its session "
                                     "holds the table's load lock); try again when it has ended")
                # Past the queue of our own loads, a wait for another session's lock is bounded.
                with self.bounded_lock_waits(conn):
                    created = not self.table_exists(table)
                    into = self._staging(table) if created else table
                    if created:
                        sql.create_table_sql(table, schema)  # a refusal (e.g. a key too long) names the target
                        cursor.execute(f"DROP TABLE IF EXISTS {sql.qualified(into)}")  # a killed first load's
                        cursor.execute(sql.create_table_sql(into, schema))
                    conn.begin()
                    # The clear's bounds are wall-clock times in the task's zone, as every session reads them.
                    cursor.execute(*sql.render(Where.statement(f"DELETE FROM {sql.qualified(into)}", where)))
                    # The rows' TIMESTAMP values are written in UTC (exact across DST): a UTC session loads them.
                    cursor.execute(sql.time_zone_sql("+00:00"))
                    loaded = 0
                    with tempfile.TemporaryDirectory(prefix="sync-mysql-") as folder:
                        path = os.path.join(folder, "rows.csv")
                        for file in files:
                            loaded += self._load_file(cursor, table, schema, file, path, into)
                sql.check_loaded(table, loaded, expected_rows)
            conn.commit()
            if created:
                with conn.cursor() as cursor:
                    cursor.execute(f"RENAME TABLE {sql.qualified(into)} TO {sql.qualified(table)}")
            return loaded
        except BaseException:
            conn.rollback()
            if created:  # no half-made table left behind either
                with conn.cursor() as cursor:
                    cursor.execute(f"DROP TABLE IF EXISTS {sql.qualified(into)}")
            raise
        finally:
            conn.close()  # releases the lock

    @staticmethod
    def _load_lock(table: TableName) -> str:
        return "sync_platform:" + hashlib.md5(str(table).encode()).hexdigest()  # lock names: 64 characters at most

    @staticmethod
    def _staging(table: TableName) -> TableName:
        suffix = "__sync_new"
        return TableName(table.name[: 64 - len(suffix)] + suffix, table.schema)  # identifiers: 64 at most

    def _load_file(self, cursor, table: TableName, schema: TableSchema, file: LoadFile, path: str,
                   into: TableName | None = None) -> int:
        """Load one file into `into` (default: `table`, the name every message uses)."""
        sql = self.dialect
        with open(path, "wb") as sink:
            for batch in file.record_batches():
                sql.refuse_unloadable(table, schema, batch)
                pacsv.write_csv(_load_text(batch, schema), sink, pacsv.WriteOptions(
                    include_header=False, quoting_style="all_valid", null_string="NULL"))
        targets, sets = [], []
        for index, column in enumerate(schema.columns):
            if column.kind is Kind.BINARY:
                targets.append(f"@b{index}")
                sets.append(f"{sql.quote(column.name)} = UNHEX(@b{index})")
            else:
                targets.append(sql.quote(column.name))
        load = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {sql.qualified(into or table)} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' "
            f"({', '.join(targets)})" + (f" SET {', '.join(sets)}" if sets else "")
        )
        loaded = cursor.execute(load, (path,))
        cursor.execute("SHOW WARNINGS LIMIT 3")
        warnings = cursor.fetchall()
        if warnings:  # LOCAL turns errors into warnings: a truncated or converted value is a failure here
            raise LoadFailed(
                f"loading {table} was refused by MySQL: " + "; ".join(f"{w[2]}" for w in warnings) + "; rolled back"
            )
        return loaded


def _scientific_sql(x: str) -> str:
    """A double as C's %.14e (15 significant digits, e.g. -1.23450000000000e+02); MySQL has no printf.
    The exponent is split in two powers so that denormals and 1e308 stay finite."""
    e = f"FLOOR(LOG10(ABS({x})))"
    mantissa = f"({x} / POW(10, {e} DIV 2) / POW(10, {e} - {e} DIV 2))"
    # LOG10 may be off by one at powers of ten, and rounding may carry to 10.0: renormalise.
    rounded = f"ROUND({mantissa}, 14)"
    shift = f"(CASE WHEN ABS({rounded}) >= 10 THEN 1 WHEN ABS({rounded}) < 1 THEN -1 ELSE 0 END)"
    digits = f"CAST(ROUND({mantissa} / POW(10, {shift}), 14) AS DECIMAL(16,14))"
    exponent = f"({e} + {shift})"
    return (
        f"(CASE WHEN {x} = 0 THEN '0.00000000000000e+00' ELSE CONCAT({digits}, 'e', IF({exponent} < 0, '-', '+'), "
        f"IF(ABS({exponent}) < 10, '0', ''), ABS({exponent})) END)"  # LPAD would cut 308 to 30
    )


def _load_text(batch: pa.RecordBatch, schema: TableSchema) -> pa.Table:
    """A batch as the text LOAD DATA reads: booleans 1/0, binary as hex, timestamps without zone (UTC
    for timestamptz, the load's session zone), decimals and floats as exact text."""
    arrays = []
    for column, array in zip(schema.columns, batch.columns):
        kind = column.kind
        if kind is Kind.BOOL:
            array = pc.cast(array, pa.int8())
        elif kind is Kind.BINARY:
            array = pa.array([None if v is None else v.hex() for v in array.to_pylist()], pa.string())
        elif kind in (Kind.TIMESTAMP, Kind.TIMESTAMPTZ):  # %S carries the microseconds; timestamptz in UTC
            array = pc.strftime(array, format="%Y-%m-%d %H:%M:%S", locale="C")
        elif kind is Kind.FLOAT32:
            # As the double it is exactly: float32's shortest text (3.4028235e+38 for its largest
            # value) reads back in MySQL as a double above FLT_MAX, "out of range".
            array = pc.cast(array, pa.float64())
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=[c.name for c in schema.columns])

