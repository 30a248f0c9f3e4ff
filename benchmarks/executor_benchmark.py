"""Wall time of a one-table task's run: steps in the run worker's process (`executor: in_process`,
the default since issue 15) against one process per step (`executor: multiprocess`, before).

Two tasks identical but for `executor` copy the demo's orders table (SQLite -> SQLite, 15,000
rows, CSV, hashdiff) and are launched alternately as ordinary runs of the code location on a
fresh instance (the embedded default: runs start at once). Each figure is the run's start -> end
from the instance's run records (export, import and check included, the worker's own start-up not),
and the run's whole life (submitted -> ended, as an operator waits for it); the median of --runs.

    .venv/bin/python benchmarks/executor_benchmark.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

EXECUTORS = ("multiprocess", "in_process")  # the reference first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="executor-bench-"))
    os.environ["SYNC_PLATFORM_HOME"] = str(folder / "home")
    os.environ["DAGSTER_HOME"] = str(folder / "dagster_home")

    import dagster as dg

    from sync_platform.defs.runner import code_location
    from sync_platform.demo.seed import seed_demo_source

    seed_demo_source(folder / "source.db")
    tasks = [{"name": f"orders_{executor}", "type": "table_to_table", "executor": executor,
              "source": {"datasource": "src", "table": "orders"},
              "target": {"datasource": "dst", "table": f"orders_{executor}"},
              "run_config": {"algorithm": "hashdiff", "export_batch_rows": 5000}} for executor in EXECUTORS]
    config = folder / "sync.yaml"
    config.write_text(yaml.safe_dump({
        "datasources": {"src": {"url": f"sqlite:///{folder}/source.db"}, "dst": {"url": f"sqlite:///{folder}/dst.db"}},
        "s3_configs": {"files": {"type": "local", "path": str(folder / "exports")}}, "tasks": tasks}))

    run_ids: dict[str, list[str]] = {executor: [] for executor in EXECUTORS}
    with code_location(config) as launcher:
        for _ in range(args.runs):
            for executor in EXECUTORS:
                run_id = launcher.launch(f"orders_{executor}_sync")
                [run] = launcher.wait([run_id])
                assert run.status == dg.DagsterRunStatus.SUCCESS, (executor, run.run_id)
                run_ids[executor].append(run_id)
        records = {r.dagster_run.run_id: r for r in launcher.instance.get_run_records()}

    def medians(executor: str) -> tuple[float, float]:
        chosen = [records[run_id] for run_id in run_ids[executor]]
        running = statistics.median(r.end_time - r.start_time for r in chosen)
        life = statistics.median(r.end_time - r.create_timestamp.timestamp() for r in chosen)
        return running, life

    reference = medians(EXECUTORS[0])
    table = Table(title=f"one-table run (orders, 15,000 rows), median of {args.runs} runs each, alternated")
    for column in ("executor", "run start -> end (s)", "ratio", "submitted -> ended (s)", "ratio"):
        table.add_column(column, justify="left" if column == "executor" else "right")
    for executor in EXECUTORS:
        running, life = medians(executor)
        table.add_row(executor, f"{running:.2f}", f"{running / reference[0]:.2f}", f"{life:.2f}",
                      f"{life / reference[1]:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
