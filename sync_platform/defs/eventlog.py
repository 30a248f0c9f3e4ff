"""Every read of the Dagster instance's event log and run storage the platform makes: the status,
the history, the cleanup interlock and journal, the archival sensor and the CLI read through here,
so Dagster's storage API (which moves between releases) is spoken in one place."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

# Check records that hold an evaluation (a PLANNED record's run failed or was stopped first).
EVALUATED = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
SUCCEEDED = AssetCheckExecutionRecordStatus.SUCCEEDED


def values(metadata) -> dict:
    """Metadata as plain values."""
    return {k: v.value for k, v in metadata.items()}


# --- asset checks --------------------------------------------------------------------------------
def check_history(instance: dg.DagsterInstance, check: dg.AssetCheckKey, partition: str | None = None,
                  all_partitions: bool = True, limit: int = 1000) -> list[AssetCheckExecutionRecord]:
    """The check's executions, newest first: of every partition, or of `partition` only."""
    partition_filter = None if all_partitions else PartitionKeyFilter(key=partition)
    return list(instance.event_log_storage.get_asset_check_execution_history(
        check, limit=limit, partition_filter=partition_filter))


def latest_check(instance: dg.DagsterInstance, check: dg.AssetCheckKey) -> AssetCheckExecutionRecord | None:
    return instance.event_log_storage.get_latest_asset_check_execution_by_key([check]).get(check)


def evaluation(record: AssetCheckExecutionRecord) -> dg.AssetCheckEvaluation:
    return record.event.dagster_event.event_specific_data


def own_evaluation(record: AssetCheckExecutionRecord, instance: dg.DagsterInstance) -> bool:
    """An evaluation the platform's data_diff produced: by a step of a run this instance knows,
    with the diff's metadata. "Report evaluation" in the UI records one with no run and no step."""
    event = record.event
    if not record.run_id or event is None or event.dagster_event is None or event.dagster_event.step_key is None:
        return False
    return "algorithm" in evaluation(record).metadata and instance.get_run_by_id(record.run_id) is not None


# --- materializations and observations -------------------------------------------------------------
def latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None):
    """The asset's (partition's) latest materialization record, or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1).records
    return records[0] if records else None


def materializations(instance: dg.DagsterInstance, key: dg.AssetKey, limit: int) -> list:
    return list(instance.fetch_materializations(key, limit=limit).records)


def observations(instance: dg.DagsterInstance, key: dg.AssetKey, limit: int) -> list:
    """The asset's observation records, newest first."""
    return list(instance.fetch_observations(key, limit=limit).records)


def latest_observation(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None) -> dict | None:
    """The metadata of the asset's (partition's) latest observation, or None."""
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1).records
    return observation_metadata(records[0]) if records else None


def materialization_metadata(record) -> dict:
    return values(record.event_log_entry.dagster_event.event_specific_data.materialization.metadata)


def observation_metadata(record) -> dict:
    return values(record.event_log_entry.dagster_event.event_specific_data.asset_observation.metadata)


def last_run_ids(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> list[str]:
    """The runs that last touched each of the assets (those ever touched)."""
    return [r.asset_entry.last_run_id for r in instance.get_asset_records(keys) if r.asset_entry.last_run_id]


# --- runs ------------------------------------------------------------------------------------------
def run_events(instance: dg.DagsterInstance, run_id: str, types: set[dg.DagsterEventType]) -> Iterator[dg.DagsterEvent]:
    for entry in instance.all_logs(run_id, of_type=types):
        yield entry.dagster_event


def failure_message(failure) -> str:
    """What went wrong, in the words of the innermost error (Dagster wraps it), or a Failure's description."""
    if failure.user_failure_data and failure.user_failure_data.description:
        return failure.user_failure_data.description
    error = failure.error
    while error is not None and error.cause is not None:
        error = error.cause
    lines = (error.message if error else "step failed").strip().splitlines()
    return lines[0] if lines else "step failed"


def step_failures(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Step key -> the one-paragraph reason it failed."""
    return {event.step_key: failure_message(event.step_failure_data)
            for event in run_events(instance, run_id, {dg.DagsterEventType.STEP_FAILURE})}


@dataclass
class RunOutcome:
    """What one run recorded so far: materializations and check evaluations by (asset key,
    partition) with their metadata as plain values, observations in order, step failures."""

    run: dg.DagsterRun
    materialized: dict[tuple[dg.AssetKey, str | None], dict] = field(default_factory=dict)
    checks: dict[tuple[dg.AssetKey, str | None], tuple[bool, dict]] = field(default_factory=dict)
    observed: list[dict] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def failure(self) -> str | None:
        """The first step failure's one-paragraph reason."""
        return next(iter(self.failures.values()), None)


_OUTCOME_EVENTS = {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                   dg.DagsterEventType.ASSET_OBSERVATION, dg.DagsterEventType.STEP_FAILURE}


def run_outcome(instance: dg.DagsterInstance, run_id: str) -> RunOutcome:
    outcome = RunOutcome(instance.get_run_by_id(run_id))
    for event in run_events(instance, run_id, _OUTCOME_EVENTS):
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            outcome.materialized[event.asset_key, event.partition] = values(data.materialization.metadata)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            outcome.checks[data.asset_key, data.partition] = (data.passed, values(data.metadata))
        elif event.event_type == dg.DagsterEventType.ASSET_OBSERVATION:
            outcome.observed.append(values(data.asset_observation.metadata))
        else:
            outcome.failures[event.step_key] = failure_message(event.step_failure_data)
    return outcome


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process that started executing the run (its RUN_START event)."""
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records:
        return record.event_log_entry.dagster_event.pid
    return None
