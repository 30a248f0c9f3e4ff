"""Each table of a task in the spec's status words, read from the Dagster instance: the latest run
that planned the table's assets, that run's events for them, and its state.

    created            no run has touched the table yet, or its run is queued
    running            its run is executing and the table has not finished
    restarting         the same, in a re-execution of an earlier run (retry / from failure)
    completed          every stage the run planned for it succeeded and the check passed
    terminating        its run is being terminated before the table finished
    terminated         its run was terminated before the table finished
    failed             a stage raised (the message says which and why)
    data-inconsistent  the data_diff check ran and found differences

Stages (export, import, diff) report what their latest run recorded: rows, seconds, outcome and
the error message; a stage the latest run did not plan shows its latest earlier result."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from ..platform import TableSync
from . import eventlog, naming
from .eventlog import EVALUATED, failure_message

IN_PROGRESS = {dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING}
WAITING = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING}

_EVENT_TYPES = {
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
    dg.DagsterEventType.STEP_FAILURE,
}


@dataclass
class StageResult:
    stage: str  # export | import | diff
    outcome: str  # ok | passed | inconsistent | failed | running | pending | not run | terminated | -
    rows: str = ""
    seconds: float | None = None
    message: str = ""
    run_id: str | None = None
    earlier: bool = False  # from a run before the table's latest one

    def cell(self) -> str:
        parts = [self.outcome]
        if self.rows:
            parts.append(f"{self.rows} rows")
        if self.seconds is not None:
            parts.append(f"{self.seconds:.2f}s")
        if self.earlier and self.run_id:
            parts.append(f"(run {self.run_id[:8]})")
        return " ".join(parts)


@dataclass
class TableStatus:
    table: TableSync
    status: str
    run_id: str | None = None
    stages: list[StageResult] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.table.source.table} -> {self.table.target.table}"


@dataclass
class _RunEvents:
    record: dg.RunRecord
    materialized: dict  # asset key -> metadata of its last materialization in the run
    planned_assets: set
    checks: dict  # check key -> its last AssetCheckEvaluation in the run
    planned_checks: set
    failures: dict  # step key -> message


def _run_events(instance: dg.DagsterInstance, run_id: str) -> _RunEvents:
    record = instance.get_run_record_by_id(run_id)
    materialized, planned_assets, checks, planned_checks, failures = {}, set(), {}, set(), {}
    for event in eventlog.run_events(instance, run_id, _EVENT_TYPES):
        kind = event.event_type
        if kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialized[event.asset_key] = event.event_specific_data.materialization.metadata
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            planned_assets.add(event.asset_key)
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            checks[evaluation.asset_check_key] = evaluation
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            planned_checks.add(event.event_specific_data.asset_check_key)
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            failures[event.step_key] = failure_message(event.step_failure_data)
    return _RunEvents(record, materialized, planned_assets, checks, planned_checks, failures)


def _rows(metadata: dict, name: str = "rows") -> str:
    value = metadata.get(name)
    return f"{value.value:,}" if value is not None else ""


def _seconds(metadata: dict) -> float | None:
    value = metadata.get("duration_s")
    return value.value if value is not None else None


class StatusReader:
    """Reads the statuses of a task's tables at one moment (a run's events are read once per
    reader); `step_of` maps an asset or check key to the step (op) that produces it, from the
    code location's definitions."""

    def __init__(self, instance: dg.DagsterInstance, step_of: dict):
        self.instance = instance
        self.step_of = step_of
        self._runs: dict[str, _RunEvents] = {}

    @classmethod
    def for_definitions(cls, instance: dg.DagsterInstance, defs: dg.Definitions) -> StatusReader:
        repository = defs.get_repository_def()
        step_of = {}
        for definition in [*repository.assets_defs_by_key.values(), *repository.asset_checks_defs_by_key.values()]:
            if not definition.is_executable:  # the source tables: observed, never run
                continue
            for key in [*definition.keys, *definition.check_keys]:
                step_of[key] = definition.node_def.name
        return cls(instance, step_of)

    def _events(self, run_id: str) -> _RunEvents:
        if run_id not in self._runs:
            self._runs[run_id] = _run_events(self.instance, run_id)
        return self._runs[run_id]

    def table_status(self, table: TableSync) -> TableStatus:
        export_key = naming.export_asset_key(table.task, table.source.table)
        imported_key = naming.imported_asset_key(table.task, table.target.table)
        check_key = dg.AssetCheckKey(imported_key, naming.DATA_DIFF_CHECK)
        run_ids = eventlog.last_run_ids(self.instance, [export_key, imported_key])
        if not run_ids:
            return TableStatus(
                table, "created", stages=[StageResult(s, "not run") for s in ("export", "import", "diff")]
            )
        runs = [self._events(run_id) for run_id in run_ids]
        run = max(runs, key=lambda r: r.record.create_timestamp)
        run_status = run.record.dagster_run.status
        steps = {self.step_of.get(k) for k in (export_key, imported_key, check_key)}
        failure = next((run.failures[s] for s in steps if s in run.failures), None)

        stages, blocked = [], False
        for stage, key in (("export", export_key), ("import", imported_key), ("diff", check_key)):
            result = self._stage(stage, key, run)
            if result is None:  # planned but not recorded: why not
                if blocked:
                    outcome = "not run"
                elif failure:
                    outcome, blocked = "failed", True
                elif run_status in IN_PROGRESS:
                    outcome, blocked = "running", True
                elif run_status == dg.DagsterRunStatus.CANCELED:
                    outcome, blocked = "terminated", True
                else:
                    outcome = "pending" if run_status in WAITING else "not run"
                result = StageResult(
                    stage, outcome, message=failure if outcome == "failed" else "", run_id=run.record.dagster_run.run_id
                )
            stages.append(result)

        return TableStatus(table, self._status(run, run_status, stages, failure), run.record.dagster_run.run_id, stages)

    def _stage(self, stage: str, key, run: _RunEvents) -> StageResult | None:
        """The stage's result in `run`; None if the run planned it but has not recorded it;
        the latest earlier result if the run did not plan it."""
        run_id = run.record.dagster_run.run_id
        if isinstance(key, dg.AssetCheckKey):
            if key in run.checks:
                return self._check_result(run.checks[key], run_id)
            if key in run.planned_checks:
                return None
            latest = eventlog.latest_check(self.instance, key)
            if latest is None or latest.status not in EVALUATED:
                return StageResult(stage, "not run")
            return self._check_result(eventlog.evaluation(latest), latest.run_id, earlier=True)
        if key in run.materialized:
            metadata = run.materialized[key]
            return StageResult(stage, "ok", _rows(metadata), _seconds(metadata), run_id=run_id)
        if key in run.planned_assets:
            return None
        record = eventlog.latest_materialization(self.instance, key)
        if record is None:
            return StageResult(stage, "not run")
        metadata = record.event_log_entry.dagster_event.event_specific_data.materialization.metadata
        return StageResult(stage, "ok", _rows(metadata), _seconds(metadata), run_id=record.run_id, earlier=True)

    @staticmethod
    def _check_result(evaluation, run_id: str, earlier: bool = False) -> StageResult:
        metadata = evaluation.metadata
        rows = f"{_rows(metadata, 'source_rows')}/{_rows(metadata, 'target_rows')}"
        differences = metadata.get("differences")
        if "verdict" in metadata and metadata["verdict"].value == "diff error":  # the diff failed, not the data
            return StageResult(
                "diff", "failed", rows, _seconds(metadata), metadata["explanation"].value, run_id, earlier
            )
        outcome = "passed" if evaluation.passed else "inconsistent"
        message = (
            "" if evaluation.passed else (f"{differences.value} differing rows" if differences else "data inconsistent")
        )
        return StageResult("diff", outcome, rows, _seconds(metadata), message, run_id, earlier)

    @staticmethod
    def _status(run: _RunEvents, run_status, stages: list[StageResult], failure: str | None) -> str:
        outcomes = [s.outcome for s in stages]
        if "inconsistent" in outcomes and not stages[-1].earlier:
            return "data-inconsistent"
        if failure or "failed" in outcomes:
            return "failed"
        if all(o in ("ok", "passed") for o in outcomes):
            return "completed"
        retry = naming.PARENT_RUN_TAG in run.record.dagster_run.tags
        if run_status in WAITING:
            return "restarting" if retry else "created"
        if run_status == dg.DagsterRunStatus.CANCELING:
            return "terminating"
        if run_status == dg.DagsterRunStatus.CANCELED:
            return "terminated"
        if run_status == dg.DagsterRunStatus.STARTED:
            return "restarting" if retry else "running"
        return "failed"  # the run ended without this table finishing
