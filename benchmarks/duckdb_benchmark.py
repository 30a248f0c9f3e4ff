"""TPC-H lineitem PostgreSQL -> DuckDB through Parquet, against DuckDB's own COPY of the same files
and against our PostgreSQL -> PostgreSQL sync, in one run.

    bash scripts/test_servers.sh up && eval "$(bash scripts/test_servers.sh env)"
    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/duckdb_benchmark.py --scale 1

For each store (local folder, S3 endpoint): our sync PostgreSQL -> DuckDB (export to Parquet files
+ manifest, then the import: DuckDB's read_parquet of each verified file into the table, in one
transaction), then, on the very files that export wrote, DuckDB's own
`COPY lineitem FROM '<files>' (FORMAT parquet)` into an empty table of the same definition in a
fresh file (the reference for the import); and our PostgreSQL -> PostgreSQL sync through the same
store (the reference for the whole sync). Each runs in a fresh process, so its peak RSS is its own;
every target is verified against the source (row count and column sums).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_benchmark import (  # noqa: E402
    FINGERPRINT,
    LINEITEM_DDL,
    ensure_source,
    fingerprint,
    fresh_target,
    json_child,
    our_sync,
)

# One DuckDB COPY of the export's files, in a process of its own: its seconds and peak RSS as JSON.
COPY = """
import json, resource, sys, time
import duckdb
from sync_platform.engine.dialects.duckdb import httpfs_extension
path, files, ddl, endpoint, key, secret = sys.argv[1:7]
connection = duckdb.connect(path)
connection.execute(ddl)
if files.startswith("s3://"):
    connection.execute(f"LOAD '{httpfs_extension()}'")
    connection.execute(f"CREATE SECRET (TYPE s3, KEY_ID '{key}', SECRET '{secret}', ENDPOINT '{endpoint}', "
                       "URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')")
started = time.monotonic()
connection.execute(f"COPY lineitem FROM '{files}' (FORMAT parquet)")
seconds = time.monotonic() - started
connection.close()
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def duckdb_fingerprint(path: Path, table: str) -> tuple:
    import duckdb

    connection = duckdb.connect(str(path), read_only=True)
    try:
        return connection.execute(FINGERPRINT.format(table=table)).fetchone()
    finally:
        connection.close()


def duckdb_copy(path: Path, files: str, s3_endpoint: str | None) -> dict:
    endpoint = s3_endpoint.split("://", 1)[1] if s3_endpoint else ""
    return json_child([sys.executable, "-c", COPY, str(path), files, LINEITEM_DDL, endpoint,
                       os.environ.get("SYNC_TEST_S3_KEY_ID", ""), os.environ.get("SYNC_TEST_S3_SECRET", "")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1 = 6.0 M lineitem rows)")
    parser.add_argument("--pg-url", default=os.environ.get("SYNC_TEST_PG_URL"))
    parser.add_argument("--s3-endpoint", default=os.environ.get("SYNC_TEST_S3_ENDPOINT"))
    parser.add_argument("--stores", default="local,s3")
    args = parser.parse_args()
    if not args.pg_url:
        sys.exit("give --pg-url or SYNC_TEST_PG_URL (scripts/test_servers.sh up)")
    stores = [s for s in args.stores.split(",") if s != "s3" or args.s3_endpoint]

    src = ensure_source(args.pg_url, args.scale)
    expected = fingerprint(src, "lineitem")
    rows = expected[0]
    pg_dst = fresh_target(args.pg_url)
    workdir = Path(tempfile.mkdtemp(prefix="sync-duckdb-bench-"))
    results = []  # (store, path, export s, import s, peak RSS MB)
    try:
        for store in stores:
            warehouse = workdir / f"warehouse-{store}.duckdb"
            print(f"running sync PostgreSQL -> DuckDB, {store} parquet ...", flush=True)
            run = our_sync(src, f"duckdb:///{warehouse}", store, "parquet", workdir, args.s3_endpoint, "sequential")
            assert duckdb_fingerprint(warehouse, f"lineitem_{store}_parquet_sequential_1") == expected
            results.append((store, "sync PostgreSQL -> DuckDB", run["export_s"], run["import_s"], run["peak_rss_mb"]))

            location = run["location"]
            files = f"{location.removeprefix('file://')}/*.parquet"
            print(f"running DuckDB COPY FROM {files} ...", flush=True)
            reference = workdir / f"copy-{store}.duckdb"
            copied = duckdb_copy(reference, files, args.s3_endpoint)
            assert duckdb_fingerprint(reference, "lineitem") == expected
            results.append((store, "DuckDB COPY FROM the same files", None, copied["seconds"], copied["peak_rss_mb"]))

            print(f"running sync PostgreSQL -> PostgreSQL, {store} parquet ...", flush=True)
            run = our_sync(src, pg_dst, store, "parquet", workdir, args.s3_endpoint, "sequential")
            assert fingerprint(pg_dst, f"lineitem_{store}_parquet_sequential_1") == expected
            results.append((store, "sync PostgreSQL -> PostgreSQL", run["export_s"], run["import_s"],
                            run["peak_rss_mb"]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nTPC-H lineitem SF{args.scale:g}: {rows:,} rows, Parquet files, {os.cpu_count()} cores, "
          f"this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    header = (f"{'store':<7}{'path':<34}{'export s':>10}{'import s':>10}{'total s':>10}{'import x COPY':>15}"
              f"{'total x PG->PG':>16}{'peak RSS MB':>13}")
    print(header)
    print("-" * len(header))
    for store in stores:
        mine = [r for r in results if r[0] == store]
        copy_s = next(r[3] for r in mine if r[1].startswith("DuckDB COPY"))
        pg_total = next(r[2] + r[3] for r in mine if r[1].endswith("PostgreSQL"))
        for _, path, export_s, import_s, rss in mine:
            total = (export_s or 0) + import_s
            ours = export_s is not None
            export_text, versus_pg = (f"{export_s:.2f}", f"{pg_total / total:.2f}") if ours else ("", "")
            print(f"{store:<7}{path:<34}{export_text:>10}{import_s:>10.2f}{total:>10.2f}{copy_s / import_s:>15.2f}"
                  f"{versus_pg:>16}{rss:>13.0f}")


if __name__ == "__main__":
    main()
