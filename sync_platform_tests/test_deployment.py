"""The deployment, as README "Deploy" sets it up: `scripts/deploy.sh start` runs a code server over
gRPC, the webserver and the daemon on deploy/dagster.yaml (PostgreSQL storage, the run queue with
one run per task, run monitoring, run retries, compute logs in S3). Driven only through the UI's
GraphQL API: a schedule turned on runs through the daemon and turned off stops; runs over the
task's limit wait in the queue; a run worker killed with SIGKILL fails its run (not stuck STARTED)
and the automatic retry completes it once, with nothing of the killed run still writing.

Only the run monitor's poll interval is shortened (30 s -> 2 s) in the test's copy of the file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from sqlalchemy.engine import make_url

from sync_platform.defs.eventlog import worker_pid

from .conftest import (
    PG_URL,
    S3_ENDPOINT,
    S3_KEY_ID,
    S3_SECRET,
    _free_port,
    fresh_pg_database,
    graphql,
    s3_client,
    s3_store_config,
    table_task,
    ui_launch,
    ui_reexecute_from_failure,
    wait_for,
    wait_for_run,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]
ROWS = 400
pytestmark = pytest.mark.skipif(not (PG_URL and S3_ENDPOINT), reason="needs the test PostgreSQL and S3 servers")


def _seed(url: str) -> None:
    """items, and a source query whose pace the test sets: pace() sleeps knob.export_s per row."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE knob (export_s float8)")
        conn.execute("INSERT INTO knob VALUES (0)")
        conn.execute("CREATE FUNCTION pace() RETURNS boolean LANGUAGE sql VOLATILE AS "
                     "$$ SELECT true FROM pg_sleep((SELECT export_s FROM knob)) $$")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
        conn.execute(f"INSERT INTO items SELECT i, 'item-' || i FROM generate_series(1, {ROWS}) i")


def _pace(url: str, seconds_per_row: float) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE knob SET export_s = %s", (seconds_per_row,))


def _rows(url: str, table: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT id, label FROM {table} ORDER BY id").fetchall()


class Deployment:
    def __init__(self, base: str, instance: dg.DagsterInstance, data_url: str, env: dict, bucket: str):
        self.base, self.instance, self.data_url, self.env, self.bucket = base, instance, data_url, env, bucket

    def runs(self, job: str) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs(dg.RunsFilter(job_name=job)))


def _deploy(command: str, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", str(ROOT / "scripts/deploy.sh"), command], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    root = tmp_path_factory.mktemp("deployment")
    with fresh_pg_database("dagster") as storage_url, fresh_pg_database("data") as data_url:
        _seed(data_url)
        bucket = f"deploy-{os.getpid()}-{int(time.time())}"
        s3_client().create_bucket(Bucket=bucket)
        ticking = table_task("ticking", ("data", "items"), ("data", "items_ticked"), "lake")
        ticking["schedule"] = {"cron": "* * * * *", "timezone": "UTC"}
        slow = table_task("slow", ("data", "items"), ("data", "items_slow"), "lake", export_batch_rows=50)
        slow["filters"] = {"source_where": "pace() = true"}
        config = write_config(root / "sync.yaml", {"data": data_url}, {"lake": s3_store_config(bucket)},
                              [ticking, slow])
        home = root / "dagster_home"
        home.mkdir()
        instance_yaml = (ROOT / "deploy/dagster.yaml").read_text()
        assert "poll_interval_seconds: 30" in instance_yaml
        fast_monitor = instance_yaml.replace("poll_interval_seconds: 30", "poll_interval_seconds: 2")
        (home / "dagster.yaml").write_text(fast_monitor)
        storage = make_url(storage_url)
        web_port = _free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "SYNC_PLATFORM_"))},
            "DAGSTER_HOME": str(home), "SYNC_PLATFORM_CONFIG": str(config),
            "SYNC_PLATFORM_HOME": str(root / "platform_home"), "SYNC_PLATFORM_BIN": str(Path(sys.executable).parent),
            "SYNC_PLATFORM_CODE_PORT": str(_free_port()), "SYNC_PLATFORM_WEB_PORT": str(web_port),
            "DAGSTER_PG_HOST": storage.host, "DAGSTER_PG_PORT": str(storage.port), "DAGSTER_PG_DB": storage.database,
            "DAGSTER_PG_USER": storage.username, "DAGSTER_PG_PASSWORD": storage.password or "",
            "DAGSTER_COMPUTE_LOGS_BUCKET": bucket, "DAGSTER_COMPUTE_LOGS_ENDPOINT": S3_ENDPOINT,
            "DAGSTER_COMPUTE_LOGS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "TEST_S3_KEY_ID": S3_KEY_ID, "TEST_S3_SECRET": S3_SECRET,
        }
        saved = dict(os.environ)
        os.environ.update(env)  # this process reads the same instance (DAGSTER_HOME, DAGSTER_PG_*)
        try:
            _deploy("start", env)
            with dg.DagsterInstance.from_config(str(home)) as instance:
                assert type(instance.run_launcher).__name__ == "MonitoredRunLauncher"
                yield Deployment(f"http://127.0.0.1:{web_port}", instance, data_url, env, bucket)
        finally:
            stopped = subprocess.run(["bash", str(ROOT / "scripts/deploy.sh"), "stop"], env=env, capture_output=True,
                                     text=True, timeout=300)
            os.environ.clear()
            os.environ.update(saved)
            assert stopped.returncode == 0, stopped.stderr
            for log in (home / "process-logs").glob("*.log"):  # what a failure here needs, in the test's output
                print(f"--- {log.name}\n{log.read_text()[-3000:]}")


def _schedule_state(base: str) -> dict:
    return graphql(base, """query { scheduleOrError(scheduleSelector: {repositoryLocationName: "sync_platform",
        repositoryName: "__repository__", scheduleName: "ticking_schedule"}) {
        ... on Schedule { scheduleState { id status } } } }""")["scheduleOrError"]["scheduleState"]


def _toggle_schedule(base: str, on: bool) -> str:
    """The Automation page's toggle: StartThisSchedule / StopSchedule."""
    if on:
        result = graphql(base, """mutation { startSchedule(scheduleSelector: {repositoryLocationName: "sync_platform",
            repositoryName: "__repository__", scheduleName: "ticking_schedule"}) {
            __typename ... on ScheduleStateResult { scheduleState { status } } } }""")["startSchedule"]
    else:
        result = graphql(base, """mutation($id: String!) { stopRunningSchedule(id: $id) {
            __typename ... on ScheduleStateResult { scheduleState { status } } } }""",
                         {"id": _schedule_state(base)["id"]})["stopRunningSchedule"]
    assert result["__typename"] == "ScheduleStateResult", result
    return result["scheduleState"]["status"]


def _next_minute_plus(seconds: float) -> float:
    now = time.time()
    return now - now % 60 + 60 + seconds - now


def test_a_schedule_turned_on_runs_through_the_daemon_and_turned_off_stops(deployment):
    base = deployment.base
    assert _toggle_schedule(base, on=False) == "STOPPED"
    assert _toggle_schedule(base, on=True) == "RUNNING"
    [run] = wait_for(lambda: deployment.runs("ticking_sync") or None, "the schedule's first run", timeout=150)
    assert run.tags["dagster/schedule_name"] == "ticking_schedule" and run.tags["sync_platform/task"] == "ticking"
    assert wait_for_run(deployment.instance, run.run_id) == dg.DagsterRunStatus.SUCCESS
    assert _rows(deployment.data_url, "items_ticked") == _rows(deployment.data_url, "items")
    [check] = deployment.instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(["ticking", "items_ticked"]), "data_diff"), limit=1)
    assert check.run_id == run.run_id and check.event.dagster_event.event_specific_data.passed
    logs = s3_client().list_objects_v2(Bucket=deployment.bucket, Prefix=f"dagster-compute-logs/storage/{run.run_id}/")
    assert logs.get("KeyCount", 0) > 0, "the run's compute logs are not in S3"

    assert _toggle_schedule(base, on=False) == "STOPPED"
    count = len(deployment.runs("ticking_sync"))
    time.sleep(_next_minute_plus(20))  # past the next tick, and the daemon's time to act on it
    assert len(deployment.runs("ticking_sync")) == count


def test_runs_over_the_task_limit_wait_in_the_queue(deployment):
    url = deployment.data_url
    _pace(url, 0.02)  # each run exports for about 8 s
    launched = [ui_launch(deployment.base, "slow_sync") for _ in range(3)]
    statuses = lambda: [deployment.instance.get_run_by_id(r).status for r in launched]  # noqa: E731
    wait_for(lambda: dg.DagsterRunStatus.STARTED in statuses(), "one run to start")
    time.sleep(4)  # several dequeue intervals: the others must still wait
    assert sorted(s.value for s in statuses()) == ["QUEUED", "QUEUED", "STARTED"], statuses()
    _pace(url, 0)
    finals = [wait_for_run(deployment.instance, r, timeout=240) for r in launched]
    assert finals == [dg.DagsterRunStatus.SUCCESS] * 3
    records = {r.dagster_run.run_id: r for r in deployment.instance.get_run_records(dg.RunsFilter(run_ids=launched))}
    spans = sorted((records[r].start_time, records[r].end_time) for r in launched)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans  # one at a time
    assert _rows(url, "items_slow") == _rows(url, "items")


def test_a_killed_run_worker_fails_its_run_and_the_retry_completes_once(deployment):
    url, instance = deployment.data_url, deployment.instance
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM items WHERE id > 300")  # the copy must change for the retry to show
        conn.execute("UPDATE items SET label = 'v2-' || id")
    _pace(url, 0.05)
    killed = ui_launch(deployment.base, "slow_sync")
    pid = wait_for(lambda: instance.get_run_by_id(killed).status == dg.DagsterRunStatus.STARTED
                   and worker_pid(instance, killed), "the run worker to start")

    def exporting() -> bool:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%pace()%%' "
                                "AND state = 'active' AND pid <> pg_backend_pid()").fetchone()[0] > 0

    wait_for(exporting, "the export to be reading")
    os.kill(pid, signal.SIGKILL)
    _pace(url, 0)
    killed_at = datetime.now(UTC)
    assert wait_for_run(instance, killed, timeout=60) == dg.DagsterRunStatus.FAILURE
    said = [e.message or e.user_message for e in instance.all_logs(killed)]
    # Said by the code server, which saw its child die, or else by run monitoring (MonitoredRunLauncher).
    assert any("was terminated by signal 9 (SIGKILL)" in m or f"the run worker (pid {pid}) is gone" in m
               for m in filter(None, said)), "\n".join(map(str, said))
    assert (datetime.now(UTC) - killed_at).total_seconds() < 60

    retries = lambda: list(instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": killed})))  # noqa: E731
    [retry] = wait_for(retries, "the automatic retry", timeout=120)
    assert retry.tags["dagster/retry_number"] == "1" and retry.tags["sync_platform/task"] == "slow"
    assert wait_for_run(instance, retry.run_id, timeout=180) == dg.DagsterRunStatus.SUCCESS
    assert _rows(url, "items_slow") == [(i, f"v2-{i}") for i in range(1, 301)]

    events_of_killed = len(instance.all_logs(killed))
    time.sleep(5)
    assert len(retries()) == 1  # once
    assert len(instance.all_logs(killed)) == events_of_killed  # nothing of the killed run still writes
    assert not exporting()


def test_a_code_server_lost_with_its_run_is_failed_by_run_monitoring_and_retried(deployment):
    """The code server and its run worker gone at once (what a lost host does to them): nobody is
    left to report the run, so run monitoring (MonitoredRunLauncher's health check) fails it. Dagster's
    retry daemon cannot plan a retry while the code server is down (it logs "Failed to retry run" and
    gives up), so the operator re-executes from failure once the code server is back (README)."""
    url, instance = deployment.data_url, deployment.instance
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE items SET label = 'v3-' || id")
    expected = _rows(url, "items")
    _pace(url, 0.05)
    lost = ui_launch(deployment.base, "slow_sync")
    pid = wait_for(lambda: instance.get_run_by_id(lost).status == dg.DagsterRunStatus.STARTED
                   and worker_pid(instance, lost), "the run worker to start")
    code_server = int((Path(deployment.env["DAGSTER_HOME"]) / "run/code-server.pid").read_text())
    assert os.getpgid(pid) == code_server  # the worker is in the code server's process group
    os.killpg(code_server, signal.SIGKILL)
    _pace(url, 0)
    assert wait_for_run(instance, lost, timeout=60) == dg.DagsterRunStatus.FAILURE
    said = [e.message or e.user_message for e in instance.all_logs(lost)]
    assert any(f"the run worker (pid {pid}) is gone" in m for m in filter(None, said)), "\n".join(map(str, said))

    assert "code-server started" in _deploy("start", deployment.env).stdout  # the other two still run
    again = ui_reexecute_from_failure(deployment.base, lost)
    assert wait_for_run(instance, again, timeout=180) == dg.DagsterRunStatus.SUCCESS
    assert _rows(url, "items_slow") == expected
