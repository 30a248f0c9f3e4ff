"""How long a code location with many tables takes to load (issue 5: 1000 tables in <= 3 s).

Each figure is the best of --repeat fresh Python processes doing what Dagster's code server does
at load: import sync_platform.defs.location, build the definitions from the config (for a
whole_database task: from its cached table list, no source query), resolve every job and take the
repository snapshot the UI is served from. The reference, measured in the same run, is the same
load for a task of one table.

    .venv/bin/python benchmarks/load_benchmark.py [--tables 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

LOAD = """
import time, warnings
warnings.simplefilter("ignore")
started = time.perf_counter()
from sync_platform.defs.location import build_definitions
imported = time.perf_counter()
defs = build_definitions({config!r})
repository = defs.get_repository_def()
jobs = repository.get_all_jobs()  # resolves every job
from dagster._core.remote_representation.external_data import RepositorySnap
snap = RepositorySnap.from_def(repository)
done = time.perf_counter()
print(imported - started, done - imported, len(repository.assets_defs_by_key))
"""


def source_with_tables(folder: Path, count: int) -> str:
    path = folder / f"source_{count}.db"
    if path.exists():
        return f"sqlite:///{path}"
    conn = sqlite3.connect(path)
    for i in range(count):
        conn.execute(f"CREATE TABLE t{i:04d} (id INTEGER PRIMARY KEY, name TEXT, amount NUMERIC(12,2), created DATE)")
    conn.commit()
    return f"sqlite:///{path}"


def config_for(folder: Path, count: int, mode: str) -> Path:
    task = {"name": "big", "type": "database_to_database", "source": {"datasource": "src"},
            "target": {"datasource": "dst"}, "store": {"s3_config_id": "files"}, "copy_mode": mode,
            "schedule": {"cron": "0 2 * * *"}}
    if mode == "tables":
        task["tables"] = [{"source": f"t{i:04d}", "target": f"copy_{i:04d}"} for i in range(count)]
    path = folder / f"{mode}_{count}.yaml"
    path.write_text(yaml.safe_dump({
        "datasources": {"src": {"url": source_with_tables(folder, count)}, "dst": {"url": f"sqlite:///{folder}/dst.db"}},
        "s3_configs": {"files": {"type": "local", "path": str(folder / "exports")}},
        "tasks": [task],
    }))
    if mode == "whole_database":
        subprocess.run([sys.executable, "-m", "sync_platform.cli", "refresh-tables", "--config", str(path)],
                       check=True, capture_output=True)
    return path


def measure(config: Path, repeat: int) -> tuple[float, float, float, int]:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", LOAD.format(config=str(config))], check=True,
                             capture_output=True, text=True).stdout.split()
        runs.append((float(out[0]), float(out[1]), int(out[2])))
    best = min(runs, key=lambda r: r[0] + r[1])
    return best[0] + best[1], best[0], best[1], best[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["SYNC_PLATFORM_HOME"] = str(folder / "home")
        cases = [
            ("1 table (reference)", config_for(folder, 1, "tables")),
            (f"{args.tables} tables, copy_mode tables", config_for(folder, args.tables, "tables")),
            (f"{args.tables} tables, whole_database (cached list)", config_for(folder, args.tables, "whole_database")),
        ]
        print(
            f"{'code location':45} {'load s':>7} {'import s':>9} {'build+snapshot s':>17} {'assets':>7} "
            f"{'x reference':>12}"
        )
        reference = None
        for name, config in cases:
            total, imported, built, assets = measure(config, args.repeat)
            reference = reference or total
            print(f"{name:45} {total:7.2f} {imported:9.2f} {built:17.2f} {assets:7d} {total / reference:12.2f}")
        print("\ntarget: a code location of 1000 tables loads in <= 3 s (load s, which includes importing Dagster)")


if __name__ == "__main__":
    main()
