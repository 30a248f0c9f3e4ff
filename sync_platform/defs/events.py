"""What each stage of a table records in Dagster: one builder per stage, shared by the separate
steps (which return MaterializeResult / AssetCheckResult) and the one-step table (which yields
AssetMaterialization / AssetCheckEvaluation per partition)."""

from __future__ import annotations

import dagster as dg

from ..engine import ExportResult, ImportResult, TableSchema
from ..engine.diff import DiffResult
from ..engine.manifest import ExportState
from ..platform import TableSync


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


def _column_schema(schema: TableSchema) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, c.kind.value, constraints=dg.TableColumnConstraints(nullable=c.nullable))
        for c in schema.columns
    ])


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
        **({"resumed_rows": result.resumed_rows} if result.resumed_rows else {}),
    }


def imported_metadata(table: TableSync, result: ImportResult) -> dict:
    return {
        "dagster/row_count": result.rows,
        "rows": result.rows,
        "duration_s": round(result.seconds, 3),
        "rows_per_s": _rate(result.rows, result.seconds),
        "target_table": f"{table.target.datasource}.{table.target.table}",
        "export_created_at": result.manifest.created_at,
        "export_writer": result.manifest.writer,
        "dagster/column_schema": _column_schema(result.manifest.schema),
    }


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
                columns=[
                    dg.TableColumn("key", "string"),
                    dg.TableColumn("kind", "string"),
                    dg.TableColumn("columns", "string"),
                ]
            ),
        )
    return metadata


def export_files_outcome(location: str, state: ExportState, status: str | None = None) -> dict:
    """The export_files evaluation's fields: passed when the files are present, else a WARN saying
    what is there (`status` overrides the state's word: "deleted" when clean_exports removed them)."""
    status = status or state.status
    metadata = {"status": status, "files": state.files, "bytes": state.bytes,
                "location": dg.MetadataValue.path(location)}
    if state.problem:
        metadata["problem"] = state.problem
    why = state.problem or f"no export files under {location}"
    description = None if status == "present" else f"{status}: {why}"
    return {"passed": status == "present", "severity": dg.AssetCheckSeverity.WARN, "description": description,
            "metadata": metadata}


def diff_description(result: DiffResult) -> str | None:
    """The check's one line: none when it passed."""
    if result.same:
        return None
    return f"diff error: {result.inconsistency}" if result.inconsistency else "data inconsistent"


def diff_outcome(result: DiffResult) -> dict:
    """The data_diff evaluation's fields (passed, severity, description, metadata): a failure is an
    ERROR, the spec's "data inconsistent"."""
    return {"passed": result.same, "severity": dg.AssetCheckSeverity.ERROR, "description": diff_description(result),
            "metadata": diff_metadata(result)}


def log_inconsistency(log, result: DiffResult, partition_key: str | None = None) -> None:
    where = f"partition {partition_key}: " if partition_key else ""
    if result.inconsistency:
        log.error(f"{where}diff error: {result.inconsistency}")
        return
    log.error(
        f"{where}data inconsistent: {result.source_rows} source rows, {result.target_rows} target rows"
        + (f", {result.differences} differing rows" if result.differences is not None else "")
    )
