"""The table lists of whole-database tasks: discovered from the source only when an operator asks
(`sync-platform refresh-tables`, or once when no list is cached yet), then read from a file, so
loading definitions or starting a run never queries the source.

A cached list records which source it came from (datasource URL without its password, and the
schema); a list from another source is refused, and one older than the task's
table_list_max_age_days is reported stale (still used)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .config.loader import platform_home
from .config.models import DatabaseToDatabaseTask, SyncConfig
from .engine import database_for
from .errors import SyncPlatformError


class TablesNotDiscovered(SyncPlatformError):
    """No usable cached table list for a whole_database task; the message says how to get one."""


def refresh_hint(task: str, config_path: str | os.PathLike) -> str:
    return f"sync-platform refresh-tables {task} --config {config_path}"


def source_identity(config: SyncConfig, task: DatabaseToDatabaseTask) -> str:
    """The source a list is discovered from, safe to write down: URL without password, and schema."""
    from sqlalchemy.engine import make_url

    url = config.datasources[task.source.datasource].url.get_secret_value()
    return f"{make_url(url).render_as_string(hide_password=True)} schema={task.source.schema_name or '(default)'}"


@dataclass(frozen=True)
class DiscoveredTables:
    task: str
    source: str
    tables: tuple[str, ...]
    discovered_at: datetime

    def age(self) -> timedelta:
        return datetime.now(UTC) - self.discovered_at


def check_names_hold(task: str, tables: list[str], max_length: int | None) -> None:
    """whole_database keeps names: each must fit the target's identifier length (PostgreSQL would
    truncate it), and no two may differ only by case (a target that folds case would merge them)."""
    problems = []
    too_long = [name for name in tables if max_length and len(name.encode()) > max_length]
    if too_long:
        problems.append(f"{too_long} are longer than the target's {max_length}-byte limit")
    lowered = [t.lower() for t in tables]
    clashes = sorted({t for t in tables if lowered.count(t.lower()) > 1})
    if clashes:
        problems.append(f"{clashes} differ only by case")
    if problems:
        raise ValueError(
            f"task {task!r}: copy_mode whole_database cannot keep these source table names in the target: "
            + "; ".join(problems) + ". Use copy_mode: tables with explicit targets, or exclude them."
        )


class TableListCache:
    """One JSON file per task under <platform home>/discovery/<config name>-<hash of its path>/."""

    def __init__(self, directory: Path, config_path: str | os.PathLike):
        self.directory = directory
        self.config_path = str(config_path)

    @classmethod
    def for_config(cls, config_path: str | os.PathLike) -> TableListCache:
        resolved = Path(config_path).resolve()
        digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
        return cls(platform_home() / "discovery" / f"{resolved.stem}-{digest}", resolved)

    def path(self, task: str) -> Path:
        return self.directory / f"{task}.json"

    def cached_tables(self, task: str) -> set[str] | None:
        """The tables last cached for the task, whatever their source; None if never discovered."""
        path = self.path(task)
        return set(json.loads(path.read_text())["tables"]) if path.exists() else None

    def read(self, config: SyncConfig, task: DatabaseToDatabaseTask) -> DiscoveredTables:
        path = self.path(task.name)
        hint = refresh_hint(task.name, self.config_path)
        if not path.exists():
            raise TablesNotDiscovered(
                f"task {task.name!r} (copy_mode whole_database): its table list has not been discovered yet "
                f"(no {path}); run `{hint}`"
            )
        data = json.loads(path.read_text())
        if data["source"] != source_identity(config, task):
            raise TablesNotDiscovered(
                f"task {task.name!r}: the cached table list came from {data['source']}, but the task now reads "
                f"{source_identity(config, task)}; run `{hint}`"
            )
        return DiscoveredTables(
            task.name, data["source"], tuple(data["tables"]), datetime.fromisoformat(data["discovered_at"])
        )

    def stale_message(self, task: DatabaseToDatabaseTask, discovered: DiscoveredTables) -> str | None:
        if discovered.age() <= timedelta(days=task.table_list_max_age_days):
            return None
        return (
            f"task {task.name!r}: table list discovered {discovered.age().days} days ago "
            f"(table_list_max_age_days: {task.table_list_max_age_days}); tables added to or dropped from the "
            f"source since are not reflected: run `{refresh_hint(task.name, self.config_path)}` and reload"
        )

    def refresh(self, config: SyncConfig, task: DatabaseToDatabaseTask) -> DiscoveredTables:
        """Query the source for its tables and write the list (atomically)."""
        def database(side):
            return database_for(
                config.datasources[side.datasource].url.get_secret_value(), timezone=task.run_config.source_timezone
            )

        source = database(task.source)
        try:
            tables = source.list_tables(task.source.schema_name)
        finally:
            source.close()
        if not tables:
            raise ValueError(f"task {task.name!r}: {source_identity(config, task)} has no tables")
        check_names_hold(task.name, tables, database(task.target).dialect.max_identifier_length)
        discovered = DiscoveredTables(
            task.name, source_identity(config, task), tuple(tables), datetime.now(UTC)
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(task.name)
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps({
            "task": task.name, "source": discovered.source, "tables": list(tables),
            "discovered_at": discovered.discovered_at.isoformat(),
        }, indent=1))
        partial.replace(path)
        return discovered
