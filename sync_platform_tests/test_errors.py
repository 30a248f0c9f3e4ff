"""Bad inputs at run time give clear errors, raised before anything is written, without secrets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sync_platform.config import load_config
from sync_platform.engine.errors import DatabaseUnreachable, TableNotFound
from sync_platform.engine.stores import StoreError
from sync_platform.platform import Platform

from .conftest import S3_KEY_ID, s3_store_config, table_task, write_config


def _sqlite_source(tmp_path) -> str:
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT)")
    conn.executemany("INSERT INTO orders VALUES (?, ?)", [(i, f"n{i}") for i in range(10)])
    conn.commit()
    return f"sqlite:///{tmp_path}/src.db"


def _platform(tmp_path, source, target, store, table="orders") -> Platform:
    path = write_config(
        tmp_path / "sync.yaml", {"src": source, "dst": target}, {"exports": store},
        [table_task("copy", ("src", table), ("dst", "orders_copy"), "exports")],
    )
    return Platform(load_config(path))


def test_missing_source_table_writes_nothing(tmp_path):
    platform = _platform(
        tmp_path, _sqlite_source(tmp_path), f"sqlite:///{tmp_path}/dst.db",
        {"type": "local", "path": str(tmp_path / "exports")}, table="ordres",
    )
    with pytest.raises(TableNotFound, match=r"table ordres does not exist in SQLite database .*src\.db"):
        platform.export(platform.table_sync("copy"))
    assert not (tmp_path / "exports").exists()


def test_unreachable_database_is_named_without_password(tmp_path):
    # A port nothing listens on; the password must not leak into the message.
    platform = _platform(
        tmp_path, "postgresql://etl:hunter2-secret@127.0.0.1:9/dw", f"sqlite:///{tmp_path}/dst.db",
        {"type": "local", "path": str(tmp_path / "exports")},
    )
    with pytest.raises(DatabaseUnreachable) as caught:
        platform.export(platform.table_sync("copy"))
    message = str(caught.value)
    assert "cannot connect to PostgreSQL postgresql+psycopg://etl:***@127.0.0.1:9/dw" in message or \
        "cannot connect to PostgreSQL postgresql://etl:***@127.0.0.1:9/dw" in message
    assert "hunter2-secret" not in message
    assert not (tmp_path / "exports").exists()


@pytest.mark.parametrize(
    "override, cause",
    [
        ({"access_key_id": "AKIAWRONGKEY"}, "the access key id is not known to the endpoint (bad credentials)"),
        ({"secret_access_key": "wrong-secret"}, "the secret access key is wrong (bad credentials)"),
        ({"bucket": "no-such-bucket-here"}, "bucket 'no-such-bucket-here' does not exist"),
    ],
    ids=["bad-key-id", "bad-secret", "missing-bucket"],
)
def test_wrong_s3_settings_are_named(override, cause, tmp_path, s3_bucket, s3_credentials):
    store = {**s3_store_config(s3_bucket), **override}
    platform = _platform(tmp_path, _sqlite_source(tmp_path), f"sqlite:///{tmp_path}/dst.db", store)
    with pytest.raises(StoreError) as caught:
        platform.export(platform.table_sync("copy"))
    assert cause in str(caught.value)
    assert "wrong-secret" not in str(caught.value)


def test_s3_bucket_override_is_used(tmp_path, s3_bucket, s3_credentials):
    from .conftest import s3_client

    other = f"{s3_bucket}-other"
    s3_client().create_bucket(Bucket=other)
    path = write_config(
        tmp_path / "sync.yaml", {"src": _sqlite_source(tmp_path), "dst": f"sqlite:///{tmp_path}/dst.db"},
        {"exports": s3_store_config(s3_bucket)},
        [{**table_task("copy", ("src", "orders"), ("dst", "orders_copy"), "exports"),
          "store": {"s3_config_id": "exports", "s3_config_bucket": other}}],
    )
    platform = Platform(load_config(path))
    result = platform.export(platform.table_sync("copy"))
    assert result.location == f"s3://{other}/exports/copy/orders/full"
    keys = [o["Key"] for o in s3_client().list_objects_v2(Bucket=other)["Contents"]]
    assert keys == ["exports/_sync_platform/writers/copy/orders/full.json",  # the folder's writer lease
                    "exports/copy/orders/full/manifest.json", "exports/copy/orders/full/part-00000.csv.zst"]
    assert S3_KEY_ID not in result.location


def test_validate_connect_reports_every_unreachable_piece(tmp_path, s3_bucket, s3_credentials):
    import subprocess
    import sys

    source = _sqlite_source(tmp_path)
    path = write_config(
        tmp_path / "sync.yaml",
        {"src": source, "down": "postgresql://etl:pw-never-shown@127.0.0.1:9/dw", "dst": f"sqlite:///{tmp_path}/dst.db"},
        {"exports": s3_store_config(s3_bucket), "badbucket": s3_store_config("missing-bucket-x")},
        [
            table_task("ok_task", ("src", "orders"), ("dst", "orders_copy"), "exports"),
            table_task("bad_table", ("src", "nope"), ("dst", "x"), "exports"),
            table_task("bad_target", ("src", "orders"), ("down", "x"), "exports"),
            table_task("bad_store", ("src", "orders"), ("dst", "y"), "badbucket"),
        ],
    )
    done = subprocess.run(
        [sys.executable, "-m", "sync_platform.cli", "validate", "--connect", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == f"3 problem(s) in {path}:"
    assert any(line.startswith("  - task 'bad_table': table nope does not exist") for line in lines)
    assert any(line.startswith("  - task 'bad_target': cannot connect to PostgreSQL") for line in lines)
    assert any("task 'bad_store'" in line and "bucket 'missing-bucket-x' does not exist" in line for line in lines)
    assert "pw-never-shown" not in done.stderr


def test_foreseen_failures_reach_the_run_as_one_paragraph(tmp_path):
    """A refused load and a missing table fail their step with a dg.Failure naming task, tables,
    stage and cause (what the UI shows at the top of the step), not a bare traceback."""
    import dagster as dg

    from sync_platform.defs.location import build_definitions

    source = _sqlite_source(tmp_path)
    with sqlite3.connect(tmp_path / "dst.db") as conn:
        conn.execute("CREATE TABLE orders_copy (id INTEGER PRIMARY KEY, note TEXT CHECK (note <> 'n3'))")
    path = write_config(tmp_path / "sync.yaml", {"src": source, "dst": f"sqlite:///{tmp_path}/dst.db"},
                        {"exports": {"type": "local", "path": str(tmp_path / "x")}},
                        [table_task("copy", ("src", "orders"), ("dst", "orders_copy"), "exports"),
                         table_task("gone", ("src", "ordres"), ("dst", "orders_copy"), "exports")])
    defs = build_definitions(path)
    with dg.DagsterInstance.ephemeral() as instance:
        failures = {}
        for job in ("copy_sync", "gone_sync"):
            result = defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False)
            [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
            failures[job] = failure.step_failure_data
    refused, missing = failures["copy_sync"], failures["gone_sync"]
    assert refused.error.cls_name == "Failure" and refused.user_failure_data.description == (
        "task 'copy', orders -> orders_copy: import failed: IntegrityError: CHECK constraint failed: note <> 'n3'")
    assert missing.user_failure_data.description.startswith(
        "task 'gone', ordres -> orders_copy: export failed: table ordres does not exist in SQLite database")


OUTAGE_EXPORT = """
import sys
from sync_platform.config import load_config
from sync_platform.errors import one_line
from sync_platform.platform import Platform
platform = Platform(load_config(sys.argv[1]))
try:
    platform.export(platform.table_sync("copy"))
except Exception as error:
    failure = error  # kept until the process ends, as a Dagster step keeps its failure's cause
    print("FAILED:", one_line(error), file=sys.stderr, flush=True)
    sys.exit(3)
"""


def test_an_s3_outage_mid_export_fails_with_its_one_error_and_no_noise(tmp_path, pg_url):
    """A real outage: the S3 server is killed while the export uploads. The export fails naming
    the upload and the endpoint, and nothing else reaches stderr (the ADBC reader used to be
    closed under its open statement at exit: `Exception ignored ... Cannot close AdbcConnection`)."""
    import signal
    import subprocess
    import sys
    import time

    import boto3
    import psycopg

    from .conftest import _free_port, wait_for
    from .tables import create_pace

    port = _free_port()
    moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k",
                          aws_secret_access_key="s")
        wait_for(lambda: _answers(s3), "the private S3 server", timeout=60)
        s3.create_bucket(Bucket="outage")
        create_pace(pg_url, every=20_000, seconds=1)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE items AS SELECT i AS id, md5(i::text) AS label "
                         "FROM generate_series(1, 200000) i")
        task = table_task("copy", ("src", "items"), ("dst", "items_copy"), "s3", export_batch_rows=20000)
        task["filters"] = {"source_where": "pace(id) = true"}
        config = write_config(tmp_path / "sync.yaml", {"src": pg_url, "dst": f"sqlite:///{tmp_path}/dst.db"},
                              {"s3": {"type": "s3", "endpoint_url": endpoint, "bucket": "outage",
                                      "access_key_id": "k", "secret_access_key": "s"}}, [task])
        export = subprocess.Popen([sys.executable, "-c", OUTAGE_EXPORT, str(config)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        wait_for(lambda: any(o["Key"].startswith("copy/") for o in s3.list_objects_v2(Bucket="outage").get(
            "Contents", [])), "the first export file", timeout=60)
        moto.send_signal(signal.SIGKILL)  # the store goes away mid-export
        moto.wait(10)
        started = time.monotonic()
        _, stderr = export.communicate(timeout=300)
    finally:
        moto.kill()
    assert export.returncode == 3
    [line] = stderr.strip().splitlines()  # the one error, nothing beside it
    assert line.startswith("FAILED: S3 upload of s3://outage/copy/items/full/part-") and \
        "failed: endpoint unreachable" in line, line
    assert time.monotonic() - started < 240


def _answers(s3) -> bool:
    try:
        s3.list_buckets()
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False


ABANDONED_READ = """
import sys
from sync_platform.engine import TableName, database_for
database = database_for(sys.argv[1])
def export():
    reader = database.read_batches(TableName("items"), database.reflect(TableName("items")))
    next(reader)
    raise RuntimeError("the upload failed")
try:
    export()
except RuntimeError as error:
    failure = error  # the reader stays suspended in the kept traceback until the process ends
"""


def test_a_read_abandoned_mid_stream_closes_without_noise(pg_url):
    """A PostgreSQL read left mid-stream by a failure closes its statement before its connection,
    even when that happens at exit: no `Exception ignored ... Cannot close AdbcConnection with open
    AdbcStatement` beside the real error."""
    import subprocess
    import sys

    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items AS SELECT i AS id, md5(i::text) AS label FROM generate_series(1, 300000) i")
    done = subprocess.run([sys.executable, "-c", ABANDONED_READ, pg_url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
