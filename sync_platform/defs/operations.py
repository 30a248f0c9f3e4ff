"""Operations on what syncs leave behind, as Dagster op jobs an operator launches from the UI (or
the CLI): delete verified rows from the source in rounds, delete export files, test an S3
connection. Each cleanup leaves its history as an asset observation an auditor can read: on the
source table's asset for source cleanups, on the export asset for export-file cleanups."""

# No `from __future__ import annotations`: Dagster reads the context, config and resource annotations.

import getpass
import hashlib
import os
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from enum import Enum

import dagster as dg

from ..engine.cleanup import CleanupProgress
from ..engine.errors import CleanupRefused
from ..engine.manifest import ExportState
from ..errors import SyncPlatformError
from ..platform import Platform, TableSync
from . import eventlog, naming
from .cleanup_journal import RUNNING, Attempt, Committed, attempts, probe_value, since_last_finished
from .eventlog import EVALUATED, own_evaluation
from .events import export_files_outcome
from .naming import CLEAN_EXPORTS_OP, CLEAN_SOURCE_OP, TEST_S3_OP, USER_TAG
from .resources import SyncPlatformResource


class CleanSourceConfig(dg.Config):
    task: str
    table: str | None = None  # source or target name; needed when the task has several tables
    partition: str | None = None  # a partitioned table's partition key, e.g. 2024-03-01
    where: str | None = None  # default: the task's filters and the partition's window
    batch_size: int = 10_000  # rows per round (per transaction)
    dry_run: bool = False  # only count the rows that would be deleted
    all_rows: bool = False  # required to delete a whole table (no where, no filters, no partition)
    force: bool = False  # clean without a passing check after the latest import, or a table without a primary key


class CleanExportsConfig(dg.Config):
    task: str
    table: str | None = None
    partition: str | None = None


class S3TestConfig(dg.Config):
    s3_config_id: str
    bucket: str | None = None  # default: the config's bucket


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def local_ip(towards: str | None) -> str:
    """The address this machine uses to reach `towards` (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((towards or "192.0.2.1", 9))
            return probe.getsockname()[0]
    except OSError:
        return socket.gethostbyname(socket.gethostname())


def who(context) -> dict:
    """Host, IP and user behind a run, for the history."""
    return {
        "host": socket.gethostname(),
        "user": context.run.tags.get(USER_TAG) or context.run.tags.get("dagster/user") or getpass.getuser(),
    }


def _table(platform: Platform, task: str, table: str | None) -> TableSync:
    try:
        return platform.table_sync(task, table)
    except SyncPlatformError as error:
        raise dg.Failure(description=str(error)) from None


def verification(instance: dg.DagsterInstance, table: TableSync, partition_key: str | None) -> tuple[bool, str]:
    """The interlock: did the platform's latest data_diff of exactly this table (and partition)
    pass, after its latest import? Evaluations reported by hand never count as a pass; one
    reported as failed counts (it can only hold a cleanup back)."""
    imported_key = naming.imported_asset_key(table.task, table.target.table)
    latest_import = eventlog.latest_materialization(instance, imported_key, partition_key)
    where = f"{table.target.table}" + (f" partition {partition_key}" if partition_key else "")
    if latest_import is None:
        return False, f"{where} has never been imported"
    imported_at = latest_import.timestamp
    history = eventlog.check_history(instance, dg.AssetCheckKey(imported_key, naming.DATA_DIFF_CHECK), partition_key,
                                     all_partitions=False, limit=50)
    ignored = 0
    for check in history:
        if check.status not in EVALUATED:  # planned, never evaluated (its run failed or was stopped first)
            return False, f"data_diff of {where} has not run since its import"
        if check.event.timestamp < imported_at:
            break
        evaluation = eventlog.evaluation(check)
        if not own_evaluation(check, instance):
            if not evaluation.passed:
                return False, f"data_diff of {where} was reported failed by hand after its import"
            ignored += 1  # a hand-made pass proves nothing
            continue
        if not evaluation.passed:
            return False, f"data_diff of {where} failed (data inconsistent) in run {check.run_id[:8]}"
        stamp = datetime.fromtimestamp(check.event.timestamp, UTC).isoformat(timespec="seconds")
        return True, f"data_diff of {where} passed at {stamp} (run {check.run_id[:8]}), after the import"
    latest = history[0] if history and history[0].status in EVALUATED else None
    if latest is not None and latest.event.timestamp < imported_at and not ignored:
        return False, f"data_diff of {where} last ran before its latest import (run {latest_import.run_id[:8]})"
    note = f" ({ignored} evaluation(s) reported by hand are not evidence)" if ignored else ""
    return False, f"data_diff of {where} has not run since its import{note}"


def _cleanup_metadata(progress: CleanupProgress | None, config: CleanSourceConfig, status: str, interlock: str) -> dict:
    metadata = {
        "status": status,
        "task": _plain(config.task),
        "partition": config.partition or "",
        "batch_size": config.batch_size,
        "dry_run": config.dry_run,
        "forced": config.force,
        "interlock": interlock,
    }
    if progress is not None:
        metadata.update({
            "verified": progress.verified,
            "slice": progress.slice,
            "statement": progress.summary,
            "sql": dg.MetadataValue.md(f"```sql\n{progress.sql}\n```"),
            "parameters": dg.MetadataValue.json([str(p) for p in progress.params]),
            "keyed_by": ", ".join(progress.keyed_by),
            "rows_matching": progress.matching,
            "rows_deleted": progress.rows_deleted,
            "rows_not_verified": progress.rows_not_verified,
            "rounds": progress.rounds,
            "in_flight_rows": progress.in_flight,
            "probe": dg.MetadataValue.json(probe_value(progress.probe)),
            "started_at": progress.started_at.isoformat(timespec="seconds"),
            "ended_at": (progress.ended_at.isoformat(timespec="seconds") if progress.ended_at else _now()),
        })
        if progress.kept:
            metadata["kept_rows"] = dg.MetadataValue.table(
                records=[
                    dg.TableRecord({"key": _key_text(progress.keyed_by, k.key), "reason": k.reason})
                    for k in progress.kept
                ],
                schema=dg.TableSchema(columns=[dg.TableColumn("key", "string"), dg.TableColumn("reason", "string")]),
            )
    return metadata


def _key_text(names: tuple[str, ...], values: tuple) -> str:
    return ", ".join(f"{n}={v}" for n, v in zip(names, values))


def settled(instance: dg.DagsterInstance, platform: Platform, table: TableSync) -> Callable[[Attempt], Committed]:
    """What an attempt committed; an attempt whose process died is settled against the source."""

    def settle(attempt: Attempt) -> Committed:
        if attempt.status != RUNNING:
            return attempt.committed(None)
        alive = attempt.alive(instance)
        if alive is not False:
            committed = attempt.committed(None)
            return replace(committed, note="still running" if alive else "running on another host, or lost with it")
        committed = attempt.committed(lambda keyed_by, probe: platform.round_committed(table, keyed_by, probe))
        return replace(committed, interrupted=True)

    return settle


def delete_source_rows(context: dg.OpExecutionContext, config: CleanSourceConfig, sync: SyncPlatformResource) -> None:
    """Delete a task table's source rows that the target holds identically, in rounds (the spec's
    'clean source data')."""
    platform = sync.platform
    table = _table(platform, _plain(config.task), _plain(config.table))
    source_key = naming.source_asset_key(table.task, table.source.table)
    partition = config.partition
    try:
        table.partition_window(partition)  # a partitioned table names a valid partition, others none
    except SyncPlatformError as error:
        raise dg.Failure(description=str(error)) from None
    identity = {
        **who(context),
        "ip": local_ip(platform.host_of(table.source)),
        "table": table.source.table,
        "pid": os.getpid(),
    }

    def record(status: str, progress: CleanupProgress | None, interlock: str, **extra) -> None:
        context.log_event(dg.AssetObservation(source_key, partition=partition, metadata={
            **identity, **_cleanup_metadata(progress, config, status, interlock), **extra}))

    verified, interlock = verification(context.instance, table, partition)
    if not verified and not config.dry_run:
        if not config.force:
            record("refused", None, interlock)
            raise dg.Failure(
                description=f"refused to clean {table.source.table}: {interlock}; set force: true to override"
            )
        interlock = f"FORCED: {interlock}"
        context.log.warning(f"cleaning without a passing data_diff: {interlock}")

    # Settled now, before this attempt deletes a probe row of theirs.
    settle = settled(context.instance, platform, table)
    earlier = [(a, settle(a)) for a in attempts(context.instance, source_key, partition)]
    latest: list[CleanupProgress] = []

    def on_round(progress: CleanupProgress) -> None:
        latest[:] = [progress]
        record(RUNNING, progress, interlock)
        context.log.info(f"round {progress.rounds + 1}: {progress.rows_deleted + progress.in_flight} rows deleted, "
                         f"{progress.rows_not_verified} kept, of {progress.matching} seen")

    try:
        progress = platform.clean_source(
            table, partition, config.where, config.batch_size, config.dry_run, config.all_rows, config.force, on_round
        )
    except CleanupRefused as error:
        record("refused", None, str(error))
        raise dg.Failure(description=str(error)) from None
    except BaseException as error:  # terminated or failed: the committed rounds stay, and are recorded
        status = "failed" if isinstance(error, Exception) else "terminated"
        record(status, latest[0] if latest else None, interlock)
        raise
    before = since_last_finished(earlier, progress.slice)
    totals = {"earlier_attempts": len(before),
              "rows_deleted_all_attempts": progress.rows_deleted + sum(c.rows for _, c in before)}
    kept = progress.rows_not_verified
    status = "dry-run" if config.dry_run else ("partial" if kept else "cleaned")
    record(status, progress, interlock, **totals)
    summary = (
        f"{progress.rows_proved} rows would be deleted" if config.dry_run else f"{progress.rows_deleted} rows deleted"
    ) + (
        f" in {progress.rounds} rounds; {kept} of {progress.matching} rows not verified in the target, kept"
        if progress.verified
        else f" in {progress.rounds} rounds without proof ({progress.matching} matched)"
    )
    if kept and not config.dry_run:
        keys = "; ".join(f"{_key_text(progress.keyed_by, k.key)} ({k.reason})" for k in progress.kept[:5])
        raise dg.Failure(
            description=f"partial: {kept} rows not verified in {table.target.table}, kept in {table.source.table} "
                        f"(e.g. {keys}); {summary}. Re-sync them, then clean again.",
            metadata={"rows_not_verified": kept, "rows_deleted": progress.rows_deleted},
        )
    context.log.info(f"{status}: {summary}")


def delete_export_files(context: dg.OpExecutionContext, config: CleanExportsConfig, sync: SyncPlatformResource) -> None:
    """Delete a task table's (partition's) export files and manifest from the store."""
    platform = sync.platform
    table = _table(platform, _plain(config.task), _plain(config.table))
    try:
        location, deleted = platform.clean_exports(table, config.partition)
    except SyncPlatformError as error:
        raise dg.Failure(description=str(error)) from None
    status = "deleted" if deleted else "not-exist"
    export_key = naming.export_asset_key(table.task, table.source.table)
    context.log_event(dg.AssetObservation(
        export_key, partition=config.partition,
        metadata={"status": status, "location": location, "objects_deleted": deleted, "at": _now(), **who(context),
                  "ip": local_ip(None)},
    ))
    # The export asset's own state: its export_files check (a WARN) says the files are gone.
    context.log_event(dg.AssetCheckEvaluation(
        asset_key=export_key, check_name=naming.EXPORT_FILES_CHECK, partition=config.partition,
        **export_files_outcome(location, ExportState("not-exist"), status)))
    context.log.info(f"{status}: {deleted} objects under {location}")


def s3_round_trip(context: dg.OpExecutionContext, config: S3TestConfig, sync: SyncPlatformResource) -> None:
    """The spec's S3 connection test: put, get and delete a small object."""
    try:
        store = sync.platform.store_for(_plain(config.s3_config_id), config.bucket)
        store.round_trip()
    except SyncPlatformError as error:
        raise dg.Failure(description=f"connection test failed: {error}") from None
    context.log.info(f"connection test succeeded ({store.url('')})")


def _plain(value) -> str:
    """A launchpad choice (an Enum member) or a string, as the string."""
    return value.value if isinstance(value, Enum) else value


def _choices(name: str, values: list[str]) -> type:
    """The declared ids as an enum the launchpad validates and completes (str when none exist).
    Dagster knows config types by name, so the name carries a digest of the values."""
    if not values:
        return str
    digest = hashlib.sha1("\0".join(values).encode()).hexdigest()[:8]
    return Enum(f"{name}_{digest}", {value: value for value in values})


def table_names(tables: list[TableSync]) -> list[str]:
    """Every name a table may be given by (Platform.table_sync): source and target, with and
    without their schema."""
    return sorted({name for t in tables for name in (t.source.table, t.target.table, t.source.table_name.name,
                                                      t.target.table_name.name)})


def build_operation_jobs(tasks: list[str], tables: list[str], s3_configs: list[str]) -> list[dg.JobDefinition]:
    """clean_source, clean_exports and test_s3_connection, their launchpad config typed with the
    configuration's task names, table names and S3 config ids: the launchpad scaffolds the
    defaults, completes the names and refuses an unknown one before the run starts (a table of
    another task is refused when the run starts, naming the task's tables)."""
    Task, Table = _choices("Task", tasks), _choices("Table", tables)  # noqa: N806 - types
    S3Config = _choices("S3ConfigId", s3_configs)  # noqa: N806

    class CleanSource(CleanSourceConfig):
        task: Task
        table: Table | None = None

    class CleanExports(CleanExportsConfig):
        task: Task
        table: Table | None = None

    class S3Test(S3TestConfig):
        s3_config_id: S3Config

    @dg.op(name=CLEAN_SOURCE_OP, description=delete_source_rows.__doc__)
    def clean_source_op(context: dg.OpExecutionContext, config: CleanSource, sync: SyncPlatformResource) -> None:
        delete_source_rows(context, config, sync)

    @dg.op(name=CLEAN_EXPORTS_OP, description=delete_export_files.__doc__)
    def clean_exports_op(context: dg.OpExecutionContext, config: CleanExports, sync: SyncPlatformResource) -> None:
        delete_export_files(context, config, sync)

    @dg.op(name=TEST_S3_OP, description=s3_round_trip.__doc__)
    def test_s3_op(context: dg.OpExecutionContext, config: S3Test, sync: SyncPlatformResource) -> None:
        s3_round_trip(context, config, sync)

    @dg.job(name=naming.CLEAN_SOURCE_JOB, description="Delete verified rows from a task's source table, in rounds.")
    def clean_source_job():
        clean_source_op()

    @dg.job(name=naming.CLEAN_EXPORTS_JOB, description="Delete a task's export files.")
    def clean_exports_job():
        clean_exports_op()

    @dg.job(name=naming.TEST_S3_JOB, description="Test an S3 config: put, get and delete a small object.")
    def test_s3_job():
        test_s3_op()

    return [clean_source_job, clean_exports_job, test_s3_job]
