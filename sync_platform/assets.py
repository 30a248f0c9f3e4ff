"""Factories turning one synced table into Dagster definitions. No I/O happens at load time."""
# No `from __future__ import annotations`: Dagster reads the context and resource annotations.


from contextlib import contextmanager
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import dagster as dg

from . import naming
from .engine import ExportResult, ImportResult, SyncError, TableSchema
from .engine.diff import DiffError, DiffResult
from .engine.filters import FilterError
from .engine.stores import StoreError
from .platform import TableSync
from .resources import SyncPlatformResource


def _column_schema(schema: TableSchema) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.kind.value, constraints=dg.TableColumnConstraints(nullable=c.nullable)) for c in schema.columns]
    )


SCHEDULED_TIME_TAG = "dagster/scheduled_execution_time"


def run_anchor(context: dg.AssetExecutionContext, table: TableSync) -> datetime:
    """Where a time-range filter ends: the run's scheduled time (a schedule tick), else now; as
    wall-clock time in the task's source_timezone."""
    scheduled = context.run.tags.get(SCHEDULED_TIME_TAG)
    moment = datetime.fromisoformat(scheduled) if scheduled else datetime.now(timezone.utc)
    zone = ZoneInfo(table.run_config.source_timezone)
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0)


def partitions_def_for(table: TableSync) -> dg.TimeWindowPartitionsDefinition | None:
    """Daily or monthly partitions in the task's source_timezone, keyed YYYY-MM-DD (end exclusive)."""
    partition = table.partition
    if partition is None:
        return None
    kind = dg.DailyPartitionsDefinition if partition.granularity == "day" else dg.MonthlyPartitionsDefinition
    return kind(
        start_date=partition.start.isoformat(),
        end_date=partition.end.isoformat() if partition.end else None,
        timezone=table.run_config.source_timezone,
    )


def _foreseen(error: BaseException) -> bool:
    """An error an operator can act on from its message: the engine's own, a refused filter or
    diff, or a database refusing a statement (every DB-API driver's errors derive from a class
    named DatabaseError: a constraint, a type, a permission, a lost connection)."""
    return isinstance(error, (SyncError, StoreError, FilterError, DiffError)) or any(
        cls.__name__ == "DatabaseError" for cls in type(error).__mro__)


@contextmanager
def reported(stage: str, table: TableSync, partition_key: str | None = None):
    """Foreseen failures reach the operator as one paragraph (a dg.Failure with the stage, table
    and cause), the traceback only for the unexpected."""
    try:
        yield
    except Exception as error:
        if not _foreseen(error):
            raise
        where = f" (partition {partition_key})" if partition_key else ""
        cause = str(error) if isinstance(error, (SyncError, StoreError, FilterError, DiffError)) else f"{type(error).__name__}: {error}"
        raise dg.Failure(
            description=f"task {table.task!r}, {table.source.table} -> {table.target.table}{where}: {stage} failed: {cause}",
            metadata={"stage": stage, "error": type(error).__name__},
        ) from None


def partition_key_of(context, table: TableSync) -> str | None:
    """The run's partition; a run over a range of partitions is refused (backfills run one
    partition per run, so each gets its own export, import and check). A backfill launched from
    the UI tags each run with a range whose start is its end, and no partition key: one partition."""
    if table.partition is None:
        return None
    if context.has_partition_key:
        return context.partition_key
    if context.has_partition_key_range and context.partition_key_range.start == context.partition_key_range.end:
        return context.partition_key_range.start
    keys = f" ({context.partition_key_range.start} to {context.partition_key_range.end})" if context.has_partition_key_range else ""
    raise dg.Failure(description=(
        f"task {table.task!r}: a run of this task covers one partition, this one asks for several{keys}; launch a "
        "backfill of those partitions (one run each), or set partition.backfill: single_run to load a range in one run"
    ))




def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


def source_spec(table: TableSync, source_kind: str) -> dg.AssetSpec:
    """The source table, as an external asset: the export reads it, cleanups record their history
    on it (asset observations)."""
    return dg.AssetSpec(
        key=naming.source_asset_key(table.task, table.source.table),
        group_name=naming.group_name(table.task),
        kinds={source_kind},
        description=f"Source table {table.source.datasource}.{table.source.table}; its cleanup history is in its events.",
        partitions_def=partitions_def_for(table),
    )


def _export_attributes(table: TableSync, store_kind: str) -> dict:
    return dict(
        key=naming.export_asset_key(table.task, table.source.table),
        deps=[naming.source_asset_key(table.task, table.source.table)],
        group_name=naming.group_name(table.task),
        kinds={store_kind, table.run_config.batch_file_format},
        description=f"Export files of {table.source.datasource}.{table.source.table} ({table.run_config.batch_file_format}).",
    )


def _imported_attributes(table: TableSync, target_kind: str) -> dict:
    return dict(
        key=naming.imported_asset_key(table.task, table.target.table),
        deps=[naming.export_asset_key(table.task, table.source.table)],
        group_name=naming.group_name(table.task),
        kinds={target_kind},
        description=f"{table.target.datasource}.{table.target.table}, loaded atomically from the export files.",
    )


def export_metadata(result: ExportResult) -> dict:
    manifest = result.manifest
    return {
        "rows": manifest.rows,
        "files": len(manifest.files),
        "bytes": manifest.bytes,
        "duration_s": round(result.seconds, 3),
        "rows_per_s": _rate(manifest.rows, result.seconds),
        "location": dg.MetadataValue.path(result.location),
        "format": manifest.file_format,
        "source_query": dg.MetadataValue.md(f"```sql\n{manifest.source_query}\n```"),
    }


def imported_metadata(table: TableSync, result: ImportResult) -> dict:
    return {
        "dagster/row_count": result.rows,
        "rows": result.rows,
        "duration_s": round(result.seconds, 3),
        "rows_per_s": _rate(result.rows, result.seconds),
        "target_table": f"{table.target.datasource}.{table.target.table}",
        "export_created_at": result.manifest.created_at,
        "dagster/column_schema": _column_schema(result.manifest.schema),
    }


def build_export_asset(table: TableSync, store_kind: str) -> dg.AssetsDefinition:
    @dg.asset(
        **_export_attributes(table, store_kind),
        partitions_def=partitions_def_for(table),
    )
    def export(context: dg.AssetExecutionContext, sync: SyncPlatformResource) -> dg.MaterializeResult:
        key = partition_key_of(context, table)
        with reported("export", table, key):
            result = sync.platform.export(table, anchor=run_anchor(context, table), partition_key=key)
        context.log.info(f"exported {result.manifest.rows} rows in {len(result.manifest.files)} files to {result.location}")
        return dg.MaterializeResult(metadata=export_metadata(result))

    return export


def build_imported_asset(table: TableSync, target_kind: str) -> dg.AssetsDefinition:
    @dg.asset(
        **_imported_attributes(table, target_kind),
        partitions_def=partitions_def_for(table),
    )
    def imported(context: dg.AssetExecutionContext, sync: SyncPlatformResource) -> dg.MaterializeResult:
        key = partition_key_of(context, table)
        with reported("import", table, key):
            result = sync.platform.load(table, partition_key=key)
        context.log.info(f"loaded {result.rows} rows into {table.target.table}")
        return dg.MaterializeResult(metadata=imported_metadata(table, result))

    return imported


def diff_metadata(result: DiffResult) -> dict:
    metadata = {
        "algorithm": result.algorithm,
        "verdict": result.verdict,
        "source_rows": result.source_rows,
        "target_rows": result.target_rows,
        "segments_compared": result.segments,
        "duration_s": round(result.seconds, 3),
    }
    if result.explanation:
        metadata["explanation"] = result.explanation
    if result.differences is not None:
        metadata["differences"] = result.differences
        metadata["limit_reached"] = result.truncated
        metadata["differing_rows"] = dg.MetadataValue.table(
            records=[
                dg.TableRecord({"key": result.key_text(r), "kind": r.kind.value, "columns": ", ".join(r.columns)})
                for r in result.rows
            ],
            schema=dg.TableSchema(
                columns=[dg.TableColumn("key", "string"), dg.TableColumn("kind", "string"), dg.TableColumn("columns", "string")]
            ),
        )
    return metadata


_ALGORITHM_DESCRIPTIONS = {
    "countdiff": "row counts of source and target",
    "md5diff": "row counts and an order-independent checksum of every row, computed in each database",
    "hashdiff": "segment checksums bisected down to the differing rows (missing / extra / changed)",
}


def _check_description(table: TableSync) -> str:
    algorithm = table.run_config.algorithm
    return f"{algorithm}: {_ALGORITHM_DESCRIPTIONS[algorithm]} must match (ERROR = data inconsistent)."


def _description(result: DiffResult) -> str | None:
    """The check's one line: none when it passed."""
    if result.same:
        return None
    return f"diff error: {result.inconsistency}" if result.inconsistency else "data inconsistent"


def _log_inconsistency(log, result: DiffResult, partition_key: str | None = None) -> None:
    where = f"partition {partition_key}: " if partition_key else ""
    if result.inconsistency:
        log.error(f"{where}diff error: {result.inconsistency}")
        return
    log.error(
        f"{where}data inconsistent: {result.source_rows} source rows, {result.target_rows} target rows"
        + (f", {result.differences} differing rows" if result.differences is not None else "")
    )


def build_data_diff_check(table: TableSync) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=naming.imported_asset_key(table.task, table.target.table),
        name=naming.DATA_DIFF_CHECK,
        blocking=True,
        description=_check_description(table),
        partitions_def=partitions_def_for(table),  # each partition checked on its own window
    )
    def data_diff(context: dg.AssetCheckExecutionContext, sync: SyncPlatformResource) -> dg.AssetCheckResult:
        key = partition_key_of(context, table)
        with reported("data diff", table, key):
            result = sync.platform.diff(table, logger=context.log.info, partition_key=key)
        if not result.same:
            _log_inconsistency(context.log, result)
        return dg.AssetCheckResult(
            passed=result.same,
            severity=dg.AssetCheckSeverity.ERROR,
            description=_description(result),
            metadata=diff_metadata(result),
        )

    return data_diff


def build_table_step(table: TableSync, store_kind: str, target_kind: str) -> dg.AssetsDefinition:
    """The export, the imported table and its check in ONE step (a multi-asset) that exports,
    imports and checks the table, partition after partition when the run covers several.

    Used for the tables of a database_to_database task (so the run's executor limit bounds tables
    in flight, and re-executing from failure re-runs exactly the failed tables) and for partitioned
    tables with `backfill: single_run` (one run over a whole range). Each partition records its
    own materializations and check evaluation, as one run per partition would. A partition that
    fails does not stop the next; the step fails at the end naming every partition that failed or
    came out inconsistent. Selecting only some of the assets (e.g. only the imported table)
    re-runs only those stages."""
    export_key = naming.export_asset_key(table.task, table.source.table)
    imported_key = naming.imported_asset_key(table.task, table.target.table)
    check_key = dg.AssetCheckKey(imported_key, naming.DATA_DIFF_CHECK)
    partitions_def = partitions_def_for(table)

    @dg.multi_asset(
        name=naming.table_step_name(table.task, table.target.table),
        # skippable: the step reports per-partition events instead of one output for the range.
        specs=[
            dg.AssetSpec(**_export_attributes(table, store_kind), skippable=True),
            dg.AssetSpec(**_imported_attributes(table, target_kind), skippable=True),
        ],
        # Partitioned like the assets: "Execute" on the check asks for a partition, and each
        # partition's result is its own (the Checks tab and the Partitions tab show which failed).
        check_specs=[dg.AssetCheckSpec(naming.DATA_DIFF_CHECK, asset=imported_key, blocking=True,
                                       description=_check_description(table), partitions_def=partitions_def)],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def else None,
        can_subset=True,
    )
    def table_step(context: dg.AssetExecutionContext, sync: SyncPlatformResource):
        platform, anchor = sync.platform, run_anchor(context, table)
        selected, checking = context.selected_asset_keys, check_key in context.selected_asset_check_keys
        keys = context.partition_keys if partitions_def else [None]
        problems: dict[str | None, str] = {}  # partition key -> what went wrong
        for key in keys:
            where = f"partition {key}: " if key else ""
            stage = "export"
            try:
                if export_key in selected:
                    exported = platform.export(table, anchor=anchor, partition_key=key)
                    context.log.info(f"{where}exported {exported.manifest.rows} rows to {exported.location}")
                    yield dg.AssetMaterialization(export_key, partition=key, metadata=export_metadata(exported))
                stage = "import"
                if imported_key in selected:
                    loaded = platform.load(table, partition_key=key)
                    context.log.info(f"{where}loaded {loaded.rows} rows into {table.target.table}")
                    yield dg.AssetMaterialization(imported_key, partition=key, metadata=imported_metadata(table, loaded))
                stage = "data diff"
                if checking:
                    result = platform.diff(table, logger=context.log.info, partition_key=key)
                    if not result.same:
                        _log_inconsistency(context.log, result, key)
                        problems[key] = _description(result)
                    yield dg.AssetCheckEvaluation(
                        asset_key=imported_key,
                        check_name=naming.DATA_DIFF_CHECK,
                        passed=result.same,
                        severity=dg.AssetCheckSeverity.ERROR,
                        description=_description(result),
                        metadata=diff_metadata(result),
                        partition=key,
                    )
            except Exception as error:  # the next partition still runs; interrupts are not Exceptions
                if key is None:
                    with reported(stage, table):
                        raise
                context.log.error(f"{where}failed: {error}")
                problems[key] = str(error)
        if problems and not partitions_def:
            raise dg.Failure(description=problems[None])
        if problems:
            raise dg.Failure(
                description=f"{len(problems)} of {len(keys)} partitions failed: "
                + "; ".join(f"partition {key}: {problem}" for key, problem in problems.items()),
                metadata={"failed_partitions": dg.MetadataValue.json(list(problems))},
            )

    return table_step
