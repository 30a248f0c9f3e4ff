"""The audit trail of a task's tables, read back from the Dagster instance: its exports (export
asset materializations), its export-file cleanups (export asset observations) and its source
cleanups (source asset observations, with the SQL, bound values, host, IP and user)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg

from . import naming
from .operations import USER_TAG
from .platform import TableSync


@dataclass(frozen=True)
class HistoryEntry:
    timestamp: float
    what: str  # export | clean-source | clean-exports
    table: str
    partition: str | None
    status: str
    rows: str
    by: str
    details: str
    run_id: str

    @property
    def time(self) -> str:
        return datetime.fromtimestamp(self.timestamp, timezone.utc).isoformat(timespec="seconds")


def _values(metadata) -> dict:
    return {k: v.value for k, v in metadata.items()}


def _by(values: dict) -> str:
    if "user" not in values:
        return "-"
    return f"{values['user']}@{values.get('host', '?')}" + (f" ({values['ip']})" if values.get("ip") else "")


def _entry(record, what: str, table: TableSync, values: dict, status: str, rows: str, details: str) -> HistoryEntry:
    entry = record.event_log_entry
    return HistoryEntry(entry.timestamp, what, table.source.table, entry.dagster_event.partition, status, rows,
                        _by(values), details, entry.run_id)


def task_history(instance: dg.DagsterInstance, tables: list[TableSync], limit: int = 50) -> list[HistoryEntry]:
    """Newest first, at most `limit` entries."""
    entries: list[HistoryEntry] = []
    launched_by: dict[str, str] = {}  # run id -> its user tag, one lookup per run
    for table in tables:
        source_key = naming.source_asset_key(table.task, table.source.table)
        export_key = naming.export_asset_key(table.task, table.source.table)
        for record in instance.fetch_observations(source_key, limit=limit).records:
            v = _values(record.event_log_entry.dagster_event.event_specific_data.asset_observation.metadata)
            rows = f"{v['rows_deleted']} of {v['rows_matching']}" if "rows_deleted" in v else "-"
            sql = v.get("sql", "").strip("`").removeprefix("sql").strip()
            details = f"{sql} {v.get('parameters', '')} rounds={v.get('rounds', 0)}" if sql else v.get("interlock", "")
            entries.append(_entry(record, "clean-source", table, v, v.get("status", "?"), rows, details))
        for record in instance.fetch_observations(export_key, limit=limit).records:
            v = _values(record.event_log_entry.dagster_event.event_specific_data.asset_observation.metadata)
            entries.append(_entry(record, "clean-exports", table, v, v.get("status", "?"), f"{v.get('objects_deleted', 0)} objects",
                                  str(v.get("location", ""))))
        for record in instance.fetch_materializations(export_key, limit=limit).records:
            v = _values(record.event_log_entry.dagster_event.event_specific_data.materialization.metadata)
            run_id = record.event_log_entry.run_id
            if run_id not in launched_by:
                run = instance.get_run_by_id(run_id)
                launched_by[run_id] = (run.tags.get(USER_TAG) if run else None) or "-"
            entries.append(HistoryEntry(record.event_log_entry.timestamp, "export", table.source.table,
                                        record.event_log_entry.dagster_event.partition, "exported", str(v.get("rows", "-")),
                                        launched_by[run_id], str(v.get("location", "")), run_id))
    return sorted(entries, key=lambda e: e.timestamp, reverse=True)[:limit]
