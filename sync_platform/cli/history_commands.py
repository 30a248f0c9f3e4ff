"""`history` (a task's exports, source cleanups and export deletions) and `audit` (who ran and
cleaned what, when, with which configuration; schedules' and sensors' states)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ..errors import SyncPlatformError
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


def since_moment(text: str | None) -> datetime | None:
    """`--since`: an ISO date or time (UTC unless it says otherwise), or an age like 12h, 7d, 2w."""
    if text is None:
        return None
    age = re.fullmatch(r"(\d+)([hdw])", text.strip())
    if age:
        hours = int(age[1]) * {"h": 1, "d": 24, "w": 24 * 7}[age[2]]
        return datetime.now(UTC) - timedelta(hours=hours)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SyncPlatformError(f"--since {text!r} is neither an ISO date/time (2026-11-30, 2026-11-30T08:00) "
                                "nor an age (12h, 7d, 2w)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_audit(args) -> int:
    import dagster as dg

    from ..defs.audit import audit
    from ..defs.instance import ensure_dagster_home
    from ..platform import Platform

    platform = Platform.from_file(args.config)
    tasks = [args.task] if args.task else sorted(platform.table_syncs)
    for task in tasks:
        platform.tables_of(task)  # an unknown or invalid task is refused, naming the valid ones
    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        entries = audit(instance, platform, tasks, since_moment(args.since), args.limit)
    out(table(["time", "what", "task", "by", "status", "details", "run"],
              [[e.time, e.what, e.task, e.by, e.status, e.details, e.run_id[:8] or "-"] for e in entries]))
    return 0


def register(sub, config_option) -> None:
    history = sub.add_parser("history", help="past exports and cleanups of a task, newest first")
    history.add_argument("task")
    history.add_argument("--table")
    history.add_argument("--limit", type=int, default=50)
    config_option(history)
    history.set_defaults(func=cmd_history)

    audit = sub.add_parser("audit", help="who ran, cleaned and toggled what, when, with which configuration")
    audit.add_argument("task", nargs="?", help="one task (default: every task)")
    audit.add_argument("--since", help="an ISO date/time, or an age: 12h, 7d, 2w")
    audit.add_argument("--limit", type=int, default=200)
    config_option(audit)
    audit.set_defaults(func=cmd_audit)
