"""What launches a task's job besides an operator: its cron schedule or its immediate sensor."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from . import naming
from .assets import SCHEDULED_TIME_TAG
from .config.models import CronSchedule, TableToTableTask


def build_schedule(task: TableToTableTask) -> dg.ScheduleDefinition:
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
        return dg.RunRequest(tags={SCHEDULED_TIME_TAG: scheduled.isoformat()})

    return tick


def build_immediate_sensor(task: TableToTableTask) -> dg.SensorDefinition:
    """The spec's "run once": launch the job once when the task is first declared and again each
    time its configuration changes (the sensor's cursor and the run key are the config hash)."""
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
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=config_hash)], cursor=config_hash)

    return once
