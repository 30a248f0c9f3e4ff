"""The audit trail of a task's tables, read back from the Dagster instance: its exports (export
asset materializations), its export-file cleanups (export asset observations) and its source
cleanups (source asset observations, with the SQL, bound values, host, IP and user)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from ..platform import Platform, TableSync
from . import eventlog, naming
from .cleanup_journal import Attempt, attempts
from .naming import USER_TAG
from .operations import settled


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
        return datetime.fromtimestamp(self.timestamp, UTC).isoformat(timespec="seconds")


def _by(values: dict) -> str:
    if "user" not in values:
        return "-"
    return f"{values['user']}@{values.get('host', '?')}" + (f" ({values['ip']})" if values.get("ip") else "")


def _entry(record, what: str, table: TableSync, values: dict, status: str, rows: str, details: str) -> HistoryEntry:
    entry = record.event_log_entry
    return HistoryEntry(entry.timestamp, what, table.source.table, entry.dagster_event.partition, status, rows,
                        _by(values), details, entry.run_id)


def _cleanup_entry(attempt: Attempt, table: TableSync, settle) -> HistoryEntry:
    """One source cleanup run: its outcome, or, for a run that stopped recording mid-way (killed),
    what it committed as settled against the source."""
    v = attempt.record
    status = attempt.status
    if "rows_deleted" in v:
        committed = settle(attempt)
        if committed.interrupted:
            status = "interrupted"
        kept = f", {v['rows_not_verified']} kept" if v.get("rows_not_verified") else ""
        total = (f", {v['rows_deleted_all_attempts']} over {v['earlier_attempts'] + 1} attempts"
                 if v.get("earlier_attempts") else "")
        counts = f"{committed.rows} deleted{kept}{total}"
        note = f"{committed.note}; " if committed.note else ""
        details = f"rounds={committed.rounds} {note}{v.get('statement', '')} {v.get('parameters', '')}"
    else:
        counts, details = "-", v.get("interlock", "")
    return HistoryEntry(attempt.timestamp, "clean-source", table.source.table, attempt.partition, status, counts,
                        _by(v), details, attempt.run_id)


def task_history(instance: dg.DagsterInstance, tables: list[TableSync], limit: int = 50,
                 platform: Platform | None = None) -> list[HistoryEntry]:
    """Newest first, at most `limit` entries. With the `platform`, a cleanup killed while a round
    was committing is settled against the source (did that round commit?)."""
    entries: list[HistoryEntry] = []
    launched_by: dict[str, str] = {}  # run id -> its user tag, one lookup per run
    for table in tables:
        source_key = naming.source_asset_key(table.task, table.source.table)
        export_key = naming.export_asset_key(table.task, table.source.table)
        settle = settled(instance, platform, table) if platform else (lambda attempt: attempt.committed(None))
        for attempt in attempts(instance, source_key, all_partitions=True):
            entries.append(_cleanup_entry(attempt, table, settle))
        for record in eventlog.observations(instance, export_key, limit):
            v = eventlog.observation_metadata(record)
            entries.append(
                _entry(
                    record,
                    "clean-exports",
                    table,
                    v,
                    v.get("status", "?"),
                    f"{v.get('objects_deleted', 0)} objects",
                    str(v.get("location", "")),
                )
            )
        for record in eventlog.materializations(instance, export_key, limit):
            v = eventlog.materialization_metadata(record)
            run_id = record.event_log_entry.run_id
            if run_id not in launched_by:
                run = instance.get_run_by_id(run_id)
                launched_by[run_id] = (run.tags.get(USER_TAG) if run else None) or "-"
            entries.append(
                HistoryEntry(
                    record.event_log_entry.timestamp,
                    "export",
                    table.source.table,
                    record.event_log_entry.dagster_event.partition,
                    "exported",
                    str(v.get("rows", "-")),
                    launched_by[run_id],
                    str(v.get("location", "")),
                    run_id,
                )
            )
    return sorted(entries, key=lambda e: e.timestamp, reverse=True)[:limit]
