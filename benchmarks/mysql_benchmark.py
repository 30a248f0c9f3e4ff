"""TPC-H lineitem between MariaDB and PostgreSQL, our sync against the raw dump/load tools, in one run.

    bash scripts/test_servers.sh up && eval "$(bash scripts/test_servers.sh env)"
    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/mysql_benchmark.py --scale 1

References, measured in the same run (client tools and pipes: no files, no checks):
  MariaDB -> PostgreSQL  `mariadb --batch --quick -e "SELECT ..." | psql -c "COPY lineitem FROM STDIN"`
  PostgreSQL -> MariaDB  `psql -c "COPY lineitem TO STDOUT" | mariadb -e "LOAD DATA LOCAL INFILE '/dev/stdin' ..."`
  and, for scale, `mysqldump --quick lineitem > file` (MariaDB's own dump).
Our sync (export to files + manifest, then the atomic import, in a fresh process each; or
pipelined, the import loading each file as the export writes it) goes through the local store as
CSV and as Parquet. Every target is verified against the source (row count and
column sums) before its figures are reported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pymysql
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_benchmark import (  # noqa: E402
    FINGERPRINT,
    LINEITEM_DDL,
    ensure_source,
    fresh_target,
    our_sync,
)

MARIADB_DDL = LINEITEM_DDL.replace("bigint", "BIGINT").replace("numeric", "DECIMAL")


def mysql_conn(url: str, database: str | None = None):
    u = make_url(url)
    return pymysql.connect(host=u.host, port=u.port, user=u.username, password=u.password, database=database,
                           local_infile=True, autocommit=True)


def mysql_fingerprint(url: str, database: str, table: str) -> tuple:
    with mysql_conn(url, database).cursor() as cursor:
        cursor.execute(FINGERPRINT.format(table=table))
        return tuple(int(v) if float(v).is_integer() else v for v in cursor.fetchone())


def pg_fingerprint(url: str, table: str) -> tuple:
    with psycopg.connect(url) as conn:
        return tuple(
            int(v) if float(v).is_integer() else v for v in conn.execute(FINGERPRINT.format(table=table)).fetchone()
        )


def _client_args(url: str) -> list[str]:
    u = make_url(url)
    return ["--no-defaults", "-h", u.host, "-P", str(u.port), "-u", u.username, f"-p{u.password}"]


def mariadb_source(url: str, scale: float) -> None:
    """bench_src.lineitem in MariaDB at that scale (kept between runs), loaded with LOAD DATA."""
    conn = mysql_conn(url)
    with conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE IF NOT EXISTS bench_src")
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_src.bench_meta (scale DOUBLE)")
        cursor.execute("SELECT scale FROM bench_src.bench_meta")
        if cursor.fetchone() == (scale,):
            return
        cursor.execute("DROP TABLE IF EXISTS bench_src.lineitem")
        cursor.execute("DELETE FROM bench_src.bench_meta")
        cursor.execute(MARIADB_DDL.replace("CREATE TABLE lineitem", "CREATE TABLE bench_src.lineitem"))
    print(f"loading TPC-H lineitem SF{scale:g} into MariaDB ...", flush=True)
    generator = shutil.which("tpchgen-cli", path=str(Path(sys.executable).parent)) or "tpchgen-cli"
    gen = subprocess.Popen(
        [generator, "csv", "-s", str(scale), "--tables", "lineitem", "--stdout"], stdout=subprocess.PIPE
    )
    load = subprocess.run(
        ["mariadb", *_client_args(url), "--local-infile=1", "bench_src", "-e",
         "LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE lineitem FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' "
         "IGNORE 1 LINES"], stdin=gen.stdout, capture_output=True, text=True)
    gen.stdout.close()
    assert gen.wait() == 0 and load.returncode == 0, load.stderr
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO bench_src.bench_meta VALUES (%s)", (scale,))
        cursor.execute("ANALYZE TABLE bench_src.lineitem")


def fresh_mariadb(url: str, name: str) -> str:
    with mysql_conn(url).cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def timed_pipe(producer: list[str], consumer: list[str]) -> float:
    started = time.monotonic()
    out = subprocess.Popen(producer, stdout=subprocess.PIPE)
    into = subprocess.run(consumer, stdin=out.stdout, capture_output=True, text=True)
    out.stdout.close()
    assert out.wait() == 0 and into.returncode == 0, into.stderr
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--pg-url", default=os.environ.get("SYNC_TEST_PG_URL"))
    parser.add_argument("--mysql-url", default=os.environ.get("SYNC_TEST_MYSQL_URL"))
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument("--modes", default="sequential,pipelined", help="sequential (export, then import), "
                        "pipelined (the import overlaps the export)")
    args = parser.parse_args()
    if not (args.pg_url and args.mysql_url):
        sys.exit("give --pg-url and --mysql-url (scripts/test_servers.sh up, then its env)")
    psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    formats = args.formats.split(",")
    syncs = [(fmt, mode) for fmt in formats for mode in args.modes.split(",")]

    pg_src = ensure_source(args.pg_url, args.scale)
    mariadb_source(args.mysql_url, args.scale)
    expected = pg_fingerprint(pg_src, "lineitem")
    assert mysql_fingerprint(args.mysql_url, "bench_src", "lineitem") == expected, "the two sources differ"
    rows = expected[0]
    my_src = make_url(args.mysql_url).set(database="bench_src").render_as_string(hide_password=False)
    workdir = Path(tempfile.mkdtemp(prefix="sync-mysql-bench-"))
    results: list[tuple[str, str, float, dict | None]] = []
    try:
        # MariaDB -> PostgreSQL
        pg_dst = fresh_target(args.pg_url)
        with psycopg.connect(pg_dst) as conn:
            conn.execute(LINEITEM_DDL)
        seconds = timed_pipe(["mariadb", *_client_args(args.mysql_url), "--batch", "--quick", "--skip-column-names",
                              "bench_src", "-e", "SELECT * FROM lineitem"],
                             [psql, "-qAt", pg_dst, "-c", "COPY lineitem FROM STDIN"])
        assert pg_fingerprint(pg_dst, "lineitem") == expected
        results.append(("MariaDB -> PostgreSQL", "raw: mariadb --batch | COPY FROM STDIN", seconds, None))
        for fmt, mode in syncs:
            print(f"running sync MariaDB -> PostgreSQL {fmt} {mode} ...", flush=True)
            run = our_sync(my_src, pg_dst, "local", fmt, workdir, None, mode)
            assert pg_fingerprint(pg_dst, f"lineitem_local_{fmt}_{mode}_1") == expected, (fmt, mode)
            results.append(("MariaDB -> PostgreSQL", f"sync {fmt} {mode}", run["export_s"] + run["import_s"], run))

        # PostgreSQL -> MariaDB
        my_dst = fresh_mariadb(args.mysql_url, "bench_dst")
        with mysql_conn(args.mysql_url, "bench_dst").cursor() as cursor:
            cursor.execute(MARIADB_DDL)
        seconds = timed_pipe([psql, "-qAt", pg_src, "-c", "COPY lineitem TO STDOUT"],
                             ["mariadb", *_client_args(args.mysql_url), "--local-infile=1", "bench_dst", "-e",
                              "LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE lineitem"])
        assert mysql_fingerprint(args.mysql_url, "bench_dst", "lineitem") == expected
        results.append(("PostgreSQL -> MariaDB", "raw: COPY TO STDOUT | LOAD DATA LOCAL", seconds, None))
        for fmt, mode in syncs:
            print(f"running sync PostgreSQL -> MariaDB {fmt} {mode} ...", flush=True)
            run = our_sync(pg_src, my_dst, "local", fmt, workdir, None, mode)
            copied = mysql_fingerprint(args.mysql_url, "bench_dst", f"lineitem_local_{fmt}_{mode}_1")
            assert copied == expected, (fmt, mode)
            results.append(("PostgreSQL -> MariaDB", f"sync {fmt} {mode}", run["export_s"] + run["import_s"], run))

        started = time.monotonic()
        with open(workdir / "dump.sql", "wb") as dump:
            subprocess.run(
                ["mysqldump", *_client_args(args.mysql_url), "--quick", "bench_src", "lineitem"],
                stdout=dump,
                check=True,
            )
        results.append(("MariaDB", "mysqldump --quick > file", time.monotonic() - started, None))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nTPC-H lineitem SF{args.scale:g}: {rows:,} rows, {os.cpu_count()} cores")
    header = (f"{'direction':<23}{'path':<42}{'export s':>9}{'import s':>9}{'total s':>9}{'rows/s':>11}{'x raw':>7}"
              f"{'peak RSS MB':>12}")
    print(header)
    print("-" * len(header))
    reference = {}
    for direction, path, seconds, run in results:
        if path.startswith("raw"):
            reference[direction] = seconds
        ratio = f"{reference[direction] / seconds:.2f}" if direction in reference else ""
        export_s, import_s, rss = (
            (f"{run['export_s']:.2f}", f"{run['import_s']:.2f}", f"{run['peak_rss_mb']:.0f}") if run else ("", "", "")
        )
        print(
            f"{direction:<23}{path:<42}{export_s:>9}{import_s:>9}{seconds:>9.2f}{rows / seconds:>11,.0f}"
            f"{ratio:>7}{rss:>12}"
        )


if __name__ == "__main__":
    main()
