"""Time-window partitions: each exports, replaces and checks exactly its window."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from sync_platform.config import load_config
from sync_platform.defs.automation import latest_complete_partition
from sync_platform.defs.location import build_definitions
from sync_platform.engine.filters import FilterError, partition_window
from sync_platform.platform import Platform

from .conftest import table_task, write_config


@pytest.mark.parametrize(
    "granularity, key, start, end",
    [
        ("month", "2024-01-01", datetime(2024, 1, 1), datetime(2024, 2, 1)),
        ("month", "2024-02-01", datetime(2024, 2, 1), datetime(2024, 3, 1)),  # leap February
        ("month", "2024-12-01", datetime(2024, 12, 1), datetime(2025, 1, 1)),
        ("day", "2024-02-29", datetime(2024, 2, 29), datetime(2024, 3, 1)),
        ("day", "2024-12-31", datetime(2024, 12, 31), datetime(2025, 1, 1)),
    ],
)
def test_partition_windows(granularity, key, start, end):
    window = partition_window("d", granularity, key)
    assert (window.start, window.end) == (start, end)


def test_bad_partition_keys():
    with pytest.raises(FilterError, match="must be the first day of a month"):
        partition_window("d", "month", "2024-02-15")
    with pytest.raises(FilterError, match="is not a YYYY-MM-DD date"):
        partition_window("d", "day", "Feb 2024")


def _lineitems(months: int) -> list[tuple]:
    rows, key = [], 0
    for month in range(months):
        first = date(2023 + month // 12, month % 12 + 1, 1)
        for i in range(40):
            key += 1
            rows.append((key, f"{(key * 13) % 50}.00", (first + timedelta(days=i % 28)).isoformat(), f"line {key}"))
    return rows


def _config(tmp_path, source_url, target_url, schedule=None, **partition):
    task = table_task("archive", ("src", "lineitem"), ("dst", "lineitem"), "exports", algorithm="hashdiff",
                      source_timezone="Asia/Shanghai")
    task["partition"] = {"column": "l_shipdate", "granularity": "month", "start": "2023-01-01", **partition}
    if schedule:
        task["schedule"] = schedule
    return write_config(tmp_path / "sync.yaml", {"src": source_url, "dst": target_url},
                        {"exports": {"type": "local", "path": str(tmp_path / "exports")}}, [task])


def _sqlite_source(tmp_path, rows):
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute(
        "CREATE TABLE lineitem (l_id INT PRIMARY KEY, l_quantity NUMERIC(10,2), l_shipdate DATE, l_comment TEXT)"
    )
    conn.executemany("INSERT INTO lineitem VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    return f"sqlite:///{tmp_path}/src.db"


def test_backfill_of_24_monthly_partitions_checks_each(tmp_path, pg_url):
    rows = _lineitems(24)
    defs = build_definitions(_config(tmp_path, _sqlite_source(tmp_path, rows), pg_url, end="2025-01-01"))
    job = defs.resolve_job_def("archive_sync")
    keys = job.partitions_def.get_partition_keys()
    assert keys[0] == "2023-01-01" and keys[-1] == "2024-12-01" and len(keys) == 24
    with dg.DagsterInstance.ephemeral() as instance:
        for key in keys:  # what a UI backfill does: one run per partition (BackfillPolicy.multi_run(1))
            result = job.execute_in_process(instance=instance, partition_key=key)
            assert result.success
            [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "data_diff"]
            assert check.passed and check.metadata["source_rows"].value == 40 == check.metadata["target_rows"].value
        materialized = instance.get_materialized_partitions(dg.AssetKey(["archive", "lineitem"]))
        assert materialized == set(keys)
    with psycopg.connect(pg_url) as conn:
        copied = conn.execute(
            "SELECT l_id, l_quantity::text, l_shipdate::text, l_comment FROM lineitem ORDER BY l_id"
        ).fetchall()
    assert copied == [(k, q, d, c) for k, q, d, c in rows]
    folders = sorted(p.name for p in (tmp_path / "exports" / "archive" / "lineitem").iterdir())
    assert folders == keys  # one export folder per partition


def test_rerunning_a_partition_replaces_only_its_window(tmp_path):
    rows = _lineitems(3)
    platform = Platform(load_config(_config(tmp_path, _sqlite_source(tmp_path, rows), f"sqlite:///{tmp_path}/dst.db")))
    table = platform.table_sync("archive")
    for key in ("2023-01-01", "2023-02-01", "2023-03-01"):
        platform.export(table, partition_key=key)
        platform.load(table, partition_key=key)
    source, target = sqlite3.connect(tmp_path / "src.db"), sqlite3.connect(tmp_path / "dst.db")
    source.execute("UPDATE lineitem SET l_comment = 'fixed' WHERE l_shipdate < '2023-02-01'")
    source.execute("DELETE FROM lineitem WHERE l_id = 1")
    source.commit()
    target.execute("UPDATE lineitem SET l_comment = 'left alone' WHERE l_shipdate >= '2023-02-01'")  # marks Feb, Mar
    target.commit()
    platform.export(table, partition_key="2023-01-01")
    platform.load(table, partition_key="2023-01-01")
    after = target.execute("SELECT l_id, l_comment FROM lineitem ORDER BY l_id").fetchall()
    assert after[:39] == [(k, "fixed") for k in range(2, 41)]  # January replaced, row 1 gone, no duplicate
    assert all(comment == "left alone" for _, comment in after[39:]) and len(after) == 119
    assert platform.diff(table, partition_key="2023-01-01").same
    assert not platform.diff(table, partition_key="2023-02-01").same  # the marked month differs, as it should


def test_partition_window_in_the_task_timezone(pg_url, tmp_path):
    """A timestamptz at 2024-01-31 16:30 UTC is 2024-02-01 00:30 in Shanghai: February's."""
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE events (id int PRIMARY KEY, at timestamptz)")
        conn.execute(
            "INSERT INTO events VALUES (1, '2024-01-31 15:59:59+00'), (2, '2024-01-31 16:30:00+00'), (3, '2024-02-29 "
            "15:59:59.999999+00')"
        )
    task = table_task("ev", ("db", "events"), ("db", "events_copy"), "exports", source_timezone="Asia/Shanghai")
    task["partition"] = {"column": "at", "granularity": "month", "start": "2024-01-01"}
    platform = Platform(load_config(write_config(tmp_path / "sync.yaml", {"db": pg_url},
                                                 {"exports": {"type": "local", "path": str(tmp_path / "e")}}, [task])))
    table = platform.table_sync("ev")
    assert platform.export(table, partition_key="2024-01-01").manifest.rows == 1
    assert platform.export(table, partition_key="2024-02-01").manifest.rows == 2
    platform.load(table, partition_key="2024-02-01")
    with psycopg.connect(pg_url) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM events_copy ORDER BY id")] == [2, 3]


def test_schedule_requests_the_latest_complete_partition(tmp_path):
    defs = build_definitions(_config(tmp_path, "sqlite:///a.db", "sqlite:///b.db", schedule={"cron": "0 2 1 * *"}))
    schedule = defs.resolve_schedule_def("archive_schedule")
    tick = datetime(2024, 3, 31, 18, 0, tzinfo=UTC)  # 2024-04-01 02:00 in Shanghai
    request = schedule(dg.build_schedule_context(scheduled_execution_time=tick))
    assert request.partition_key == "2024-03-01"
    partitions = defs.resolve_job_def("archive_sync").partitions_def
    assert latest_complete_partition(partitions, datetime(2024, 3, 31, 15, 0, tzinfo=UTC)) == "2024-02-01"
    early = schedule(dg.build_schedule_context(scheduled_execution_time=datetime(2023, 1, 5, tzinfo=UTC)))
    assert isinstance(early, dg.SkipReason)


def test_unpartitioned_task_refuses_a_partition_key(tmp_path):
    task = table_task("plain", ("src", "t"), ("dst", "t"), "exports")
    platform = Platform(load_config(write_config(tmp_path / "s.yaml", {"src": "sqlite:///a.db", "dst": "sqlite:///b.db"},
                                                 {"exports": {"type": "local", "path": "/tmp/x"}}, [task])))
    with pytest.raises(ValueError, match="task 'plain' is not partitioned"):
        platform.export(platform.table_sync("plain"), partition_key="2024-01-01")


RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _checks_by_partition(instance, run_id) -> dict[str, dg.AssetCheckEvaluation]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    return {evaluation.partition: evaluation for evaluation in evaluations if evaluation.check_name == "data_diff"}


def test_single_run_backfill_records_each_partition(tmp_path, pg_url):
    """partition.backfill: single_run: one run over 24 months, yet every month has its own export
    folder, materializations with its own row count and its own passing check."""
    rows = _lineitems(24)
    rows += [(10_000 + i, "1.00", "2024-06-15", "extra") for i in range(7)]  # June 2024 holds 47 rows
    defs = build_definitions(
        _config(tmp_path, _sqlite_source(tmp_path, rows), pg_url, end="2025-01-01", backfill="single_run")
    )
    job = defs.resolve_job_def("archive_sync")
    keys = job.partitions_def.get_partition_keys()
    assert (
        defs.resolve_assets_def(dg.AssetKey(["archive", "lineitem"])).backfill_policy == dg.BackfillPolicy.single_run()
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, tags={RANGE_START: keys[0], RANGE_END: keys[-1]})
        assert result.success
        assert len(instance.get_run_records()) == 1
        for asset in (["archive", "lineitem__export"], ["archive", "lineitem"]):
            assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(keys)
        imported = [
            m for m in result.get_asset_materialization_events() if m.asset_key == dg.AssetKey(["archive", "lineitem"])
        ]
        rows_by_partition = {m.partition: m.materialization.metadata["rows"].value for m in imported}
        assert rows_by_partition == {k: 47 if k == "2024-06-01" else 40 for k in keys}
        checks = _checks_by_partition(instance, result.run_id)
        assert set(checks) == set(keys) and all(c.passed for c in checks.values())
        assert (
            checks["2024-06-01"].metadata["source_rows"].value
            == 47
            == checks["2024-06-01"].metadata["target_rows"].value
        )
    with psycopg.connect(pg_url) as conn:
        copied = conn.execute(
            "SELECT l_id, l_quantity::text, l_shipdate::text, l_comment FROM lineitem ORDER BY l_id"
        ).fetchall()
    assert copied == sorted(rows)
    assert sorted(p.name for p in (tmp_path / "exports" / "archive" / "lineitem").iterdir()) == keys


def test_single_run_backfill_goes_on_past_a_failing_partition(tmp_path):
    """The target refuses February's rows (a CHECK constraint): January and March still land and
    pass their checks, February keeps no half-load, and the run fails naming February."""
    rows = _lineitems(3)
    target = sqlite3.connect(tmp_path / "dst.db")
    target.execute("CREATE TABLE lineitem (l_id INT PRIMARY KEY, l_quantity NUMERIC(10,2), "
                   "l_shipdate DATE CHECK (l_shipdate NOT LIKE '2023-02-%'), l_comment TEXT)")
    target.commit()
    defs = build_definitions(_config(tmp_path, _sqlite_source(tmp_path, rows), f"sqlite:///{tmp_path}/dst.db",
                                     end="2023-04-01", backfill="single_run"))
    job = defs.resolve_job_def("archive_sync")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False,
                                        tags={RANGE_START: "2023-01-01", RANGE_END: "2023-03-01"})
        assert not result.success
        [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        assert (
            "1 of 3 partitions failed: partition 2023-02-01: CHECK constraint failed"
            in failure.step_failure_data.error.message
        )
        imported = instance.get_materialized_partitions(dg.AssetKey(["archive", "lineitem"]))
        assert imported == {"2023-01-01", "2023-03-01"}
        checks = _checks_by_partition(instance, result.run_id)
        assert set(checks) == {"2023-01-01", "2023-03-01"} and all(c.passed for c in checks.values())
    copied = target.execute("SELECT l_id FROM lineitem ORDER BY l_id").fetchall()
    assert [r[0] for r in copied] == [r[0] for r in rows if not r[2].startswith("2023-02")]


def test_single_run_step_can_reimport_without_exporting(tmp_path):
    """Materializing only the imported table (as from the UI) reuses the partition's export."""
    defs = build_definitions(_config(tmp_path, _sqlite_source(tmp_path, _lineitems(2)), f"sqlite:///{tmp_path}/dst.db",
                                     end="2023-03-01", backfill="single_run"))
    imported_key = dg.AssetKey(["archive", "lineitem"])
    with dg.DagsterInstance.ephemeral() as instance:
        assert (
            defs.resolve_job_def("archive_sync")
            .execute_in_process(instance=instance, partition_key="2023-02-01")
            .success
        )
        sqlite3.connect(tmp_path / "dst.db").execute("DELETE FROM lineitem").connection.commit()
        result = dg.materialize([defs.resolve_assets_def(imported_key)], selection=[imported_key], instance=instance,
                                partition_key="2023-02-01")
        assert result.success
        assert [m.asset_key for m in result.get_asset_materialization_events()] == [imported_key]
        [check] = _checks_by_partition(instance, result.run_id).values()
        assert check.passed and check.metadata["target_rows"].value == 40
    assert sqlite3.connect(tmp_path / "dst.db").execute("SELECT count(*) FROM lineitem").fetchone() == (40,)


@pytest.mark.parametrize(
    "partition, message",
    [
        ({"backfill": "per_month"}, "partition.backfill: Input should be 'per_partition' or 'single_run'"),
        ({"granularity": "week"}, "partition.granularity: Input should be 'day' or 'month'"),
        ({"start": "2023-01-15"}, "a monthly partition starts on the first day of a month (got 2023-01-15)"),
        ({"end": "2022-01-01"}, "partition end 2022-01-01 must be after its start 2023-01-01"),
    ],
)
def test_bad_partitions_are_rejected_at_validation(tmp_path, partition, message):
    from sync_platform.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, "sqlite:///a.db", "sqlite:///b.db", **partition))
    assert any(p.startswith("task 'archive' (tasks[0]): ") and message in p for p in caught.value.problems), (
        caught.value.problems
    )
