"""MySQL / MariaDB as source and target (a real MariaDB started by scripts/test_servers.sh):
round trips with PostgreSQL and with itself, exact row for row, and every diff algorithm."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pymysql
import pytest
from sqlalchemy.engine import make_url

from sync_platform.config import load_config
from sync_platform.engine import TableName
from sync_platform.engine.errors import LoadFailed, UnsupportedColumn
from sync_platform.platform import Platform

from .conftest import table_task, write_config
from .sample_data import COLUMNS, ROWS, create_pg, normalised, read_pg

UTC = UTC

# ROWS within MySQL's ranges: DATE and DATETIME from year 1000, TIMESTAMP 1970-01-01 00:00:01 to
# 2038-01-19 03:14:07 UTC.
MYSQL_ROWS = [list(r) for r in ROWS]
MYSQL_ROWS[3][7:10] = [
    date(1000, 1, 1),
    datetime(1000, 1, 1, 0, 0),
    datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=UTC),
]
MYSQL_ROWS[4][9] = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
MYSQL_ROWS = [tuple(r) for r in MYSQL_ROWS]

MYSQL_DDL = """CREATE TABLE {name} (
  id BIGINT PRIMARY KEY, i INT, s SMALLINT, n DECIMAL(12,3), f DOUBLE, t LONGTEXT, vc VARCHAR(40),
  d DATE, ts DATETIME(6), tstz TIMESTAMP(6) NULL, b TINYINT(1), `by` LONGBLOB)"""


def _mysql(url: str):
    u = make_url(url)
    conn = pymysql.connect(host=u.host, port=u.port, user=u.username, password=u.password, database=u.database,
                           charset="utf8mb4", autocommit=True)
    conn.cursor().execute("SET time_zone = '+00:00'")
    return conn


def create_mysql(url: str, name: str, rows=MYSQL_ROWS) -> None:
    conn = _mysql(url)
    conn.cursor().execute(MYSQL_DDL.format(name=name))
    utc = [
        tuple(v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v for v in r)
        for r in rows
    ]
    conn.cursor().executemany(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * len(COLUMNS))})", utc)
    conn.close()


def read_mysql(url: str, name: str) -> list[tuple]:
    """Rows as PyMySQL returns them, TIMESTAMP read in UTC, tinyint(1) as bool."""
    conn = _mysql(url)
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(f'`{c}`' for c in COLUMNS)} FROM {name} ORDER BY id")
        rows = cursor.fetchall()
    conn.close()
    tstz, b = COLUMNS.index("tstz"), COLUMNS.index("b")
    return [
        tuple(
            (v.replace(tzinfo=UTC) if i == tstz and v else bool(v) if i == b and v is not None else v)
            for i, v in enumerate(row)
        )
        for row in rows
    ]


def _platform(tmp_path, source_url, target_url, fmt="csv", **run_config) -> Platform:
    task = table_task("copy", ("src", "items"), ("dst", "items_copy"), "files", batch_file_format=fmt,
                      export_batch_rows=2, source_timezone="Asia/Shanghai", **run_config)
    config = write_config(tmp_path / "sync.yaml", {"src": source_url, "dst": target_url},
                          {"files": {"type": "local", "path": str(tmp_path / "exports")}}, [task])
    return Platform(load_config(config))


PAIRS = ["mysql-postgres", "postgres-mysql", "mysql-mysql"]


@pytest.fixture
def pair_urls(request, mysql_url, pg_url):
    source, target = request.param.split("-")
    urls = {"mysql": mysql_url, "postgres": pg_url}
    return urls[source], urls[target]  # mysql-mysql: one database, table items copied into items_copy


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("pair_urls", PAIRS, indirect=True)
def test_round_trip_is_exact(tmp_path, pair_urls, fmt):
    source_url, target_url = pair_urls
    create = create_mysql if source_url.startswith("mysql") else create_pg
    create(source_url, "items", MYSQL_ROWS)
    platform = _platform(tmp_path, source_url, target_url, fmt, algorithm="hashdiff")
    table = platform.table_sync("copy")
    platform.export(table)
    assert platform.load(table).rows == len(MYSQL_ROWS)
    read = read_mysql if target_url.startswith("mysql") else read_pg
    assert read(target_url, "items_copy") == normalised(MYSQL_ROWS)
    for algorithm in ("countdiff", "md5diff", "hashdiff"):
        result = platform.diff(table, algorithm=algorithm)
        assert result.same, (algorithm, result.rows)
    platform.export(table)
    platform.load(table)  # a re-run replaces, never duplicates
    assert read(target_url, "items_copy") == normalised(MYSQL_ROWS)


@pytest.mark.parametrize("pair_urls", PAIRS, indirect=True)
def test_every_diff_algorithm_finds_exactly_the_changes(tmp_path, pair_urls):
    source_url, target_url = pair_urls
    (create_mysql if source_url.startswith("mysql") else create_pg)(source_url, "items", MYSQL_ROWS)
    platform = _platform(
        tmp_path, source_url, target_url, algorithm="hashdiff", bisection_threshold=3, bisection_factor=2
    )
    table = platform.table_sync("copy")
    platform.export(table)
    platform.load(table)
    changes = [
        "UPDATE items_copy SET t = 'changed', f = 0.30000000000000004 WHERE id = 1",
        "UPDATE items_copy SET tstz = NULL WHERE id = 2",
        "DELETE FROM items_copy WHERE id = 5",
        "INSERT INTO items_copy (id, t) VALUES (77, 'extra')",
    ]
    if target_url.startswith("mysql"):
        conn = _mysql(target_url)
        for sql in changes:
            conn.cursor().execute(sql)
        conn.close()
    else:
        import psycopg

        with psycopg.connect(target_url) as conn:
            for sql in changes:
                conn.execute(sql)
    found = platform.diff(table, algorithm="hashdiff")
    assert sorted(
        (r.key[0] if isinstance(r.key[0], int) else int(r.key[0]), r.kind.value, r.columns) for r in found.rows
    ) == [
        (1, "changed", ("f", "t")),
        (2, "changed", ("tstz",)),
        (5, "missing_in_target", ()),
        (77, "extra_in_target", ()),
    ]
    assert not platform.diff(table, algorithm="md5diff").same
    assert platform.diff(table, algorithm="countdiff").same  # one deleted, one inserted: same count


def test_mysql_types_map_both_ways(tmp_path, mysql_url, pg_url):
    conn = _mysql(mysql_url)
    conn.cursor().execute("""CREATE TABLE kinds (
        id INT UNSIGNED PRIMARY KEY, big BIGINT UNSIGNED, tiny TINYINT, flag TINYINT(1), yr YEAR, fl FLOAT,
        code CHAR(5), doc JSON, tm TIME(6), bin VARBINARY(8), txt MEDIUMTEXT, choice ENUM('a', 'b'))""")
    conn.cursor().execute("""INSERT INTO kinds VALUES
        (4294967295, 18446744073709551615, -128, 1, 2024, 0.1, 'ab', '{"k": [1, 2]}', '23:59:59.999999', x'00ff',
         'long', 'b'),
        (1, 0, 127, 0, 1999, -1.5, 'abcde', NULL, '00:00:00', x'', '', 'a')""")
    conn.close()
    platform = _platform(tmp_path, mysql_url, pg_url)
    table = platform.table_sync("copy")
    schema = platform.database(table.source, table.run_config).reflect(TableName("kinds"))
    assert [(c.name, c.kind.value) for c in schema.columns] == [
        ("id", "int64"),
        ("big", "decimal"),
        ("tiny", "int16"),
        ("flag", "bool"),
        ("yr", "int16"),
        ("fl", "float32"),
        ("code", "string"),
        ("doc", "string"),
        ("tm", "time"),
        ("bin", "binary"),
        ("txt", "string"),
        ("choice", "string"),
    ]
    assert schema.column("code").padded and schema.column("big").precision == 20


def test_zero_dates_and_lossy_loads_fail_clearly(tmp_path, mysql_url, pg_url):
    conn = _mysql(mysql_url)
    conn.cursor().execute("SET SESSION sql_mode = ''")
    conn.cursor().execute("CREATE TABLE items (id INT PRIMARY KEY, d DATE)")
    conn.cursor().execute("INSERT INTO items VALUES (1, '2024-01-01'), (2, '0000-00-00')")
    conn.close()
    platform = _platform(tmp_path, mysql_url, pg_url)
    with pytest.raises(
        UnsupportedColumn, match=r"column items.d holds MySQL's zero date \(a 0000 year, 00 month or 00 day\)"
    ):
        platform.export(platform.table_sync("copy"))

    # PostgreSQL -> MySQL: a value MySQL would silently change (a TIMESTAMP beyond 2038) is refused.
    import psycopg

    with psycopg.connect(pg_url) as pg:
        pg.execute("CREATE TABLE items (id int PRIMARY KEY, at timestamptz)")
        pg.execute("INSERT INTO items VALUES (1, '2024-01-01 00:00:00+00'), (2, '2100-01-01 00:00:00+00')")
    back = _platform(tmp_path, pg_url, mysql_url)
    table = back.table_sync("copy")
    back.export(table)
    with pytest.raises(LoadFailed, match=r"cannot load table items_copy: column at holds .*2100.* at key id=2, outside "
                                         r"MySQL TIMESTAMP's range .*; nothing was loaded"):
        back.load(table)
    conn = _mysql(mysql_url)
    with conn.cursor() as cursor:
        cursor.execute("SHOW TABLES LIKE 'items_copy'")
        assert cursor.fetchall() == ()  # the table it created for the load is gone again
    conn.close()


def test_partition_replace_on_a_timestamp_column_in_the_task_zone(tmp_path, pg_url, mysql_url):
    """Monthly partitions in Asia/Shanghai on a timestamptz -> MySQL TIMESTAMP: re-loading February
    replaces exactly February's window (read in the task's zone), never March's first hours."""
    import psycopg

    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE events (id int PRIMARY KEY, at timestamptz)")
        conn.execute(
            "INSERT INTO events VALUES (1, '2024-01-15 00:00:00+00'), (2, '2024-01-31 16:30:00+00'), "
            "(3, '2024-02-29 15:59:59+00'), (4, '2024-02-29 16:30:00+00')"
        )  # 2, 3: February in Shanghai; 4: March
    task = table_task(
        "ev", ("src", "events"), ("dst", "events"), "files", source_timezone="Asia/Shanghai", algorithm="hashdiff"
    )
    task["partition"] = {"column": "at", "granularity": "month", "start": "2024-01-01", "end": "2024-04-01"}
    platform = Platform(
        load_config(
            write_config(
                tmp_path / "sync.yaml",
                {"src": pg_url, "dst": mysql_url},
                {"files": {"type": "local", "path": str(tmp_path / "exports")}},
                [task],
            )
        )
    )
    table = platform.table_sync("ev")
    months = ("2024-01-01", "2024-02-01", "2024-03-01")
    for key in (*months, "2024-02-01"):
        platform.export(table, partition_key=key)
        platform.load(table, partition_key=key)
    conn = _mysql(mysql_url)
    with conn.cursor() as cursor:
        cursor.execute("SELECT id, at FROM events ORDER BY id")
        rows = cursor.fetchall()
    conn.close()
    assert [(i, at.isoformat()) for i, at in rows] == [
        (1, "2024-01-15T00:00:00"), (2, "2024-01-31T16:30:00"), (3, "2024-02-29T15:59:59"), (4, "2024-02-29T16:30:00")]
    assert [platform.diff(table, partition_key=key).target_rows for key in months] == [1, 2, 1]
    assert all(platform.diff(table, partition_key=key).same for key in months)
