"""What launches a task's job besides an operator: its cron schedule or its immediate sensor."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from . import naming
from .assets import SCHEDULED_TIME_TAG
from .config.models import CronSchedule, TableToTableTask


def latest_complete_partition(partitions: dg.TimeWindowPartitionsDefinition | None, moment: datetime) -> str | None:
    """The key of the last partition whose window has ended by `moment`."""
    window = partitions.get_prev_partition_window(moment) if partitions else None
    return partitions.get_partition_key_range_for_time_window(window).start if window else None


def build_schedule(task: TableToTableTask, partitions: dg.TimeWindowPartitionsDefinition | None = None) -> dg.ScheduleDefinition:
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


def build_immediate_sensor(task: TableToTableTask, partitions: dg.TimeWindowPartitionsDefinition | None = None) -> dg.SensorDefinition:
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
