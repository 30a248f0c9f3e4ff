"""DuckDB: the warehouse target, an analytical database in one file (`duckdb:///path/to/file.duckdb`).

Loading: DuckDB reads the export's files itself, `read_parquet` / `read_csv` over the verified files
(a local path, or s3:// through the httpfs extension, which the `duckdb-ext-httpfs` wheel installs:
nothing is downloaded at run time), several at a time, inserting into the target inside one
transaction with the same delete-then-insert replacement as the other databases. A file is pinned to the version whose
bytes matched the manifest, and the load commits only if the store still holds that version.

Reading: one query, streamed as Arrow batches, each column cast to its canonical type in the
SELECT (DuckDB's narrower and unsigned integers, enums, HUGEINT as exact text).

One process at a time may open a DuckDB file (DuckDB's own rule, a lock on the file): every
connection here is opened for one operation and closed, and an open waits for another process's
(up to lock_timeout, else FILE_WAIT_S) instead of failing at once.

Type mapping: DECIMAL holds at most 38 digits; a wider or unbounded decimal is kept exact as
VARCHAR, marked by a column comment so it reflects (and diffs) as a decimal again. VARCHAR has no
length and no padding, so varchar(n) and char(n) arrive as VARCHAR. UBIGINT reads as decimal(20,0),
HUGEINT as an unbounded decimal; LIST, STRUCT, MAP, UNION, INTERVAL, BIT, TIME WITH TIME ZONE and
nanosecond timestamps are refused by name.

`mppsql_server_name` (run config) names a DuckDB secret (CREATE PERSISTENT SECRET ... TYPE s3) that
the server-side load reads S3 with, instead of the store's own keys: the spec's name for the server
that loads Parquet files itself.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa

from ..columns import MAX_DECIMAL128_PRECISION, Column, Kind, TableName, TableSchema
from ..errors import DatabaseUnreachable, ExportIncomplete, LoadFailed, Stalled, TableNotFound, UnsupportedColumn
from ..filters import Where
from .base import Database, LoadFile, SqlDialect

_READ_BATCH_ROWS = 65_536
FILE_WAIT_S = 60.0  # how long an open waits for another process's lock on the file, by default
_LOCK_CONFLICT = "Could not set lock on file"
# Files one INSERT reads: DuckDB reads a file's row group (an export file is one) with one thread,
# so several files at once keep its threads busy (lineitem SF1 local: 15.3 s one at a time, 12.2 s by
# 4, 11.4 s all 61 at once, DuckDB's own COPY of the same files 10.7 s).
FILES_PER_INSERT = 16
# One row of CSV text at most (DuckDB's default, 2 MB, would refuse long values; its read buffer
# must hold two rows, and DuckDB allocates one per file it reads at once). Parquet has no such limit.
_CSV_MAX_LINE_BYTES = 32 << 20
_CSV_BUFFER_BYTES = 2 * _CSV_MAX_LINE_BYTES
# Extensions are never fetched from the internet: httpfs comes from its wheel (httpfs_extension()).
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

_TYPE_SQL = {
    Kind.DECIMAL: "DECIMAL",
    Kind.INT16: "SMALLINT",
    Kind.INT32: "INTEGER",
    Kind.INT64: "BIGINT",
    Kind.FLOAT32: "FLOAT",
    Kind.FLOAT64: "DOUBLE",
    Kind.STRING: "VARCHAR",
    Kind.BOOL: "BOOLEAN",
    Kind.DATE: "DATE",
    Kind.TIMESTAMP: "TIMESTAMP",
    Kind.TIMESTAMPTZ: "TIMESTAMPTZ",
    Kind.TIME: "TIME",
    Kind.BINARY: "BLOB",
    Kind.UUID: "UUID",
    Kind.JSON: "JSON",
}

# The comment that marks a VARCHAR column holding exact decimal text ("decimal" or "decimal(65,30)").
_DECIMAL_TEXT_COMMENT = re.compile(r"^sync_platform: (decimal(?:\((\d+),(\d+)\))?) as exact text")

# data_type as duckdb_columns() spells it -> kind (and the details of the column).
_SIMPLE_TYPES = {
    "BOOLEAN": Kind.BOOL,
    "TINYINT": Kind.INT16, "UTINYINT": Kind.INT16, "SMALLINT": Kind.INT16,
    "USMALLINT": Kind.INT32, "INTEGER": Kind.INT32,
    "UINTEGER": Kind.INT64, "BIGINT": Kind.INT64,
    "FLOAT": Kind.FLOAT32, "DOUBLE": Kind.FLOAT64,
    "VARCHAR": Kind.STRING,
    "DATE": Kind.DATE,
    "TIMESTAMP": Kind.TIMESTAMP, "TIMESTAMP_S": Kind.TIMESTAMP, "TIMESTAMP_MS": Kind.TIMESTAMP,
    "TIMESTAMP WITH TIME ZONE": Kind.TIMESTAMPTZ,
    "TIME": Kind.TIME,
    "BLOB": Kind.BINARY,
    "UUID": Kind.UUID,
    "JSON": Kind.JSON,
}
_WIDE_INTEGERS = {"UBIGINT": 20, "HUGEINT": None, "UHUGEINT": None}  # -> decimal(20,0), unbounded decimal


def _column(table: TableName, name: str, data_type: str, nullable: bool, comment: str | None) -> Column:
    if data_type == "VARCHAR" and comment and (marked := _DECIMAL_TEXT_COMMENT.match(comment)):
        precision, scale = (int(marked[2]), int(marked[3])) if marked[2] else (None, None)
        return Column(name, Kind.DECIMAL, nullable, precision=precision, scale=scale)
    if data_type in _SIMPLE_TYPES:
        return Column(name, _SIMPLE_TYPES[data_type], nullable)
    if data_type.startswith("ENUM("):
        return Column(name, Kind.STRING, nullable)
    if data_type in _WIDE_INTEGERS:
        digits = _WIDE_INTEGERS[data_type]
        return Column(name, Kind.DECIMAL, nullable, precision=digits, scale=0 if digits else None)
    if decimal := re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", data_type):
        return Column(name, Kind.DECIMAL, nullable, precision=int(decimal[1]), scale=int(decimal[2]))
    raise UnsupportedColumn(f"column {name!r} of {table} is DuckDB {data_type}, which sync_platform cannot copy "
                            "exactly; select it cast to a supported type in a view, or leave the table out")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _bound(params: tuple) -> list | None:
    """Bound values as DuckDB's execute takes them (a list, or None for none)."""
    return list(params) if params else None


# A table of the open file in the catalogue views (duckdb_tables(), duckdb_columns(), ...): schema, name.
_OF_TABLE = "database_name = current_database() AND schema_name = ? AND table_name = ?"
_TABLE_EXISTS = ("SELECT 1 FROM information_schema.tables WHERE table_catalog = current_database() "
                 "AND table_schema = ? AND table_name = ?")  # views too


class DuckDBDialect(SqlDialect):
    name = "duckdb"
    type_sql = _TYPE_SQL
    varchar_sql = "VARCHAR"  # DuckDB keeps no length and pads nothing: every string is VARCHAR
    char_sql = "VARCHAR"
    row_locator = "rowid"
    # DuckDB has no row locks: a write transaction that changes a row another changed since it
    # began fails at commit (optimistic concurrency), so a cleanup round never deletes a changed row.
    lock_rows_sql = ""

    @staticmethod
    def holds_decimal_as_text(column: Column) -> bool:
        return column.kind is Kind.DECIMAL and (column.precision or 99) > MAX_DECIMAL128_PRECISION

    def column_type_sql(self, column: Column) -> str:
        if column.kind is Kind.STRING or self.holds_decimal_as_text(column):
            return "VARCHAR"
        return super().column_type_sql(column)

    def decimal_text_comment(self, column: Column) -> str:
        exact = f"({column.precision},{column.scale or 0})" if column.precision else ""
        return f"sync_platform: decimal{exact} as exact text (a DuckDB DECIMAL holds at most 38 digits)"

    def select_expression(self, column: Column) -> str:
        q = self.quote(column.name)
        if column.kind in (Kind.INT16, Kind.INT32, Kind.INT64, Kind.TIMESTAMP) or (
            column.kind is Kind.DECIMAL and not self.holds_decimal_as_text(column)
        ):
            return f"CAST({q} AS {self.column_type_sql(column)}) AS {q}"
        if column.kind in (Kind.STRING, Kind.UUID, Kind.JSON, Kind.DECIMAL):
            return f"CAST({q} AS VARCHAR) AS {q}"  # enums, HUGEINT and exact decimal text as text
        return q

    # --- the diff contract ------------------------------------------------------------------------
    def canonical_text_sql(self, column: Column) -> str:
        q = self.quote(column.name)
        text = f"CAST({q} AS VARCHAR)"
        kind = column.kind
        if kind is Kind.DECIMAL:
            if self.holds_decimal_as_text(column) or column.scale is None:
                # Exact text (or a wide integer): trailing zeros of a fraction go, -0 is 0.
                trimmed = f"CASE WHEN contains({text}, '.') THEN rtrim(rtrim({text}, '0'), '.') ELSE {text} END"
                return f"CASE WHEN ({trimmed}) IN ('-0', '') THEN '0' ELSE ({trimmed}) END"
            if column.scale:
                return f"CASE WHEN {q} = 0 THEN '0' ELSE rtrim(rtrim({text}, '0'), '.') END"
            return text
        if kind in (Kind.FLOAT32, Kind.FLOAT64):
            double = f"CAST({q} AS DOUBLE)"
            return (f"CASE WHEN isnan({double}) THEN 'nan' WHEN {double} = 'infinity' THEN 'inf' "
                    f"WHEN {double} = '-infinity' THEN '-inf' ELSE printf('%.14e', {double} + 0) END")
        if kind is Kind.BOOL:
            return f"CAST(CAST({q} AS INTEGER) AS VARCHAR)"
        if kind is Kind.DATE:
            return text
        if kind is Kind.TIMESTAMP:
            return f"strftime(CAST({q} AS TIMESTAMP), '%Y-%m-%d %H:%M:%S.%f')"
        if kind is Kind.TIMESTAMPTZ:
            return f"strftime(timezone('UTC', {q}), '%Y-%m-%d %H:%M:%S.%f')"
        if kind is Kind.TIME:
            return f"strftime(DATE '2000-01-01' + {q}, '%H:%M:%S.%f')"
        if kind is Kind.BINARY:
            return f"lower(hex({q}))"
        return text  # strings, enums, uuid (lowercase, hyphenated), json text as stored

    def naive_as_utc_sql(self, column: Column) -> str:
        return (f"strftime(timezone('UTC', timezone({_literal(self.timezone)}, {self.quote(column.name)})), "
                "'%Y-%m-%d %H:%M:%S.%f')")

    def row_hash_sql(self, text_sql: str) -> str:
        return f"CAST('0x' || substr(md5({text_sql}), 18) AS BIGINT)"

    def byte_length_sql(self, text_sql: str) -> str:
        return f"strlen({text_sql})"  # bytes, not characters

    def int_div_sql(self, dividend_sql: str, divisor: int) -> str:
        return f"({dividend_sql}) // {int(divisor)}"  # `/` divides as doubles in DuckDB

    def key_sql(self, column: Column) -> str:
        return self.quote(column.name)  # text compares byte-wise (no default collation is set)

    def key_compare_sql(self, keys_sql: list[str], op: str, key) -> tuple[str, tuple]:
        """Spelled out, (k1 < v1) OR (k1 = v1 AND k2 < v2) ...: DuckDB compares a row of values as
        a STRUCT, which needs both sides' types to match exactly and cannot be a range (BETWEEN)."""
        if len(keys_sql) == 1:
            return super().key_compare_sql(keys_sql, op, key)
        values = [self.param_value(v) for v in key]
        terms, params = [], []
        for i, column in enumerate(keys_sql):
            last = op if i == len(keys_sql) - 1 else op[0]  # the earlier columns compare strictly
            equal = [f"{keys_sql[j]} = {self.param}" for j in range(i)]
            terms.append("(" + " AND ".join([*equal, f"{column} {last} {self.param}"]) + ")")
            params += values[: i + 1]
        return "(" + " OR ".join(terms) + ")", tuple(params)

    def param_value(self, value):
        if isinstance(value, datetime) and value.tzinfo:
            return value.astimezone(UTC)
        return value


class _Cursor:
    """A cursor on the session's own connection (DuckDB's cursor() would open another, in another
    transaction)."""

    def __init__(self, connection):
        self.connection = connection
        self.rowcount = -1
        self._rows: list[tuple] = []

    def execute(self, sql: str, params: tuple = ()) -> None:
        result = self.connection.execute(sql, _bound(params))
        rows = result.fetchall() if result.description else []
        # A data-changing statement answers with one row, the number of rows it changed.
        if result.description and [d[0] for d in result.description] == ["Count"]:
            self.rowcount = rows[0][0] if rows else 0
        self._rows = rows

    def executemany(self, sql: str, rows: Iterable[tuple]) -> None:
        self.connection.executemany(sql, [list(r) for r in rows])

    def fetchall(self) -> list[tuple]:
        return self._rows

    def close(self) -> None:
        pass


class _Session:
    """A DuckDB connection in a transaction, as WriteSession drives a DB-API connection."""

    def __init__(self, connection):
        self.connection = connection

    def cursor(self) -> _Cursor:
        return _Cursor(self.connection)

    def commit(self) -> None:
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        self.connection.execute("ROLLBACK")

    def close(self) -> None:
        self.connection.close()


def httpfs_extension() -> Path:
    """The httpfs extension of the `duckdb-ext-httpfs` wheel, for this DuckDB and platform."""
    import duckdb

    version = f"v{duckdb.__version__}"
    platform = duckdb.execute("PRAGMA platform").fetchone()[0]
    try:
        import duckdb_ext

        roots = list(duckdb_ext.__path__)
    except ImportError:
        roots = []
    for root in roots:
        path = Path(root) / "extensions" / version / platform / "httpfs.duckdb_extension"
        if path.is_file():
            return path
    raise LoadFailed(f"DuckDB's httpfs extension (reads of s3:// files) is not installed for DuckDB {version} on "
                     f"{platform}: install the duckdb-ext-httpfs wheel pyproject.toml pins (pip install -e .)")


class DuckDBDatabase(Database):
    dialect_class = DuckDBDialect
    reads_store_files = True

    def __init__(self, url: str, timezone: str = "UTC"):
        super().__init__(url, timezone)
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError(f"DuckDB URL {url!r} must name a database file (duckdb:///path/to/file.duckdb)")
        self.path = Path(parsed.database)
        # DuckDB settings from the URL's query (duckdb:///f.duckdb?memory_limit=1GB&threads=4), SET on
        # each connection (DuckDB ignores some, e.g. secret_directory, in connect()'s config).
        self.settings = {name: str(value) for name, value in parsed.query.items()}
        self._reads: dict[str, object] = {}  # tag -> connection of a read in progress

    @property
    def label(self) -> str:
        return f"DuckDB {self.path}"

    # --- connections ----------------------------------------------------------------------------
    def _connect(self, must_exist: bool = False):
        import duckdb

        if must_exist and not self.path.exists():
            raise DatabaseUnreachable(f"DuckDB database file {self.path} does not exist")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        wait = self.lock_timeout or FILE_WAIT_S
        deadline = time.monotonic() + wait
        while True:
            try:
                connection = duckdb.connect(str(self.path), config=_CONFIG)
                break
            except duckdb.IOException as error:
                if _LOCK_CONFLICT not in str(error):
                    raise DatabaseUnreachable(f"cannot open DuckDB database {self.path}: {error}") from None
                if time.monotonic() > deadline:
                    raise self._held_elsewhere(wait, str(error)) from None
                time.sleep(0.1)
            except duckdb.Error as error:
                raise DatabaseUnreachable(f"cannot open DuckDB database {self.path}: {error}") from None
        try:
            for name, value in {**self.settings, "TimeZone": self.timezone}.items():
                connection.execute(f"SET {self.dialect.quote(name)} = {_literal(value)}")
        except duckdb.Error as error:
            connection.close()
            raise DatabaseUnreachable(f"DuckDB database {self.path}: setting {name!r} = {value!r} (from the URL's "
                                      f"query) was refused: {str(error).splitlines()[0]}") from None
        return connection

    def _held_elsewhere(self, waited: float, error: str) -> Exception:
        holder = re.search(r"\(PID (\d+)\)", error)
        what = (f"DuckDB database {self.path} stayed open in another process{f' (pid {holder[1]})' if holder else ''} "
                f"for {waited:g} s")
        advice = ("DuckDB lets one process open a file at a time; nothing was changed. Close the other program (a "
                  "DuckDB shell, a notebook) or raise heartbeat_timeout")
        if self.lock_timeout:  # bounded by the heartbeat, as a lock wait on a server is
            return Stalled(f"opening {self.label} waited over {self.lock_timeout:g} s (heartbeat_timeout) for the "
                           f"file: {what}. {advice}")
        return DatabaseUnreachable(f"{what}. {advice}")

    def check_connection(self) -> None:
        self._connect().close()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        import duckdb

        connection = self._connect(must_exist=True)
        timer = None
        if self.statement_timeout:
            timer = threading.Timer(self.statement_timeout, connection.interrupt)
            timer.start()
        try:
            return connection.execute(sql, _bound(params)).fetchall()
        except duckdb.InterruptException:
            raise self.timed_out() from None
        finally:
            if timer:
                timer.cancel()
            connection.close()

    def _write_connection(self) -> _Session:
        connection = self._connect()
        connection.execute("BEGIN TRANSACTION")
        return _Session(connection)

    # --- tables ---------------------------------------------------------------------------------
    @staticmethod
    def _schema(table: TableName) -> str:
        return table.schema or "main"

    def table_exists(self, table: TableName) -> bool:
        if not self.path.exists():
            return False
        return bool(self.query(_TABLE_EXISTS, (self._schema(table), table.name)))

    def schema_exists(self, schema: str) -> bool:
        return self.path.exists() and bool(self.query(
            "SELECT 1 FROM information_schema.schemata WHERE catalog_name = current_database() AND schema_name = ?",
            (schema,)))

    def list_tables(self, schema: str | None = None) -> list[str]:
        rows = self.query(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = ? "
            "AND NOT internal ORDER BY table_name", (schema or "main",))
        return [r[0] for r in rows]

    def estimated_rows(self, table: TableName) -> int | None:
        rows = self.query(f"SELECT estimated_size FROM duckdb_tables() WHERE {_OF_TABLE}",
                          (self._schema(table), table.name))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def reflect(self, table: TableName) -> TableSchema:
        if not self.table_exists(table):
            raise TableNotFound(f"table {table} does not exist in DuckDB database {self.path}")
        names = (self._schema(table), table.name)
        columns = self.query(
            f"SELECT column_name, data_type, is_nullable, comment FROM duckdb_columns() WHERE {_OF_TABLE} "
            "ORDER BY column_index", names)
        keys = self.query(
            f"SELECT constraint_column_names FROM duckdb_constraints() WHERE {_OF_TABLE} "
            "AND constraint_type = 'PRIMARY KEY'", names)
        return TableSchema(
            columns=tuple(_column(table, name, data_type, nullable, comment)
                          for name, data_type, nullable, comment in columns),
            primary_key=tuple(keys[0][0]) if keys else (),
        )

    # --- bulk I/O -------------------------------------------------------------------------------
    def read_batches(self, table, schema, where=None, order_by=None, tag=None,
                     snapshot=None) -> Iterator[pa.RecordBatch]:
        connection = self._connect(must_exist=True)
        if tag:
            self._reads[tag] = connection
        try:
            sql, params = self.dialect.render(self.dialect.select_sql(table, schema, where, order_by, tag))
            reader = connection.execute(sql, _bound(params)).fetch_record_batch(_READ_BATCH_ROWS)
            target = schema.arrow_schema
            for batch in reader:
                # Casts what DuckDB's Arrow differs in: the time zone's name (Etc/UTC), nullability.
                yield pa.RecordBatch.from_arrays(
                    [column.cast(field.type) for column, field in zip(batch.columns, target)], schema=target)
        finally:
            self._reads.pop(tag, None)
            connection.close()

    def cancel_read(self, tag: str) -> None:
        connection = self._reads.get(tag)
        if connection is not None:
            connection.interrupt()  # thread-safe: the running query fails with an interrupt

    def replace_rows(self, table, schema, files: Iterable[LoadFile], expected_rows: int, where=None) -> int:
        sql = self.dialect
        with self.write_session() as session:  # commits after the block, rolls back on any exception
            connection = session.connection.connection
            if not connection.execute(_TABLE_EXISTS, [self._schema(table), table.name]).fetchall():
                self._create(connection, table, schema)
            session.execute(*sql.render(Where.statement(f"DELETE FROM {sql.qualified(table)}", where)))
            loaded, read = 0, []
            files = iter(files)
            while group := list(islice(files, FILES_PER_INSERT)):
                loaded += self._insert_files(connection, table, schema, group)
                read += group
            sql.check_loaded(table, loaded, expected_rows)
            replaced = [f.stored.location for f in read if not f.unchanged()]
            if replaced:
                raise ExportIncomplete(f"{replaced[0]} was replaced in the store while {table} was loaded from it "
                                       f"({len(replaced)} file(s)); rolled back, nothing changed: re-run the import")
            return loaded

    def _create(self, connection, table: TableName, schema: TableSchema) -> None:
        connection.execute(self.dialect.create_table_sql(table, schema))
        for column in schema.columns:
            if self.dialect.holds_decimal_as_text(column):
                name = f"{self.dialect.qualified(table)}.{self.dialect.quote(column.name)}"
                connection.execute(f"COMMENT ON COLUMN {name} IS {_literal(self.dialect.decimal_text_comment(column))}")

    def _insert_files(self, connection, table: TableName, schema: TableSchema, files: list) -> int:
        """Insert export files (one format: one export's), read by DuckDB itself where the store
        keeps them."""
        import duckdb

        locations = [f.stored.location for f in files]
        if locations[0].startswith("s3://"):  # one export's files: one bucket
            self._reach_s3(connection, files[0].stored)
        q = self.dialect.quote
        names = ", ".join(q(c.name) for c in schema.columns)
        listed = f"[{', '.join(_literal(location) for location in locations)}]"
        fmt = files[0].fmt
        if fmt.name == "parquet":
            source = f"read_parquet({listed})"
            values = names
        else:  # CSV of the contract: every value as text, then cast by the INSERT to the column's type
            types = ", ".join(f"{_literal(c.name)}: 'VARCHAR'" for c in schema.columns)
            source = (f"read_csv({listed}, header = true, delim = ',', quote = '\"', escape = '\"', "
                      f"auto_detect = false, allow_quoted_nulls = false, strict_mode = true, "
                      f"compression = {_literal(fmt.compression)}, max_line_size = {_CSV_MAX_LINE_BYTES}, "
                      f"buffer_size = {_CSV_BUFFER_BYTES}, "
                      f"columns = {{{types}}})")
            values = ", ".join(f"unhex(substr({q(c.name)}, 3))" if c.kind is Kind.BINARY else q(c.name)
                               for c in schema.columns)
        try:
            return connection.execute(
                f"INSERT INTO {self.dialect.qualified(table)} ({names}) SELECT {values} FROM {source}").fetchone()[0]
        except duckdb.Error as error:
            files_text = locations[0] if len(locations) == 1 else f"{locations[0]} .. {locations[-1]}"
            raise LoadFailed(f"cannot load table {table} from {files_text}: {str(error).splitlines()[0]}; rolled "
                             "back, nothing changed") from None

    def _reach_s3(self, connection, stored) -> None:
        """httpfs loaded, and a secret scoped to the file's bucket: the run config's named one
        (mppsql_server_name), else a temporary one made of the store's keys."""
        import duckdb

        try:
            connection.execute(f"LOAD {_literal(str(httpfs_extension()))}")
        except duckdb.Error as error:
            raise LoadFailed(f"DuckDB cannot load its httpfs extension: {error}") from None
        bucket = urlsplit(stored.location).netloc
        if self.store_secret:
            known = [r[0] for r in connection.execute("SELECT name FROM duckdb_secrets()").fetchall()]
            if self.store_secret not in known:
                raise LoadFailed(
                    f"mppsql_server_name {self.store_secret!r} names no DuckDB secret of {self.path}; its secrets are "
                    f"{sorted(known) or 'none'}: create it (CREATE PERSISTENT SECRET {self.store_secret} "
                    "(TYPE s3, ...)) or leave mppsql_server_name out to use the store's keys")
            return
        access = stored.s3
        if access is None or not access.access_key_id:
            raise LoadFailed(
                f"DuckDB reads {stored.location} with the S3 config's keys, and it has none (the AWS default chain "
                "is not available to DuckDB here): give access_key_id and secret_access_key, or name a DuckDB "
                "secret in the run config's mppsql_server_name")
        options = {"TYPE": "s3", "KEY_ID": _literal(access.access_key_id),
                   "SECRET": _literal(access.secret_access_key or ""), "REGION": _literal(access.region),
                   "URL_STYLE": _literal("path" if access.path_style else "vhost"), "SCOPE": _literal(f"s3://{bucket}")}
        if access.endpoint_url:
            endpoint = urlsplit(access.endpoint_url)
            options["ENDPOINT"] = _literal(endpoint.netloc)
            options["USE_SSL"] = "true" if endpoint.scheme == "https" else "false"
        name = "sync_platform_" + hashlib.sha256(f"{access.endpoint_url} {bucket}".encode()).hexdigest()[:16]
        try:
            connection.execute(f"CREATE OR REPLACE TEMPORARY SECRET {name} "
                               f"({', '.join(f'{k} {v}' for k, v in options.items())})")
        except duckdb.Error as error:  # the message would quote the statement, keys included: not shown
            raise LoadFailed(f"DuckDB refused the S3 settings of {stored.location} ({type(error).__name__})") from None
