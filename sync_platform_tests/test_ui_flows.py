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
    tasks = []
    for name, target, backfill in (("monthly", "events", "per_partition"), ("ranged", "events_ranged", "single_run")):
        task = table_task(name, ("src", "events"), ("dst", target), "x", source_timezone="UTC", algorithm="hashdiff")
        task["partition"] = {"column": "at", "granularity": "month", "start": "2024-01-01", "end": "2024-04-01",
                             "backfill": backfill}
        tasks.append(task)
    # A task with one bad value: the others must load and run beside it.
    tasks.append({**table_task("broken", ("src", "events"), ("dst", "nowhere"), "x", limit=5000),
                  "schedule": {"cron": "0 2 * * *"}})
    config = write_config(tmp_path / "sync.yaml", {"src": f"sqlite:///{tmp_path}/src.db", "dst": f"sqlite:///{tmp_path}/dst.db"},
                          {"x": {"type": "local", "path": str(tmp_path / "x")}}, tasks)
    with running_ui({**os.environ, "SYNC_PLATFORM_CONFIG": str(config)}, tmp_path / "ui.log") as base, \
            dg.DagsterInstance.get() as instance:
        yield base, instance, tmp_path


def test_one_invalid_task_leaves_the_others_loaded_and_shows_its_problem(partitioned_ui):
    base, _, _ = partitioned_ui
    repository = graphql(base, """query { repositoriesOrError { ... on RepositoryConnection { nodes { name
        location { name } pipelines { name description } schedules { name } } } }
        workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError { __typename
        ... on PythonError { message } } } } } }""")
    [entry] = repository["workspaceOrError"]["locationEntries"]
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry  # the location loaded
    [node] = repository["repositoriesOrError"]["nodes"]
    jobs = {p["name"]: p["description"] for p in node["pipelines"]}
    assert {"monthly_sync", "ranged_sync", "broken_sync"} <= set(jobs)
    assert jobs["broken_sync"].startswith("INVALID TASK, left out of the code location:")
    assert (
        "task 'broken' (tasks[2]): run_config.limit: Input should be less than or equal to 1000 (got 5000)"
        in jobs["broken_sync"]
    )
    assert node["schedules"] == []  # the broken task's schedule is not registered


def _ui_backfill(base: str, partitions: list[str], task: str = "monthly", target: str = "events") -> str:
    """"Materialize" on the asset page with partitions picked: the UI's LaunchPartitionBackfill."""
    assets = [{"path": [task, "export", "events"]}, {"path": [task, target]}]
    launched = graphql(
        base,
        """mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
        launchPartitionBackfill(backfillParams: $backfillParams) { __typename
        ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
        ... on PartitionKeysNotFoundError { message } } }""",
        {"backfillParams": {"tags": [], "assetSelection": assets, "partitionNames": partitions, "fromFailure": False}},
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _backfill_runs(instance, backfill_id: str, count: int) -> list:
    def runs():
        found = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        return found if len(found) == count and all(r.is_finished for r in found) else None

    return wait_for(runs, f"the backfill's {count} run(s)", 240)


def test_a_backfill_launched_from_the_asset_page_runs_each_partition(partitioned_ui):
    base, instance, tmp_path = partitioned_ui
    finished = _backfill_runs(instance, _ui_backfill(base, MONTHS[:2]), 2)
    assert [r.status for r in finished] == [dg.DagsterRunStatus.SUCCESS] * 2, [
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


def _ui_execute_check(base: str, asset: list[str], partition: str) -> str:
    """"Execute" on the asset's data_diff check, for the partition picked in the dialog."""
    launched = graphql(base, """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""", {"params": {
        "selector": {"repositoryLocationName": "sync_platform", "repositoryName": "__repository__",
                     "jobName": "__ASSET_JOB", "assetSelection": [],
                     "assetCheckSelection": [{"assetKey": {"path": asset}, "name": "data_diff"}]},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]}}})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["runId"] if "runId" in launched else launched["run"]["runId"]


def test_a_partition_check_of_a_single_run_table_executes_and_reads_per_partition(partitioned_ui):
    base, instance, tmp_path = partitioned_ui
    ranged = ["ranged", "events_ranged"]
    [run] = _backfill_runs(instance, _ui_backfill(base, MONTHS, "ranged", "events_ranged"), 1)  # one run, three months
    assert run.status == dg.DagsterRunStatus.SUCCESS
    with sqlite3.connect(tmp_path / "dst.db") as conn:
        conn.execute("UPDATE events_ranged SET note = 'changed' WHERE id = 40")  # a February row
    assert wait_for_run(instance, _ui_execute_check(base, ranged, MONTHS[1])) in (
        dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)
    outcome = {}
    for month in MONTHS:
        [latest] = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(ranged), "data_diff"), limit=1, partition_filter=_partition(month))
        outcome[month] = latest.status.value
    assert outcome == {MONTHS[0]: "SUCCEEDED", MONTHS[1]: "FAILED", MONTHS[2]: "SUCCEEDED"}

    # What the Checks tab reads: the check is partitioned, so "Execute" asks for a partition.
    node = graphql(base, """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
        assetChecksOrError { ... on AssetChecks { checks { name partitionDefinition { description } } } } } } }""",
                   {"key": {"path": ranged}})["assetNodeOrError"]
    [check] = node["assetChecksOrError"]["checks"]
    assert check["partitionDefinition"]["description"].startswith("Monthly")


def test_the_launchpad_offers_and_checks_the_declared_tasks(partitioned_ui):
    """clean_source's launchpad config types `task` as the declared (valid) tasks: Launch with an
    unknown name is refused before any run starts, naming the value."""
    base, instance, _ = partitioned_ui
    mutation = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
        ... on RunConfigValidationInvalid { errors { message } } ... on LaunchRunSuccess { run { runId } } } }"""
    selector = {"repositoryLocationName": "sync_platform", "repositoryName": "__repository__",
                "jobName": "clean_source"}

    def launch(task: str) -> dict:
        config = {"ops": {"delete_source_rows": {"config": {"task": task, "partition": MONTHS[0], "dry_run": True}}}}
        return graphql(base, mutation, {"params": {"selector": selector, "runConfigData": config}})["launchRun"]

    before = len(instance.get_runs())
    for task in ("montly", "broken"):  # a typo, and an invalid task (not offered)
        refused = launch(task)
        assert refused["__typename"] == "RunConfigValidationInvalid", refused
        assert "not in enum type" in refused["errors"][0]["message"] and task in refused["errors"][0]["message"]
    assert len(instance.get_runs()) == before  # nothing was launched
    assert launch("monthly")["__typename"] == "LaunchRunSuccess"
