"""An export of TPC-H lineitem killed with SIGKILL half-way, then run again: how much of the table
the re-run reads again, and its time against an uninterrupted export, in one run.

    bash scripts/test_servers.sh up && eval "$(bash scripts/test_servers.sh env)"
    .venv/bin/python benchmarks/resume_benchmark.py --scale 1 [--readers 1] [--source mariadb]

The source is the one sync_benchmark.py (PostgreSQL: chunks) or mysql_benchmark.py (MariaDB: one
query in key order, checkpointed) generates, kept between runs. The export goes into a local
store; the resumed export is imported into PostgreSQL and checked with hashdiff against the source
(every row hashed on both sides).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mysql_benchmark import mariadb_source  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sync_benchmark import ensure_source, fresh_target  # noqa: E402

EXPORT = """
import json, sys, time
from sync_platform.config import load_config
from sync_platform.platform import Platform
platform = Platform(load_config(sys.argv[1]))
started = time.monotonic()
result = platform.export(platform.table_sync("bench"))
print(json.dumps({"seconds": time.monotonic() - started, "rows": result.manifest.rows,
                  "files": len(result.manifest.files), "resumed_rows": result.resumed_rows}))
"""


def export(config: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", EXPORT, str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--pg-url", default=os.environ.get("SYNC_TEST_PG_URL"))
    parser.add_argument("--mysql-url", default=os.environ.get("SYNC_TEST_MYSQL_URL"))
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--source", choices=["postgresql", "mariadb"], default="postgresql")
    args = parser.parse_args()
    if not args.pg_url or (args.source == "mariadb" and not args.mysql_url):
        sys.exit("give --pg-url (and --mysql-url) or their SYNC_TEST_ variables (scripts/test_servers.sh up)")
    if args.source == "mariadb":
        mariadb_source(args.mysql_url, args.scale)
        src = make_url(args.mysql_url).set(database="bench_src").render_as_string(hide_password=False)
    else:
        src = ensure_source(args.pg_url, args.scale)
    dst = fresh_target(args.pg_url)
    workdir = Path(tempfile.mkdtemp(prefix="sync-resume-"))
    try:
        config = workdir / "bench.yaml"
        config.write_text(yaml.safe_dump({
            "datasources": {"src": {"url": src}, "dst": {"url": dst}},
            "s3_configs": {"x": {"type": "local", "path": str(workdir / "exports")}},
            "tasks": [{"name": "bench", "type": "table_to_table", "source": {"datasource": "src", "table": "lineitem"},
                       "target": {"datasource": "dst", "table": "lineitem"}, "store": {"s3_config_id": "x"},
                       "run_config": {"export_readers": args.readers, "algorithm": "hashdiff"}}],
        }))
        print("uninterrupted export ...", flush=True)
        full = export(config)
        shutil.rmtree(workdir / "exports")

        print("export killed half-way ...", flush=True)
        journal = workdir / "exports" / "_sync_platform" / "journal" / "bench" / "lineitem" / "full.json"
        killed = subprocess.Popen([sys.executable, "-c", EXPORT, str(config)], stdout=subprocess.DEVNULL)
        started = time.monotonic()
        while True:
            state = json.loads(journal.read_text()) if journal.exists() else None
            if state and state["conditions"] and len(state["files"]) >= len(state["conditions"]) / 2:
                break  # chunks: half of them complete
            if state and not state["conditions"] and len(state["files"].get("0", [])) >= full["files"] / 2:
                break  # one query: a checkpoint past half of the files
            assert killed.poll() is None, "the export ended before half of it was complete"
            time.sleep(0.1)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        killed_after = time.monotonic() - started
        complete = sum(f["rows"] for files in state["files"].values() for f in files)

        print("re-run ...", flush=True)
        resumed = export(config)
        from sync_platform.config import load_config
        from sync_platform.platform import Platform

        platform = Platform(load_config(config))
        table = platform.table_sync("bench")
        platform.load(table)
        diff = platform.diff(table)
        assert diff.same, "the resumed copy differs from the source"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows = full["rows"]
    reread = rows - resumed["resumed_rows"]
    plan = (f"export_readers {args.readers}, {len(state['conditions'])} chunks" if state["conditions"]
            else f"one query in key order, {full['files']} files, checkpointed every 10")
    print(f"\nTPC-H lineitem SF{args.scale:g} from {args.source}: {rows:,} rows, {plan}, {os.cpu_count()} cores")
    print(f"{'':<34}{'seconds':>10}{'rows read':>14}{'of the table':>14}")
    print(f"{'uninterrupted export':<34}{full['seconds']:>10.2f}{rows:>14,}{1:>14.2f}")
    print(f"{'killed (SIGKILL) after':<34}{killed_after:>10.2f}{complete:>14,}{complete / rows:>14.2f}")
    print(f"{'re-run (resumed)':<34}{resumed['seconds']:>10.2f}{reread:>14,}{reread / rows:>14.2f}")
    print(f"re-run / uninterrupted: {resumed['seconds'] / full['seconds']:.2f}; rows kept {resumed['resumed_rows']:,} "
          f"(= the journal's: {resumed['resumed_rows'] == complete}); hashdiff of the target: clean")


if __name__ == "__main__":
    main()
