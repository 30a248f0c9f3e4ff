"""`sync-platform`: validate a configuration, run the demo, open the UI."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from .config import (
    DEMO_CONFIG,
    ConfigError,
    default_config_path,
    load_config,
    platform_home,
)

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _table(headers: list[str], rows: list[list]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def _summary_rows(task: str, tables, result, partition_keys: list[str | None]) -> list[list]:
    """One row per table and partition of a run: rows exported and imported, the check, and the
    seconds the three stages took (from their metadata)."""
    from . import naming

    materialized = {(e.asset_key, e.partition): e.materialization.metadata for e in result.get_asset_materialization_events()}
    checks = {(e.asset_key, e.partition): e for e in result.get_asset_check_evaluations()}
    rows = []
    for partition_key in partition_keys:
        for table in tables:
            imported_key = naming.imported_asset_key(task, table.target.table)
            exported = materialized.get((naming.export_asset_key(task, table.source.table), partition_key), {})
            imported = materialized.get((imported_key, partition_key), {})
            check = checks.get((imported_key, partition_key))
            stages = [exported, imported, check.metadata if check else {}]
            rows.append([
                task, f"{table.source.table} -> {table.target.table}" + (f" [{partition_key[:7]}]" if partition_key else ""),
                exported["rows"].value if "rows" in exported else "-",
                imported["rows"].value if "rows" in imported else "-",
                "not run" if check is None else ("passed" if check.passed else "FAILED"),
                f"{sum(m['duration_s'].value for m in stages if 'duration_s' in m):.1f}",
                "ok" if result.success else f"run failed ({result.run_id[:8]})",
            ])
    return rows


def cmd_validate(args) -> int:
    path = Path(args.path or default_config_path())
    try:
        config = load_config(path)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    problems = []
    if args.connect:
        from .discovery import TablesNotDiscovered
        from .platform import Platform

        platform = Platform.from_file(path)
        try:
            tables = platform.all_table_syncs()
        except (TablesNotDiscovered, ValueError) as error:
            problems.append(str(error))
            tables = []
        for table in tables:
            try:
                platform.dialect(table.source, table.run_config).reflect(table.source.table_name)
                platform.dialect(table.target, table.run_config).check_connection()
                platform.store(table).check()
            except Exception as error:  # every cause is reported, not only the first
                problems.append(f"task {table.task!r}: {error}")
    if problems:
        print(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 1
    print(f"{path}: OK ({len(config.tasks)} tasks, {len(config.datasources)} datasources, {len(config.s3_configs)} S3 configs)")
    return 0


def run_task_jobs(config_path: Path, tasks: list[str] | None = None) -> list[list]:
    """Run each task's job in-process against the shared Dagster instance; one summary row per table."""
    from dagster import DagsterInstance

    from . import naming
    from .definitions import build_definitions
    from .instance import ensure_dagster_home
    from .platform import Platform

    ensure_dagster_home()
    defs = build_definitions(config_path)
    platform = Platform.from_file(config_path)
    rows = []
    with DagsterInstance.get() as instance:
        for task, tables in platform.table_syncs.items():
            if tasks and task not in tasks:
                continue
            job = defs.resolve_job_def(naming.job_name(task))
            for partition_keys, tags in _runs_of(job, tables[0]):
                result = job.execute_in_process(
                    instance=instance,
                    raise_on_error=False,
                    tags=tags,
                    # The step-by-step log stays in the instance (and the UI); the terminal gets the summary.
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                )
                rows += _summary_rows(task, tables, result, partition_keys)
    return rows


def _runs_of(job, table) -> list[tuple[list[str | None], dict]]:
    """The runs a backfill of every partition launches: one per partition, or a single run over
    the whole range (partition.backfill: single_run); an unpartitioned task runs once."""
    if job.partitions_def is None:
        return [([None], {})]
    keys = job.partitions_def.get_partition_keys()
    if table.partition.backfill == "single_run":
        return [(keys, {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]})]
    return [([key], {PARTITION_TAG: key}) for key in keys]


def _this_command() -> str:
    """How the user invoked us, so hints can be pasted as they are (a venv is rarely on PATH)."""
    invoked = Path(sys.argv[0])
    return str(invoked) if invoked.name == "sync-platform" else "sync-platform"


def cmd_demo(args) -> int:
    from .demo.seed import seed_demo_source
    from .instance import ensure_dagster_home

    home = platform_home()
    os.environ.setdefault("SYNC_PLATFORM_HOME", str(home))
    source = home / "demo" / "source.db"
    if not source.exists() or args.reseed:
        counts = seed_demo_source(source)
        print(f"seeded demo source {source}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    dagster_home = ensure_dagster_home()
    discover_missing_table_lists(DEMO_CONFIG)
    rows = run_task_jobs(DEMO_CONFIG)
    print()
    print(_table(["task", "table", "rows exported", "rows imported", "check", "seconds", "run"], rows))
    print(
        f"\nsource:    {source}\ntargets:   {home / 'demo' / 'warehouse.db'}, {home / 'demo' / 'replica.db'}\nexports:   {home / 'demo' / 'exports'}"
        f"\ninstance:  DAGSTER_HOME={dagster_home}\nUI:        {_this_command()} ui   (then open http://127.0.0.1:3000)"
    )
    return 0 if all(r[4] == "passed" and r[6] == "ok" for r in rows) else 1


def cmd_diff(args) -> int:
    """The task's data diff, without Dagster: exit 0 same, 1 different, 2 when the diff could not
    decide (any error, the diff contradicting itself), with the message and no traceback."""
    import logging

    from .platform import Platform

    platform = Platform.from_file(Path(args.config or default_config_path()))
    try:
        table = platform.table_sync(args.task, args.table)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = platform.diff(table, algorithm=args.algorithm, logger=print)
    except Exception as error:  # noqa: BLE001 - every failure of a diff is exit 2 with its message
        print(f"diff {args.task}: {type(error).__name__}: {error}" if not str(error) else f"diff {args.task}: {error}",
              file=sys.stderr)
        return 2
    print(f"{result.algorithm}: {table.source.datasource}.{table.source.table} -> {table.target.datasource}.{table.target.table}")
    print(f"source rows {result.source_rows}, target rows {result.target_rows}, segments {result.segments}, {result.seconds:.2f}s")
    if result.differences is not None and result.rows:
        print(_table(["key", "kind", "columns"], [[result.key_text(r), r.kind.value, ", ".join(r.columns)] for r in result.rows]))
        if result.truncated:
            print(f"(stopped at limit {len(result.rows)}: there may be more differences)")
    if result.inconsistency:
        print(f"DIFF ERROR: {result.inconsistency}", file=sys.stderr)
        return 2
    print("same" if result.same else "DIFFERENT (data inconsistent)" + (f": {result.explanation}" if result.explanation else ""))
    return 0 if result.same else 1


def _refresh(config_path: Path, tasks: list[str] | None, missing_only: bool) -> list[str]:
    """Discover the tables of whole_database tasks (those named, else all) and cache the lists;
    one line per task."""
    from .config.models import DatabaseToDatabaseTask
    from .discovery import TableListCache

    config = load_config(config_path)
    cache = TableListCache.for_config(config_path)
    whole = {t.name: t for t in config.tasks if isinstance(t, DatabaseToDatabaseTask) and t.copy_mode == "whole_database"}
    unknown = sorted(set(tasks or []) - set(whole))
    if unknown:
        raise KeyError(f"no whole_database task {unknown}; those tasks are {sorted(whole)}")
    lines = []
    for name in tasks or whole:
        task = whole[name]
        if missing_only and cache.path(name).exists():
            continue
        before = cache.cached_tables(name)
        discovered = cache.refresh(config, task)
        change = ""
        if before is not None:
            added, dropped = sorted(set(discovered.tables) - before), sorted(before - set(discovered.tables))
            change = f"; added {added or 'none'}, dropped {dropped or 'none'}"
        lines.append(f"discovered {len(discovered.tables)} tables for task {name!r} in {discovered.source}{change} "
                     f"(cache {cache.path(name)})")
    return lines


def discover_missing_table_lists(config_path: Path) -> None:
    """Before the first load of a configuration: discover the lists no one has discovered yet.
    A failure is reported and left to the code location's load error to show again."""
    try:
        lines = _refresh(Path(config_path), None, missing_only=True)
    except Exception as error:  # noqa: BLE001 - reported, the UI still starts
        lines = [f"could not discover table lists: {error}"]
    for line in lines:
        print(line, flush=True)


def cmd_refresh_tables(args) -> int:
    try:
        lines = _refresh(Path(args.config or default_config_path()), args.tasks or None, missing_only=False)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    except (KeyError, ValueError) as error:
        print(error.args[0], file=sys.stderr)
        return 2
    print("\n".join(lines) or "no whole_database task in this configuration")
    if lines:
        print("reload the code location (UI: Deployment > Reload, or restart `sync-platform ui`) to see the new lists")
    return 0


def cmd_status(args) -> int:
    from dagster import DagsterInstance

    from .definitions import build_definitions
    from .discovery import TablesNotDiscovered
    from .instance import ensure_dagster_home
    from .platform import Platform
    from .status import StatusReader

    config_path = Path(args.config or default_config_path())
    try:
        platform = Platform.from_file(config_path)
        tables = platform.table_syncs[args.task] if args.task in platform.table_syncs else None
        defs = build_definitions(config_path)
    except (ConfigError, TablesNotDiscovered, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    if tables is None:
        print(f"no task {args.task!r}; tasks are {sorted(platform.table_syncs)}", file=sys.stderr)
        return 2
    ensure_dagster_home()
    with DagsterInstance.get() as instance:
        reader = StatusReader.for_definitions(instance, defs)
        statuses = [reader.table_status(t) for t in tables]
    rows = [[s.name, s.status, *(stage.cell() for stage in s.stages), (s.run_id or "-")[:8]] for s in statuses]
    print(_table(["table", "status", "export", "import", "diff", "run"], rows))
    messages = [f"{s.name}: {stage.stage} {stage.outcome}: {stage.message}" for s in statuses for stage in s.stages if stage.message]
    if messages:
        print("\n" + "\n".join(messages))
    counts = {}
    for s in statuses:
        counts[s.status] = counts.get(s.status, 0) + 1
    print(f"\n{args.task}: {len(statuses)} tables, " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


def _run_operation(config_path: Path, job_name: str, op_name: str, op_config: dict):
    """Run an operation job in-process against the shared instance, as the UI would launch it.
    Its events (tracebacks included) stay in the instance; the terminal gets our one-line outcome."""
    import getpass
    import warnings

    from dagster import DagsterInstance

    from .definitions import build_definitions
    from .instance import ensure_dagster_home
    from .operations import USER_TAG

    ensure_dagster_home()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dagster's beta/preview notices are for developers, not operators
        job = build_definitions(config_path).resolve_job_def(job_name)
    with DagsterInstance.get() as instance:
        return job.execute_in_process(
            run_config={"ops": {op_name: {"config": op_config}},
                        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            instance=instance, raise_on_error=False, tags={USER_TAG: getpass.getuser()},
        )


def _failure(result) -> str:
    from dagster import DagsterEventType

    from .status import failure_message

    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            return failure_message(event.step_failure_data)
    return "failed"


def _observed(result) -> dict:
    """The metadata of the run's (last) asset observation, as plain values."""
    from dagster import DagsterEventType

    for event in reversed(result.all_events):
        if event.event_type == DagsterEventType.ASSET_OBSERVATION:
            return {k: v.value for k, v in event.event_specific_data.asset_observation.metadata.items()}
    return {}


def cmd_clean_source(args) -> int:
    from .naming import CLEAN_SOURCE_JOB
    from .operations import CLEAN_SOURCE_OP

    config = {k: v for k, v in {
        "task": args.task, "table": args.table, "partition": args.partition, "where": args.where,
        "batch_size": args.batch_size, "dry_run": args.dry_run, "all_rows": args.all_rows, "force": args.force,
    }.items() if v is not None}
    try:
        result = _run_operation(Path(args.config or default_config_path()), CLEAN_SOURCE_JOB, CLEAN_SOURCE_OP, config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if not result.success:
        print(f"clean-source {args.task}: {_failure(result)} (run {result.run_id[:8]})", file=sys.stderr)
        return 1
    seen = _observed(result)
    proof = "each proved identical in the target" if seen["verified"] else "without proof (forced)"
    if seen["status"] == "dry-run":
        print(f"dry-run: {seen['rows_matching'] - seen['rows_not_verified']} of {seen['rows_matching']} rows of "
              f"{seen['table']} would be deleted, {proof}; {seen['rows_not_verified']} not verified would be kept "
              f"({seen['interlock']}; run {result.run_id[:8]})")
    else:
        print(f"{seen['status']}: {seen['rows_deleted']} rows deleted from {seen['table']} in {seen['rounds']} rounds of "
              f"at most {seen['batch_size']}, {proof} ({seen['interlock']}; run {result.run_id[:8]})")
        if seen.get("earlier_attempts"):
            print(f"with {seen['earlier_attempts']} earlier interrupted attempt(s) at this slice: "
                  f"{seen['rows_deleted_all_attempts']} rows deleted in all")
    print(f"each round: {seen['statement']}  parameters {seen['parameters']}")
    return 0


def cmd_clean_exports(args) -> int:
    from .naming import CLEAN_EXPORTS_JOB
    from .operations import CLEAN_EXPORTS_OP

    config = {k: v for k, v in {"task": args.task, "table": args.table, "partition": args.partition}.items() if v is not None}
    try:
        result = _run_operation(Path(args.config or default_config_path()), CLEAN_EXPORTS_JOB, CLEAN_EXPORTS_OP, config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if not result.success:
        print(f"clean-exports {args.task}: {_failure(result)} (run {result.run_id[:8]})", file=sys.stderr)
        return 1
    seen = _observed(result)
    print(f"{seen['status']}: {seen['objects_deleted']} objects under {seen['location']} (run {result.run_id[:8]})")
    return 0


def cmd_test_s3(args) -> int:
    from .engine.stores import StoreError
    from .platform import Platform

    try:
        store = Platform(load_config(Path(args.config or default_config_path()))).store_for(args.s3_config_id, args.bucket)
        store.round_trip()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    except (KeyError, StoreError) as error:
        print(f"connection test failed: {error.args[0]}", file=sys.stderr)
        return 1
    print(f"connection test succeeded ({store.url('')}: put, get and delete)")
    return 0


def cmd_history(args) -> int:
    from dagster import DagsterInstance

    from .history import task_history
    from .instance import ensure_dagster_home
    from .platform import Platform

    try:
        platform = Platform.from_file(Path(args.config or default_config_path()))
        tables = [platform.table_sync(args.task, args.table)] if args.table else platform.table_syncs[args.task]
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    ensure_dagster_home()
    with DagsterInstance.get() as instance:
        entries = task_history(instance, tables, args.limit, platform)
    print(_table(["time", "what", "table", "partition", "status", "rows", "by", "details", "run"],
                 [[e.time, e.what, e.table, e.partition or "-", e.status, e.rows, e.by, e.details, e.run_id[:8]] for e in entries]))
    return 0


def cmd_ui(args) -> int:
    from .instance import ensure_dagster_home

    os.environ.setdefault("SYNC_PLATFORM_HOME", str(platform_home()))
    if args.config:
        os.environ["SYNC_PLATFORM_CONFIG"] = str(Path(args.config).resolve())
    home = ensure_dagster_home()
    print(f"DAGSTER_HOME={home}; config {default_config_path()}", flush=True)
    discover_missing_table_lists(default_config_path())
    # The dagster command installed beside this interpreter (a venv need not be on PATH).
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    command = [dagster, "dev", "-m", "sync_platform.definitions", "-h", args.host, "-p", str(args.port)]
    os.execvp(command[0], command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sync-platform", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="check a configuration file; exit 1 with every problem found")
    validate.add_argument("path", nargs="?", help="config file (default: $SYNC_PLATFORM_CONFIG or the demo config)")
    validate.add_argument("--connect", action="store_true", help="also reach every datasource, table and store")
    validate.set_defaults(func=cmd_validate)

    demo = sub.add_parser("demo", help="seed the demo source and run the demo tasks through Dagster")
    demo.add_argument("--reseed", action="store_true", help="regenerate the demo source database")
    demo.set_defaults(func=cmd_demo)

    diff = sub.add_parser("diff", help="run a task's data diff without Dagster; exit 1 when the sides differ")
    diff.add_argument("task")
    diff.add_argument("--table", help="the source or target table (for tasks of several tables)")
    diff.add_argument("--algorithm", choices=["countdiff", "md5diff", "hashdiff"], help="default: the task's run_config")
    diff.add_argument("--config", help="config file (default: $SYNC_PLATFORM_CONFIG or the demo config)")
    diff.set_defaults(func=cmd_diff)

    refresh = sub.add_parser("refresh-tables", help="discover the tables of whole_database tasks and cache the lists")
    refresh.add_argument("tasks", nargs="*", help="task names (default: every whole_database task)")
    refresh.add_argument("--config", help="config file (default: $SYNC_PLATFORM_CONFIG or the demo config)")
    refresh.set_defaults(func=cmd_refresh_tables)

    status = sub.add_parser("status", help="one row per table of a task: status, and each stage's latest result")
    status.add_argument("task")
    status.add_argument("--config", help="config file (default: $SYNC_PLATFORM_CONFIG or the demo config)")
    status.set_defaults(func=cmd_status)

    clean = sub.add_parser("clean-source", help="delete a task table's source rows that the target holds identically, in rounds")
    clean.add_argument("task")
    clean.add_argument("--table", help="source or target table (for tasks of several tables)")
    clean.add_argument("--partition", help="partition key of a partitioned task, e.g. 2024-03-01")
    clean.add_argument("--where", help="custom WHERE (default: the task's filters and the partition's window)")
    clean.add_argument("--batch-size", type=int, help="rows per round, each its own transaction (default 10000)")
    clean.add_argument("--dry-run", action="store_true", default=None, help="only count the rows that would be deleted")
    clean.add_argument("--all-rows", action="store_true", default=None, help="allow deleting the whole table")
    clean.add_argument("--force", action="store_true", default=None, help="clean without a passing check, or a table without a primary key (unproved)")
    clean.add_argument("--config", help="config file (default: $SYNC_PLATFORM_CONFIG or the demo config)")
    clean.set_defaults(func=cmd_clean_source)

    exports = sub.add_parser("clean-exports", help="delete a task table's (partition's) export files")
    exports.add_argument("task")
    exports.add_argument("--table")
    exports.add_argument("--partition")
    exports.add_argument("--config")
    exports.set_defaults(func=cmd_clean_exports)

    s3 = sub.add_parser("test-s3", help="test an S3 config: put, get and delete a small object")
    s3.add_argument("s3_config_id")
    s3.add_argument("--bucket", help="default: the config's bucket")
    s3.add_argument("--config")
    s3.set_defaults(func=cmd_test_s3)

    history = sub.add_parser("history", help="past exports and cleanups of a task, newest first")
    history.add_argument("task")
    history.add_argument("--table")
    history.add_argument("--limit", type=int, default=50)
    history.add_argument("--config")
    history.set_defaults(func=cmd_history)

    ui = sub.add_parser("ui", help="start the Dagster UI on the same instance the CLI uses")
    ui.add_argument("--config", help="config file (default: $SYNC_PLATFORM_CONFIG or the demo config)")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)

    args = parser.parse_args(argv)
    from .discovery import TablesNotDiscovered
    from .engine.diff import DiffError
    from .engine.errors import SyncError
    from .engine.filters import FilterError
    from .engine.stores import StoreError

    try:
        return args.func(args)
    except (ConfigError, TablesNotDiscovered, SyncError, StoreError, DiffError, FilterError) as error:
        # Foreseen failures: the operator reads what to do, not a traceback.
        print(f"{args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
