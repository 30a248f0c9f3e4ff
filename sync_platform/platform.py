"""Binds a validated configuration to the engine: which database, store and folder each synced
table uses, and the three stages (export, import, diff) as plain calls. The Dagster layer and the
CLI both go through here; neither talks to the engine directly."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from .config.loader import BrokenTask, load_valid_tasks
from .config.models import (
    DatabaseToDatabaseTask,
    FilterConfig,
    PartitionConfig,
    RunConfig,
    SyncConfig,
    TableRef,
    TaskBase,
)
from .config.where import validate_custom_where
from .discovery import DiscoveredTables, TableLists, TablesNotDiscovered
from .engine import (
    Database,
    ExportRequest,
    ExportResult,
    ImportResult,
    database_for,
    export_table,
    file_format,
    import_export,
)
from .engine.cleanup import CleanupProgress, CleanupRequest, clean_in_rounds, round_committed
from .engine.columns import TableSchema
from .engine.dialects import DATABASES
from .engine.diff import DiffOptions, DiffResult, Side, diff
from .engine.diff.values import DEFAULT_BISECTION_FACTOR, DEFAULT_BISECTION_THRESHOLD
from .engine.errors import CleanupRefused, ExportIncomplete, QueryTimeout, StoreError
from .engine.filters import (
    Condition,
    RowFilter,
    TimeWindow,
    last_window,
    partition_window,
)
from .engine.manifest import ExportState, Manifest, export_state, read_manifest
from .engine.pipeline import export_and_import
from .engine.progress import Progress
from .engine.stores import STORES, ObjectStore, store_from_config
from .errors import SyncPlatformError, UnknownName, one_line
from .preflight import check_before_writing

# A diff query (one scan of a slice) may run this many heartbeat_timeouts before the server cancels it.
DIFF_QUERY_HEARTBEATS = 10


class PartitionKeyError(SyncPlatformError, ValueError):
    """A partition key given to an unpartitioned table, or missing for a partitioned one."""


@dataclass(frozen=True)
class TableSync:
    """One source table copied to one target table: a table-to-table task, or one subtask."""

    task: str
    source: TableRef
    target: TableRef
    run_config: RunConfig
    store_id: str
    bucket: str | None
    csv_compression: str
    filters: FilterConfig | None = None
    partition: PartitionConfig | None = None
    subtask: bool = False  # one table of a database_to_database task
    pipeline: bool = False  # the task asks for one step, its import overlapping its export

    @property
    def one_step(self) -> bool:
        """Exported, imported and checked in one Dagster step (see assets.build_table_step), the
        import overlapping the export: the tables of a database task (so batch_parallel_size bounds
        tables in flight), partitioned tables backfilled in a single run, and the table of a task
        with `pipeline: true`."""
        return (self.subtask or self.pipeline
                or (self.partition is not None and self.partition.backfill == "single_run"))

    def export_folder(self, partition_key: str | None = None) -> str:
        """<task>/<source table>/<partition key, or "full">: one export per table and partition."""
        return f"{self.task}/{self.source.table}/{partition_key or 'full'}"

    def partition_window(self, partition_key: str | None) -> TimeWindow | None:
        if self.partition is None:
            if partition_key is not None:
                raise PartitionKeyError(f"task {self.task!r} is not partitioned; run it without a partition key")
            return None
        if partition_key is None:
            raise PartitionKeyError(
                f"task {self.task!r} is partitioned by {self.partition.column}: give a partition key"
            )
        return partition_window(self.partition.column, self.partition.granularity, partition_key)


class ExportReplaced(SyncPlatformError):
    """The export an import was to load was replaced by another writer's since."""


class TaskLeftOut(SyncPlatformError):
    """The task is declared but not valid, so the running platform left it out (the message says why)."""


class Platform:
    def __init__(self, config: SyncConfig, config_path: str | os.PathLike = "sync.yaml",
                 broken: list[BrokenTask] = ()):
        self.config = config
        self.table_lists = TableLists(self.task_store, config_path)
        self.discovered: dict[str, DiscoveredTables] = {}  # the whole_database lists read, by task
        self.broken = {task.name: task for task in broken}  # tasks left out: not valid on their own

    @classmethod
    def from_file(cls, config_path: str | os.PathLike) -> Platform:
        """The valid tasks of that file (a broken task does not stop the others; `broken` says
        why each is left out)."""
        config, broken = load_valid_tasks(config_path)
        return cls(config, config_path, broken)

    @cached_property
    def table_syncs(self) -> dict[str, list[TableSync]]:
        """The tables of each task. A whole_database task whose table list cannot be read (never
        discovered, from another source, its store unreachable) joins `broken` with the reason:
        it alone is left out."""
        syncs = {}
        for task in self.config.tasks:
            try:
                syncs[task.name] = (
                    self._subtasks(task) if isinstance(task, DatabaseToDatabaseTask) else [self._table_sync(task)]
                )
            except (TablesNotDiscovered, StoreError, ValueError) as error:
                self.broken[task.name] = BrokenTask(task.name, (one_line(error),))
        return syncs

    def _table_sync(self, task: TaskBase, **fields) -> TableSync:
        defaults = dict(source=getattr(task, "source", None), target=getattr(task, "target", None),
                        run_config=task.run_config, filters=task.filters, partition=getattr(task, "partition", None))
        return TableSync(
            task=task.name,
            store_id=self._store_id(task),
            bucket=task.s3_config_bucket,
            csv_compression=task.store.csv_compression,
            pipeline=getattr(task, "pipeline", False),
            **{**defaults, **fields},
        )

    def source_tables(self, task: DatabaseToDatabaseTask) -> list[str]:
        """The task's source tables: its list, or the cached discovery of the whole schema."""
        if task.copy_mode == "tables":
            return [t.source for t in task.tables]
        self.discovered[task.name] = self.table_lists.read(self.config, task)
        discovered = self.discovered[task.name].tables
        named = {t.source for t in task.tables} | set(task.exclude)
        unknown = sorted(named - set(discovered))
        if unknown:
            raise ValueError(
                f"task {task.name!r}: tables/exclude name {unknown}, which the source schema does not have; "
                f"its tables are {list(discovered)}"
            )
        tables = [t for t in discovered if t not in task.exclude]
        if not tables:
            raise ValueError(
                f"task {task.name!r}: no table left to copy (source schema tables {list(discovered)}, exclude "
                f"{task.exclude})"
            )
        return tables

    def _subtasks(self, task: DatabaseToDatabaseTask) -> list[TableSync]:
        subtasks = []
        for name in self.source_tables(task):
            mapping = task.mapping(name)
            subtasks.append(self._table_sync(
                task,
                source=task.source.table(name),
                target=task.target.table(mapping.target_name if mapping else name),
                run_config=task.run_config_for(mapping),
                filters=(mapping.filters if mapping and mapping.filters else task.filters),
                subtask=True,
            ))
        return subtasks

    def all_table_syncs(self) -> list[TableSync]:
        return [t for tables in self.table_syncs.values() for t in tables]

    def tables_of(self, task: str) -> list[TableSync]:
        """The task's tables; TaskLeftOut for a task that is not valid, UnknownName for no such task."""
        if task in self.broken:
            raise TaskLeftOut(
                f"task {task!r} is not valid, so it was left out: " + "; ".join(self.broken[task].problems)
            )
        if task not in self.table_syncs:
            raise UnknownName("task", task, sorted(self.table_syncs))
        return self.table_syncs[task]

    def table_sync(self, task: str, table: str | None = None) -> TableSync:
        """One table of the task, by source or target name (with or without schema); the only one
        when `table` is None."""
        tables = self.tables_of(task)
        if table is None and len(tables) == 1:
            return tables[0]
        for t in tables:
            if table in (t.source.table, t.target.table, t.source.table_name.name, t.target.table_name.name):
                return t
        names = [t.source.table_name.name for t in tables]
        if table is None:
            raise SyncPlatformError(f"task {task!r} has {len(names)} tables; name one of them: {', '.join(names)}")
        raise UnknownName("table", table, names, owner=f"task {task!r}")

    def preflight(self, table: TableSync) -> list[str]:
        """What can be checked before anything is written, each problem one line (validate
        --connect): the source table is readable, the target database and the store are reachable,
        and the settings fit both (preflight.py)."""
        problems = []
        for check in (lambda: self.check_before_writing(table), lambda: self.store(table).check()):
            try:
                check()
            except Exception as error:  # noqa: BLE001 - every cause is reported, not only the first
                problems.append(one_line(error))
        return problems

    def check_before_writing(self, table: TableSync) -> TableSchema:
        """The source table's schema, once the settings are known to fit the source and the target
        (PreflightRefused listing every problem otherwise)."""
        schema = self.database(table.source, table.run_config).reflect(table.source.table_name)
        check_before_writing(table, schema, self.database(table.target, table.run_config))
        return schema

    # --- engine objects --------------------------------------------------------------------------
    def database(self, ref: TableRef, run_config: RunConfig) -> Database:
        """The database of `ref`, its writes (an import's load, a cleanup round) stopped on the
        server when they wait heartbeat_timeout for a lock another session holds."""
        url = self.config.datasources[ref.datasource].url.get_secret_value()
        database = database_for(url, timezone=run_config.source_timezone)
        database.lock_timeout = run_config.heartbeat_timeout
        database.store_secret = run_config.mppsql_server_name
        return database

    def store(self, table: TableSync) -> ObjectStore:
        return self.store_for(table.store_id, table.bucket)

    def task_store(self, task: TaskBase) -> ObjectStore:
        """The store the task's exports (and a whole_database task's table list) go to."""
        return self.store_for(self._store_id(task), task.s3_config_bucket)

    def leave_out_one_host_stores(self, launcher: str) -> None:
        """Under a run launcher that starts runs on other hosts (`launcher`, its name), leave out
        each task whose store is a folder of one host, saying why."""
        for name in list(self.table_syncs):
            store_id = self._store_id(self.config.task(name))
            if STORES.get_value(self.config.s3_configs[store_id].type).one_host:
                del self.table_syncs[name]
                self.broken[name] = BrokenTask(name, (
                    f"task {name!r}: its store {store_id!r} is a folder of one host (type: local), but this Dagster "
                    f"instance launches runs with {launcher}, which starts them on other hosts: an export written by "
                    "one run would not be where the import, the checks and the CLI look for it. Give the task an s3 "
                    "store.",
                ))

    def _store_id(self, task: TaskBase) -> str | None:
        return task.s3_config_id or next(iter(self.config.s3_configs), None)

    def store_for(self, store_id: str, bucket: str | None = None) -> ObjectStore:
        if store_id not in self.config.s3_configs:
            raise UnknownName("S3 config", store_id, sorted(self.config.s3_configs))
        return store_from_config(self.config.s3_configs[store_id], bucket, store_id)

    def kinds(self, table: TableSync) -> tuple[str, str, str]:
        """What the table's source database, store and target database are, as registered kinds
        ("postgresql", "s3", "sqlite"...)."""
        datasources = self.config.datasources
        return (DATABASES[datasources[table.source.datasource].scheme].kind,
                STORES[self.config.s3_configs[table.store_id].type].kind,
                DATABASES[datasources[table.target.datasource].scheme].kind)

    def host_of(self, ref: TableRef) -> str | None:
        """The database server's host name (None for a file database)."""
        from sqlalchemy.engine import make_url

        return make_url(self.config.datasources[ref.datasource].url.get_secret_value()).host

    # --- filters -------------------------------------------------------------------------------------
    def row_filter(
        self, table: TableSync, side: str, anchor: datetime, partition_key: str | None = None
    ) -> RowFilter | None:
        """The rows of the "source" or "target" side a run touches: the task's filter rules (a time
        range ending at `anchor`, wall-clock time in source_timezone) and the partition's window."""
        rules = table.filters
        windows = [w for w in [table.partition_window(partition_key)] if w]
        if rules is None and not windows:
            return None
        if rules and rules.time_range:
            windows.append(last_window(rules.time_range.column, rules.time_range.last, rules.time_range.unit, anchor))
        row_filter = RowFilter(
            conditions=tuple(Condition(c.column, c.op, c.value) for c in rules.conditions) if rules else (),
            match=rules.match if rules else "all",
            windows=tuple(windows),
            custom_sql=(rules.source_where if side == "source" else rules.target_where) if rules else None,
        )
        return row_filter if (row_filter.conditions or row_filter.windows or row_filter.custom_sql) else None

    def export_anchor(self, table: TableSync, manifest: Manifest | None) -> datetime:
        """The anchor the export used (so import and diff see its exact window), else now."""
        recorded = manifest and manifest.extra.get("anchor")
        return datetime.fromisoformat(recorded) if recorded else self.now(table)

    def latest_manifest(self, table: TableSync, partition_key: str | None = None) -> Manifest | None:
        try:
            return read_manifest(self.store(table), table.export_folder(partition_key))
        except ExportIncomplete:
            return None

    @staticmethod
    def now(table: TableSync) -> datetime:
        return datetime.now(ZoneInfo(table.run_config.source_timezone)).replace(tzinfo=None, microsecond=0)

    # --- the three stages ------------------------------------------------------------------------
    def export(
        self, table: TableSync, anchor: datetime | None = None, partition_key: str | None = None,
        writer: str | None = None, orphaned: Callable[[], str | None] | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> ExportResult:
        """`anchor`: the run's scheduled (or start) time, where "last N months" ends; default now.
        `writer`: who exports (e.g. the run), recorded in the folder's lease and the manifest;
        `orphaned`: why the export's requester is gone, else None (it then stops itself)."""
        request = self._export_request(table, anchor or self.now(table), partition_key, writer, orphaned, progress)
        schema = self.check_before_writing(table)
        return export_table(self.database(table.source, table.run_config), self.store(table), request, schema)

    def export_and_load(
        self, table: TableSync, anchor: datetime | None = None, partition_key: str | None = None,
        writer: str | None = None, orphaned: Callable[[], str | None] | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> Iterator[ExportResult | ImportResult]:
        """export() and load() overlapped (engine/pipeline.py): the ExportResult when the export is
        done, then the ImportResult once the import, which loaded each file as it was written, has
        committed."""
        anchor = anchor or self.now(table)
        request = self._export_request(table, anchor, partition_key, writer, orphaned, progress)
        schema = self.check_before_writing(table)
        yield from export_and_import(
            self.database(table.source, table.run_config), self.store(table), request, schema,
            self.database(table.target, table.run_config),
            table.target.table_name, self.row_filter(table, "target", anchor, partition_key), progress,
        )

    def _export_request(self, table: TableSync, anchor: datetime, partition_key: str | None, writer: str | None,
                        orphaned: Callable[[], str | None] | None,
                        progress: Callable[[Progress], None] | None) -> ExportRequest:
        rc = table.run_config
        return ExportRequest(
            task=table.task,
            table=table.source.table_name,
            folder=table.export_folder(partition_key),
            file_format=file_format(rc.batch_file_format, table.csv_compression),
            batch_rows=rc.export_batch_rows,
            parallel=rc.export_compress_parallel,
            # Rows are exported in import_order_by order so they land in the target in that order.
            order_by=rc.import_order_by,
            where=self.row_filter(table, "source", anchor, partition_key),
            extra={"anchor": anchor.isoformat(), **({"partition": partition_key} if partition_key else {})},
            heartbeat_timeout=rc.heartbeat_timeout,
            **({"writer": writer} if writer else {}),
            orphaned=orphaned,
            progress=progress,
            readers=rc.export_readers,
        )

    def load(self, table: TableSync, partition_key: str | None = None, writers: Collection[str] = (),
             progress: Callable[[Progress], None] | None = None) -> ImportResult:
        """Replace the target's slice (its filter and partition window, with the export's anchor)
        by the export: other partitions and rows outside the filter stay untouched. `writers`: when
        given, the export must be one of theirs (the run's own export, not one written since)."""
        store, folder = self.store(table), table.export_folder(partition_key)
        manifest = read_manifest(store, folder)  # no export, no import: ExportIncomplete says so
        if writers and manifest.writer not in writers:
            raise ExportReplaced(
                f"the export at {store.url(folder)} was written by {manifest.writer or 'an older version'} at "
                f"{manifest.created_at}, not by {' / '.join(dict.fromkeys(writers))}, which exported it for this "
                "import: another run replaced it since. Nothing was loaded; run the task again"
            )
        where = self.row_filter(table, "target", self.export_anchor(table, manifest), partition_key)
        return import_export(self.database(table.target, table.run_config), store, folder, table.target.table_name,
                             where, manifest, progress)

    def diff(
        self, table: TableSync, algorithm: str | None = None, logger: Callable[[str], None] | None = None,
        partition_key: str | None = None, progress: Callable[[Progress], None] | None = None,
    ) -> DiffResult:
        """The data diff of the task's run_config (or `algorithm`) between source and target;
        `progress` gets its live reports (engine/progress.py)."""
        rc = table.run_config
        options = DiffOptions(
            algorithm=algorithm or rc.algorithm,
            key_columns=tuple(rc.key_columns) if rc.key_columns else None,
            extra_columns=tuple(rc.extra_columns) if rc.extra_columns else None,
            limit=rc.limit,
            threads=rc.threads,
            bisection_factor=rc.bisection_factor or DEFAULT_BISECTION_FACTOR,
            bisection_threshold=rc.bisection_threshold or DEFAULT_BISECTION_THRESHOLD,
            verbose=rc.verbose,
        )
        anchor = self.export_anchor(table, self.latest_manifest(table, partition_key))
        sides = []
        for ref, side in ((table.source, "source"), (table.target, "target")):
            database = self.database(ref, rc)
            database.statement_timeout = (
                DIFF_QUERY_HEARTBEATS * rc.heartbeat_timeout
            )  # a runaway query stops on the server
            sides.append(Side(database, ref.table_name, self.row_filter(table, side, anchor, partition_key)))
        try:
            return diff(*sides, options, logger, progress)
        except QueryTimeout as error:
            raise QueryTimeout(f"{error} (a diff query may run {DIFF_QUERY_HEARTBEATS} x heartbeat_timeout; "
                               "raise heartbeat_timeout for tables whose full scan takes longer)") from None

    # --- operations on what a sync leaves behind ----------------------------------------------------
    def cleanup_filter(
        self, table: TableSync, partition_key: str | None = None, where: str | None = None
    ) -> RowFilter | None:
        """The source rows a cleanup deletes: `where` (a custom WHERE, within the partition's
        window if given), else what the sync copied: the task's filters and the partition window,
        with the anchor of the export that was verified."""
        if where is not None:
            windows = tuple(w for w in [table.partition_window(partition_key)] if w)
            return RowFilter(windows=windows, custom_sql=validate_custom_where(where))
        anchor = self.export_anchor(table, self.latest_manifest(table, partition_key))
        return self.row_filter(table, "source", anchor, partition_key)

    def clean_source(
        self, table: TableSync, partition_key: str | None = None, where: str | None = None, batch_size: int = 10_000,
        dry_run: bool = False, all_rows: bool = False, force: bool = False,
        on_round: Callable[[CleanupProgress], None] | None = None,
    ) -> CleanupProgress:
        """Delete the cleanup_filter's rows from the source table in rounds of batch_size, each row
        only when the target table holds it identically (engine/cleanup.py). A source table without
        a primary key cannot be proved row by row: refused, unless `force`, which cleans it without
        proof. `force` never skips the proof of a table that has a key."""
        row_filter = self.cleanup_filter(table, partition_key, where)
        if row_filter is None and not all_rows:
            raise CleanupRefused(
                f"task {table.task!r}, table {table.source.table}: no WHERE, no filters and no partition would delete "
                "the whole table; give a where, or all_rows: true to mean it"
            )
        source = self.database(table.source, table.run_config)
        proof = Side(self.database(table.target, table.run_config), table.target.table_name)
        if force and not source.reflect(table.source.table_name).primary_key:
            proof = None
        request = CleanupRequest(
            table.source.table_name, row_filter, batch_size, dry_run, proof, table.run_config.limit
        )
        return clean_in_rounds(source, request, on_round)

    def round_committed(self, table: TableSync, keyed_by: tuple[str, ...], probe: tuple) -> bool:
        """Whether the round a dead cleanup was committing (one of its keys: `probe`) committed."""
        return round_committed(self.database(table.source, table.run_config), table.source.table_name, keyed_by, probe)

    def export_state(self, table: TableSync, partition_key: str | None = None) -> tuple[str, ExportState]:
        """Where the table's (partition's) export lives and what is there (present / incomplete / not-exist)."""
        table.partition_window(partition_key)
        store, folder = self.store(table), table.export_folder(partition_key)
        return store.url(folder), export_state(store, folder)

    def clean_exports(self, table: TableSync, partition_key: str | None = None) -> tuple[str, int]:
        """Delete the table's (partition's) export files and manifest: (location, objects deleted)."""
        table.partition_window(partition_key)  # a partitioned table names its partition, others none
        store, folder = self.store(table), table.export_folder(partition_key)
        return store.url(folder), store.delete_folder(folder)
