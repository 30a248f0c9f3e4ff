"""Cleanup and operations: source cleanup in rounds behind the interlock, with its history;
export-file cleanup; the S3 connection test; the archival sensor."""

from __future__ import annotations

import getpass
import socket
import sqlite3
from datetime import date, timedelta

import dagster as dg
import psycopg
import pytest

from sync_platform.cli import main as cli
from sync_platform.defs import naming
from sync_platform.defs.location import build_definitions
from sync_platform.defs.naming import CLEAN_SOURCE_OP

from .conftest import S3_ENDPOINT, s3_store_config, table_task, write_config

JANUARY, FEBRUARY = "2024-01-01", "2024-02-01"


def _events(pg_url: str, january: int = 2500, february: int = 300) -> list[tuple]:
    rows = [(i, date(2024, 1, 1) + timedelta(days=i % 31), f"{i}.50", f"n{i}") for i in range(1, january + 1)]
    rows += [
        (january + i, date(2024, 2, 1) + timedelta(days=i % 29), f"{i}.25", f"m{i}") for i in range(1, february + 1)
    ]
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE events (id int PRIMARY KEY, at date, amount numeric(10,2), note text)")
        with conn.cursor().copy("COPY events FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    return rows


def _config(tmp_path, pg_url, partitioned: bool = True, stores: dict | None = None, **task_fields):
    task = table_task(
        "ev", ("src", "events"), ("dst", "events"), "exports", source_timezone="UTC", algorithm="hashdiff"
    )
    if partitioned:
        task["partition"] = {"column": "at", "granularity": "month", "start": JANUARY, "end": "2024-03-01"}
    task.update(task_fields)
    return write_config(tmp_path / "sync.yaml", {"src": pg_url, "dst": f"sqlite:///{tmp_path}/dw.db"},
                        stores or {"exports": {"type": "local", "path": str(tmp_path / "exports")}}, [task])


def _sync(config, instance, partition: str | None = JANUARY) -> dg.ExecuteInProcessResult:
    result = (
        build_definitions(config)
        .resolve_job_def("ev_sync")
        .execute_in_process(instance=instance, partition_key=partition)
    )
    assert result.success
    return result


def _source_ids(pg_url) -> list[int]:
    with psycopg.connect(pg_url) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM events ORDER BY id")]


def _observations(instance, key) -> list[dict]:
    records = instance.fetch_observations(key, limit=50).records
    return [
        {k: v.value for k, v in r.event_log_entry.dagster_event.event_specific_data.asset_observation.metadata.items()}
        | {"partition": r.event_log_entry.dagster_event.partition}
        for r in records
    ]


def _finals(observations: list[dict]) -> list[dict]:
    """The outcome of each cleanup, without the records of its rounds."""
    return [o for o in observations if o["status"] != "running"]


SOURCE_KEY = dg.AssetKey(["ev", "events__source"])


def test_clean_source_in_rounds_after_a_passing_check_records_history(tmp_path, pg_url, capsys):
    rows = _events(pg_url)
    config = _config(tmp_path, pg_url)
    with dg.DagsterInstance.get() as instance:
        _sync(config, instance)
        assert cli(["clean-source", "ev", "--partition", JANUARY, "--dry-run", "--config", str(config)]) == 0
        assert _source_ids(pg_url) == [r[0] for r in rows]  # a dry run deletes nothing
        assert cli(["clean-source", "ev", "--partition", JANUARY, "--batch-size", "1000", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert (
            "dry-run: 2500 of 2500 rows of events would be deleted, each proved identical in the target; 0 not verified"
            in out
        )
        assert (
            "cleaned: 2500 rows deleted from events in 3 rounds of at most 1000, each proved identical in the target"
            in out
        )
        assert _source_ids(pg_url) == [r[0] for r in rows if r[1] >= date(2024, 2, 1)]  # February untouched

        records = _observations(instance, SOURCE_KEY)
        cleaned, dry = _finals(records)[:2]
    # One record per round, written before the round commits, then the outcome.
    assert [(r["status"], r["rounds"], r["in_flight_rows"]) for r in reversed(records[1:4])] == [
        ("running", 0, 1000), ("running", 1, 1000), ("running", 2, 500)]
    assert dry["status"] == "dry-run" and dry["rows_deleted"] == 0 and dry["rows_matching"] == 2500
    assert cleaned["status"] == "cleaned" and cleaned["partition"] == JANUARY and cleaned["verified"] is True
    assert (cleaned["rows_deleted"], cleaned["rounds"], cleaned["batch_size"], cleaned["rows_not_verified"]) == (
        2500,
        3,
        1000,
        0,
    )
    assert cleaned["host"] == socket.gethostname() and cleaned["user"] == getpass.getuser()
    assert cleaned["ip"].count(".") == 3 and cleaned["keyed_by"] == "id" and cleaned["forced"] is False
    assert 'FROM "events" WHERE (("at" >= %s AND "at" < %s)) ORDER BY k0 LIMIT 1000 FOR UPDATE;' in cleaned["sql"]
    assert 'DELETE FROM "events" WHERE ("id") IN (<the keys whose row hashes match>)' in cleaned["sql"]
    assert cleaned["parameters"] == ["2024-01-01", "2024-02-01"]
    assert cleaned["started_at"] <= cleaned["ended_at"] and "passed" in cleaned["interlock"]

    assert cli(["history", "ev", "--config", str(config)]) == 0
    history = capsys.readouterr().out.splitlines()
    assert history[2].split()[1:7] == ["clean-source", "events", JANUARY, "cleaned", "2500", "deleted"]
    assert f"{getpass.getuser()}@{socket.gethostname()}" in history[2]
    assert (
        'rounds=3 SELECT ("id"), row_hash(4 columns) FROM "events" WHERE ("at" >= ? AND "at" < ?) ORDER BY ("id") '
        'LIMIT 1000 FOR UPDATE; DELETE'
        in history[2]
    )
    assert any(line.split()[1:5] == ["export", "events", JANUARY, "exported"] for line in history)


def test_interlock_refuses_without_a_passing_check_after_the_import(tmp_path, pg_url, capsys):
    rows = _events(pg_url, 50, 10)
    config = _config(tmp_path, pg_url)
    defs = build_definitions(config)
    with dg.DagsterInstance.get() as instance:
        assert cli(["clean-source", "ev", "--partition", JANUARY, "--config", str(config)]) == 1
        assert "refused to clean events: events partition 2024-01-01 has never been imported" in capsys.readouterr().err
        assert cli(["clean-source", "ev", "--config", str(config)]) == 1
        assert "task 'ev' is partitioned by at: give a partition key" in capsys.readouterr().err

        _sync(config, instance)
        dw = sqlite3.connect(tmp_path / "dw.db")
        dw.execute("UPDATE events SET note = 'changed' WHERE id = 7")
        dw.commit()
        check_only = defs.resolve_implicit_global_asset_job_def().get_subset(
            asset_check_selection={dg.AssetCheckKey(dg.AssetKey(["ev", "events"]), "data_diff")}, asset_selection=set())
        assert not check_only.execute_in_process(instance=instance, partition_key=JANUARY, raise_on_error=False).success
        assert cli(["clean-source", "ev", "--partition", JANUARY, "--config", str(config)]) == 1
        assert "data_diff of events partition 2024-01-01 failed (data inconsistent)" in capsys.readouterr().err

        # A check that passed before the latest import does not count either.
        _sync(config, instance)
        only_import = defs.resolve_implicit_global_asset_job_def().get_subset(
            asset_selection={dg.AssetKey(["ev", "events"])}, asset_check_selection=set())
        assert only_import.execute_in_process(instance=instance, partition_key=JANUARY).success
        assert cli(["clean-source", "ev", "--partition", JANUARY, "--config", str(config)]) == 1
        assert "last ran before its latest import" in capsys.readouterr().err
        assert len(_source_ids(pg_url)) == 60  # nothing deleted by any refusal

        assert cli(["clean-source", "ev", "--partition", JANUARY, "--force", "--config", str(config)]) == 0
        forced = _observations(instance, SOURCE_KEY)[0]
        statuses = [o["status"] for o in _finals(_observations(instance, SOURCE_KEY))]
    assert forced["forced"] is True and forced["interlock"].startswith(
        "FORCED: data_diff of events partition 2024-01-01 last ran before"
    )
    assert statuses == ["cleaned", "refused", "refused", "refused"]
    assert _source_ids(pg_url) == [r[0] for r in rows if r[1] >= date(2024, 2, 1)]


def test_whole_table_needs_all_rows_and_a_custom_where_stays_in_its_partition(tmp_path, pg_url, capsys):
    rows = _events(pg_url, 40, 10)
    config = _config(tmp_path, pg_url, partitioned=False)
    with dg.DagsterInstance.get() as instance:
        _sync(config, instance, partition=None)
        assert cli(["clean-source", "ev", "--config", str(config)]) == 1
        assert "would delete the whole table; give a where, or all_rows: true" in capsys.readouterr().err
        assert cli(["clean-source", "ev", "--where", "amount > 30", "--batch-size", "4", "--config", str(config)]) == 0
        assert _source_ids(pg_url) == [r[0] for r in rows if not float(r[2]) > 30]
        assert cli(["clean-source", "ev", "--where", "amount > 30;", "--config", str(config)]) == 1
        assert "remove the trailing ';'" in capsys.readouterr().err
        assert cli(["clean-source", "ev", "--all-rows", "--config", str(config)]) == 0
    assert _source_ids(pg_url) == []


def test_clean_exports_deleted_then_not_exist(tmp_path, pg_url, capsys):
    _events(pg_url, 30, 5)
    config = _config(tmp_path, pg_url)
    folder = tmp_path / "exports" / "ev" / "events" / JANUARY
    with dg.DagsterInstance.get() as instance:
        _sync(config, instance)
        assert (folder / "manifest.json").exists()
        assert cli(["clean-exports", "ev", "--partition", JANUARY, "--config", str(config)]) == 0
        assert not folder.exists()
        assert cli(["clean-exports", "ev", "--partition", JANUARY, "--config", str(config)]) == 0
        out = capsys.readouterr().out.splitlines()
        observed = _observations(instance, dg.AssetKey(["ev", "events__export"]))
        assert cli(["clean-exports", "ev", "--config", str(config)]) == 1  # a partitioned table names its partition
    assert out[0].startswith("deleted: 2 objects under file://") and out[1].startswith("not-exist: 0 objects")
    assert [(o["status"], o["objects_deleted"], o["partition"]) for o in observed] == [
        ("not-exist", 0, JANUARY),
        ("deleted", 2, JANUARY),
    ]


def test_clean_exports_on_s3(tmp_path, pg_url, s3_bucket, s3_credentials):
    from .conftest import s3_client

    _events(pg_url, 30, 5)
    config = _config(tmp_path, pg_url, stores={"exports": s3_store_config(s3_bucket)})
    with dg.DagsterInstance.get() as instance:
        _sync(config, instance)
        assert s3_client().list_objects_v2(Bucket=s3_bucket, Prefix=f"exports/ev/events/{JANUARY}/")["KeyCount"] == 2
        assert cli(["clean-exports", "ev", "--partition", JANUARY, "--config", str(config)]) == 0
    assert s3_client().list_objects_v2(Bucket=s3_bucket, Prefix="exports/ev/")["KeyCount"] == 0


@pytest.mark.skipif(not S3_ENDPOINT, reason="SYNC_TEST_S3_ENDPOINT is not set")
@pytest.mark.parametrize(
    "overrides, message",
    [
        ({}, None),
        ({"access_key_id": "AKIANOTAKEY000000000"}, "the access key id is not known to the endpoint (bad credentials)"),
        ({"secret_access_key": "wrong-secret"}, "the secret access key is wrong (bad credentials)"),
        ({"bucket": "no-such-bucket-here"}, "bucket 'no-such-bucket-here' does not exist"),
        (
            {"access_key_id": "${TEST_S3_DENIED_KEY_ID}", "secret_access_key": "${TEST_S3_DENIED_SECRET}"},
            "(no permission)",
        ),
        ({"endpoint_url": "http://127.0.0.1:9"}, "endpoint unreachable"),
    ],
)
def test_s3_connection_test_names_the_cause(
    tmp_path, s3_bucket, s3_credentials, monkeypatch, capsys, overrides, message
):
    import os

    monkeypatch.setenv("TEST_S3_DENIED_KEY_ID", os.environ.get("SYNC_TEST_S3_DENIED_KEY_ID", ""))
    monkeypatch.setenv("TEST_S3_DENIED_SECRET", os.environ.get("SYNC_TEST_S3_DENIED_SECRET", ""))
    config = write_config(
        tmp_path / "s.yaml", {}, {"lake": s3_store_config(overrides.pop("bucket", s3_bucket), **overrides)}, []
    )
    code = cli(["test-s3", "lake", "--config", str(config)])
    out, err = capsys.readouterr()
    if message is None:
        assert code == 0 and out.startswith(f"connection test succeeded (s3://{s3_bucket}/exports/")
    else:
        assert code == 1 and err.startswith("connection test failed: S3 upload of ") and message in err, err


def test_s3_connection_test_job(tmp_path, s3_bucket, s3_credentials):
    config = write_config(tmp_path / "s.yaml", {}, {"lake": s3_store_config(s3_bucket)}, [])
    job = build_definitions(config).resolve_job_def(naming.TEST_S3_JOB)
    with dg.DagsterInstance.ephemeral() as instance:
        ok = job.execute_in_process(
            instance=instance, run_config={"ops": {"s3_round_trip": {"config": {"s3_config_id": "lake"}}}}
        )
        assert ok.success
        bad = job.execute_in_process(instance=instance, raise_on_error=False, run_config={
            "ops": {"s3_round_trip": {"config": {"s3_config_id": "lake", "bucket": "missing-bucket"}}}})
        assert not bad.success
        [failure] = [e for e in bad.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        description = failure.step_failure_data.user_failure_data.description
        assert description.startswith("connection test failed: S3 upload of s3://missing-bucket/exports/_sync_platform_connection_test/")
        assert description.endswith(" failed: bucket 'missing-bucket' does not exist")
    assert s3_client_keys(s3_bucket) == []  # the round trip leaves nothing behind


def s3_client_keys(bucket: str) -> list[str]:
    from .conftest import s3_client

    return [o["Key"] for o in s3_client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_archival_sensor_cleans_only_verified_partitions(tmp_path, pg_url):
    _events(pg_url, 30, 20)
    config = _config(tmp_path, pg_url, cleanup={"source_after_verify": True, "batch_size": 7})
    defs = build_definitions(config)
    sensor = defs.resolve_sensor_def("ev_archive")
    with dg.DagsterInstance.get() as instance:
        _sync(config, instance, JANUARY)
        _sync(config, instance, FEBRUARY)
        dw = sqlite3.connect(tmp_path / "dw.db")
        dw.execute("DELETE FROM events WHERE id = 2")  # February stays verified, January now fails its check
        dw.commit()
        check_only = defs.resolve_implicit_global_asset_job_def().get_subset(
            asset_check_selection={dg.AssetCheckKey(dg.AssetKey(["ev", "events"]), "data_diff")}, asset_selection=set())
        assert not check_only.execute_in_process(instance=instance, partition_key=JANUARY, raise_on_error=False).success

        context = dg.build_sensor_context(instance=instance, definitions=defs)
        result = sensor(context)
        requests = result.run_requests
        assert [r.run_config["ops"][CLEAN_SOURCE_OP]["config"]["partition"] for r in requests] == [JANUARY, FEBRUARY]
        # January's first (passing) check asks for a cleanup, but the interlock sees its latest check failed.
        outcomes = {}
        for request in requests:
            run = defs.resolve_job_def(naming.CLEAN_SOURCE_JOB).execute_in_process(
                instance=instance, run_config=request.run_config, tags=request.tags, raise_on_error=False)
            outcomes[request.run_config["ops"][CLEAN_SOURCE_OP]["config"]["partition"]] = run.success
        assert outcomes == {JANUARY: False, FEBRUARY: True}
        again = sensor(dg.build_sensor_context(instance=instance, definitions=defs, cursor=result.cursor))
        assert again.run_requests == []  # nothing new passed since
    assert len(_source_ids(pg_url)) == 30  # only February's 20 rows were deleted


def test_archival_needs_a_slice_to_delete(tmp_path, pg_url):
    from sync_platform.config import ConfigError, load_config

    with pytest.raises(
        ConfigError, match=r"task 'ev' \(tasks\[0\]\): cleanup.source_after_verify would delete the whole source table"
    ):
        load_config(_config(tmp_path, pg_url, partitioned=False, cleanup={"source_after_verify": True}))
