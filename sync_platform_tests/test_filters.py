"""Filter rules: exactly the rows a hand-written query returns, on PostgreSQL, SQLite and DuckDB."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import psycopg
import pytest

from sync_platform.config import ConfigError, load_config
from sync_platform.engine.filters import FilterError, months_before
from sync_platform.platform import Platform
from sync_platform.preflight import PreflightRefused

from .conftest import table_task, write_config

DDL = {
    "pg": "id int PRIMARY KEY, qty numeric(10,2), label text, shipped date, updated timestamp, flag boolean",
    "sqlite": "id INT PRIMARY KEY, qty NUMERIC(10,2), label TEXT, shipped DATE, updated TIMESTAMP, flag BOOLEAN",
    "duckdb": "id INTEGER PRIMARY KEY, qty DECIMAL(10,2), label VARCHAR, shipped DATE, updated TIMESTAMP, flag BOOLEAN",
}
ROWS = [
    (
        i,
        f"{(i * 37) % 200}.50",
        None if i % 11 == 0 else f"item {i % 7}" + ("'; DROP TABLE orders; --" if i == 13 else ""),
        f"{2023 + (i % 3)}-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}",
        f"2024-0{(i % 9) + 1}-15 10:00:00",
        i % 2 == 0,
    )
    for i in range(1, 301)
]
ANCHOR = datetime(2025, 3, 31, 12, 0)


@pytest.fixture(params=["postgresql", "sqlite", "duckdb"])
def source(request, tmp_path):
    """(url, run) where run(sql) executes a hand-written query on the source."""
    if request.param == "duckdb":
        import duckdb

        path = tmp_path / "src.duckdb"
        with duckdb.connect(str(path)) as conn:
            conn.execute(f"CREATE TABLE orders ({DDL['duckdb']})")
            conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", [list(r) for r in ROWS])

        def run(sql):
            with duckdb.connect(str(path)) as conn:
                return [r[0] for r in conn.execute(sql).fetchall()]

        return f"duckdb:///{path}", run
    if request.param == "sqlite":
        path = tmp_path / "src.db"
        conn = sqlite3.connect(path)
        conn.execute(f"CREATE TABLE orders ({DDL['sqlite']})")
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", ROWS)
        conn.commit()
        return f"sqlite:///{path}", lambda sql: [r[0] for r in sqlite3.connect(path).execute(sql)]
    url = request.getfixturevalue("pg_url")
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE orders ({DDL['pg']})")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, %s, %s)", ROWS)

    def run(sql):
        with psycopg.connect(url) as conn:
            return [r[0] for r in conn.execute(sql)]  # no parameters: psycopg leaves % alone

    return url, run


def _platform(tmp_path, source_url, filters, target="orders_copy") -> Platform:
    task = table_task("copy", ("src", "orders"), ("dst", target), "exports", algorithm="hashdiff")
    task["filters"] = filters
    config = write_config(
        tmp_path / "sync.yaml", {"src": source_url, "dst": f"sqlite:///{tmp_path}/dst.db"},
        {"exports": {"type": "local", "path": str(tmp_path / "exports")}}, [task],
    )
    return Platform(load_config(config))


def _synced_ids(platform, tmp_path) -> list[int]:
    table = platform.table_sync("copy")
    platform.export(table, anchor=ANCHOR)
    platform.load(table)
    assert platform.diff(table).same  # the diff compares the same slices
    return [r[0] for r in sqlite3.connect(tmp_path / "dst.db").execute("SELECT id FROM orders_copy ORDER BY id")]


CASES = [
    ({"conditions": [{"column": "qty", "op": ">", "value": 100}]}, "qty > 100"),
    ({"conditions": [{"column": "qty", "op": "<=", "value": "20.5"}]}, "qty <= 20.5"),
    ({"conditions": [{"column": "label", "op": "=", "value": "item 3"}]}, "label = 'item 3'"),
    ({"conditions": [{"column": "label", "op": "!=", "value": "item 3"}]}, "label <> 'item 3'"),
    ({"conditions": [{"column": "id", "op": "in", "value": [1, 5, 299]}]}, "id IN (1, 5, 299)"),
    ({"conditions": [{"column": "id", "op": "not_in", "value": [1, 5]}]}, "id NOT IN (1, 5)"),
    ({"conditions": [{"column": "label", "op": "like", "value": "item 1%"}]}, "label LIKE 'item 1%'"),
    ({"conditions": [{"column": "label", "op": "is_null"}]}, "label IS NULL"),
    ({"conditions": [{"column": "label", "op": "is_not_null"}]}, "label IS NOT NULL"),
    ({"conditions": [{"column": "shipped", "op": ">=", "value": "2024-06-01"}]}, "shipped >= '2024-06-01'"),
    ({"conditions": [{"column": "flag", "op": "=", "value": True}]}, "flag = TRUE"),
    (
        {
            "match": "any",
            "conditions": [{"column": "qty", "op": "<", "value": 10}, {"column": "id", "op": "<", "value": 5}],
        },
        "qty < 10 OR id < 5",
    ),
    (
        {"conditions": [{"column": "qty", "op": ">", "value": 50}, {"column": "id", "op": "<", "value": 150}]},
        "qty > 50 AND id < 150",
    ),
    (
        {"time_range": {"column": "shipped", "last": 12, "unit": "month"}},
        "shipped >= '2024-03-31' AND shipped < '2025-03-31 12:00:00'",
    ),
    (
        {"time_range": {"column": "updated", "last": 1, "unit": "year"}},
        "updated >= '2024-03-31 12:00:00' AND updated < '2025-03-31 12:00:00'",
    ),
    (
        {"source_where": "updated > '2024-05-01' and label like 'item%'"},
        "updated > '2024-05-01' and label like 'item%'",
    ),
    (
        {
            "conditions": [{"column": "qty", "op": ">", "value": 100}],
            "time_range": {"column": "shipped", "last": 2, "unit": "year"},
            "source_where": "id % 2 = 0",
        },
        "qty > 100 AND shipped >= '2023-03-31' AND shipped < '2025-03-31 12:00:00' AND id % 2 = 0",
    ),
]


@pytest.mark.parametrize("filters, where", CASES, ids=[w for _, w in CASES])
def test_filter_selects_what_hand_written_sql_selects(source, tmp_path, filters, where):
    url, run = source
    if url.startswith("sqlite") and "TRUE" in where:
        where = where.replace("TRUE", "1")
    expected = run(f"SELECT id FROM orders WHERE {where} ORDER BY id")
    assert 0 < len(expected) < len(ROWS)  # the case really filters
    assert _synced_ids(_platform(tmp_path, url, filters), tmp_path) == expected


def test_injection_attempts_stay_values(source, tmp_path):
    url, run = source
    evil = "item 6'; DROP TABLE orders; --"
    ids = _synced_ids(
        _platform(tmp_path, url, {"conditions": [{"column": "label", "op": "=", "value": evil}]}), tmp_path
    )
    assert ids == [13]  # the one row whose label is exactly that text
    assert len(run("SELECT id FROM orders")) == len(ROWS)  # the table is still there, untouched


def test_target_where_replaces_only_its_slice(source, tmp_path):
    url, run = source
    platform = _platform(tmp_path, url, {"conditions": [{"column": "id", "op": "<=", "value": 100}]})
    assert _synced_ids(platform, tmp_path) == list(range(1, 101))
    # A second task fills ids > 200 into the same target; it must leave ids <= 100 alone.
    other = _platform(tmp_path, url, {"conditions": [{"column": "id", "op": ">", "value": 200}]})
    assert _synced_ids(other, tmp_path) == list(range(1, 101)) + list(range(201, 301))


def test_unknown_filter_column_fails_before_anything_is_written(source, tmp_path):
    url, _ = source
    platform = _platform(tmp_path, url, {"conditions": [{"column": "qtty", "op": ">", "value": 1}]})
    with pytest.raises(PreflightRefused) as refused:  # the check before writing: names the field
        platform.export(platform.table_sync("copy"))
    assert str(refused.value) == (
        "orders -> orders_copy: refused before writing anything: filters.conditions[0].column: "
        "table orders has no column 'qtty'; valid values: id, qty, label, shipped, updated, flag")
    assert not (tmp_path / "exports").exists()


def test_value_of_the_wrong_type_is_refused(source, tmp_path):
    url, _ = source
    platform = _platform(tmp_path, url, {"conditions": [{"column": "id", "op": "=", "value": "abc"}]})
    with pytest.raises(FilterError, match="value 'abc' does not fit column 'id' of kind int32"):
        platform.export(platform.table_sync("copy"))


@pytest.mark.parametrize(
    "filters, message",
    [
        (
            {"conditions": [{"column": "a", "op": "~", "value": 1}]},
            "unknown operator '~'; valid values: =, !=, >, >=, <, <=, in, not_in, like, is_null, is_not_null",
        ),
        ({"conditions": [{"column": "a", "op": ">"}]}, "operator > needs a value"),
        ({"conditions": [{"column": "a", "op": "is_null", "value": 1}]}, "operator is_null takes no value"),
        ({"conditions": [{"column": "a", "op": "in", "value": 3}]}, "operator in needs a non-empty list"),
        ({"conditions": [{"column": "a", "op": "=", "value": [1, 2]}]}, "operator = takes one value, not a list"),
        ({"match": "some"}, "filters.match: Input should be 'all' or 'any'"),
        (
            {"time_range": {"column": "d", "last": 0, "unit": "month"}},
            "filters.time_range.last: Input should be greater than or equal to 1",
        ),
        (
            {"time_range": {"column": "d", "last": 3, "unit": "week"}},
            "filters.time_range.unit: Input should be 'month' or 'year'",
        ),
        ({"source_where": "update_time > '2024-01-01';"}, "filters.source_where: remove the trailing ';'"),
        ({"target_where": "a = 1; DELETE FROM t"}, "filters.target_where: several statements"),
        ({"source_where": "update_time"}, "filters.source_where: not a boolean expression ('update_time' is a column)"),
        ({"source_where": "a = (1"}, "filters.source_where: not a valid SQL expression"),
    ],
)
def test_bad_filters_are_rejected_at_validation(tmp_path, filters, message):
    task = table_task("copy", ("src", "orders"), ("dst", "x"), "exports")
    task["filters"] = filters
    config = write_config(tmp_path / "sync.yaml", {"src": "sqlite:///a.db", "dst": "sqlite:///b.db"},
                          {"exports": {"type": "local", "path": "/tmp/x"}}, [task])
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert any(p.startswith("task 'copy' (tasks[0]): ") and message in p for p in caught.value.problems), (
        caught.value.problems
    )


@pytest.mark.parametrize(
    "moment, months, expected",
    [
        (datetime(2025, 3, 31, 12), 1, datetime(2025, 2, 28, 12)),
        (datetime(2024, 3, 31), 1, datetime(2024, 2, 29)),  # leap year
        (datetime(2024, 2, 29), 12, datetime(2023, 2, 28)),
        (datetime(2025, 1, 15), 13, datetime(2023, 12, 15)),
        (datetime(2025, 5, 31, 23, 59, 59), 3, datetime(2025, 2, 28, 23, 59, 59)),
    ],
)
def test_months_before_clamps_month_ends(moment, months, expected):
    assert months_before(moment, months) == expected


def test_scheduled_run_anchors_the_time_range(tmp_path):
    """A run tagged with a scheduled time exports the window ending at that time (in the task's zone)."""
    import dagster as dg

    from sync_platform.defs.location import build_definitions
    from sync_platform.defs.naming import SCHEDULED_TIME_TAG

    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute(f"CREATE TABLE orders ({DDL['sqlite']})")
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    conn.commit()
    task = table_task("copy", ("src", "orders"), ("dst", "orders_copy"), "exports", source_timezone="Asia/Shanghai")
    task["filters"] = {"time_range": {"column": "shipped", "last": 6, "unit": "month"}}
    config = write_config(
        tmp_path / "sync.yaml", {"src": f"sqlite:///{tmp_path}/src.db", "dst": f"sqlite:///{tmp_path}/dst.db"},
        {"exports": {"type": "local", "path": str(tmp_path / "exports")}}, [task],
    )
    defs = build_definitions(config)
    with dg.DagsterInstance.ephemeral() as instance:
        # 2024-12-31 20:00 UTC is 2025-01-01 04:00 in Shanghai: the window is [2024-07-01 04:00, 2025-01-01 04:00).
        result = defs.resolve_job_def("copy_sync").execute_in_process(
            instance=instance, tags={SCHEDULED_TIME_TAG: "2024-12-31T20:00:00+00:00"}
        )
        assert result.success
    copied = [r[0] for r in sqlite3.connect(tmp_path / "dst.db").execute("SELECT id FROM orders_copy ORDER BY id")]
    expected = [r[0] for r in sqlite3.connect(tmp_path / "src.db").execute(
        "SELECT id FROM orders WHERE shipped >= '2024-07-01 04:00:00' AND shipped < '2025-01-01 04:00:00' ORDER BY id")]
    assert copied == expected and len(expected) > 10
