"""Operator flows driven through the UI's own GraphQL API on a live `sync-platform ui` (webserver,
daemon and code server), the requests its buttons send: a backfill launched from an asset page, the
data_diff check executed for one partition, the launchpad's typed config, Materialize and Execute
(every run tagged with its task), clean_exports (the export asset says deleted), and the CLI's runs
seen by the UI as runs of the code location."""

from __future__ import annotations

import getpass
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from .conftest import (
    PROJECT_DAGSTER_YAML,
    graphql,
    running_ui,
    table_task,
    ui_launch,
    wait_for,
    wait_for_run,
    write_config,
)

MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]
LOCATION = {"repositoryLocationName": "sync_platform", "repositoryName": "__repository__"}


class UI(NamedTuple):
    base: str
    instance: dg.DagsterInstance
    root: Path
    env: dict
    config: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`sync-platform ...` against the UI's instance and configuration."""
        command = str(Path(sys.executable).parent / "sync-platform")
        return subprocess.run([command, *args], env=self.env, capture_output=True, text=True, timeout=300)
IMPORTED = ["monthly", "events"]


@pytest.fixture(scope="module")
def partitioned_ui(tmp_path_factory):
    """One live UI for the module (its own DAGSTER_HOME): monthly SQLite -> SQLite tasks, per_partition
    and single_run, two unpartitioned tasks for the CLI and the export-state flows, and a broken task.
    Each test works on tasks of its own."""
    tmp_path = tmp_path_factory.mktemp("ui")
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
    tasks += [table_task("plain", ("src", "events"), ("dst", "events_plain"), "x"),
              table_task("kept", ("src", "events"), ("dst", "events_kept"), "x")]
    config = write_config(tmp_path / "sync.yaml", {"src": f"sqlite:///{tmp_path}/src.db", "dst": f"sqlite:///{tmp_path}/dst.db"},
                          {"x": {"type": "local", "path": str(tmp_path / "x")}}, tasks)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    env = {**os.environ, "SYNC_PLATFORM_CONFIG": str(config), "DAGSTER_HOME": str(home),
           "SYNC_PLATFORM_HOME": str(tmp_path / "home")}
    with running_ui(env, tmp_path / "ui.log") as base, \
            dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        yield UI(base, instance, tmp_path, env, config)


def test_one_invalid_task_leaves_the_others_loaded_and_shows_its_problem(partitioned_ui):
    base = partitioned_ui.base
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
    assets = [{"path": [task, "events__export"]}, {"path": [task, target]}]
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
    base, instance, tmp_path = partitioned_ui.base, partitioned_ui.instance, partitioned_ui.root
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
    base, instance, tmp_path = partitioned_ui.base, partitioned_ui.instance, partitioned_ui.root
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
    base, instance = partitioned_ui.base, partitioned_ui.instance
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
    # The table is a choice of the declared tables too.
    config = {"ops": {"delete_source_rows": {"config": {"task": "monthly", "table": "evnets", "dry_run": True}}}}
    refused = graphql(base, mutation, {"params": {"selector": selector, "runConfigData": config}})["launchRun"]
    assert refused["__typename"] == "RunConfigValidationInvalid" and "evnets" in refused["errors"][0]["message"]


def _tags(base: str, run_id: str) -> dict[str, str]:
    run = graphql(base, """query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }""",
                  {"id": run_id})["runOrError"]
    return {t["key"]: t["value"] for t in run["tags"]}


def _launch(base: str, selector: dict, tags: dict | None = None) -> str:
    launched = graphql(base, """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""", {"params": {
        "selector": {**LOCATION, **selector},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}}})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def test_every_run_of_a_task_carries_its_tag(partitioned_ui):
    """The asset page's Materialize, a check executed alone and the task's job, launched as the UI
    launches them: each run is tagged with its task before it starts, and with the configuration
    hash of the task it ran."""
    base, instance = partitioned_ui.base, partitioned_ui.instance
    plain = [{"path": ["plain", "events__export"]}, {"path": ["plain", "events_plain"]}]
    materialized = _launch(base, {"jobName": "__ASSET_JOB", "assetSelection": plain})
    assert wait_for_run(instance, materialized) == dg.DagsterRunStatus.SUCCESS
    checked = _launch(base, {"jobName": "__ASSET_JOB", "assetSelection": [], "assetCheckSelection": [
        {"assetKey": {"path": ["plain", "events_plain"]}, "name": "data_diff"}]})
    job = ui_launch(base, "plain_sync")
    for run_id in (checked, job):
        assert wait_for_run(instance, run_id) == dg.DagsterRunStatus.SUCCESS
    plain_hash = _config_hash(partitioned_ui.config, "plain")
    for run_id in (materialized, checked, job):
        tags = _tags(base, run_id)
        assert tags["sync_platform/task"] == "plain", tags
        assert tags["sync_platform/config_hash"] == f"plain:{plain_hash}", tags
    # A run filter by task finds all of them, as the Runs page's tag filter does.
    found = graphql(base, """query { runsOrError(filter: {tags: [{key: "sync_platform/task", value: "plain"}]}) {
        ... on Runs { results { runId } } } }""")["runsOrError"]["results"]
    assert {materialized, checked, job} <= {r["runId"] for r in found}


def _config_hash(config: Path, task: str) -> str:
    from sync_platform.config.loader import load_valid_tasks

    return load_valid_tasks(config)[0].task(task).config_hash


def test_cli_runs_are_runs_of_the_code_location_and_the_audit_says_who(partitioned_ui):
    """`sync-platform run --wait` launches an ordinary run of the code location: the job's Runs tab
    lists it and it carries the location's origin ("View job" opens the job, not /guess/). The
    audit tells it apart from a run launched in the UI."""
    ui = partitioned_ui
    done = ui.cli("run", "plain", "--wait")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("run ", 1)[1].split()[0].rstrip(",")
    assert "events -> events_plain" in done.stdout and "passed" in done.stdout
    run = graphql(ui.base, """query($id: ID!) { runOrError(runId: $id) { ... on Run { pipelineName status
        repositoryOrigin { repositoryLocationName repositoryName } } } }""", {"id": run_id})["runOrError"]
    assert run == {"pipelineName": "plain_sync", "status": "SUCCESS",
                   "repositoryOrigin": {"repositoryLocationName": "sync_platform", "repositoryName": "__repository__"}}
    runs = graphql(ui.base, """query($selector: PipelineSelector!) { pipelineOrError(params: $selector) {
        ... on Pipeline { runs(limit: 20) { runId } } } }""", {"selector": {**LOCATION, "pipelineName": "plain_sync"}})
    assert run_id in [r["runId"] for r in runs["pipelineOrError"]["runs"]]

    from_ui = ui_launch(ui.base, "plain_sync")
    assert wait_for_run(ui.instance, from_ui) == dg.DagsterRunStatus.SUCCESS
    audit = ui.cli("audit", "plain")
    assert audit.returncode == 0, audit.stderr
    rows = {line.split()[-1]: line for line in audit.stdout.splitlines() if line.strip()}
    assert f"CLI {getpass.getuser()}" in rows[run_id[:8]], audit.stdout
    assert "UI (no user recorded)" in rows[from_ui[:8]], audit.stdout
    assert f"config plain:{_config_hash(ui.config, 'plain')}" in rows[run_id[:8]]

    refused = ui.cli("run", "broken", "--wait")  # an invalid task: one line, exit 2, nothing launched
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("run broken: task 'broken' is not valid"), refused.stderr


def _export_files(base: str, partition: str | None = None) -> dict:
    [latest] = graphql(base, """query($key: AssetKeyInput!) { assetCheckExecutions(assetKey: $key,
        checkName: "export_files", limit: 1) { status evaluation { severity description
        metadataEntries { label ... on TextMetadataEntry { text } } } } }""",
                       {"key": {"path": ["kept", "events__export"]}})["assetCheckExecutions"]
    evaluation = latest["evaluation"]
    return {"status": latest["status"], "severity": evaluation["severity"],
            "state": next(e["text"] for e in evaluation["metadataEntries"] if e["label"] == "status")}


def test_deleted_exports_read_deleted_on_the_export_asset(partitioned_ui):
    """After clean_exports (launched as its launchpad does), the export asset's export_files check
    says deleted (a WARN), also when executed again; exporting again makes it present."""
    base, instance = partitioned_ui.base, partitioned_ui.instance
    assert wait_for_run(instance, ui_launch(base, "kept_sync")) == dg.DagsterRunStatus.SUCCESS
    assert _export_files(base) == {"status": "SUCCEEDED", "severity": "WARN", "state": "present"}
    cleaned = ui_launch(base, "clean_exports", {"ops": {"delete_export_files": {"config": {"task": "kept"}}}})
    assert wait_for_run(instance, cleaned) == dg.DagsterRunStatus.SUCCESS
    assert _export_files(base) == {"status": "FAILED", "severity": "WARN", "state": "deleted"}
    again = _launch(base, {"jobName": "__ASSET_JOB", "assetSelection": [], "assetCheckSelection": [
        {"assetKey": {"path": ["kept", "events__export"]}, "name": "export_files"}]})
    wait_for_run(instance, again)
    assert _export_files(base) == {"status": "FAILED", "severity": "WARN", "state": "deleted"}
    assert wait_for_run(instance, ui_launch(base, "kept_sync")) == dg.DagsterRunStatus.SUCCESS
    assert _export_files(base)["state"] == "present"
