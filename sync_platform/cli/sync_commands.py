"""`run`, `demo`, `diff` and `status`: syncing tasks and reading what they did."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..config import DEMO_CONFIG, platform_home
from ..errors import SyncPlatformError
from .render import err, out, table


@dataclass(frozen=True)
class PlannedRun:
    """One run a command launches: the task's job over no partition, one, or a range."""

    task: str
    partitions: tuple[str | None, ...]  # (None,) for an unpartitioned task
    tags: dict


def plan_runs(platform, task: str, partition: str | None = None, first: str | None = None,
              last: str | None = None, every_partition: bool = False) -> list[PlannedRun]:
    """The runs a launch of `task` needs: one for an unpartitioned task; for a partitioned one, one
    per partition (per_partition) or one over the whole range (single_run)."""
    from ..defs import naming
    from ..defs.specs import partitions_def_for

    tables = platform.tables_of(task)
    definition = partitions_def_for(tables[0])
    if definition is None:
        if partition or first or last:
            raise SyncPlatformError(f"task {task!r} is not partitioned; run it without --partition/--from/--to")
        return [PlannedRun(task, (None,), {})]
    keys = definition.get_partition_keys()
    if not keys:
        raise SyncPlatformError(f"task {task!r} has no complete partition yet")
    if partition:
        first = last = partition
    elif every_partition:
        first, last = keys[0], keys[-1]
    elif not (first and last):
        raise SyncPlatformError(f"task {task!r} is partitioned: give --partition KEY or --from KEY --to KEY "
                                f"(partitions {keys[0]} to {keys[-1]})")
    for key in (first, last):
        if key not in keys:
            raise SyncPlatformError(
                f"task {task!r} has no partition {key!r}; its partitions are {keys[0]} to {keys[-1]}"
            )
    chosen = tuple(keys[keys.index(first): keys.index(last) + 1])
    if not chosen:
        raise SyncPlatformError(f"--from {first} comes after --to {last}")
    if tables[0].partition.backfill == "single_run":
        return [PlannedRun(task, chosen, {naming.RANGE_START_TAG: chosen[0], naming.RANGE_END_TAG: chosen[-1]})]
    return [PlannedRun(task, (key,), {naming.PARTITION_TAG: key}) for key in chosen]


def launch(launcher, planned: list[PlannedRun]) -> list[str]:
    from ..defs import naming

    return [launcher.launch(naming.job_name(p.task), tags=p.tags) for p in planned]


def summary_rows(platform, planned: list[PlannedRun], outcomes: list) -> list[list]:
    """One row per table and partition of the runs: rows exported and imported, the check, the
    seconds the three stages took (from their metadata), and how the run ended."""
    from ..defs import naming

    rows = []
    for plan, outcome in zip(planned, outcomes):
        tables = platform.tables_of(plan.task)
        status = outcome.run.status.value
        for key in plan.partitions:
            for t in tables:
                imported_key = naming.imported_asset_key(t.task, t.target.table)
                exported = outcome.materialized.get((naming.export_asset_key(t.task, t.source.table), key), {})
                imported = outcome.materialized.get((imported_key, key), {})
                check = outcome.checks.get((imported_key, key))
                stages = [exported, imported, check[1] if check else {}]
                rows.append([
                    plan.task, f"{t.source.table} -> {t.target.table}" + (f" [{key[:7]}]" if key else ""),
                    exported.get("rows", "-"), imported.get("rows", "-"),
                    "not run" if check is None else ("passed" if check[0] else "FAILED"),
                    f"{sum(m.get('duration_s', 0) for m in stages):.1f}",
                    "ok" if status == "SUCCESS" else f"run {status.lower()} ({outcome.run.run_id[:8]})",
                ])
    return rows


SUMMARY_HEADERS = ["task", "table", "rows exported", "rows imported", "check", "seconds", "run"]


def live_progress(runs) -> list[tuple]:
    """(run, table, Progress) of each stage the runs report (their progress tags), the latest of each."""
    from ..defs.naming import PROGRESS_TAG_PREFIX
    from ..engine.progress import Progress

    return [(run.run_id[:8], key[len(PROGRESS_TAG_PREFIX):], Progress.from_json(value))
            for run in runs for key, value in sorted(run.tags.items()) if key.startswith(PROGRESS_TAG_PREFIX)]


def follow(launcher, platform, planned: list[PlannedRun], run_ids: list[str]) -> list[list]:
    """Wait for the runs, showing their stages live on a terminal; the summary rows. Each step that
    failed is then reported on stderr with its one-paragraph reason, so nobody opens the UI to read it."""
    from rich.console import Console, Group
    from rich.live import Live

    from ..defs.eventlog import run_outcome
    from .render import grid, progress_grid

    console = Console(stderr=True)
    with Live(console=console, transient=True, auto_refresh=False, redirect_stdout=False) as live:
        def show(runs):
            if console.is_terminal:
                outcomes = [run_outcome(launcher.instance, r.run_id) for r in runs]
                summary = grid(SUMMARY_HEADERS, summary_rows(platform, planned, outcomes))
                bars = live_progress(runs)
                live.update(Group(summary, progress_grid(bars)) if bars else summary, refresh=True)

        launcher.wait(run_ids, on_poll=show)
    outcomes = [run_outcome(launcher.instance, run_id) for run_id in run_ids]
    for outcome in outcomes:
        for step, reason in outcome.failures.items():
            err(f"run {outcome.run.run_id[:8]} step {step} failed: {reason}")
    return summary_rows(platform, planned, outcomes)


def cmd_run(args) -> int:
    from ..defs.runner import code_location
    from ..platform import Platform

    platform = Platform.from_file(args.config)
    planned = plan_runs(platform, args.task, args.partition, args.first, args.last)
    with code_location(args.config) as launcher:
        run_ids = launch(launcher, planned)
        out("launched " + ", ".join(f"run {run_id}" for run_id in run_ids) + f" of {args.task}")
        if not args.wait:
            return 0
        rows = follow(launcher, platform, planned, run_ids)
    out(table(SUMMARY_HEADERS, rows))
    return 0 if all(r[4] == "passed" and r[6] == "ok" for r in rows) else 1


def _this_command() -> str:
    """How the user invoked us, so hints can be pasted as they are (a venv is rarely on PATH)."""
    invoked = Path(sys.argv[0])
    return str(invoked) if invoked.name == "sync-platform" else "sync-platform"


def cmd_demo(args) -> int:
    from ..defs.runner import code_location
    from ..demo.seed import seed_demo_source
    from ..platform import Platform
    from .config_commands import discover_missing_table_lists

    home = platform_home()
    os.environ.setdefault("SYNC_PLATFORM_HOME", str(home))
    source = home / "demo" / "source.db"
    if not source.exists() or args.reseed:
        counts = seed_demo_source(source)
        out(f"seeded demo source {source}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    discover_missing_table_lists(DEMO_CONFIG)
    platform = Platform.from_file(DEMO_CONFIG)
    planned = [run for task in platform.table_syncs for run in plan_runs(platform, task, every_partition=True)]
    with code_location(DEMO_CONFIG) as launcher:
        rows = follow(launcher, platform, planned, launch(launcher, planned))
        dagster_home = os.environ["DAGSTER_HOME"]
    out("")
    out(table(SUMMARY_HEADERS, rows))
    demo = home / "demo"
    out(f"\nsource:    {source}\ntargets:   {demo / 'warehouse.db'}, {demo / 'replica.db'}"
        f"\nwarehouse: {demo / 'analytics.duckdb'} (DuckDB: duckdb {demo / 'analytics.duckdb'})"
        f"\nexports:   {home / 'demo' / 'exports'}\ninstance:  DAGSTER_HOME={dagster_home}"
        f"\nUI:        {_this_command()} ui   (then open http://127.0.0.1:3000)")
    return 0 if all(r[4] == "passed" and r[6] == "ok" for r in rows) else 1


@contextmanager
def live_report():
    """A stage's progress reports on stderr: a bar redrawn in place on a terminal, else one line
    each (a log keeps them)."""
    from rich.console import Console
    from rich.live import Live

    from .render import progress_grid

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda progress: err(progress.line())
        return
    with Live(console=console, transient=True, auto_refresh=False, redirect_stdout=False) as live:
        yield lambda progress: live.update(progress_grid([("", progress.subject, progress)]), refresh=True)


def cmd_diff(args) -> int:
    """The task's data diff, without Dagster: exit 0 same, 1 different, 2 when the diff could not
    decide (any foreseen error, the diff contradicting itself), with the message and no traceback."""
    import logging

    from ..platform import Platform

    platform = Platform.from_file(args.config)
    t = platform.table_sync(args.task, args.table)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with live_report() as report:
        result = platform.diff(t, algorithm=args.algorithm, logger=print, progress=report)
    out(f"{result.algorithm}: {t.source.datasource}.{t.source.table} -> {t.target.datasource}.{t.target.table}")
    out(f"source rows {result.source_rows}, target rows {result.target_rows}, segments {result.segments}, "
        f"{result.seconds:.2f}s")
    if result.differences is not None and result.rows:
        out(
            table(
                ["key", "kind", "columns"],
                [[result.key_text(r), r.kind.value, ", ".join(r.columns)] for r in result.rows],
            )
        )
        if result.truncated:
            out(f"(stopped at limit {len(result.rows)}: there may be more differences)")
    if result.inconsistency:
        err(f"DIFF ERROR: {result.inconsistency}")
        return 2
    out(
        "same"
        if result.same
        else "DIFFERENT (data inconsistent)" + (f": {result.explanation}" if result.explanation else "")
    )
    return 0 if result.same else 1


def cmd_status(args) -> int:
    import dagster as dg

    from ..defs.instance import ensure_dagster_home
    from ..defs.location import build_definitions
    from ..defs.status import StatusReader
    from ..platform import Platform

    platform = Platform.from_file(args.config)
    tables = platform.tables_of(args.task)
    defs = build_definitions(args.config)
    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        reader = StatusReader.for_definitions(instance, defs)
        statuses = [reader.table_status(t) for t in tables]
    out(table(["table", "status", "export", "import", "diff", "run"],
              [[s.name, s.status, *(stage.cell() for stage in s.stages), (s.run_id or "-")[:8]] for s in statuses]))
    messages = [
        f"{s.name}: {stage.stage} {stage.outcome}: {stage.message}"
        for s in statuses
        for stage in s.stages
        if stage.message
    ]
    if messages:
        out("\n" + "\n".join(messages))
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.status] = counts.get(s.status, 0) + 1
    out(f"\n{args.task}: {len(statuses)} tables, " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


def register(sub, config_option) -> None:
    run = sub.add_parser("run", help="launch a task's job as a run of the code location; --wait follows it")
    run.add_argument("task")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--partition", help="one partition key of a partitioned task, e.g. 2024-03-01")
    which.add_argument("--from", dest="first", metavar="KEY", help="first partition of a range (with --to)")
    run.add_argument("--to", dest="last", metavar="KEY", help="last partition of the range, included")
    run.add_argument("--wait", action="store_true", help="follow the run(s) until they end; exit 1 if one fails")
    config_option(run)
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="seed the demo source and run the demo tasks through Dagster")
    demo.add_argument("--reseed", action="store_true", help="regenerate the demo source database")
    demo.set_defaults(func=cmd_demo)

    diff = sub.add_parser("diff", help="run a task's data diff without Dagster; exit 1 when the sides differ")
    diff.add_argument("task")
    diff.add_argument("--table", help="the source or target table (for tasks of several tables)")
    from ..engine.diff import ALGORITHMS

    diff.add_argument("--algorithm", choices=ALGORITHMS.names, help="default: the task's run_config")
    config_option(diff)
    diff.set_defaults(func=cmd_diff)

    status = sub.add_parser("status", help="one row per table of a task: status, and each stage's latest result")
    status.add_argument("task")
    config_option(status)
    status.set_defaults(func=cmd_status)
