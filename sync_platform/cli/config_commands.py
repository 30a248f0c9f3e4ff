"""`validate` and `refresh-tables`: the configuration file and the table lists it needs."""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError, default_config_path, load_config
from ..errors import SyncPlatformError, UnknownName, one_line
from .render import err, out


def cmd_validate(args) -> int:
    """Exit 1 with every problem of the file (and, with --connect, of each datasource, table and
    store it names); 0 when it is valid."""
    path = Path(args.path or default_config_path())
    try:
        config = load_config(path)
    except ConfigError as error:
        err(str(error))
        return 1
    problems = []
    if args.connect:
        from ..platform import Platform

        platform = Platform.from_file(path)
        tables = platform.all_table_syncs()
        problems += [problem for broken in platform.broken.values() for problem in broken.problems]
        for table in tables:
            problems += [f"task {table.task!r}: {problem}" for problem in platform.preflight(table)]
    if problems:
        err(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(f"  - {p}" for p in problems))
        return 1
    out(
        f"{path}: OK ({len(config.tasks)} tasks, {len(config.datasources)} datasources, {len(config.s3_configs)} S3 "
        "configs)"
    )
    return 0


def refresh(config_path: Path, tasks: list[str] | None, missing_only: bool) -> list[str]:
    """Discover the tables of whole_database tasks (those named, else all) and store the lists;
    one line per task."""
    from ..config.models import DatabaseToDatabaseTask
    from ..platform import Platform

    config = load_config(config_path)
    lists = Platform(config, config_path).table_lists
    whole = {
        t.name: t for t in config.tasks if isinstance(t, DatabaseToDatabaseTask) and t.copy_mode == "whole_database"
    }
    for name in tasks or []:
        if name not in whole:
            raise UnknownName("whole_database task", name, sorted(whole))
    lines = []
    for name in tasks or whole:
        task = whole[name]
        stored = lists.exists(config, task)
        if missing_only and stored:
            continue
        before = set(lists.read(config, task).tables) if stored else None
        discovered = lists.refresh(config, task)
        change = ""
        if before is not None:
            added, dropped = sorted(set(discovered.tables) - before), sorted(before - set(discovered.tables))
            change = f"; added {added or 'none'}, dropped {dropped or 'none'}"
        lines.append(f"discovered {len(discovered.tables)} tables for task {name!r} in {discovered.source}{change} "
                     f"(stored at {lists.location(config, task)})")
    return lines


def discover_missing_table_lists(config_path: Path) -> None:
    """Before the first load of a configuration: discover the lists no one has discovered yet.
    A failure is reported and left to the code location's load error to show again."""
    try:
        lines = refresh(Path(config_path), None, missing_only=True)
    except (SyncPlatformError, ValueError) as error:
        lines = [f"could not discover table lists: {one_line(error)}"]
    for line in lines:
        out(line)


def cmd_refresh_tables(args) -> int:
    lines = refresh(Path(args.config), args.tasks or None, missing_only=False)
    out("\n".join(lines) or "no whole_database task in this configuration")
    if lines:
        out("reload the code location (UI: Deployment > Reload, or restart `sync-platform ui`) to see the new lists")
    return 0


def register(sub, config_option) -> None:
    validate = sub.add_parser("validate", help="check a configuration file; exit 1 with every problem found")
    validate.add_argument("path", nargs="?", help="config file (default: $SYNC_PLATFORM_CONFIG or the demo config)")
    validate.add_argument("--connect", action="store_true", help="also reach every datasource, table and store")
    validate.set_defaults(func=cmd_validate)

    refresh_tables = sub.add_parser(
        "refresh-tables", help="discover the tables of whole_database tasks and cache the lists"
    )
    refresh_tables.add_argument("tasks", nargs="*", help="task names (default: every whole_database task)")
    config_option(refresh_tables)
    refresh_tables.set_defaults(func=cmd_refresh_tables)
