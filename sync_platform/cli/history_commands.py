"""`history`: the audit trail of a task's tables (exports, source cleanups, export deletions)."""

from __future__ import annotations

from .render import out, table


def cmd_history(args) -> int:
    import dagster as dg

    from ..defs.history import task_history
    from ..defs.instance import ensure_dagster_home
    from ..platform import Platform

    platform = Platform.from_file(args.config)
    tables = [platform.table_sync(args.task, args.table)] if args.table else platform.tables_of(args.task)
    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        entries = task_history(instance, tables, args.limit, platform)
    out(table(["time", "what", "table", "partition", "status", "rows", "by", "details", "run"],
              [[e.time, e.what, e.table, e.partition or "-", e.status, e.rows, e.by, e.details, e.run_id[:8]]
               for e in entries]))
    return 0


def register(sub, config_option) -> None:
    history = sub.add_parser("history", help="past exports and cleanups of a task, newest first")
    history.add_argument("task")
    history.add_argument("--table")
    history.add_argument("--limit", type=int, default=50)
    config_option(history)
    history.set_defaults(func=cmd_history)
