"""The spec's audit log, as far as open-source Dagster records it: every run of a task (who or what
launched it, when, its job and partitions, the configuration hash of the task it ran, how it
ended), every source cleanup and export deletion (with host, IP, user and SQL: history.py), and
the state of each schedule and sensor.

Who launched a run is read from its tags: Dagster's own for schedules, sensors, backfills and
re-executions, `sync_platform/via: cli` plus the OS user for the CLI. A run launched from the UI
carries neither: open-source Dagster authenticates no one, so such a run (and a schedule toggled or
a check executed in the UI) reads "UI (no user recorded)". Behind an authenticating proxy, the
proxy's access log of POST /graphql requests is the record of who pressed which button."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
from dagster._core.storage.tags import (
    BACKFILL_ID_TAG,
    PARENT_RUN_ID_TAG,
    RETRY_NUMBER_TAG,
    SCHEDULE_NAME_TAG,
    SENSOR_NAME_TAG,
)

from ..platform import Platform
from . import naming
from .history import task_history


@dataclass(frozen=True)
class AuditEntry:
    timestamp: float
    what: str  # run | clean-source | clean-exports | schedule | sensor
    task: str
    by: str
    status: str
    details: str
    run_id: str = ""

    @property
    def time(self) -> str:
        return datetime.fromtimestamp(self.timestamp, UTC).isoformat(timespec="seconds") if self.timestamp else "-"


def launched_by(run: dg.DagsterRun) -> str:
    tags = run.tags
    if SCHEDULE_NAME_TAG in tags:
        return f"schedule {tags[SCHEDULE_NAME_TAG]}"
    if SENSOR_NAME_TAG in tags:
        return f"sensor {tags[SENSOR_NAME_TAG]}"
    if BACKFILL_ID_TAG in tags:
        return f"backfill {tags[BACKFILL_ID_TAG]}" + (f" by {tags[naming.USER_TAG]}" if naming.USER_TAG in tags else "")
    if tags.get(naming.VIA_TAG) == "cli":
        return f"CLI {tags.get(naming.USER_TAG, '?')}"
    if PARENT_RUN_ID_TAG in tags:
        how = "automatic retry" if RETRY_NUMBER_TAG in tags else "re-execution"
        return f"{how} of {tags[PARENT_RUN_ID_TAG][:8]}"
    return "UI (no user recorded)" + (f", user tag {tags[naming.USER_TAG]}" if naming.USER_TAG in tags else "")


def _partitions(run: dg.DagsterRun) -> str:
    tags = run.tags
    if naming.PARTITION_TAG in tags:
        return tags[naming.PARTITION_TAG]
    if naming.RANGE_START_TAG in tags:
        return f"{tags[naming.RANGE_START_TAG]}..{tags[naming.RANGE_END_TAG]}"
    return "-"


def run_entries(instance: dg.DagsterInstance, tasks: set[str], since: datetime | None, limit: int) -> list[AuditEntry]:
    """The runs of those tasks (their `sync_platform/task` tag), newest first."""
    entries = []
    filters = dg.RunsFilter(created_after=since) if since else None
    for record in instance.get_run_records(filters=filters, limit=limit * 4):
        run = record.dagster_run
        run_tasks = set(filter(None, run.tags.get(naming.TASK_TAG, "").split(",")))
        for task in sorted(run_tasks & tasks):
            details = f"{run.job_name} partitions {_partitions(run)} config {run.tags.get(naming.CONFIG_HASH_TAG, '-')}"
            entries.append(AuditEntry(record.create_timestamp.timestamp(), "run", task, launched_by(run),
                                      run.status.value.lower(), details, run.run_id))
    return entries


def instigator_entries(instance: dg.DagsterInstance, names: dict[str, str]) -> list[AuditEntry]:
    """Each schedule's and sensor's state (`names`: instigator name -> task). Dagster keeps the
    state and when a schedule was last started, not who toggled it."""
    entries = []
    states = {state.name: state for state in instance.all_instigator_state()}
    for name, task in sorted(names.items()):
        state = states.get(name)
        what = "schedule" if name.endswith("_schedule") else "sensor"
        if state is None:
            entries.append(AuditEntry(0, what, task, "-", "running (its default, never toggled)", name))
            continue
        started = getattr(state.instigator_data, "start_timestamp", None) or 0
        entries.append(AuditEntry(started, what, task, "UI or dagster CLI (no user recorded)",
                                  state.status.value.lower() + (" since it was started" if started else ""), name))
    return entries


def audit(instance: dg.DagsterInstance, platform: Platform, tasks: list[str], since: datetime | None = None,
          limit: int = 200) -> list[AuditEntry]:
    """Newest first: runs, cleanups and export deletions of the tasks; then their schedules and sensors."""
    entries = run_entries(instance, set(tasks), since, limit)
    instigators = {}
    for task in tasks:
        for entry in task_history(instance, platform.tables_of(task), limit, platform):
            if entry.what != "export" and (since is None or entry.timestamp >= since.timestamp()):
                entries.append(AuditEntry(entry.timestamp, entry.what, task, entry.by, f"{entry.status} {entry.rows}",
                                          f"{entry.table} {entry.details}", entry.run_id))
        instigators.update({name: task for name in naming.instigator_names(platform.config.task(task))})
    entries = sorted(entries, key=lambda e: e.timestamp, reverse=True)[:limit]
    return entries + instigator_entries(instance, instigators)
