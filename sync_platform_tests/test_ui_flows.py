"""Operator flows driven through the UI's own GraphQL API on a live `sync-platform ui` (webserver,
daemon and code server), the requests its buttons send: a backfill launched from an asset page,
the data_diff check executed for one partition."""

from __future__ import annotations

import os
import sqlite3
from datetime import date, timedelta

import dagster as dg
import pytest

from .conftest import graphql, running_ui, table_task, wait_for, wait_for_run, write_config

MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]
IMPORTED = ["monthly", "events"]


@pytest.fixture
def partitioned_ui(tmp_path):
    """A monthly, per_partition SQLite -> SQLite task, and the UI serving it."""
    with sqlite3.connect(tmp_path / "src.db") as conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, at DATE, note TEXT)")
        conn.executemany("INSERT INTO events VALUES (?, ?, ?)",
                         [(i, (date(2024, 1, 1) + timedelta(days=i % 90)).isoformat(), f"n{i}") for i in range(1, 901)])
    task = table_task("monthly", ("src", "events"), ("dst", "events"), "x", source_timezone="UTC", algorithm="hashdiff")
    task["partition"] = {"column": "at", "granularity": "month", "start": "2024-01-01", "end": "2024-04-01"}
    config = write_config(tmp_path / "sync.yaml", {"src": f"sqlite:///{tmp_path}/src.db", "dst": f"sqlite:///{tmp_path}/dst.db"},
                          {"x": {"type": "local", "path": str(tmp_path / "x")}}, [task])
    with running_ui({**os.environ, "SYNC_PLATFORM_CONFIG": str(config)}, tmp_path / "ui.log") as base, \
            dg.DagsterInstance.get() as instance:
        yield base, instance, tmp_path


def _ui_backfill(base: str, partitions: list[str]) -> str:
    """"Materialize" on the asset page with partitions picked: the UI's LaunchPartitionBackfill."""
    launched = graphql(base, """mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
        launchPartitionBackfill(backfillParams: $backfillParams) { __typename
        ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } ... on PartitionKeysNotFoundError { message } } }""",
                       {"backfillParams": {"tags": [], "assetSelection": [{"path": ["monthly", "export", "events"]}, {"path": IMPORTED}],
                                           "partitionNames": partitions, "fromFailure": False}})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def test_a_backfill_launched_from_the_asset_page_runs_each_partition(partitioned_ui):
    base, instance, tmp_path = partitioned_ui
    backfill_id = _ui_backfill(base, MONTHS[:2])

    def runs():
        found = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        return found if len(found) == 2 and all(r.is_finished for r in found) else None

    finished = wait_for(runs, "the backfill's two runs", 240)
    assert sorted(r.status for r in finished) == [dg.DagsterRunStatus.SUCCESS] * 2, [
        (r.run_id, r.status) for r in finished]
    checks = {}
    for month in MONTHS[:2]:
        [latest] = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(IMPORTED), "data_diff"), limit=1, partition_filter=_partition(month))
        checks[month] = latest.event.dagster_event.event_specific_data.passed
    assert checks == {MONTHS[0]: True, MONTHS[1]: True}
    with sqlite3.connect(tmp_path / "dst.db") as conn:
        months = conn.execute("SELECT substr(at, 1, 7), count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall()
    assert months == [("2024-01", 310), ("2024-02", 290)]  # March was not asked for


def _partition(key: str):
    from dagster._core.event_api import PartitionKeyFilter

    return PartitionKeyFilter(key=key)
