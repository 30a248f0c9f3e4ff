"""Factories turning one synced table into Dagster definitions. No I/O happens at load time."""
# No `from __future__ import annotations`: Dagster reads the context and resource annotations.


import dagster as dg

from . import naming
from .engine import TableSchema
from .platform import TableSync
from .resources import SyncPlatformResource


def _column_schema(schema: TableSchema) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.kind.value, constraints=dg.TableColumnConstraints(nullable=c.nullable)) for c in schema.columns]
    )


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
        result = sync.platform.export(table)
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


def build_data_diff_check(table: TableSync) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=naming.imported_asset_key(table.task, table.target.table),
        name=naming.DATA_DIFF_CHECK,
        blocking=True,
        description="countdiff: source and target row counts must match (ERROR = data inconsistent).",
    )
    def data_diff(sync: SyncPlatformResource) -> dg.AssetCheckResult:
        diff = sync.platform.count_diff(table)
        return dg.AssetCheckResult(
            passed=diff.same,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if diff.same else "data inconsistent: row counts differ",
            metadata={
                "algorithm": "countdiff",
                "source_rows": diff.source_rows,
                "target_rows": diff.target_rows,
                "difference": diff.target_rows - diff.source_rows,
                "duration_s": round(diff.seconds, 3),
            },
        )

    return data_diff
