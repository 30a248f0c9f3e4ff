"""PostgreSQL. Rows leave through ADBC (binary COPY decoded to Arrow in C++) and enter through
psycopg's `COPY ... FROM STDIN (FORMAT csv)` fed with our CSV text, so no value passes through a
Python object on either path.

Why text COPY in: measured on TPC-H lineitem SF1, it loads as fast as ADBC's binary ingest (both
~9.7 s) while our process spends 0.9 CPU-s and 121 MB on it instead of 9 CPU-s and 211 MB (ADBC
encodes every value, decimals above all, on one core of ours; text leaves the parsing to the server).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.compute as pc

from ..columns import Column, Kind, TableName, TableSchema
from ..errors import DatabaseUnreachable, LoadFailed, UnsupportedColumn
from ..filters import Where
from .base import LoadFile, ScanPieces, ServerDatabase, SqlDialect, Unloadable, follows_key, ranges_at, read_marker

# ADBC batches of about this many bytes: measured on lineitem SF1, 4 MB -> 227 MB peak RSS of the
# export, 16 MB -> 255 MB, 64 MB -> 369 MB, at the same speed.
_ADBC_BATCH_BYTES = 8 << 20

_TYPE_SQL = {
    Kind.DECIMAL: "numeric",
    Kind.INT16: "smallint",
    Kind.INT32: "integer",
    Kind.INT64: "bigint",
    Kind.FLOAT32: "real",
    Kind.FLOAT64: "double precision",
    Kind.STRING: "text",
    Kind.BOOL: "boolean",
    Kind.DATE: "date",
    Kind.TIMESTAMP: "timestamp(6) without time zone",
    Kind.TIMESTAMPTZ: "timestamp(6) with time zone",
    Kind.TIME: "time(6) without time zone",
    Kind.BINARY: "bytea",
    Kind.UUID: "uuid",
    Kind.JSON: "json",  # keeps the text as it came (jsonb would reorder keys and respace it)
}

# Decimals of up to 18 digits travel as scaled bigints (numeric(15,2) 12.34 -> 1234): exact, and
# ~10x cheaper to turn into Arrow decimals than the text ADBC gives for numeric.
_MAX_SCALED_INT_PRECISION = 18


def _scaled_decimal(column: Column) -> bool:
    return (
        column.kind is Kind.DECIMAL and column.precision is not None and column.precision <= _MAX_SCALED_INT_PRECISION
    )


def _decimal_from_scaled(array: pa.Array, decimal_type: pa.Decimal128Type) -> pa.Array:
    """Reinterpret bigints holding value * 10^scale as decimals of that scale (no arithmetic)."""
    unscaled = array.cast(pa.decimal128(19, 0))  # Arrow casts int64 only to precision >= 19; same bytes
    return pa.Array.from_buffers(decimal_type, len(unscaled), unscaled.buffers(), null_count=unscaled.null_count)


def _column(sa_type, table: TableName, name: str, nullable: bool) -> Column:
    """The column a reflected SQLAlchemy type maps to."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql as pg

    def column(kind: Kind, **details) -> Column:
        return Column(name, kind, nullable, **details)

    if isinstance(sa_type, sa.SmallInteger):
        return column(Kind.INT16)
    if isinstance(sa_type, sa.BigInteger):
        return column(Kind.INT64)
    if isinstance(sa_type, sa.Integer):
        return column(Kind.INT32)
    if isinstance(sa_type, sa.REAL):
        return column(Kind.FLOAT32)
    if isinstance(sa_type, sa.Float):
        return column(Kind.FLOAT64)
    if isinstance(sa_type, sa.Numeric):
        precision = sa_type.precision
        return column(Kind.DECIMAL, precision=precision, scale=(sa_type.scale or 0) if precision else None)
    if isinstance(sa_type, sa.Boolean):
        return column(Kind.BOOL)
    if isinstance(sa_type, sa.DateTime):
        return column(Kind.TIMESTAMPTZ if sa_type.timezone else Kind.TIMESTAMP)
    if isinstance(sa_type, sa.Date):
        return column(Kind.DATE)
    if isinstance(sa_type, sa.Time) and not getattr(sa_type, "timezone", False):
        return column(Kind.TIME)
    if isinstance(sa_type, sa.LargeBinary):
        return column(Kind.BINARY)
    if isinstance(sa_type, sa.Uuid):
        return column(Kind.UUID)
    if isinstance(sa_type, (sa.JSON, pg.JSONB)):
        return column(Kind.JSON)
    if isinstance(sa_type, sa.CHAR):
        return column(Kind.STRING, length=sa_type.length, padded=True)
    if isinstance(sa_type, sa.Enum):  # copied as its label's text; its hash is not text's
        return column(Kind.STRING, typed_hash=False)
    if isinstance(sa_type, sa.String):
        return column(Kind.STRING, length=sa_type.length)
    raise UnsupportedColumn(
        f"column {name!r} of {table} has type {sa_type}, which sync_platform cannot copy exactly; "
        f"supported kinds: {', '.join(k.value for k in Kind)}"
    )


def _array_literal(values: list) -> str:
    """A PostgreSQL array literal of the values' text forms, every element quoted: '{"1","a\\"b"}'."""
    def element(value) -> str:
        if value is None:
            return "NULL"
        text = "\\x" + bytes(value).hex() if isinstance(value, (bytes, bytearray, memoryview)) else str(value)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(element(v) for v in values) + "}"


class PostgresDialect(SqlDialect):
    name = "postgresql"
    type_sql = _TYPE_SQL
    unloadable = (Unloadable(frozenset({Kind.STRING, Kind.JSON}), lambda a: pc.match_substring(a, "\x00"),
                             "and PostgreSQL text cannot hold the character NUL"),)
    max_identifier_length = 63  # NAMEDATALEN - 1: PostgreSQL would silently truncate longer names
    row_locator = "ctid"
    param = "%s"
    param_escapes_percent = True

    def select_expression(self, column: Column) -> str:
        name = self.quote(column.name)
        if _scaled_decimal(column):
            return (
                f"({name} * 1e{column.scale or 0})::bigint AS {name}" if column.scale else f"{name}::bigint AS {name}"
            )
        if column.kind in (Kind.DECIMAL, Kind.UUID, Kind.JSON) or column.padded:
            return f"{name}::text AS {name}"  # char(n)::text drops the padding
        return name

    def canonical_text_sql(self, column: Column) -> str:
        q = self.quote(column.name)
        kind = column.kind
        if kind is Kind.DECIMAL:
            return f"trim_scale({q})::text"
        if kind in (Kind.FLOAT32, Kind.FLOAT64):
            # 15 significant digits in C's %.14e form; + 0 turns -0 into 0. to_char prints every
            # non-finite value as '#.###...': those are spelled out (NaN = NaN in PostgreSQL).
            return (
                f"CASE WHEN {q} = 'Infinity' THEN 'inf' WHEN {q} = '-Infinity' THEN '-inf' WHEN {q} = 'NaN' THEN 'nan' "
                f"ELSE ltrim(to_char({q}::float8 + 0, '9.99999999999999EEEE')) END"
            )
        if kind is Kind.BOOL:
            return f"({q})::int::text"
        if kind is Kind.DATE:
            return f"{q}::text"  # YYYY-MM-DD under DateStyle ISO, set on every connection; 2x cheaper than to_char
        if kind is Kind.TIMESTAMP:
            return f"to_char({q}, 'YYYY-MM-DD HH24:MI:SS.US')"
        if kind is Kind.TIMESTAMPTZ:
            return f"to_char({q} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        if kind is Kind.TIME:
            return f"to_char(DATE '2000-01-01' + {q}, 'HH24:MI:SS.US')"
        if kind is Kind.BINARY:
            return f"encode({q}, 'hex')"
        return f"{q}::text"

    def naive_as_utc_sql(self, column: Column) -> str:
        zone = self.timezone.replace("'", "''")
        return (
            f"to_char(({self.quote(column.name)} AT TIME ZONE '{zone}') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        )

    def row_hash_sql(self, text_sql: str) -> str:
        return f"('x' || substr(md5({text_sql}), 18))::bit(60)::bigint"

    def byte_length_sql(self, text_sql: str) -> str:
        return f"octet_length({text_sql})"

    def int_div_sql(self, dividend_sql: str, divisor: int) -> str:
        return f"({dividend_sql}) / {int(divisor)}"  # integer division of integers

    # Hash opclasses agree with equality: numeric 1.50 = 1.5, int2/int4/int8 hash alike, bpchar
    # ignores trailing blanks as its text does. Floats are left out (the contract compares them to
    # 15 digits, their hash exactly) and so is json (no hash opclass).
    natively_hashable = frozenset(
        {Kind.INT16, Kind.INT32, Kind.INT64, Kind.DECIMAL, Kind.STRING, Kind.BOOL, Kind.DATE, Kind.TIMESTAMP,
         Kind.TIMESTAMPTZ, Kind.TIME, Kind.BINARY, Kind.UUID}
    )

    def native_row_hash_sql(self, values_sql: list[str]) -> str | None:
        # hash_record_extended: stable across versions and platforms (hash partitioning relies on
        # its element hashes) and no text to build: measured on lineitem SF1, a full pass takes
        # 2.8 s against 7.7 s for canonical text + hash and 13.3 s for canonical text + md5.
        return f"hash_record_extended(ROW({', '.join(values_sql)}), 0)"

    def key_sql(self, column: Column) -> str:
        q = self.quote(column.name)
        return f'{q} COLLATE "C"' if column.kind is Kind.STRING else q

    keys_per_statement = 100_000  # one array per key column, whatever the count

    def key_in(self, columns: list[Column], keys) -> tuple[str, tuple]:
        # Arrays, not a list of placeholders: one bound value per column, so neither psycopg nor
        # the planner works through thousands of them (measured: cleanup rounds 4x faster), sent
        # as array literals, which PostgreSQL casts to the column's type (2.5x cheaper to build
        # than psycopg's adaptation of a Python list).
        arrays = tuple(_array_literal([key[i] for key in keys]) for i in range(len(columns)))
        typed = ", ".join(f"%s::{self.column_type_sql(c)}[]" for c in columns)
        names = [self.quote(c.name) for c in columns]
        if len(names) == 1:
            return f"{names[0]} = ANY({typed})", arrays
        return f"({', '.join(names)}) IN (SELECT * FROM unnest({typed}))", arrays

    def create_without_key_sql(self, table: TableName, schema: TableSchema) -> tuple[str, str | None]:
        """CREATE TABLE without its primary key, and the ALTER that adds it once the rows are in:
        one index build after the load is much faster than maintaining the index row by row."""
        bare = TableSchema(columns=schema.columns)
        add_key = (
            f"ALTER TABLE {self.qualified(table)} ADD PRIMARY KEY "
            f"({', '.join(self.quote(k) for k in schema.primary_key)})"
            if schema.primary_key
            else None
        )
        return self.create_table_sql(table, bare), add_key

    def clear_sql(self, table: TableName, where) -> Where:
        """A full refresh TRUNCATEs (transactional in PostgreSQL): no dead rows for the new ones to
        wade through, table identity (grants, views, indexes) kept. Its lock makes readers wait for
        the commit and then see the new rows. A slice (where) is DELETEd: readers keep seeing the
        old rows of that slice until the commit."""
        if where is None:
            return Where.text(f"TRUNCATE {self.qualified(table)}")
        return Where.statement(f"DELETE FROM {self.qualified(table)}", where)


class PostgresDatabase(ServerDatabase):
    dialect_class = PostgresDialect
    kind_label = "PostgreSQL"
    loads_csv_text = True

    def __init__(self, url: str, timezone: str = "UTC"):
        super().__init__(url, timezone)
        # libpq's own URI form (no SQLAlchemy driver suffix), shared by psycopg and ADBC.
        self.libpq_uri = self.sa_url.set(drivername="postgresql").render_as_string(hide_password=False)

    @property
    def sqlalchemy_url(self):
        return self.sa_url.set(drivername="postgresql+psycopg")

    def _connect(self):
        import psycopg

        try:
            return psycopg.connect(self.libpq_uri, options=f"-c TimeZone={self.timezone} -c DateStyle=ISO")
        except psycopg.OperationalError as error:
            raise DatabaseUnreachable(f"cannot connect to {self.label}: {error}".strip()) from None

    def _limit_statements(self, connection) -> None:
        connection.execute(f"SET statement_timeout = {int(self.statement_timeout * 1000)}")
        connection.commit()

    def _fetch(self, connection, sql: str, params: tuple) -> list[tuple]:
        return connection.execute(sql, params).fetchall()

    def _open_snapshot(self, connection, shared: bool) -> str | None:
        import psycopg

        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        return connection.execute("SELECT pg_export_snapshot()").fetchone()[0] if shared else None

    def _join_snapshot(self, connection, snapshot: str | None) -> None:
        import psycopg

        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        connection.execute(psycopg.sql.SQL("SET TRANSACTION SNAPSHOT {}").format(snapshot))

    def _bound_lock_waits(self, connection) -> None:
        connection.execute(f"SET lock_timeout = {int(self.lock_timeout * 1000)}")

    def _is_lock_timeout(self, error: BaseException) -> bool:
        import psycopg

        return isinstance(error, psycopg.errors.LockNotAvailable)

    def _is_timeout(self, error: Exception) -> bool:
        import psycopg

        return isinstance(error, psycopg.errors.QueryCanceled) and "statement timeout" in str(error)

    def _column(self, sa_type, table, name, nullable) -> Column:
        return _column(sa_type, table, name, nullable)

    def check_connection(self) -> None:
        self._connect().close()

    def _reflection_schema(self, table: TableName) -> str:
        return table.schema or "public"

    def _regclass(self, table: TableName) -> str:
        """The table's name as to_regclass() takes it, schema made explicit."""
        return self.dialect.qualified(TableName(table.name, self._reflection_schema(table)))

    def table_exists(self, table: TableName) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self._regclass(table),)).fetchone()[0]

    def schema_exists(self, schema: str) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None

    def estimated_rows(self, table: TableName) -> int | None:
        rows = self.query("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                          (self._regclass(table),))
        return int(rows[0][0]) if rows and rows[0][0] is not None and rows[0][0] >= 0 else None  # -1: never analyzed

    def scan_pieces(self, table: TableName, schema: TableSchema, rows_per_piece: int) -> ScanPieces | None:
        """Ranges of the heap's blocks (ctid, a TID range scan: PostgreSQL 14 and later), as many
        blocks each as hold about rows_per_piece rows by the table's statistics (64 MB without
        any); the last range is open, so blocks added since are read too. A TID range scan is not
        parallel, so 1 + max_parallel_workers_per_gather pieces are read at once: the processes
        one parallel scan of the table would have used."""
        row = self.query(
            "SELECT current_setting('server_version_num')::int, pg_relation_size(c.oid) / "
            "current_setting('block_size')::int, c.relpages, c.reltuples, "
            "current_setting('max_parallel_workers_per_gather')::int FROM pg_class c WHERE c.oid = to_regclass(%s)",
            (self._regclass(table),))
        if not row or row[0][0] < 140000:
            return None
        _, blocks, pages, tuples, parallel = row[0]
        per = -(-int(rows_per_piece * pages) // int(tuples)) if pages > 0 and tuples > 0 else 8192
        starts = list(range(0, int(blocks), max(per, 1)))
        if len(starts) < 2:
            return None
        return ScanPieces(ranges_at("ctid", [f"'({start},0)'::tid" for start in starts[1:]]),
                          workers=1 + max(int(parallel), 0))

    def list_tables(self, schema: str | None = None) -> list[str]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_type = 'BASE TABLE' ORDER BY table_name",
                (schema or "public",),
            ).fetchall()
        return [r[0] for r in rows]

    def _adbc(self):
        import adbc_driver_postgresql.dbapi as adbc

        try:
            conn = adbc.connect(self.libpq_uri)
        except adbc.Error as error:  # ADBC's own error family
            raise DatabaseUnreachable(f"cannot connect to {self.label}: {error}") from None
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"SET TIME ZONE '{self.timezone.replace(chr(39), chr(39) * 2)}'")
        except BaseException:
            conn.close()
            raise
        return conn

    can_share_snapshot = True

    @contextmanager
    def shared_snapshot(self) -> Iterator[tuple[object, str]]:
        """A REPEATABLE READ transaction and its exported snapshot (pg_export_snapshot): readers
        that set it see exactly the rows it sees, whatever commits meanwhile."""
        import psycopg

        with self._connect() as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            try:
                yield conn, snapshot
            finally:
                conn.rollback()

    def table_identity(self, table, connection=None) -> dict | None:
        """The table's file (relfilenode: TRUNCATE, VACUUM FULL, a rewrite change it) and its
        statistics' counts of rows inserted, updated and deleted. Read on the chunked export's
        snapshot connection (its only caller)."""
        row = connection.execute(
            "SELECT c.relfilenode, s.n_tup_ins, s.n_tup_upd, s.n_tup_del FROM pg_class c "
            "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = to_regclass(%s)",
            (self._regclass(table),)).fetchone()
        if row is None or row[1] is None:
            return None
        return dict(zip(("relfilenode", "inserted", "updated", "deleted"), (int(v) for v in row)))

    def chunk_conditions(self, snapshot_connection, table, schema, where, order_by, chunks,
                         key_order=True) -> list[Where] | None:
        """Ranges of the primary key at its quantiles (read in the snapshot: the key at every
        n-th row, n = rows / chunks), composite keys compared as rows, where the chunks must follow
        the key (key_order, or an order_by that is the key); otherwise ranges of the heap's blocks
        (ctid, a TID range scan: PostgreSQL 14 and later), which cost no scan to plan and read the
        rows in the order one sequential scan would. An order_by other than the key itself cannot
        be kept across chunks: None."""
        sql, keys = self.dialect, list(schema.primary_key)
        if not follows_key(order_by, keys):
            return None
        if keys and (key_order or order_by is not None):
            estimate = self.estimated_rows(table) or 0
            if estimate < 2 * chunks:
                return None
            columns = ", ".join(sql.quote(k) for k in keys)
            literals = ", ".join(f"quote_literal({sql.quote(k)})" for k in keys)
            step = max(1, estimate // chunks)
            query = Where.statement(
                f"SELECT {literals} FROM (SELECT {columns}, row_number() OVER (ORDER BY {columns}) AS sync_rn "
                f"FROM {sql.qualified(table)}", where, f") s WHERE sync_rn % {step} = 0 ORDER BY sync_rn")
            bounds = snapshot_connection.execute(*sql.render(query)).fetchall()[: chunks - 1]
            key = columns if len(keys) == 1 else f"({columns})"
            values = [b[0] if len(keys) == 1 else f"({', '.join(b)})" for b in bounds]
            ranges = ranges_at(key, values)
        else:
            version, blocks = snapshot_connection.execute(
                "SELECT current_setting('server_version_num')::int, "
                "pg_relation_size(to_regclass(%s)) / current_setting('block_size')::int",
                (self._regclass(table),)).fetchone()
            if version < 140000 or (blocks or 0) < 2 * chunks:  # before 14 each range would scan the table
                return None
            per = -(-blocks // chunks)
            ranges = ranges_at("ctid", [f"'({start},0)'::tid" for start in range(per, blocks, per)])
        return [Where.text(condition) for condition in ranges] if len(ranges) > 1 else None

    def read_batches(
        self, table, schema, where=None, order_by=None, tag=None, snapshot=None
    ) -> Iterator[pa.RecordBatch]:
        statement = self.dialect.select_sql(table, schema, where, order_by, tag)
        target = schema.arrow_schema
        conn = self._adbc()
        cursor = None
        try:
            cursor = conn.cursor()
            if snapshot:  # ADBC runs its statements in one transaction: the read's, in the shared snapshot
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(_ADBC_BATCH_BYTES)})
            cursor.execute(statement.sql("${n}"), self.dialect.bind(statement) or None)  # ADBC binds $1, $2, ...
            for batch in cursor.fetch_record_batch():
                arrays = []
                for column, array, field in zip(schema.columns, batch.columns, target):
                    if _scaled_decimal(column):
                        array = _decimal_from_scaled(array, field.type)
                    elif array.type != field.type:
                        array = array.cast(field.type)
                    arrays.append(array)
                yield pa.RecordBatch.from_arrays(arrays, schema=target)
        finally:
            # The statement first: a connection closed under an open one raises (as "Exception ignored"
            # noise when this runs at garbage collection, after the real error).
            if cursor is not None:
                cursor.close()
            conn.close()

    def cancel_read(self, tag: str) -> None:
        with self._connect() as conn:
            conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE %s "
                         "AND pid <> pg_backend_pid()", (f"%{read_marker(tag).strip()}%",))

    def _refusal(self, table: TableName, schema: TableSchema, file: LoadFile, error: Exception) -> LoadFailed:
        """COPY refused a value: name its column and key (the file is read again, only on failure)."""
        for batch in file.record_batches():
            try:
                self.dialect.refuse_unloadable(table, schema, batch)
            except LoadFailed as refusal:
                return refusal
        return LoadFailed(
            f"cannot load table {table}: PostgreSQL refused a value: {str(error).splitlines()[0]}; nothing was loaded"
        )

    def replace_rows(self, table, schema, files: Iterable[LoadFile], expected_rows: int, where=None) -> int:
        import psycopg

        sql = self.dialect
        copy_sql = (
            f"COPY {sql.qualified(table)} ({', '.join(sql.quote(n) for n in schema.names)}) "
            "FROM STDIN (FORMAT csv, HEADER true)"
        )
        create, add_key = sql.create_without_key_sql(table, schema)
        with self._connect() as conn:
            # psycopg's transaction block rolls back on any exception, BaseException included.
            with conn.transaction():
                # One load of a table at a time (two runs of a task, a retry beside an orphan): the
                # second waits for the first's COMMIT, then replaces its rows, instead of both
                # creating the table and one failing on pg_type's unique index. Released at COMMIT.
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                             (f"sync_platform load {self._regclass(table)}",))
                # Past the queue of our own loads, a wait for another session's lock is bounded.
                with self.bounded_lock_waits(conn):
                    created = not conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                                               (self._regclass(table),)).fetchone()[0]
                    if created:
                        conn.execute(create)
                    conn.execute(*sql.render(sql.clear_sql(table, where)))
                    loaded = 0
                    with conn.cursor() as cursor:
                        for file in files:
                            try:
                                with cursor.copy(copy_sql) as copy:
                                    for chunk in file.csv_chunks():
                                        copy.write(chunk)
                            except psycopg.errors.DataError as error:
                                raise self._refusal(table, schema, file, error) from None
                            loaded += cursor.rowcount
                    if created and add_key:
                        conn.execute(add_key)
                sql.check_loaded(table, loaded, expected_rows)
            return loaded
