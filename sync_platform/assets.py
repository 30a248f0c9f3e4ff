"""Factories turning one synced table into Dagster definitions. No I/O happens at load time."""
# No `from __future__ import annotations`: Dagster reads the context and resource annotations.


from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import dagster as dg

from . import naming
from .engine import TableSchema
from .engine.diff import DiffResult
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


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


def build_export_asset(table: TableSync, store_kind: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=naming.export_asset_key(table.task, table.source.table),
        group_name=naming.group_name(table.task),
        kinds={store_kind, table.run_config.batch_file_format},
        description=f"Export files of {table.source.datasource}.{table.source.table} ({table.run_config.batch_file_format}).",
    )
    def export(context: dg.AssetExecutionContext, sync: SyncPlatformResource) -> dg.MaterializeResult:
        result = sync.platform.export(table, anchor=run_anchor(context, table))
        manifest = result.manifest
        context.log.info(f"exported {manifest.rows} rows in {len(manifest.files)} files to {result.location}")
        return dg.MaterializeResult(
            metadata={
                "rows": manifest.rows,
                "files": len(manifest.files),
                "bytes": manifest.bytes,
                "duration_s": round(result.seconds, 3),
                "rows_per_s": _rate(manifest.rows, result.seconds),
                "location": dg.MetadataValue.path(result.location),
                "format": manifest.file_format,
                "source_query": dg.MetadataValue.md(f"```sql\n{manifest.source_query}\n```"),
            }
        )

    return export


def build_imported_asset(table: TableSync, target_kind: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=naming.imported_asset_key(table.task, table.target.table),
        deps=[naming.export_asset_key(table.task, table.source.table)],
        group_name=naming.group_name(table.task),
        kinds={target_kind},
        description=f"{table.target.datasource}.{table.target.table}, loaded atomically from the export files.",
    )
    def imported(context: dg.AssetExecutionContext, sync: SyncPlatformResource) -> dg.MaterializeResult:
        result = sync.platform.load(table)
        context.log.info(f"loaded {result.rows} rows into {table.target.table}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows,
                "rows": result.rows,
                "duration_s": round(result.seconds, 3),
                "rows_per_s": _rate(result.rows, result.seconds),
                "target_table": f"{table.target.datasource}.{table.target.table}",
                "export_created_at": result.manifest.created_at,
                "dagster/column_schema": _column_schema(result.manifest.schema),
            }
        )

    return imported


def diff_metadata(result: DiffResult) -> dict:
    metadata = {
        "algorithm": result.algorithm,
        "source_rows": result.source_rows,
        "target_rows": result.target_rows,
        "segments_compared": result.segments,
        "duration_s": round(result.seconds, 3),
    }
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


def build_data_diff_check(table: TableSync) -> dg.AssetChecksDefinition:
    algorithm = table.run_config.algorithm

    @dg.asset_check(
        asset=naming.imported_asset_key(table.task, table.target.table),
        name=naming.DATA_DIFF_CHECK,
        blocking=True,
        description=f"{algorithm}: {_ALGORITHM_DESCRIPTIONS[algorithm]} must match (ERROR = data inconsistent).",
    )
    def data_diff(context: dg.AssetCheckExecutionContext, sync: SyncPlatformResource) -> dg.AssetCheckResult:
        result = sync.platform.diff(table, logger=context.log.info)
        if not result.same:
            context.log.error(
                f"data inconsistent: {result.source_rows} source rows, {result.target_rows} target rows"
                + (f", {result.differences} differing rows" if result.differences is not None else "")
            )
        return dg.AssetCheckResult(
            passed=result.same,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if result.same else "data inconsistent",
            metadata=diff_metadata(result),
        )

    return data_diff
