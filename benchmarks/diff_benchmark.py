"""Data diff of TPC-H lineitem between two PostgreSQL databases, against reladiff, in one run.

    bash scripts/test_servers.sh up && eval "$(bash scripts/test_servers.sh env)"
    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/diff_benchmark.py --scale 1

With SYNC_TEST_MYSQL_URL set, the same changed copy is also diffed across dialects first:
PostgreSQL <-> MariaDB and PostgreSQL <-> SQLite, each direction, each algorithm, checked against
the 15 keys, as ratios to count(*) on the same pair.

The target is a copy of the source (CREATE DATABASE ... TEMPLATE) with 10 rows updated, 3 deleted
and 2 inserted, spread over the key space. Measured side by side: a plain count(*) on each side,
our countdiff, md5diff, hashdiff (key only, and all columns), reladiff 0.6.0's hashdiff (all
columns, its defaults: bisection factor 32, threshold 16384), and both hashdiffs again on a
skewed-key copy (1% of the orders moved to keys near 10^12). Every hashdiff result is checked
against the 15 changed keys.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_benchmark import database_url, ensure_source  # noqa: E402

from sync_platform.engine import TableName, database_for  # noqa: E402
from sync_platform.engine.diff import DiffOptions, RowKind, Side, algorithms, diff  # noqa: E402

KEY = ("l_orderkey", "l_linenumber")
SKEW = "lineitem_skew"


def ensure_skewed(src: str) -> None:
    """lineitem_skew: lineitem with every 100th order's key moved near 10^12 (sparse outliers)."""
    with psycopg.connect(src, autocommit=True) as conn:
        if conn.execute(f"SELECT to_regclass('{SKEW}')").fetchone()[0]:
            return
        conn.execute(
            f"CREATE TABLE {SKEW} AS SELECT (CASE WHEN l_orderkey % 100 = 0 THEN l_orderkey + 1000000000000 "
            "ELSE l_orderkey END) AS l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice, "
            "l_discount, l_tax, l_returnflag, l_linestatus, l_shipdate, l_commitdate, l_receiptdate, l_shipinstruct, "
            "l_shipmode, l_comment FROM lineitem"
        )
        conn.execute(f"ALTER TABLE {SKEW} ADD PRIMARY KEY (l_orderkey, l_linenumber)")
        conn.execute(f"VACUUM ANALYZE {SKEW}")


def make_target(server: str, src: str) -> tuple[str, dict]:
    """A copy of the source database with the same 15 changes in lineitem and lineitem_skew."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bench_diff_target WITH (FORCE)")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'bench_src' AND pid <> "
            "pg_backend_pid()"
        )
        conn.execute("CREATE DATABASE bench_diff_target TEMPLATE bench_src")
    dst = database_url(server, "bench_diff_target")
    expected = {}
    with psycopg.connect(dst) as conn:
        for table in ("lineitem", SKEW):
            total = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            picks = [
                conn.execute(
                    f"SELECT l_orderkey, l_linenumber FROM {table} ORDER BY 1, 2 OFFSET %s LIMIT 1", (total * i // 14,)
                ).fetchone()
                for i in range(13)
            ]
            updated, deleted = picks[:10], picks[10:]
            top = conn.execute(f"SELECT max(l_orderkey) FROM {table}").fetchone()[0]
            inserted = [(top + 1, 1), (top + 2, 7)]
            for key in updated:
                conn.execute(
                    f"UPDATE {table} SET l_comment = left('changed ' || l_comment, 44) WHERE (l_orderkey, "
                    "l_linenumber) = (%s, %s)",
                    key,
                )
            for key in deleted:
                conn.execute(f"DELETE FROM {table} WHERE (l_orderkey, l_linenumber) = (%s, %s)", key)
            for key in inserted:
                conn.execute(
                    f"INSERT INTO {table} SELECT %s, l_partkey, l_suppkey, %s, l_quantity, l_extendedprice, "
                    "l_discount, l_tax, "
                    f"l_returnflag, l_linestatus, l_shipdate, l_commitdate, l_receiptdate, l_shipinstruct, l_shipmode, "
                    f"l_comment FROM {table} LIMIT 1",
                    key,
                )
            expected[table] = {
                **{(str(a), str(b)): RowKind.CHANGED for a, b in updated},
                **{(str(a), str(b)): RowKind.MISSING for a, b in deleted},
                **{(str(a), str(b)): RowKind.EXTRA for a, b in inserted},
            }
    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return dst, expected


def timed(fn):
    started = time.monotonic()
    result = fn()
    return time.monotonic() - started, result


def count_star(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def ours(src: str, dst: str, table: str, algorithm: str, **options):
    return diff(
        Side(database_for(src), TableName(table)), Side(database_for(dst), TableName(table)),
        DiffOptions(algorithm=algorithm, **options),
    )


def reladiff_keys(src: str, dst: str, table: str, extra: tuple[str, ...]) -> set[tuple[str, str]]:
    from reladiff import connect_to_table, diff_tables

    # reladiff names the psycopg2 driver "postgresql://"; thread_count as in its CLI default.
    left = connect_to_table(src, table, KEY, thread_count=1)
    right = connect_to_table(dst, table, KEY, thread_count=1)
    found = diff_tables(
        left, right, extra_columns=extra, algorithm="hashdiff", bisection_factor=32, bisection_threshold=16384
    )
    return {(str(row[0]), str(row[1])) for _, row in found}


def copy_into(url: str, changed_pg: str, folder: Path) -> None:
    """The changed lineitem (bench_diff_target) into another dialect, through our own export/import."""
    from sync_platform.engine import ExportRequest, export_table, file_format, import_export
    from sync_platform.engine.stores import LocalStore

    store = LocalStore(str(folder))
    export_table(database_for(changed_pg), store, ExportRequest("bench", TableName("lineitem"), "bench/lineitem",
                                                                 file_format("parquet"), batch_rows=500_000))
    target = database_for(url)
    with target.write_session() as session:
        session.execute("DROP TABLE IF EXISTS lineitem")
    import_export(target, store, "bench/lineitem", TableName("lineitem"))


def mysql_database(server_url: str, name: str) -> str:
    """A fresh database on the MySQL/MariaDB server, its URL."""
    import pymysql
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    conn = pymysql.connect(host=url.host, port=url.port, user=url.username, password=url.password)
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


def cross_dialect(src: str, dst: str, expected: dict, mysql_url: str | None, folder: Path) -> list[tuple]:
    """PostgreSQL <-> MariaDB and PostgreSQL <-> SQLite on lineitem: the PostgreSQL side is the
    unchanged source, the other side holds the changed copy; each direction, each algorithm,
    as a ratio to count(*) on both sides of the same pair."""
    others = {"sqlite": f"sqlite:///{folder}/lineitem.db"}
    if mysql_url:
        others["mariadb"] = mysql_database(mysql_url, "bench_diff")
    flipped = {RowKind.MISSING: RowKind.EXTRA, RowKind.EXTRA: RowKind.MISSING, RowKind.CHANGED: RowKind.CHANGED}
    rows = []
    for name, url in others.items():
        copy_into(url, dst, folder)
        for left, right, label, want in (
            (src, url, f"postgresql -> {name}", expected),
            (url, src, f"{name} -> postgresql", {k: flipped[v] for k, v in expected.items()}),
        ):
            sides = (Side(database_for(left), TableName("lineitem")), Side(database_for(right), TableName("lineitem")))
            with ThreadPoolExecutor(2) as pool:
                def count_both(sides=sides):
                    return list(pool.map(lambda s: s.database.count_rows(s.table), sides))

                reference, _ = timed(count_both)
            rows.append((label, "count(*) both, parallel", reference, 1.0, "reference"))
            for algorithm in ("countdiff", "md5diff", "hashdiff"):
                seconds, r = timed(lambda sides=sides, name=algorithm: diff(*sides, DiffOptions(algorithm=name)))
                if algorithm == "hashdiff":
                    found = {x.key: x.kind for x in r.rows}
                    assert found == want, f"{label}: found {found}, expected {want}"
                    note = f"{len(found)} rows, exact ({r.segments} segments)"
                else:
                    assert not r.same, f"{label} {algorithm} missed the changes"
                    note = "different"
                rows.append((label, f"our {algorithm}", seconds, seconds / reference, note))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--pg-url", default=os.environ.get("SYNC_TEST_PG_URL"))
    parser.add_argument(
        "--mysql-url", default=os.environ.get("SYNC_TEST_MYSQL_URL"), help="MariaDB for the cross-dialect pairs"
    )
    parser.add_argument("--only-cross", action="store_true", help="only the cross-dialect pairs")
    parser.add_argument("--skip-cross", action="store_true", help="only PostgreSQL vs PostgreSQL")
    args = parser.parse_args()
    if not args.pg_url:
        sys.exit("give --pg-url or SYNC_TEST_PG_URL (scripts/test_servers.sh up)")
    src = ensure_source(args.pg_url, args.scale)
    ensure_skewed(src)
    dst, expected = make_target(args.pg_url, src)
    cross = []
    with tempfile.TemporaryDirectory(prefix="diff-bench-") as folder:
        if not args.skip_cross:
            cross = cross_dialect(src, dst, expected["lineitem"], args.mysql_url, Path(folder))
    if cross:
        print(
            f"\nTPC-H lineitem SF{args.scale:g} across dialects, 10 updated + 3 deleted + 2 inserted, "
            f"{os.cpu_count()} cores"
        )
        print(f"{'pair':<26}{'measurement':<26}{'seconds':>9}{'x count(*)':>12}  result")
        for pair, name, seconds, ratio, note in cross:
            print(f"{pair:<26}{name:<26}{seconds:>9.2f}{ratio:>12.1f}  {note}")
    if args.only_cross:
        return
    columns = [c.name for c in database_for(src).reflect(TableName("lineitem")).columns if c.name not in KEY]

    results: list[tuple[str, float, str]] = []

    def check_hashdiff(name: str, table: str, result, key_only: bool) -> str:
        found = {r.key: r.kind for r in result.rows}
        want = {k: v for k, v in expected[table].items() if not (key_only and v is RowKind.CHANGED)}
        assert found == want, f"{name}: found {found}, expected {want}"
        return f"{len(found)} rows, exact ({result.segments} segments)"

    seconds, n = timed(lambda: count_star(src, "lineitem"))
    results.append(("count(*) source", seconds, f"{n:,} rows"))
    seconds, n = timed(lambda: count_star(dst, "lineitem"))
    results.append(("count(*) target", seconds, f"{n:,} rows"))
    with ThreadPoolExecutor(2) as pool:
        count_both, _ = timed(lambda: list(pool.map(count_star, (src, dst), ("lineitem", "lineitem"))))
    results.append(("count(*) both, parallel", count_both, "reference"))
    seconds, r = timed(lambda: ours(src, dst, "lineitem", "countdiff"))
    results.append(
        ("our countdiff", seconds, f"{r.source_rows:,} / {r.target_rows:,} -> {'same' if r.same else 'different'}")
    )
    seconds, r = timed(lambda: ours(src, dst, "lineitem", "md5diff"))
    assert not r.same
    results.append(("our md5diff", seconds, "different"))
    md5_seconds = seconds
    # The first pass in scan pieces (live progress, one snapshot a side) against one query a side.
    pieces, algorithms.PIECE_ROWS = algorithms.PIECE_ROWS, 10**15
    seconds, r = timed(lambda: ours(src, dst, "lineitem", "md5diff"))
    algorithms.PIECE_ROWS = pieces
    results.append(("our md5diff, one query", seconds, "different (no pieces: no progress until it ends)"))
    seconds, r = timed(lambda: ours(src, src, "lineitem", "md5diff"))
    assert r.same
    results.append(("our md5diff, identical", seconds, "same"))
    seconds, r = timed(lambda: ours(src, src, "lineitem", "hashdiff"))
    assert r.same
    results.append(("our hashdiff, identical", seconds, f"same ({r.segments} segment)"))
    seconds, r = timed(lambda: ours(src, dst, "lineitem", "hashdiff", extra_columns=()))
    results.append(("our hashdiff, key only", seconds, check_hashdiff("key only", "lineitem", r, key_only=True)))
    seconds, r = timed(lambda: ours(src, dst, "lineitem", "hashdiff"))
    results.append(("our hashdiff, all columns", seconds, check_hashdiff("all columns", "lineitem", r, key_only=False)))
    ours_uniform = seconds
    seconds, keys = timed(lambda: reladiff_keys(src, dst, "lineitem", tuple(columns)))
    assert keys == set(expected["lineitem"]), f"reladiff found {keys}"
    results.append(("reladiff 0.6.0 hashdiff", seconds, f"{len(keys)} rows, same keys as ours"))
    reladiff_uniform = seconds
    seconds, r = timed(lambda: ours(src, dst, SKEW, "hashdiff"))
    results.append(("our hashdiff, skewed keys", seconds, check_hashdiff("skewed", SKEW, r, key_only=False)))
    ours_skewed = seconds
    seconds, keys = timed(lambda: reladiff_keys(src, dst, SKEW, tuple(columns)))
    assert keys == set(expected[SKEW]), f"reladiff (skewed) found {keys}"
    results.append(("reladiff, skewed keys", seconds, f"{len(keys)} rows, same keys as ours"))

    print(
        f"\nTPC-H lineitem SF{args.scale:g}, PostgreSQL vs PostgreSQL, 10 updated + 3 deleted + 2 inserted, "
        f"{os.cpu_count()} cores"
    )
    print(f"{'measurement':<28}{'seconds':>10}{'x count(*)':>12}  result")
    for name, seconds, note in results:
        print(f"{name:<28}{seconds:>10.2f}{seconds / count_both:>12.1f}  {note}")
    print(
        f"\nratios: our hashdiff / reladiff = {ours_uniform / reladiff_uniform:.2f} (target <= 0.5); "
        f"skewed: ours / reladiff = {ours_skewed / max(r for n, r, _ in results if n == 'reladiff, skewed keys'):.2f}; "
        f"our skewed / our uniform = {ours_skewed / ours_uniform:.2f} (target <= 1.2); "
        f"md5diff / count(*) = {md5_seconds / count_both:.1f} (target <= 10); "
        f"countdiff / count(*) = {[s for n, s, _ in results if n == 'our countdiff'][0] / count_both:.2f} (target <= "
        "1.2)"
    )


if __name__ == "__main__":
    main()
