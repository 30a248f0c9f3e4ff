"""Fixtures for real servers. PostgreSQL and S3 tests skip only when their URL is absent;
scripts/test_servers.sh (run by .ci/run) always provides them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
PG_URL = os.environ.get("SYNC_TEST_PG_URL")
MYSQL_URL = os.environ.get("SYNC_TEST_MYSQL_URL")
S3_ENDPOINT = os.environ.get("SYNC_TEST_S3_ENDPOINT")

needs_postgres = pytest.mark.skipif(not PG_URL, reason="SYNC_TEST_PG_URL is not set (scripts/test_servers.sh up)")

# The S3 endpoint authenticates (scripts/test_servers.sh creates these users' keys).
S3_KEY_ID = os.environ.get("SYNC_TEST_S3_KEY_ID", "")
S3_SECRET = os.environ.get("SYNC_TEST_S3_SECRET", "")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own platform home and Dagster instance folder."""
    monkeypatch.setenv("SYNC_PLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    (tmp_path / "dagster_home").mkdir()
    shutil.copyfile(PROJECT_DAGSTER_YAML, tmp_path / "dagster_home" / "dagster.yaml")  # the embedded default


@contextmanager
def fresh_pg_database(prefix: str = "t"):
    """A new, empty PostgreSQL database on the test server, dropped afterwards; yields its URL."""
    if not PG_URL:
        pytest.skip("SYNC_TEST_PG_URL is not set")
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def mysql_url():
    """A fresh, empty database on the MariaDB test server for one test."""
    if not MYSQL_URL:
        pytest.skip("SYNC_TEST_MYSQL_URL is not set")
    import pymysql
    from sqlalchemy.engine import make_url

    url = make_url(MYSQL_URL)
    name = f"t_{uuid.uuid4().hex[:12]}"

    def admin(sql: str) -> None:
        conn = pymysql.connect(host=url.host, port=url.port, user=url.username, password=url.password)
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()

    admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        admin(f"DROP DATABASE IF EXISTS `{name}`")


# Every dialect the cross-dialect tests run on (reladiff's CONN_STRINGS pattern): its name -> the
# fixture giving a fresh database of it, or for a file database the URL of a file of its own
# ({dir}: the test's folder, {role}: src or dst). A dialect added here joins every pair test (the
# type matrix, the key-order tests, the cleanup proof).
DIALECTS = {
    "postgresql": "pg_url",
    "mysql": "mysql_url",
    "sqlite": "sqlite:///{dir}/{role}.db",
    "duckdb": "duckdb:///{dir}/{role}.duckdb",
}


def is_file_dialect(name: str) -> bool:
    return "://" in DIALECTS[name]


def dialect_url(name: str, role: str, tmp_path: Path, request) -> str:
    """A database of dialect `name` for `role` (src, dst); server dialects share one per test."""
    if is_file_dialect(name):
        return DIALECTS[name].format(dir=tmp_path, role=role)
    return request.getfixturevalue(DIALECTS[name])


def s3_client():
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=S3_ENDPOINT, region_name="us-east-1", aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET, config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3_bucket():
    """A fresh bucket on the S3 endpoint."""
    if not S3_ENDPOINT:
        pytest.skip("SYNC_TEST_S3_ENDPOINT is not set")
    name = f"sync-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=name)
    return name


def s3_store_config(bucket: str, **overrides) -> dict:
    return {
        "type": "s3", "endpoint_url": S3_ENDPOINT, "region": "us-east-1", "bucket": bucket, "prefix": "exports",
        "access_key_id": "${TEST_S3_KEY_ID}", "secret_access_key": "${TEST_S3_SECRET}", **overrides,
    }


@pytest.fixture
def s3_credentials(monkeypatch):
    monkeypatch.setenv("TEST_S3_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("TEST_S3_SECRET", S3_SECRET)


def write_config(path: Path, datasources: dict, stores: dict, tasks: list[dict]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {"datasources": {k: {"url": v} for k, v in datasources.items()}, "s3_configs": stores, "tasks": tasks},
            sort_keys=False,
        )
    )
    return path


def table_task(name: str, source: tuple[str, str], target: tuple[str, str], store: str, **run_config) -> dict:
    return {
        "name": name, "type": "table_to_table",
        "source": {"datasource": source[0], "table": source[1]},
        "target": {"datasource": target[0], "table": target[1]},
        "store": {"s3_config_id": store},
        "run_config": run_config,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_ui(env: dict, log: Path, *args: str):
    """`sync-platform ui [args]` (dagster dev: webserver, daemon, code server) until the block
    ends; yields its base URL."""
    command = shutil.which("sync-platform", path=str(Path(sys.executable).parent)) or "sync-platform"
    port = _free_port()
    # setsid + default signals: `dagster dev` started in the background otherwise ignores SIGTERM.
    server = subprocess.Popen(
        ["setsid", "env", "--default-signal=INT,TERM", command, "ui", "--port", str(port), *args],
        env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=2)
                break
            except OSError:
                assert server.poll() is None, log.read_text()[-3000:]
                time.sleep(0.5)
        yield base
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


def graphql(base: str, query: str, variables: dict | None = None) -> dict:
    """One request to the UI's GraphQL API (what its buttons send)."""
    request = urllib.request.Request(
        f"{base}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


def wait_for(condition, what: str, timeout: float = 120):
    """Poll `condition` until it returns something true; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


_SELECTOR = {"repositoryLocationName": "sync_platform", "repositoryName": "__repository__"}


def ui_launch(base: str, job: str, run_config: dict | None = None) -> str:
    """Launch a run as the UI's launchpad does; its run id."""
    launched = graphql(
        base,
        """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
        ... on RunConfigValidationInvalid { errors { message } } } }""",
        {"params": {"selector": {**_SELECTOR, "jobName": job}, "runConfigData": run_config or {}}},
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def ui_terminate(base: str, instance, run_id: str) -> None:
    """Press Terminate on a run and wait until it is canceled."""
    import dagster as dg

    terminated = graphql(
        base,
        """mutation($runId: String!) { terminateRun(runId: $runId) {
        __typename ... on TerminateRunFailure { message } ... on PythonError { message } } }""",
        {"runId": run_id},
    )["terminateRun"]
    assert terminated["__typename"] == "TerminateRunSuccess", terminated
    assert wait_for_run(instance, run_id) == dg.DagsterRunStatus.CANCELED


def ui_reexecute_from_failure(base: str, run_id: str) -> str:
    again = graphql(base, """mutation($runId: String!) {
        launchRunReexecution(reexecutionParams: {parentRunId: $runId, strategy: FROM_FAILURE}) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""", {"runId": run_id})
    again = again["launchRunReexecution"]
    assert again["__typename"] == "LaunchRunSuccess", again
    return again["run"]["runId"]


def wait_for_run(instance, run_id: str, timeout: float = 180):
    """The run's final status."""
    import dagster as dg

    final = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    return wait_for(lambda: instance.get_run_by_id(run_id).status in final and instance.get_run_by_id(run_id).status,
                    f"run {run_id[:8]} to end", timeout)
