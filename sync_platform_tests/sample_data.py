"""A table of awkward values, created identically on PostgreSQL and SQLite, and readers that fetch
rows with each database's own driver (not through the engine) for comparison."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

COLUMNS = ["id", "i", "s", "n", "f", "t", "vc", "d", "ts", "tstz", "b", "by"]

PG_DDL = """CREATE TABLE {name} (
  id bigint PRIMARY KEY, i integer, s smallint, n numeric(12,3), f double precision, t text, vc varchar(40),
  d date, ts timestamp, tstz timestamptz, b boolean, by bytea)"""

SQLITE_DDL = """CREATE TABLE {name} (
  id BIGINT PRIMARY KEY, i INT, s SMALLINT, n NUMERIC(12,3), f DOUBLE PRECISION, t TEXT, vc VARCHAR(40),
  d DATE, ts TIMESTAMP, tstz TIMESTAMP WITH TIME ZONE, b BOOLEAN, by BLOB)"""

UTC = UTC
PLUS8 = timezone(timedelta(hours=8))

ROWS = [
    (1, 2147483647, 32767, Decimal("123456789.123"), 0.1, 'comma, "quote"\nnewline\ttab\\backslash 😀 中文', "",
     date(2024, 2, 29), datetime(2024, 2, 29, 23, 59, 59, 999999), datetime(2024, 2, 29, 16, 0, 0, 1, tzinfo=UTC),
     True, b"\x00\xff\x10"),
    (2, -2147483648, -32768, Decimal("-0.001"), -2.5, "", None, date(1969, 12, 31),
     datetime(1969, 12, 31, 23, 59, 59, 1), datetime(2000, 1, 1, 8, 0, tzinfo=PLUS8), False, b""),
    (3, None, None, None, None, None, None, None, None, None, None, None),
    (4, 0, 0, Decimal("0.000"), 1.7976931348623157e308, "NULL", "\\N", date(1, 1, 1),
     datetime(1, 1, 1, 0, 0), datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC), True, b"\\x00"),
    (5, 7, 7, Decimal("999999999.999"), 5e-324, "<null>", " leading and trailing ", date(9999, 12, 31),
     datetime(2038, 1, 19, 3, 14, 8), datetime(1970, 1, 1, tzinfo=UTC), False, bytes(range(256))),
    (9_007_199_254_740_993, 1, 1, Decimal("-999999999.999"), -0.0, "'; DROP TABLE x; --", "a|b",
     date(2000, 1, 1), datetime(2000, 1, 1, 12, 0, 0, 500000), datetime(2024, 10, 27, 1, 30, tzinfo=UTC), None,
     None),
]


def create_pg(url: str, name: str, rows=ROWS) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(PG_DDL.format(name=name))
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * len(COLUMNS))})", rows)


def create_sqlite(path: Path, name: str, rows=ROWS) -> None:
    conn = sqlite3.connect(path)
    conn.execute(SQLITE_DDL.format(name=name))

    def stored(value):  # SQLite keeps these as ISO / exact text, as the sqlite dialect writes them
        if isinstance(value, datetime):
            text = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
            return text.isoformat(sep=" ", timespec="microseconds") + ("Z" if value.tzinfo else "")
        if isinstance(value, (date, Decimal)):
            return str(value)
        return value

    conn.executemany(
        f"INSERT INTO {name} VALUES ({', '.join(['?'] * len(COLUMNS))})", [tuple(stored(v) for v in r) for r in rows]
    )
    conn.commit()
    conn.close()


def read_pg(url: str, name: str) -> list[tuple]:
    """Rows as psycopg returns them (timestamptz as aware datetimes, bytea as bytes)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM {name} ORDER BY id").fetchall()
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


def normalised(rows) -> list[tuple]:
    """Expected rows with instants in UTC (aware datetimes compare by instant anyway)."""
    return [tuple(v.astimezone(UTC) if isinstance(v, datetime) and v.tzinfo else v for v in row) for row in rows]
