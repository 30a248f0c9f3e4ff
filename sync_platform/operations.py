"""Operations on what syncs leave behind, as Dagster op jobs an operator launches from the UI (or
the CLI): delete verified rows from the source in rounds, delete export files, test an S3
connection. Each cleanup leaves its history as an asset observation an auditor can read: on the
source table's asset for source cleanups, on the export asset for export-file cleanups."""

# No `from __future__ import annotations`: Dagster reads the context, config and resource annotations.

import getpass
import socket
from datetime import datetime, timezone

import dagster as dg

from . import naming
from .engine.cleanup import CleanupProgress
from .platform import CleanupRefused, Platform, TableSync
from .resources import SyncPlatformResource

# Run config of the jobs: {"ops": {<op name>: {"config": {...}}}}.
CLEAN_SOURCE_OP, CLEAN_EXPORTS_OP, TEST_S3_OP = "delete_source_rows", "delete_export_files", "s3_round_trip"
USER_TAG = "user"  # who launched the run; the CLI sets it, the UI's launchpad can (else: the OS user)


class CleanSourceConfig(dg.Config):
    task: str
    table: str | None = None  # source or target name; needed when the task has several tables
    partition: str | None = None  # a partitioned table's partition key, e.g. 2024-03-01
    where: str | None = None  # default: the task's filters and the partition's window
    batch_size: int = 10_000  # rows per round (per transaction)
    dry_run: bool = False  # only count the rows that would be deleted
    all_rows: bool = False  # required to delete a whole table (no where, no filters, no partition)
    force: bool = False  # clean even though the latest check did not pass after the latest import


class CleanExportsConfig(dg.Config):
    task: str
    table: str | None = None
    partition: str | None = None


class S3TestConfig(dg.Config):
    s3_config_id: str
    bucket: str | None = None  # default: the config's bucket


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
    except KeyError as error:
        raise dg.Failure(description=error.args[0]) from None


def verification(instance: dg.DagsterInstance, table: TableSync, partition_key: str | None) -> tuple[bool, str]:
    """The interlock: did the latest data_diff of exactly this table (and partition) pass, after
    its latest import?"""
    imported_key = naming.imported_asset_key(table.task, table.target.table)
    imports = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=imported_key, asset_partitions=[partition_key] if partition_key else None), limit=1
    ).records
    where = f"{table.target.table}" + (f" partition {partition_key}" if partition_key else "")
    if not imports:
        return False, f"{where} has never been imported"
    from dagster._core.event_api import PartitionKeyFilter

    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(imported_key, naming.DATA_DIFF_CHECK), limit=1, partition_filter=PartitionKeyFilter(key=partition_key)
    )
    imported_at = imports[0].timestamp
    if not checks or checks[0].event is None:
        return False, f"data_diff of {where} has not run since its import"
    check = checks[0]
    evaluation = check.event.dagster_event.event_specific_data
    if check.event.timestamp < imported_at:
        return False, f"data_diff of {where} last ran before its latest import (run {imports[0].run_id[:8]})"
    if not evaluation.passed:
        return False, f"data_diff of {where} failed (data inconsistent) in run {check.run_id[:8]}"
    stamp = datetime.fromtimestamp(check.event.timestamp, timezone.utc).isoformat(timespec="seconds")
    return True, f"data_diff of {where} passed at {stamp} (run {check.run_id[:8]}), after the import"


def _cleanup_metadata(progress: CleanupProgress | None, config: CleanSourceConfig, status: str, interlock: str) -> dict:
    metadata = {
        "status": status,
        "task": config.task,
        "partition": config.partition or "",
        "batch_size": config.batch_size,
        "dry_run": config.dry_run,
        "forced": config.force,
        "interlock": interlock,
    }
    if progress is not None:
        metadata.update({
            "sql": dg.MetadataValue.md(f"```sql\n{progress.statement.sql('?')}\n```"),
            "parameters": dg.MetadataValue.json([str(p) for p in progress.statement.params]),
            "keyed_by": ", ".join(progress.keyed_by),
            "rows_matching": progress.matching,
            "rows_deleted": progress.rows_deleted,
            "rounds": progress.rounds,
            "started_at": progress.started_at.isoformat(timespec="seconds"),
            "ended_at": (progress.ended_at.isoformat(timespec="seconds") if progress.ended_at else _now()),
        })
    return metadata


@dg.op(description="Delete a task table's verified rows from the source in rounds (the spec's 'clean source data').")
def delete_source_rows(context: dg.OpExecutionContext, config: CleanSourceConfig, sync: SyncPlatformResource) -> None:
    platform = sync.platform
    table = _table(platform, config.task, config.table)
    source_key = naming.source_asset_key(table.task, table.source.table)
    partition = config.partition
    try:
        table.partition_window(partition)  # a partitioned table names a valid partition, others none
    except ValueError as error:
        raise dg.Failure(description=str(error)) from None
    identity = {**who(context), "ip": local_ip(platform.host_of(table.source)), "table": table.source.table}

    def record(status: str, progress: CleanupProgress | None, interlock: str) -> None:
        context.log_event(dg.AssetObservation(
            source_key, partition=partition, metadata={**identity, **_cleanup_metadata(progress, config, status, interlock)}
        ))

    verified, interlock = verification(context.instance, table, partition)
    if not verified and not config.dry_run:
        if not config.force:
            record("refused", None, interlock)
            raise dg.Failure(description=f"refused to clean {table.source.table}: {interlock}; set force: true to override")
        interlock = f"FORCED: {interlock}"
        context.log.warning(f"cleaning without verification: {interlock}")

    latest: list[CleanupProgress] = []

    def on_round(progress: CleanupProgress) -> None:
        latest[:] = [progress]
        context.log.info(f"round {progress.rounds}: {progress.rows_deleted} of {progress.matching} rows deleted")

    try:
        progress = platform.clean_source(
            table, partition, config.where, config.batch_size, config.dry_run, config.all_rows, on_round
        )
    except CleanupRefused as error:
        record("refused", None, str(error))
        raise dg.Failure(description=str(error)) from None
    except BaseException as error:  # terminated or failed: the committed rounds stay, and are recorded
        status = "failed" if isinstance(error, Exception) else "terminated"
        record(status, latest[0] if latest else None, interlock)
        raise
    status = "dry-run" if config.dry_run else "cleaned"
    record(status, progress, interlock)
    context.log.info(f"{status}: {progress.rows_deleted} rows deleted in {progress.rounds} rounds ({progress.matching} matched)")


@dg.op(description="Delete a task table's (partition's) export files and manifest from the store.")
def delete_export_files(context: dg.OpExecutionContext, config: CleanExportsConfig, sync: SyncPlatformResource) -> None:
    platform = sync.platform
    table = _table(platform, config.task, config.table)
    try:
        location, deleted = platform.clean_exports(table, config.partition)
    except ValueError as error:
        raise dg.Failure(description=str(error)) from None
    status = "deleted" if deleted else "not-exist"
    context.log_event(dg.AssetObservation(
        naming.export_asset_key(table.task, table.source.table), partition=config.partition,
        metadata={"status": status, "location": location, "objects_deleted": deleted, "at": _now(), **who(context),
                  "ip": local_ip(None)},
    ))
    context.log.info(f"{status}: {deleted} objects under {location}")


@dg.op(description="The spec's S3 connection test: put, get and delete a small object.")
def s3_round_trip(context: dg.OpExecutionContext, config: S3TestConfig, sync: SyncPlatformResource) -> None:
    from .engine.stores import StoreError

    try:
        store = sync.platform.store_for(config.s3_config_id, config.bucket)
        store.round_trip()
    except (KeyError, StoreError) as error:
        raise dg.Failure(description=f"connection test failed: {error.args[0]}") from None
    context.log.info(f"connection test succeeded ({store.url('')})")


@dg.job(name=naming.CLEAN_SOURCE_JOB, description="Delete verified rows from a task's source table, in rounds.")
def clean_source_job():
    delete_source_rows()


@dg.job(name=naming.CLEAN_EXPORTS_JOB, description="Delete a task's export files.")
def clean_exports_job():
    delete_export_files()


@dg.job(name=naming.TEST_S3_JOB, description="Test an S3 config: put, get and delete a small object.")
def test_s3_job():
    s3_round_trip()


OPERATION_JOBS = [clean_source_job, clean_exports_job, test_s3_job]
