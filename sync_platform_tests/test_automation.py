"""Cron schedules and the immediate (run-once) sensor."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from sync_platform.config import ConfigError, load_config
from sync_platform.defs.location import build_definitions
from sync_platform.defs.naming import SCHEDULED_TIME_TAG

from .conftest import table_task, write_config


def _config(tmp_path, schedule, **run_config):
    task = table_task("orders_copy", ("src", "orders"), ("dst", "orders"), "exports", **run_config)
    task["schedule"] = schedule
    return write_config(
        tmp_path / "sync.yaml", {"src": f"sqlite:///{tmp_path}/a.db", "dst": f"sqlite:///{tmp_path}/b.db"},
        {"exports": {"type": "local", "path": str(tmp_path / "exports")}}, [task],
    )


def test_cron_schedule_in_the_task_timezone(tmp_path):
    defs = build_definitions(_config(tmp_path, {"cron": "*/60 20 1-30 1-12 6"}, source_timezone="Asia/Shanghai"))
    schedule = defs.resolve_schedule_def("orders_copy_schedule")
    # The spec's example: minute */60 is minute 0 in cron; Dagster gets it written so.
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "0 20 1-30 1-12 6", "Asia/Shanghai", "orders_copy_sync")
    from dagster._utils.schedules import cron_string_iterator

    start = datetime(2025, 3, 1, tzinfo=UTC).timestamp()
    fires = cron_string_iterator(start, schedule.cron_schedule, "Asia/Shanghai")
    ticks = [next(fires) for _ in range(40)]
    launched = [
        t for t in ticks if isinstance(schedule(dg.build_schedule_context(scheduled_execution_time=t)), dg.RunRequest)
    ]
    # The spec's reading: Saturdays that are days 1-30 (classic cron would also fire every day 1-30).
    assert [t.date().isoformat() for t in launched] == [
        "2025-03-01", "2025-03-08", "2025-03-15", "2025-03-22", "2025-03-29", "2025-04-05"]
    assert all(t.hour == 20 and t.minute == 0 for t in launched)
    skipped = schedule(dg.build_schedule_context(scheduled_execution_time=ticks[1]))
    assert isinstance(skipped, dg.SkipReason) and "2025-03-02" in skipped.skip_message
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    tick = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # a Saturday, 20:00 in Shanghai
    request = schedule(dg.build_schedule_context(scheduled_execution_time=tick))
    assert request.tags[SCHEDULED_TIME_TAG] == tick.isoformat()
    assert list(defs.sensors or []) == []  # no immediate sensor for a cron task


def test_schedule_timezone_overrides_source_timezone(tmp_path):
    defs = build_definitions(_config(tmp_path, {"cron": "0 2 * * *", "timezone": "Europe/Paris"}))
    assert defs.resolve_schedule_def("orders_copy_schedule").execution_timezone == "Europe/Paris"


@pytest.mark.parametrize(
    "schedule, message",
    [
        ({"cron": "61 * * * *"}, "schedule.cron: invalid cron '61 * * * *': give 5 fields"),
        ({"cron": "* * *"}, "invalid cron '* * *'"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ("hourly", "schedule"),
    ],
)
def test_bad_schedules_are_rejected(tmp_path, schedule, message):
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, schedule))
    assert any(p.startswith("task 'orders_copy' (tasks[0]): ") and message in p for p in caught.value.problems), (
        caught.value.problems
    )


def test_immediate_task_runs_once_per_configuration(tmp_path):
    defs = build_definitions(_config(tmp_path, "immediate"))
    sensor = defs.resolve_sensor_def("orders_copy_immediate")
    assert sensor.job_name == "orders_copy_sync" and sensor.default_status == dg.DefaultSensorStatus.RUNNING
    with dg.DagsterInstance.ephemeral() as instance:
        first = sensor(dg.build_sensor_context(instance=instance, cursor=None))
        [request] = first.run_requests
        config_hash = load_config(tmp_path / "sync.yaml").task("orders_copy").config_hash
        assert request.run_key == config_hash and first.cursor == config_hash
        again = sensor(dg.build_sensor_context(instance=instance, cursor=config_hash))
        assert isinstance(again, dg.SkipReason)
        # A changed configuration runs once more.
        changed = build_definitions(_config(tmp_path, "immediate", limit=10)).resolve_sensor_def(
            "orders_copy_immediate"
        )
        [rerun] = changed(dg.build_sensor_context(instance=instance, cursor=config_hash)).run_requests
        assert rerun.run_key != config_hash
    assert list(defs.schedules or []) == []  # no schedule for an immediate task


def test_no_schedule_means_on_demand_only(tmp_path):
    defs = build_definitions(_config(tmp_path, None))
    assert list(defs.schedules or []) == [] and list(defs.sensors or []) == []
