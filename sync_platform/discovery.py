"""The table lists of whole-database tasks: discovered from the source only when an operator asks
(`sync-platform refresh-tables`, or once when no list is stored yet), then read from the task's
store, so loading definitions or starting a run never queries the source.

A stored list records which source it came from (datasource URL without its password, and the
schema); a list from another source is refused, and one older than the task's
table_list_max_age_days is reported stale (still used)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .config.models import DatabaseToDatabaseTask, SyncConfig
from .engine import database_for
from .engine.stores import ObjectStore
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


class TableLists:
    """The lists, kept in each task's own store under
    `_sync_platform/table_lists/<task>/<digest of the source identity>.json`: every host of a
    deployment (code server, run workers, the CLI) reads the same list, and two configurations that
    share a bucket, or one task moved to another source, never read each other's list."""

    PREFIX = "_sync_platform/table_lists"

    def __init__(self, store_of: Callable[[DatabaseToDatabaseTask], ObjectStore], config_path: str | os.PathLike):
        self.store_of = store_of  # the store a task's exports go to
        self.config_path = str(config_path)

    def key(self, config: SyncConfig, task: DatabaseToDatabaseTask) -> str:
        digest = hashlib.sha256(source_identity(config, task).encode()).hexdigest()[:16]
        return f"{self.PREFIX}/{task.name}/{digest}.json"

    def location(self, config: SyncConfig, task: DatabaseToDatabaseTask) -> str:
        return self.store_of(task).url(self.key(config, task))

    def exists(self, config: SyncConfig, task: DatabaseToDatabaseTask) -> bool:
        return self.store_of(task).exists(self.key(config, task))

    def _load(self, store: ObjectStore, key: str) -> DiscoveredTables:
        data = json.loads(store.get(key))
        return DiscoveredTables(
            data["task"], data["source"], tuple(data["tables"]), datetime.fromisoformat(data["discovered_at"])
        )

    def read(self, config: SyncConfig, task: DatabaseToDatabaseTask) -> DiscoveredTables:
        store, key = self.store_of(task), self.key(config, task)
        if store.exists(key):
            return self._load(store, key)
        hint = refresh_hint(task.name, self.config_path)
        others = [k for k in store.list(f"{self.PREFIX}/{task.name}") if k.endswith(".json")]
        if others:
            raise TablesNotDiscovered(
                f"task {task.name!r}: the stored table list came from {self._load(store, others[-1]).source}, but the "
                f"task now reads {source_identity(config, task)}; run `{hint}`"
            )
        raise TablesNotDiscovered(
            f"task {task.name!r} (copy_mode whole_database): its table list has not been discovered yet "
            f"(no {store.url(key)}); run `{hint}`"
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
        """Query the source for its tables and store the list (one put: readers see the old list
        or the new one)."""
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
        discovered = DiscoveredTables(task.name, source_identity(config, task), tuple(tables), datetime.now(UTC))
        self.store_of(task).put(self.key(config, task), json.dumps({
            "task": task.name, "source": discovered.source, "tables": list(tables),
            "discovered_at": discovered.discovered_at.isoformat(),
        }, indent=1).encode())
        return discovered
