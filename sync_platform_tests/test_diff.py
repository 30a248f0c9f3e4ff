"""The diff engine on real SQLite and PostgreSQL: clean when equal, exact when not, across dialects."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from sync_platform.engine import TableName, UnsupportedColumn, database_for
from sync_platform.engine.diff import DiffError, DiffOptions, RowKind, Side, diff

from .sample_data import ROWS, create_pg, create_sqlite

ALGORITHMS = ["countdiff", "md5diff", "hashdiff"]
SMALL = {"bisection_factor": 4, "bisection_threshold": 10}  # force several bisection levels on small tables


@pytest.fixture(params=["postgresql", "sqlite", "sqlite->postgresql"])
def sides(request, tmp_path):
    """(make_table, source_url, target_url): the same DDL and rows created on each side."""
    kinds = request.param.split("->") * (1 if "->" in request.param else 2)
    urls = []
    for role, kind in zip(("src", "dst"), kinds):
        urls.append(request.getfixturevalue("pg_url") if kind == "postgresql" else f"sqlite:///{tmp_path}/{role}.db")

    def make(url, name, ddl, rows):
        if url.startswith("sqlite"):
            conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            conn.execute(f"CREATE TABLE {name} ({ddl['sqlite']})")
            conn.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(rows[0]))})", rows)
            conn.commit()
            conn.close()
        else:
            with psycopg.connect(url) as conn:
                conn.execute(f"CREATE TABLE {name} ({ddl['pg']})")
                with conn.cursor() as cur:
                    cur.executemany(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)

    return make, urls[0], urls[1]


def _diff(source_url, target_url, algorithm, source="a", target="b", **options):
    return diff(
        Side(database_for(source_url), TableName(source)),
        Side(database_for(target_url), TableName(target)),
        DiffOptions(algorithm=algorithm, **options),
    )


INT_TABLE = {
    "pg": "id bigint PRIMARY KEY, name text, amount numeric(12,2), seen timestamp",
    "sqlite": "id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(12,2), seen TIMESTAMP",
}


def _int_rows(keys):
    base = datetime(2024, 1, 1)
    return [
        (k, f"name {k}", f"{k % 1000}.{k % 100:02d}", (base + timedelta(seconds=k % 86400)).isoformat(sep=" "))
        for k in keys
    ]


def _changed(rows, updated, deleted, inserted):
    by_key = {r[0]: r for r in rows}
    for k in updated:
        by_key[k] = (k, "changed!", *by_key[k][2:])
    for k in deleted:
        del by_key[k]
    for r in _int_rows(inserted):
        by_key[r[0]] = r
    return list(by_key.values())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_identical_slices_are_clean(sides, algorithm):
    make, src, dst = sides
    rows = _int_rows(range(1, 500))
    make(src, "a", INT_TABLE, rows)
    make(dst, "b", INT_TABLE, rows)
    result = _diff(src, dst, algorithm, **SMALL)
    assert result.same and (result.source_rows, result.target_rows) == (499, 499)
    assert result.rows == ()


def test_k_changes_found_exactly(sides):
    make, src, dst = sides
    rows = _int_rows(range(1, 2000))
    make(src, "a", INT_TABLE, rows)
    make(dst, "b", INT_TABLE, _changed(rows, updated=[5, 700, 1999], deleted=[1, 1000], inserted=[5000, 2000]))
    result = _diff(src, dst, "hashdiff", **SMALL)
    assert not result.same
    assert {(r.key, r.kind, r.columns) for r in result.rows} == {
        (("5",), RowKind.CHANGED, ("name",)),
        (("700",), RowKind.CHANGED, ("name",)),
        (("1999",), RowKind.CHANGED, ("name",)),
        (("1",), RowKind.MISSING, ()),
        (("1000",), RowKind.MISSING, ()),
        (("2000",), RowKind.EXTRA, ()),
        (("5000",), RowKind.EXTRA, ()),
    }
    assert result.segments > 4  # it bisected rather than fetching everything
    assert not _diff(src, dst, "md5diff").same
    assert _diff(src, dst, "countdiff").same  # 2 deleted + 2 inserted: counts cannot see it


def test_limit_is_honoured(sides):
    make, src, dst = sides
    rows = _int_rows(range(1, 300))
    make(src, "a", INT_TABLE, rows)
    make(dst, "b", INT_TABLE, _changed(rows, updated=range(1, 100), deleted=[], inserted=[]))
    result = _diff(src, dst, "hashdiff", limit=7, **SMALL)
    assert len(result.rows) == 7 and result.truncated
    assert all(r.kind is RowKind.CHANGED for r in result.rows)
    full = _diff(src, dst, "hashdiff", **SMALL)
    assert len(full.rows) == 99 and not full.truncated


def test_composite_text_and_date_keys(sides):
    make, src, dst = sides
    ddl = {
        "pg": "region text, day date, n int, v text, PRIMARY KEY (region, day, n)",
        "sqlite": "region TEXT, day DATE, n INT, v TEXT, PRIMARY KEY (region, day, n)",
    }
    regions = ["Zürich", "apple", "Apple", "b", "ä", ""]
    rows = [
        (r, (date(2024, 1, 1) + timedelta(days=d)).isoformat(), n, f"{r}{d}{n}")
        for r in regions
        for d in range(20)
        for n in range(3)
    ]
    make(src, "a", ddl, rows)
    target = [row for row in rows if row[:3] != ("apple", "2024-01-05", 1)]
    target = [(r, d, n, "X" if (r, d, n) == ("ä", "2024-01-20", 2) else v) for r, d, n, v in target]
    make(dst, "b", ddl, target + [("Zürich", "2025-01-01", 0, "new")])
    result = _diff(src, dst, "hashdiff", **SMALL)
    assert result.key_columns == ("region", "day", "n")
    assert {(r.key, r.kind) for r in result.rows} == {
        (("apple", "2024-01-05", "1"), RowKind.MISSING),
        (("ä", "2024-01-20", "2"), RowKind.CHANGED),
        (("Zürich", "2025-01-01", "0"), RowKind.EXTRA),
    }


def test_skewed_and_sparse_keys_keep_segments_proportional(sides):
    make, src, dst = sides
    keys = list(range(1, 3000, 7)) + [10**12, 10**12 + 5]  # gaps and a far outlier
    rows = _int_rows(keys)
    make(src, "a", INT_TABLE, rows)
    make(dst, "b", INT_TABLE, _changed(rows, updated=[10**12, 8], deleted=[], inserted=[]))
    result = _diff(src, dst, "hashdiff", **SMALL)
    assert {r.key for r in result.rows} == {(str(10**12),), ("8",)}
    # Quantile boundaries: each level cuts into at most bisection_factor non-empty segments.
    assert result.segments <= 1 + 4 * 2 * 6


def test_hashdiff_needs_a_key_but_the_others_do_not(sides):
    make, src, dst = sides
    ddl = {"pg": "name text, amount int", "sqlite": "name TEXT, amount INT"}
    make(src, "a", ddl, [("x", 1), ("y", 2)])
    make(dst, "b", ddl, [("x", 1), ("y", 3)])
    with pytest.raises(DiffError, match="hashdiff needs key columns: the source table has no primary key"):
        _diff(src, dst, "hashdiff")
    assert not _diff(src, dst, "md5diff").same and _diff(src, dst, "countdiff").same
    keyed = _diff(src, dst, "hashdiff", key_columns=("name",))
    assert [(r.key, r.columns) for r in keyed.rows] == [(("y",), ("amount",))]


def test_extra_columns_limit_what_is_compared(sides):
    make, src, dst = sides
    rows = _int_rows(range(1, 50))
    make(src, "a", INT_TABLE, rows)
    make(dst, "b", INT_TABLE, _changed(rows, updated=[3], deleted=[], inserted=[]))
    assert _diff(src, dst, "hashdiff", extra_columns=("amount", "seen")).same
    assert not _diff(src, dst, "hashdiff", extra_columns=("name",)).same
    with pytest.raises(DiffError, match=r"the source table has no column\(s\) \['nope'\]"):
        _diff(src, dst, "md5diff", extra_columns=("nope",))


# --- the normalisation contract, value by value, in both directions ------------------------------

EDGE_TABLE = {
    "pg": "id int PRIMARY KEY, t text, n numeric(12,3), f double precision, ts timestamp, tz timestamptz, b boolean, "
          "by bytea",
    "sqlite": "id INT PRIMARY KEY, t TEXT, n NUMERIC(12,3), f DOUBLE PRECISION, ts TIMESTAMP, tz TIMESTAMP WITH TIME "
              "ZONE, b BOOLEAN, by BLOB",
}
UTC = UTC


def _edge_row(url, **values):
    row = {"id": 1, "t": "x", "n": Decimal("1.500"), "f": 0.5, "ts": datetime(2024, 2, 29, 1, 2, 3, 4),
           "tz": datetime(2024, 1, 1, tzinfo=UTC), "b": True, "by": b"\x00\x01", **values}
    if url.startswith("sqlite"):  # stored as the sync writes SQLite: ISO text, UTC with Z, exact text numbers
        row["ts"] = None if row["ts"] is None else row["ts"].isoformat(sep=" ", timespec="microseconds")
        if row["tz"] is not None:
            row["tz"] = row["tz"].astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") + "Z"
        row["n"] = None if row["n"] is None else str(row["n"])
    return [tuple(row.values())]


SAME = [  # (source values, target values) that the contract says are equal
    ({"n": Decimal("0.000")}, {"n": Decimal("-0.000")}),
    ({"n": Decimal("1.500")}, {"n": Decimal("1.5")}),
    ({"f": 0.0}, {"f": -0.0}),
    ({"f": 0.1}, {"f": 0.1 + 1e-17}),  # beyond 15 significant digits: the documented float rule
    ({"tz": datetime(2024, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))}, {"tz": datetime(2024, 1, 1, tzinfo=UTC)}),
]
DIFFERENT = [  # (source values, target values, the column that must be reported)
    ({"t": ""}, {"t": None}, "t"),
    ({"t": "<null>"}, {"t": None}, "t"),
    ({"t": "NULL"}, {"t": None}, "t"),
    ({"t": "a"}, {"t": "a "}, "t"),
    ({"t": "A"}, {"t": "a"}, "t"),
    ({"n": Decimal("1.500")}, {"n": Decimal("1.501")}, "n"),
    ({"f": 0.1}, {"f": 0.1000000000001}, "f"),
    ({"ts": datetime(2024, 1, 1, 0, 0, 0, 1)}, {"ts": datetime(2024, 1, 1)}, "ts"),
    ({"tz": datetime(2024, 1, 1, tzinfo=UTC)}, {"tz": datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)}, "tz"),
    ({"b": True}, {"b": False}, "b"),
    ({"b": False}, {"b": None}, "b"),
    ({"by": b"\x00\x01"}, {"by": b"\x00\x01\x00"}, "by"),
    ({"by": b""}, {"by": None}, "by"),
    ({"f": 0.0}, {"f": None}, "f"),
    ({"n": Decimal("0.000")}, {"n": None}, "n"),
    ({"ts": datetime(2024, 1, 1)}, {"ts": None}, "ts"),
]


@pytest.mark.parametrize("source, target", SAME, ids=[str(s) for s, _ in SAME])
def test_equal_values_compare_equal(sides, source, target):
    make, src, dst = sides
    make(src, "a", EDGE_TABLE, _edge_row(src, **source))
    make(dst, "b", EDGE_TABLE, _edge_row(dst, **target))
    for algorithm in ("md5diff", "hashdiff"):
        assert _diff(src, dst, algorithm).same, algorithm


@pytest.mark.parametrize("source, target, column", DIFFERENT, ids=[f"{s}-{t}" for s, t, _ in DIFFERENT])
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_different_values_are_found(sides, source, target, column, direction):
    make, src, dst = sides
    if direction == "backward":
        source, target = target, source
    make(src, "a", EDGE_TABLE, _edge_row(src, **source))
    make(dst, "b", EDGE_TABLE, _edge_row(dst, **target))
    assert not _diff(src, dst, "md5diff").same
    [row] = _diff(src, dst, "hashdiff").rows
    assert (row.kind, row.columns) == (RowKind.CHANGED, (column,))


def test_separators_cannot_collide(sides):
    make, src, dst = sides
    ddl = {"pg": "id int PRIMARY KEY, x text, y text", "sqlite": "id INT PRIMARY KEY, x TEXT, y TEXT"}
    make(src, "a", ddl, [(1, "a|b", "c"), (2, "1:a", "")])
    make(dst, "b", ddl, [(1, "a", "b|c"), (2, "1:", "a")])
    assert not _diff(src, dst, "md5diff").same
    assert [r.columns for r in _diff(src, dst, "hashdiff").rows] == [("x", "y"), ("x", "y")]


def test_awkward_values_identical_across_dialects(pg_url, tmp_path):
    """The round-trip table of awkward values, on PostgreSQL and on SQLite: clean both ways."""
    create_pg(pg_url, "sample")
    create_sqlite(tmp_path / "s.db", "sample")
    lite = f"sqlite:///{tmp_path}/s.db"
    for a, b in ((pg_url, lite), (lite, pg_url)):
        for algorithm in ALGORITHMS:
            result = _diff(a, b, algorithm, source="sample", target="sample", **SMALL)
            assert result.same, (a[:10], algorithm, result.rows)
            assert result.source_rows == len(ROWS)


def test_cli_diff_prints_rows_and_exits_by_result(tmp_path):
    import subprocess
    import sys

    from .conftest import table_task, write_config

    make_rows = _int_rows(range(1, 200))
    for name, rows in (("src", make_rows), ("dst", _changed(make_rows, updated=[7], deleted=[9], inserted=[500]))):
        conn = sqlite3.connect(tmp_path / f"{name}.db")
        conn.execute(f"CREATE TABLE t ({INT_TABLE['sqlite']})")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
        conn.commit()
    config = write_config(
        tmp_path / "sync.yaml",
        {"src": f"sqlite:///{tmp_path}/src.db", "dst": f"sqlite:///{tmp_path}/dst.db"},
        {"exports": {"type": "local", "path": str(tmp_path / "exports")}},
        [
            table_task(
                "copy",
                ("src", "t"),
                ("dst", "t"),
                "exports",
                algorithm="hashdiff",
                verbose=True,
                bisection_factor=4,
                bisection_threshold=50,
            )
        ],
    )
    run = lambda *extra: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "sync_platform.cli", "diff", "copy", "--config", str(config), *extra],
        capture_output=True,
        text=True,
    )
    done = run()
    assert done.returncode == 1, done.stderr
    assert "id=7    changed            name" in done.stdout
    assert "id=9    missing_in_target" in done.stdout and "id=500  extra_in_target" in done.stdout
    assert "segment [" in done.stdout  # verbose: every segment is logged
    assert done.stdout.rstrip().endswith("DIFFERENT (data inconsistent)")
    # its progress on stderr (a bar on a terminal): the first pass over both sides, at its start and end
    assert "diff of t (source) and t (target): 0 " in done.stderr, done.stderr
    assert re.search(r"diff of t \(source\) and t \(target\): [\d,]+ of [\d,]+ rows \(100%\), [\d,]+ rows/s, done",
                     done.stderr), done.stderr
    counted = run("--algorithm", "countdiff")
    assert counted.returncode == 0 and counted.stdout.rstrip().endswith("same")  # one deleted, one inserted
    unknown = run("--table", "nope")
    assert unknown.returncode == 2 and "task 'copy' has no table 'nope'" in unknown.stderr


def test_naive_timestamps_compare_with_instants_in_the_source_timezone(pg_url, tmp_path):
    """A timestamptz source and a timestamp target holding Asia/Shanghai wall-clock times."""
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE a (id int PRIMARY KEY, at timestamptz)")
        conn.execute("CREATE TABLE b (id int PRIMARY KEY, at timestamp)")
        conn.execute("INSERT INTO a VALUES (1, '2024-01-01 00:00:00+00'), (2, '2024-06-30 16:30:00.5+00'), (3, NULL)")
        conn.execute("INSERT INTO b VALUES (1, '2024-01-01 08:00:00'), (2, '2024-07-01 00:30:00.5'), (3, NULL)")

    def run(zone, algorithm="hashdiff"):
        return diff(
            Side(database_for(pg_url, zone), TableName("a")), Side(database_for(pg_url, zone), TableName("b")),
            DiffOptions(algorithm=algorithm),
        )

    assert run("Asia/Shanghai").same and run("Asia/Shanghai", "md5diff").same
    shifted = run("UTC")  # read in the wrong zone, every non-NULL value is 8 hours off
    assert [(r.key, r.columns) for r in shifted.rows] == [(("1",), ("at",)), (("2",), ("at",))]
    conn = sqlite3.connect(tmp_path / "naive.db")
    conn.execute("CREATE TABLE b (id INT PRIMARY KEY, at TIMESTAMP)")
    conn.close()
    with pytest.raises(UnsupportedColumn, match="sqlite cannot convert column 'at' from UTC to UTC"):
        diff(
            Side(database_for(pg_url), TableName("a")),
            Side(database_for(f"sqlite:///{tmp_path}/naive.db"), TableName("b")),
            DiffOptions(),
        )
