"""Source cleanup: verified rounds (each row proved identical in the target before it is deleted)
against the unverified rounds the platform ran before, same table, same slice, same batch size.

    bash scripts/test_servers.sh up && eval "$(bash scripts/test_servers.sh env)"
    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/cleanup_benchmark.py --scale 0.2 --batch-size 10000

TPC-H lineitem (composite key l_orderkey, l_linenumber) in PostgreSQL; its copy in a second
database is the target. Each measurement deletes the rows shipped before 1995-01-01 from a fresh
copy of the source table (the copy is made before the clock starts), then checks that exactly
those rows are gone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sync_benchmark import LINEITEM_DDL, database_url, ensure_source  # noqa: E402

from sync_platform.engine.cleanup import CleanupRequest, clean_in_rounds  # noqa: E402
from sync_platform.engine.columns import TableName  # noqa: E402
from sync_platform.engine.dialects import database_for  # noqa: E402
from sync_platform.engine.diff import Side  # noqa: E402
from sync_platform.engine.filters import RowFilter, TimeWindow  # noqa: E402

SLICE = RowFilter(windows=(TimeWindow("l_shipdate", datetime(1990, 1, 1), datetime(1995, 1, 1)),))
IN_SLICE = "l_shipdate < '1995-01-01'"


def ensure_target(server_url: str, source_url: str) -> str:
    """bench_cleanup_dst.lineitem: the synced copy every verified round is proved against."""
    target = database_url(server_url, "bench_cleanup_dst")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bench_cleanup_dst WITH (FORCE)")
        conn.execute("CREATE DATABASE bench_cleanup_dst")
    with psycopg.connect(source_url) as src, psycopg.connect(target) as dst:
        dst.execute(LINEITEM_DDL)
        with src.cursor().copy("COPY lineitem TO STDOUT (FORMAT binary)") as out, \
                dst.cursor().copy("COPY lineitem FROM STDIN (FORMAT binary)") as into:
            for chunk in out:
                into.write(chunk)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE lineitem")
    return target


def fresh_work_table(source_url: str) -> int:
    """lineitem_work: a fresh copy of lineitem to delete from; returns the rows in the slice."""
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS lineitem_work")
        conn.execute(LINEITEM_DDL.replace("CREATE TABLE lineitem", "CREATE TABLE lineitem_work"))
        conn.execute("INSERT INTO lineitem_work SELECT * FROM lineitem")
        conn.execute("VACUUM ANALYZE lineitem_work")
        return conn.execute(f"SELECT count(*) FROM lineitem_work WHERE {IN_SLICE}").fetchone()[0]


def measure(source_url: str, target_url: str | None, batch_size: int) -> tuple[float, int, int]:
    """(seconds, rows deleted, rounds) of one cleanup of the slice from a fresh lineitem_work."""
    expected = fresh_work_table(source_url)
    proof = Side(database_for(target_url), TableName("lineitem")) if target_url else None
    request = CleanupRequest(TableName("lineitem_work"), SLICE, batch_size, proof=proof)
    started = time.perf_counter()
    progress = clean_in_rounds(database_for(source_url), request)
    seconds = time.perf_counter() - started
    with psycopg.connect(source_url) as conn:
        left = conn.execute(f"SELECT count(*) FROM lineitem_work WHERE {IN_SLICE}").fetchone()[0]
    assert progress.rows_deleted == expected and left == 0 and progress.rows_not_verified == 0, (
        progress,
        expected,
        left,
    )
    return seconds, progress.rows_deleted, progress.rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.2, help="TPC-H scale factor (0.2: 1.2M lineitem rows)")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2, help="best of N")
    args = parser.parse_args()
    server = os.environ.get("SYNC_TEST_PG_URL")
    if not server:
        sys.exit("SYNC_TEST_PG_URL is not set: bash scripts/test_servers.sh up, then eval its env")
    source = ensure_source(server, args.scale)
    target = ensure_target(server, source)

    from rich.console import Console
    from rich.table import Table

    runs = {
        "unverified (before; now: forced, keyless)": None,
        "verified (now): proved in the target": target,
    }
    results = {name: min((measure(source, url, args.batch_size) for _ in range(args.repeat)), key=lambda r: r[0])
               for name, url in runs.items()}
    reference = next(iter(results.values()))[0]
    table = Table(
        title=f"clean-source of lineitem rows shipped before 1995 (SF {args.scale}), batch {args.batch_size}, "
        f"best of {args.repeat}"
    )
    for column in ("rounds of", "rows deleted", "rounds", "seconds", "rows/s", "time vs unverified"):
        table.add_column(column, justify="right" if column != "rounds of" else "left")
    for name, (seconds, rows, rounds) in results.items():
        table.add_row(
            name, f"{rows:,}", str(rounds), f"{seconds:.2f}", f"{rows / seconds:,.0f}", f"{seconds / reference:.2f}x"
        )
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
