"""Factories turning one synced table's specs (specs.py) into executable Dagster definitions: an
export step, an import step and the data_diff check, or all three in one step. No I/O at load time."""
# No `from __future__ import annotations`: Dagster reads the context and resource annotations.

import os
from collections.abc import Callable
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dagster as dg
from dagster import DagsterExecutionInterruptedError

from ..engine.progress import Progress
from ..errors import foreseen, one_line
from ..platform import TableSync
from . import eventlog, naming
from .events import (
    diff_description,
    diff_outcome,
    export_files_outcome,
    export_metadata,
    imported_metadata,
    log_inconsistency,
)
from .naming import SCHEDULED_TIME_TAG
from .resources import SyncPlatformResource
from .specs import TableSpecs


def run_anchor(context: dg.AssetExecutionContext, table: TableSync) -> datetime:
    """Where a time-range filter ends: the run's scheduled time (a schedule tick), else now; as
    wall-clock time in the task's source_timezone."""
    scheduled = context.run.tags.get(SCHEDULED_TIME_TAG)
    moment = datetime.fromisoformat(scheduled) if scheduled else datetime.now(UTC)
    zone = ZoneInfo(table.run_config.source_timezone)
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0)


# What a termination leaves, by the stage it stopped (the README's "Safe termination").
AFTER_TERMINATION = {
    "export": "the files written so far have no manifest, so no import takes them; the target keeps its last "
              "verified copy and the next run rewrites the files",
    "import": "its transaction rolled back: the target is exactly as it was",
    "data diff": "nothing to undo; the check has no result from this run",
    "export files check": "nothing to undo",
}


class StepTerminated(DagsterExecutionInterruptedError):
    """A step stopped by Terminate, saying what it leaves. Still an interrupt, so Dagster ends the
    run as canceled; its message is what the step's failure shows."""


def _subject(table: TableSync, partition_key: str | None) -> str:
    where = f" (partition {partition_key})" if partition_key else ""
    return f"task {table.task!r}, {table.source.table} -> {table.target.table}{where}"


def _interrupted(error: BaseException, context) -> bool:
    """Whether a failure is a Terminate: the interrupt itself, an error raised while handling it, or
    one it caused underneath (pyarrow turns the signal into a cancelled query and raises that)."""
    seen = error
    while seen is not None:
        if isinstance(seen, DagsterExecutionInterruptedError):
            return True
        seen = seen.__cause__ or seen.__context__
    if context is None:
        return False
    run = context.instance.get_run_by_id(context.run.run_id)
    return run is not None and run.status in (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED)


@contextmanager
def reported(stage: str, table: TableSync, partition_key: str | None = None, context=None):
    """Foreseen failures reach the operator as one paragraph (a dg.Failure with the stage, table
    and cause), a termination as what it leaves, the traceback only for the unexpected."""
    try:
        yield
    except StepTerminated:
        raise
    except BaseException as error:
        if isinstance(error, DagsterExecutionInterruptedError) or (
                isinstance(error, Exception) and _interrupted(error, context)):
            raise StepTerminated(f"{_subject(table, partition_key)}: {stage} terminated by request: "
                                 f"{AFTER_TERMINATION[stage]}") from None
        if not isinstance(error, Exception) or not foreseen(error):
            raise
        raise dg.Failure(
            description=f"{_subject(table, partition_key)}: {stage} failed: {one_line(error)}",
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
    keys = (
        f" ({context.partition_key_range.start} to {context.partition_key_range.end})"
        if context.has_partition_key_range
        else ""
    )
    raise dg.Failure(description=(
        f"task {table.task!r}: a run of this task covers one partition, this one asks for several{keys}; launch a "
        "backfill of those partitions (one run each), or set partition.backfill: single_run to load a range in one run"
    ))


def writer_of(context) -> str:
    """Who an export is written by, in its folder's lease and its manifest."""
    return f"run {context.run.run_id}"


def orphan_check(context) -> Callable[[], str | None] | None:
    """For a step in a process of its own (the multiprocess executor): why it is an orphan, once
    the run worker that started it is gone (a killed worker leaves its step processes running,
    re-parented, and they went on writing into a failed run beside its retry). None for a step that
    runs in the run worker itself: it dies with it."""
    worker = os.getppid()
    if eventlog.worker_pid(context.instance, context.run.run_id) != worker:
        return None
    return lambda: None if os.getppid() == worker else f"the run worker (pid {worker}) that started this step is gone"


def progress_reporter(context, table: TableSync, partition_key: str | None) -> Callable[[Progress], None]:
    """Each live report (every 10 s) as a line of the step's log and as the run's tag
    naming.progress_tag(...): the run page shows it, `sync-platform run --wait` draws it as a bar."""
    tag = naming.progress_tag(table.target.table, partition_key)

    def report(progress: Progress) -> None:
        context.log.info(progress.line())
        context.instance.add_run_tags(context.run.run_id, {tag: progress.to_json()})

    return report


def own_export_writers(context, export_key: dg.AssetKey) -> tuple[str, ...]:
    """Whose export the run's import must load: when the run exports the table itself (or the run
    it re-executes, or that run's root, did), only theirs, so an export written since by another
    run is refused; an import-only materialization takes the export that is there."""
    run = context.run
    if run.asset_selection is not None and export_key not in run.asset_selection:
        return ()
    return tuple(f"run {r}" for r in dict.fromkeys([run.run_id, run.parent_run_id, run.root_run_id]) if r)


def build_export_asset(table: TableSync, specs: TableSpecs) -> dg.AssetsDefinition:
    @dg.multi_asset(name=naming.step_name(specs.export.key), specs=[specs.export], partitions_def=specs.partitions)
    def export(context: dg.AssetExecutionContext, sync: SyncPlatformResource) -> dg.MaterializeResult:
        key = partition_key_of(context, table)
        with reported("export", table, key, context):
            result = sync.platform.export(table, anchor=run_anchor(context, table), partition_key=key,
                                          writer=writer_of(context), orphaned=orphan_check(context),
                                          progress=progress_reporter(context, table, key))
        context.log.info(
            f"exported {result.manifest.rows} rows in {len(result.manifest.files)} files to {result.location}"
        )
        return dg.MaterializeResult(metadata=export_metadata(result))

    return export


def build_imported_asset(table: TableSync, specs: TableSpecs) -> dg.AssetsDefinition:
    @dg.multi_asset(name=naming.step_name(specs.imported.key), specs=[specs.imported], partitions_def=specs.partitions)
    def imported(context: dg.AssetExecutionContext, sync: SyncPlatformResource) -> dg.MaterializeResult:
        key = partition_key_of(context, table)
        with reported("import", table, key, context):
            result = sync.platform.load(table, partition_key=key, writers=own_export_writers(context, specs.export.key),
                                        progress=progress_reporter(context, table, key))
        context.log.info(f"loaded {result.rows} rows into {table.target.table}")
        return dg.MaterializeResult(metadata=imported_metadata(table, result))

    return imported


def build_data_diff_check(table: TableSync, specs: TableSpecs) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(name=naming.check_step_name(specs.check_key), specs=[specs.check])
    def data_diff(context: dg.AssetCheckExecutionContext, sync: SyncPlatformResource) -> dg.AssetCheckResult:
        key = partition_key_of(context, table)
        with reported("data diff", table, key, context):
            result = sync.platform.diff(table, logger=context.log.info, partition_key=key,
                                        progress=progress_reporter(context, table, key))
        if not result.same:
            log_inconsistency(context.log, result)
        return dg.AssetCheckResult(**diff_outcome(result))

    return data_diff


def export_files_evaluation(context, sync: SyncPlatformResource, table: TableSync, specs: TableSpecs,
                            key: str | None) -> dict:
    """The export_files outcome of the table's (partition's) export, as the store has it now; an
    export whose files are gone since clean_exports deleted them reads "deleted"."""
    location, state = sync.platform.export_state(table, key)
    status = None
    if state.status == "not-exist":
        latest = eventlog.latest_observation(context.instance, specs.export.key, key)
        status = "deleted" if latest and latest.get("status") == "deleted" else None
    return export_files_outcome(location, state, status)


def build_export_files_check(table: TableSync, specs: TableSpecs) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(name=naming.check_step_name(specs.export_files.key), specs=[specs.export_files])
    def export_files(context: dg.AssetCheckExecutionContext, sync: SyncPlatformResource) -> dg.AssetCheckResult:
        key = partition_key_of(context, table)
        with reported("export files check", table, key, context):
            return dg.AssetCheckResult(**export_files_evaluation(context, sync, table, specs, key))

    return export_files


def build_table_step(table: TableSync, specs: TableSpecs) -> dg.AssetsDefinition:
    """The export, the imported table and its check in ONE step (a multi-asset) that exports,
    imports and checks the table, partition after partition when the run covers several.

    Used for the tables of a database_to_database task (so the run's executor limit bounds tables
    in flight, and re-executing from failure re-runs exactly the failed tables) and for partitioned
    tables with `backfill: single_run` (one run over a whole range). Each partition records its
    own materializations and check evaluation, as one run per partition would. A partition that
    fails does not stop the next; the step fails at the end naming every partition that failed or
    came out inconsistent. Selecting only some of the assets (e.g. only the imported table)
    re-runs only those stages."""
    export_key, imported_key, check_key = specs.export.key, specs.imported.key, specs.check_key

    @dg.multi_asset(
        name=naming.table_step_name(table.task, table.target.table),
        # skippable: the step reports per-partition events instead of one output for the range.
        specs=[specs.export.replace_attributes(skippable=True), specs.imported.replace_attributes(skippable=True)],
        check_specs=[specs.check, specs.export_files],
        partitions_def=specs.partitions,
        backfill_policy=(None if not specs.partitions else dg.BackfillPolicy.single_run()
                         if table.partition.backfill == "single_run" else dg.BackfillPolicy.multi_run(1)),
        can_subset=True,
    )
    def table_step(context: dg.AssetExecutionContext, sync: SyncPlatformResource):
        platform, anchor, orphaned = sync.platform, run_anchor(context, table), orphan_check(context)
        selected, checks = context.selected_asset_keys, context.selected_asset_check_keys
        keys = context.partition_keys if specs.partitions else [None]
        problems: dict[str | None, str] = {}  # partition key -> what went wrong
        for key in keys:
            where = f"partition {key}: " if key else ""
            stage = "export"
            # Both stages selected: the import overlaps the export (engine/pipeline.py), each
            # still reported when it ends. Closed on any way out, so an import never outlives its step.
            progress = progress_reporter(context, table, key)
            stages = closing(platform.export_and_load(table, anchor=anchor, partition_key=key,
                                                      writer=writer_of(context), orphaned=orphaned, progress=progress)
                             if export_key in selected and imported_key in selected else (_ for _ in ()))
            try:
                with stages as overlapped:
                    if export_key in selected:
                        exported = next(overlapped, None) or platform.export(
                            table, anchor=anchor, partition_key=key, writer=writer_of(context), orphaned=orphaned,
                            progress=progress)
                        context.log.info(f"{where}exported {exported.manifest.rows} rows to {exported.location}")
                        yield dg.AssetMaterialization(export_key, partition=key, metadata=export_metadata(exported))
                    if specs.export_files.key in checks:
                        files = export_files_evaluation(context, sync, table, specs, key)
                        yield dg.AssetCheckEvaluation(asset_key=export_key, check_name=naming.EXPORT_FILES_CHECK,
                                                      partition=key, **files)
                    stage = "import"
                    if imported_key in selected:
                        loaded = next(overlapped, None) or platform.load(table, partition_key=key, progress=progress)
                        context.log.info(f"{where}loaded {loaded.rows} rows into {table.target.table}")
                        yield dg.AssetMaterialization(
                            imported_key, partition=key, metadata=imported_metadata(table, loaded)
                        )
                stage = "data diff"
                if check_key in checks:
                    result = platform.diff(table, logger=context.log.info, partition_key=key,
                                           progress=progress_reporter(context, table, key))
                    if not result.same:
                        log_inconsistency(context.log, result, key)
                        problems[key] = diff_description(result)
                    yield dg.AssetCheckEvaluation(asset_key=imported_key, check_name=check_key.name, partition=key,
                                                  **diff_outcome(result))
            except DagsterExecutionInterruptedError:  # Terminate: no partition after this one runs
                with reported(stage, table, key, context):
                    raise
            except Exception as error:  # the next partition still runs, unless this is a Terminate
                if key is None or _interrupted(error, context):
                    with reported(stage, table, key, context):
                        raise
                context.log.error(f"{where}failed: {error}")
                problems[key] = str(error)
        if problems and not specs.partitions:
            raise dg.Failure(description=problems[None])
        if problems:
            raise dg.Failure(
                description=f"{len(problems)} of {len(keys)} partitions failed: "
                + "; ".join(f"partition {key}: {problem}" for key, problem in problems.items()),
                metadata={"failed_partitions": dg.MetadataValue.json(list(problems))},
            )

    return table_step
