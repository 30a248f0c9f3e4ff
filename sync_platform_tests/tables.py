"""Tables written and read through a dialect's own driver, for the cross-dialect tests: created from
a TableSchema with the dialect's own types, filled with Python values as its driver binds them,
read back through its own reader."""

from __future__ import annotations

from collections.abc import Callable

from sync_platform.engine import TableName, TableSchema, database_for
from sync_platform.engine.columns import Column, Kind

ZONE = "Asia/Shanghai"  # the default source_timezone: naive values and literals are read in it
ID = Column("id", Kind.INT32, nullable=False)


def insert_sql(dialect, table: str, names: list[str]) -> str:
    """An INSERT of one row in the dialect's SQL (its quoting and placeholders)."""
    return (f"INSERT INTO {dialect.qualified(TableName(table))} ({', '.join(dialect.quote(n) for n in names)}) "
            f"VALUES ({', '.join(dialect.param for _ in names)})")


def create_table(url: str, table: str, schema: TableSchema, rows: list[dict], row_by_row: bool = False) -> None:
    """`row_by_row`: one transaction a row, so a value the database cannot hold fails alone."""
    database = database_for(url, ZONE)
    dialect, names = database.dialect, schema.names
    with database.write_session() as session:
        session.execute(dialect.create_table_sql(TableName(table), schema))
        if not row_by_row:
            session.execute_many(insert_sql(dialect, table, names),
                                 [tuple(dialect.param_value(r.get(n)) for n in names) for r in rows])
    if row_by_row:
        for row in rows:
            with database.write_session() as session:
                session.execute(
                    insert_sql(dialect, table, names), tuple(dialect.param_value(row.get(n)) for n in names)
                )
    database.close()


def read_table(url: str, table: str, key: str = "id") -> tuple[dict, TableSchema]:
    """The rows by `key`, as the side's own reader gives them, and the schema it reflects."""
    database = database_for(url, ZONE)
    name = TableName(table)
    schema = database.reflect(name)
    return {r[key]: r for b in database.read_batches(name, schema, order_by=key) for r in b.to_pylist()}, schema


def execute(url: str, sql: str, params: tuple = ()) -> int:
    database = database_for(url, ZONE)
    with database.write_session() as session:
        return session.execute(sql, tuple(database.dialect.param_value(p) for p in params))


def create_pace(url: str, every: int = 1, seconds: float = 0.0) -> Callable[[float], None]:
    """`pace(id)` in the PostgreSQL database at `url`, for a task's source_where (`pace(id) =
    true`): it sleeps `seconds` at every `every`-th id, so the database itself sets an export's
    pace. Returns the function that changes `seconds` while a test runs."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE pace_knob (seconds float8)")
        conn.execute("INSERT INTO pace_knob VALUES (%s)", (seconds,))
        conn.execute(f"CREATE FUNCTION pace(id int) RETURNS boolean LANGUAGE sql VOLATILE AS $$ SELECT true FROM "
                     f"pg_sleep(CASE WHEN id % {every} = 0 THEN (SELECT seconds FROM pace_knob) ELSE 0 END) $$")

    def set_pace(new_seconds: float) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE pace_knob SET seconds = %s", (new_seconds,))

    return set_pace
