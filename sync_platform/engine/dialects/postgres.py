"""PostgreSQL. Rows leave through ADBC (binary COPY decoded to Arrow in C++) and enter through
psycopg's `COPY ... FROM STDIN (FORMAT csv)` fed with our CSV text, so no value passes through a
Python object on either path."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cached_property

import pyarrow as pa

from ..columns import Column, Kind, TableName, TableSchema
from ..errors import DatabaseUnreachable, TableNotFound, UnsupportedColumn
from .base import Dialect, LoadFile

# ADBC batches of about this many bytes keep the export's memory flat.
_ADBC_BATCH_BYTES = 16 << 20

_TYPE_SQL = {
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
    Kind.JSON: "jsonb",
}

# Types ADBC hands back as something other than their canonical Arrow type: selected as text and
# cast in Arrow (decimals) or kept as text (uuid, json, unbounded numeric).
_SELECTED_AS_TEXT = {Kind.DECIMAL, Kind.UUID, Kind.JSON}


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
    if isinstance(sa_type, (sa.String, sa.Enum)):
        return column(Kind.STRING, length=getattr(sa_type, "length", None))
    raise UnsupportedColumn(
        f"column {name!r} of {table} has type {sa_type}, which sync_platform cannot copy exactly; "
        f"supported kinds: {', '.join(k.value for k in Kind)}"
    )


class PostgresDialect(Dialect):
    name = "postgresql"

    def __init__(self, url: str, timezone: str = "UTC"):
        super().__init__(url, timezone)
        from sqlalchemy.engine import make_url

        self.sa_url = make_url(url)
        # libpq's own URI form (no SQLAlchemy driver suffix), shared by psycopg and ADBC.
        self.libpq_uri = self.sa_url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.display = self.sa_url.render_as_string(hide_password=True)

    @cached_property
    def engine(self):
        import sqlalchemy as sa

        return sa.create_engine(
            self.sa_url.set(drivername="postgresql+psycopg"),
            poolclass=sa.pool.NullPool,
            connect_args={"options": f"-c TimeZone={self.timezone}"},
        )

    def _psycopg(self):
        import psycopg

        try:
            return psycopg.connect(self.libpq_uri, options=f"-c TimeZone={self.timezone}")
        except psycopg.OperationalError as error:
            raise DatabaseUnreachable(f"cannot connect to PostgreSQL {self.display}: {error}".strip()) from None

    def check_connection(self) -> None:
        self._psycopg().close()

    def _schema_name(self, table: TableName) -> str:
        return table.schema or "public"

    def table_exists(self, table: TableName) -> bool:
        with self._psycopg() as conn:
            return conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (self.qualified(TableName(table.name, self._schema_name(table))),)
            ).fetchone()[0]

    def reflect(self, table: TableName) -> TableSchema:
        import sqlalchemy as sa

        if not self.table_exists(table):
            raise TableNotFound(f"table {table} does not exist in PostgreSQL {self.display}")
        inspector = sa.inspect(self.engine)
        schema = self._schema_name(table)
        columns = tuple(
            _column(c["type"], table, c["name"], c["nullable"]) for c in inspector.get_columns(table.name, schema=schema)
        )
        primary_key = tuple(inspector.get_pk_constraint(table.name, schema=schema)["constrained_columns"])
        return TableSchema(columns=columns, primary_key=primary_key)

    def column_type_sql(self, column: Column) -> str:
        if column.kind is Kind.DECIMAL:
            return f"numeric({column.precision},{column.scale or 0})" if column.precision else "numeric"
        if column.kind is Kind.STRING and column.length:
            return f"varchar({column.length})"
        return _TYPE_SQL[column.kind]

    def select_expression(self, column: Column) -> str:
        if column.kind in _SELECTED_AS_TEXT:
            return f"{self.quote(column.name)}::text AS {self.quote(column.name)}"
        return self.quote(column.name)

    def read_batches(self, table, schema, where=None, order_by=None) -> Iterator[pa.RecordBatch]:
        import adbc_driver_postgresql.dbapi as adbc

        sql = self.select_sql(table, schema, where, order_by)
        target = schema.arrow_schema
        try:
            conn = adbc.connect(self.libpq_uri)
        except Exception as error:  # ADBC raises its own OperationalError family
            raise DatabaseUnreachable(f"cannot connect to PostgreSQL {self.display}: {error}") from None
        try:
            cursor = conn.cursor()
            cursor.execute(f"SET TIME ZONE '{self.timezone}'")
            cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(_ADBC_BATCH_BYTES)})
            cursor.execute(sql)
            for batch in cursor.fetch_record_batch():
                yield pa.RecordBatch.from_arrays(
                    [array if array.type == field.type else array.cast(field.type) for array, field in zip(batch.columns, target)],
                    schema=target,
                )
        finally:
            conn.close()

    def count_rows(self, table: TableName, where: str | None = None) -> int:
        with self._psycopg() as conn:
            sql = f"SELECT count(*) FROM {self.qualified(table)}" + (f" WHERE {where}" if where else "")
            return conn.execute(sql).fetchone()[0]

    def replace_rows(self, table, schema, files: Iterable[LoadFile], expected_rows: int, where=None) -> int:
        copy_sql = (
            f"COPY {self.qualified(table)} ({', '.join(self.quote(n) for n in schema.names)}) "
            "FROM STDIN (FORMAT csv, HEADER true)"
        )
        with self._psycopg() as conn:
            # psycopg's transaction block rolls back on any exception, BaseException included (a
            # terminated run); a killed process drops the connection and the server rolls back.
            with conn.transaction():
                conn.execute(self.create_table_sql(table, schema).replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
                conn.execute(f"DELETE FROM {self.qualified(table)}" + (f" WHERE {where}" if where else ""))
                loaded = 0
                with conn.cursor() as cursor:
                    for file in files:
                        with cursor.copy(copy_sql) as copy:
                            for chunk in file.csv_chunks():
                                copy.write(chunk)
                        loaded += cursor.rowcount
                self.check_loaded(table, loaded, expected_rows)
            return loaded
