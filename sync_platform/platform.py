"""Binds a validated configuration to the engine: which dialect, store and folder each synced
table uses, and the three stages (export, import, diff) as plain calls. The Dagster layer and the
CLI both go through here; neither talks to the engine directly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from .config.models import DEFAULT_BISECTION_FACTOR, DEFAULT_BISECTION_THRESHOLD, LocalStoreConfig, RunConfig, S3StoreConfig, SyncConfig, TableRef
from .engine import Dialect, ExportRequest, ExportResult, ImportResult, dialect_for, export_table, file_format, import_export
from .engine.diff import DiffOptions, DiffResult, Side, diff
from .engine.stores import LocalStore, ObjectStore, S3Store


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

    @property
    def export_folder(self) -> str:
        return f"{self.task}/{self.source.table}/full"


def s3_client(config: S3StoreConfig):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        aws_access_key_id=config.access_key_id.get_secret_value() if config.access_key_id else None,
        aws_secret_access_key=config.secret_access_key.get_secret_value() if config.secret_access_key else None,
        config=Config(
            s3={"addressing_style": "path" if config.path_style else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
        ),
    )


class Platform:
    def __init__(self, config: SyncConfig):
        self.config = config

    @cached_property
    def table_syncs(self) -> dict[str, list[TableSync]]:
        default_store = next(iter(self.config.s3_configs), None)
        return {
            task.name: [
                TableSync(
                    task=task.name,
                    source=task.source,
                    target=task.target,
                    run_config=task.run_config,
                    store_id=task.s3_config_id or default_store,
                    bucket=task.s3_config_bucket,
                    csv_compression=task.store.csv_compression,
                )
            ]
            for task in self.config.tasks
        }

    def all_table_syncs(self) -> list[TableSync]:
        return [t for tables in self.table_syncs.values() for t in tables]

    def table_sync(self, task: str, table: str | None = None) -> TableSync:
        if task not in self.table_syncs:
            raise KeyError(f"no task {task!r}; tasks are {sorted(self.table_syncs)}")
        tables = self.table_syncs[task]
        if table is None and len(tables) == 1:
            return tables[0]
        for t in tables:
            if table in (t.source.table, t.target.table):
                return t
        raise KeyError(f"task {task!r} has no table {table!r}; tables are {[t.source.table for t in tables]}")

    # --- engine objects --------------------------------------------------------------------------
    def dialect(self, ref: TableRef, run_config: RunConfig) -> Dialect:
        url = self.config.datasources[ref.datasource].url.get_secret_value()
        return dialect_for(url, timezone=run_config.source_timezone)

    def store(self, table: TableSync) -> ObjectStore:
        config = self.config.s3_configs[table.store_id]
        if isinstance(config, LocalStoreConfig):
            return LocalStore(config.path)
        return S3Store(s3_client(config), bucket=table.bucket or config.bucket, prefix=config.prefix)

    # --- the three stages ------------------------------------------------------------------------
    def export(self, table: TableSync) -> ExportResult:
        rc = table.run_config
        request = ExportRequest(
            task=table.task,
            table=table.source.table_name,
            folder=table.export_folder,
            file_format=file_format(rc.batch_file_format, table.csv_compression),
            batch_rows=rc.export_batch_rows,
            parallel=rc.export_compress_parallel,
            # Rows are exported in import_order_by order so they land in the target in that order.
            order_by=rc.import_order_by,
        )
        return export_table(self.dialect(table.source, rc), self.store(table), request)

    def load(self, table: TableSync) -> ImportResult:
        return import_export(
            self.dialect(table.target, table.run_config), self.store(table), table.export_folder, table.target.table_name
        )

    def diff(self, table: TableSync, algorithm: str | None = None, logger: Callable[[str], None] | None = None) -> DiffResult:
        """The data diff of the task's run_config (or `algorithm`) between source and target."""
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
        source = Side(self.dialect(table.source, rc), table.source.table_name)
        target = Side(self.dialect(table.target, rc), table.target.table_name)
        return diff(source, target, options, logger)
