"""What launches a task's job besides an operator: its cron schedule or its immediate sensor."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from ..config.models import CronSchedule, TableToTableTask, TaskBase
from ..platform import TableSync
from . import eventlog, naming
from .eventlog import EVALUATED, SUCCEEDED, own_evaluation
from .naming import CLEAN_SOURCE_OP, SCHEDULED_TIME_TAG, USER_TAG


def latest_complete_partition(partitions: dg.TimeWindowPartitionsDefinition | None, moment: datetime) -> str | None:
    """The key of the last partition whose window has ended by `moment`."""
    window = partitions.get_prev_partition_window(moment) if partitions else None
    return partitions.get_partition_key_range_for_time_window(window).start if window else None


def build_schedule(
    task: TableToTableTask, partitions: dg.TimeWindowPartitionsDefinition | None = None
) -> dg.ScheduleDefinition:
    """One schedule per periodic task, running by default; operators pause/resume it in the UI or
    with `dagster schedule stop|start`."""
    schedule: CronSchedule = task.schedule
    timezone = schedule.timezone or task.run_config.source_timezone

    @dg.schedule(
        name=naming.schedule_name(task.name),
        cron_schedule=schedule.dagster_cron,
        execution_timezone=timezone,
        job_name=naming.job_name(task.name),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{task.name}: cron '{schedule.cron}' in {timezone}",
    )
    def tick(context: dg.ScheduleEvaluationContext):
        scheduled: datetime = context.scheduled_execution_time
        local_day = scheduled.astimezone(ZoneInfo(timezone)).date()
        if not schedule.fires_on(local_day):
            return dg.SkipReason(f"{local_day} is not both in the day-of-month and the weekday of '{schedule.cron}'")
        # The scheduled time (not the moment the run starts) ends the task's "last N months".
        tags = {SCHEDULED_TIME_TAG: scheduled.isoformat()}
        if partitions is None:
            return dg.RunRequest(tags=tags)
        key = latest_complete_partition(partitions, scheduled)
        if key is None:
            return dg.SkipReason(f"no partition has ended by {scheduled.isoformat()}")
        return dg.RunRequest(partition_key=key, tags=tags)

    return tick


def build_immediate_sensor(
    task: TableToTableTask, partitions: dg.TimeWindowPartitionsDefinition | None = None
) -> dg.SensorDefinition:
    """The spec's "run once": launch the job once when the task is first declared and again each
    time its configuration changes (the sensor's cursor and the run key are the config hash); a
    partitioned task runs its latest complete partition (backfill the others from the UI)."""
    config_hash = task.config_hash

    @dg.sensor(
        name=naming.immediate_sensor_name(task.name),
        job_name=naming.job_name(task.name),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=f"{task.name}: runs once per configuration (now {config_hash})",
    )
    def once(context: dg.SensorEvaluationContext):
        if context.cursor == config_hash:
            return dg.SkipReason(f"already launched for configuration {config_hash}")
        key = latest_complete_partition(partitions, datetime.now(ZoneInfo(task.run_config.source_timezone)))
        if partitions is not None and key is None:
            return dg.SkipReason("no partition has ended yet")
        request = dg.RunRequest(run_key=f"{config_hash}:{key}" if key else config_hash, partition_key=key)
        return dg.SensorResult(run_requests=[request], cursor=config_hash)

    return once


def build_archive_sensor(task: TaskBase, tables: list[TableSync]) -> dg.SensorDefinition:
    """`cleanup: {source_after_verify: true}`: each time the data_diff of one of the task's tables
    (partitions) passes, launch clean_source for exactly that table (partition). A failed check
    launches nothing; clean_source checks the interlock again before deleting anything."""
    by_key = {naming.imported_asset_key(task.name, t.target.table): t for t in tables}
    batch_size = task.cleanup.batch_size

    @dg.sensor(
        name=naming.archive_sensor_name(task.name),
        job_name=naming.CLEAN_SOURCE_JOB,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description=f"{task.name}: deletes each verified table / partition from the source "
                    "(cleanup.source_after_verify)",
    )
    def archive(context: dg.SensorEvaluationContext):
        # Cursor: the last check execution seen, per table (works on every event log storage).
        seen = json.loads(context.cursor) if context.cursor else {}
        requests = []
        for key, table in by_key.items():
            history = eventlog.check_history(context.instance, dg.AssetCheckKey(key, naming.DATA_DIFF_CHECK))
            done = [r for r in history if r.status in EVALUATED and r.id > seen.get(key.to_user_string(), 0)]
            for record in sorted(done, key=lambda r: r.id):
                seen[key.to_user_string()] = record.id
                if record.status is not SUCCEEDED or not own_evaluation(record, context.instance):
                    continue  # never clean what did not verify, nor on a result reported by hand
                config = {
                    "task": task.name,
                    "table": table.source.table,
                    "partition": record.partition,
                    "batch_size": batch_size,
                }
                requests.append(dg.RunRequest(
                    run_key=f"{table.source.table}:{record.partition}:{record.id}",
                    run_config={"ops": {CLEAN_SOURCE_OP: {"config": config}}},
                    tags={USER_TAG: f"sensor {naming.archive_sensor_name(task.name)}", naming.TASK_TAG: task.name},
                ))
        cursor = json.dumps(seen, sort_keys=True)
        if not requests:
            return dg.SensorResult(skip_reason="no newly passed data_diff", cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return archive
