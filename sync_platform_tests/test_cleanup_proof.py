"""A source cleanup deletes only rows the target holds identically, proved in the round that
deletes them: rows changed, added or lost after the check survive and are reported; a check
result reported by hand in the UI never unlocks a cleanup; a cleanup killed with SIGKILL leaves a
history that says exactly what it committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from sync_platform.cli import main as cli
from sync_platform.defs.location import build_definitions
from sync_platform.defs.naming import CLEAN_SOURCE_OP
from sync_platform.engine.cleanup import CleanupRequest, clean_in_rounds, round_committed
from sync_platform.engine.columns import Column, Kind, TableName, TableSchema
from sync_platform.engine.dialects import database_for
from sync_platform.engine.diff import Side
from sync_platform.engine.filters import RowFilter, TimeWindow

from .conftest import (
    DIALECTS,
    dialect_url,
    graphql,
    running_ui,
    table_task,
    ui_launch,
    wait_for,
    wait_for_run,
    write_config,
)
from .tables import create_table, execute

JANUARY = "2024-01-01"
SOURCE_KEY = dg.AssetKey(["ev", "events__source"])
CHECK = {"assetKey": {"path": ["ev", "events"]}, "name": "data_diff"}


def _url(kind: str, request, tmp_path: Path, name: str) -> str:
    return dialect_url(kind, name, tmp_path, request)


def _create_events(url: str, january: int = 50, february: int = 10, primary_key: bool = True) -> None:
    rows = [{"id": i, "at": date(2024, 1, 1) + timedelta(days=i % 31), "amount": Decimal(f"{i}.50"), "note": f"n{i}"}
            for i in range(1, january + 1)]
    rows += [{"id": january + i, "at": date(2024, 2, 1) + timedelta(days=i % 29), "amount": Decimal(f"{i}.25"),
              "note": f"m{i}"} for i in range(1, february + 1)]
    columns = (Column("id", Kind.INT32, nullable=False), Column("at", Kind.DATE),
               Column("amount", Kind.DECIMAL, precision=10, scale=2), Column("note", Kind.STRING, length=40))
    schema = TableSchema(columns, ("id",) if primary_key else ())
    create_table(url, "events", schema, rows)


def _execute(url: str, *statements: str) -> None:
    for statement in statements:
        execute(url, statement)


def _ids(url: str, table: str = "events") -> list[int]:
    database = database_for(url)
    ids = [r[0] for r in database.query(f"SELECT id FROM {database.dialect.qualified(TableName(table))} ORDER BY id")]
    database.close()
    return ids


def _config(tmp_path: Path, source_url: str, target_url: str, **task_fields) -> Path:
    task = table_task("ev", ("src", "events"), ("dst", "events"), "exports", source_timezone="UTC")
    task["partition"] = {"column": "at", "granularity": "month", "start": JANUARY, "end": "2024-03-01"}
    task.update(task_fields)
    return write_config(tmp_path / "sync.yaml", {"src": source_url, "dst": target_url},
                        {"exports": {"type": "local", "path": str(tmp_path / "exports")}}, [task])


def _sync(config: Path, instance) -> None:
    job = build_definitions(config).resolve_job_def("ev_sync")
    assert job.execute_in_process(instance=instance, partition_key=JANUARY).success


def _records(instance) -> list[dict]:
    records = instance.fetch_observations(SOURCE_KEY, limit=200).records
    return [
        {k: v.value for k, v in r.event_log_entry.dagster_event.event_specific_data.asset_observation.metadata.items()}
        | {"run_id": r.event_log_entry.run_id}
        for r in records
    ]


# Each dialect is the source once (locks and deletes) and the target once (proves).
# Each dialect of the registry once as source and once as target: (a, b), (b, c), ..., (z, a).
PAIRS = [(name, list(DIALECTS)[(i + 1) % len(DIALECTS)]) for i, name in enumerate(DIALECTS)]


@pytest.mark.parametrize("source_kind, target_kind", PAIRS, ids=[f"{s}-to-{t}" for s, t in PAIRS])
def test_rows_changed_added_or_lost_after_the_check_survive(tmp_path, request, capsys, source_kind, target_kind):
    source, target = _url(source_kind, request, tmp_path, "src"), _url(target_kind, request, tmp_path, "dst")
    _create_events(source)
    config = _config(tmp_path, source, target)
    with dg.DagsterInstance.get() as instance:
        _sync(config, instance)  # January exported, imported, checked: passed
        _execute(source, "INSERT INTO events VALUES (1000, '2024-01-15', 1.00, 'late')",  # never copied
                 "UPDATE events SET note = 'edited' WHERE id = 5")  # copied before the edit
        _execute(target, "DELETE FROM events WHERE id = 7")  # lost from the target

        assert cli(["clean-source", "ev", "--partition", JANUARY, "--dry-run", "--config", str(config)]) == 0
        assert (
            "dry-run: 48 of 51 rows of events would be deleted, each proved identical in the target; 3 not verified"
            in (capsys.readouterr().out)
        )
        assert cli(["clean-source", "ev", "--partition", JANUARY, "--batch-size", "20", "--config", str(config)]) == 1
        err = capsys.readouterr().err
        final = _records(instance)[0]

    assert err.count("\n") == 1 and "Traceback" not in err  # one line, no stack trace
    assert err.startswith("clean-source ev: partial: 3 rows not verified in events, kept in events "
                          "(e.g. id=5 (changed); id=7 (missing_in_target); id=1000 (missing_in_target))")
    # Only the proved rows are gone: the three unproved January rows and all of February stay.
    assert _ids(source) == [5, 7, *range(51, 61), 1000]
    assert _ids(target) == [i for i in range(1, 51) if i != 7]  # the target is never touched
    assert (final["status"], final["rows_deleted"], final["rows_not_verified"], final["rows_matching"]) == (
        "partial",
        48,
        3,
        51,
    )
    assert [(r.data["key"], r.data["reason"]) for r in final["kept_rows"].records] == [
        ("id=5", "changed"), ("id=7", "missing_in_target"), ("id=1000", "missing_in_target")]
    assert final["rounds"] == 3 and final["verified"] is True


def test_a_table_without_a_primary_key_is_refused_unless_forced(tmp_path, capsys):
    source, target = f"sqlite:///{tmp_path}/src.db", f"sqlite:///{tmp_path}/dst.db"
    _create_events(source, primary_key=False)
    config = _config(tmp_path, source, target)
    with dg.DagsterInstance.get() as instance:
        _sync(config, instance)
        assert cli(["clean-source", "ev", "--partition", JANUARY, "--config", str(config)]) == 1
        assert "table events has no primary key, so its rows cannot be proved one by one against the target" in (
            capsys.readouterr().err)
        assert _ids(source) == list(range(1, 61))
        assert cli(["clean-source", "ev", "--partition", JANUARY, "--force", "--config", str(config)]) == 0
        assert (
            "cleaned: 50 rows deleted from events in 1 rounds of at most 10000, without proof (forced)"
            in capsys.readouterr().out
        )
        final = _records(instance)[0]
    assert final["forced"] is True and final["verified"] is False and final["keyed_by"] == "rowid"
    assert _ids(source) == list(range(51, 61))


def test_a_round_holds_its_rows_and_leaves_rows_inserted_meanwhile(pg_url):
    """While a round is being proved and deleted, its rows cannot change, and a row inserted into the
    slice meanwhile is not among its keys: it survives."""
    _create_events(pg_url, january=30, february=0)
    _execute(pg_url, "CREATE TABLE events_copy AS SELECT * FROM events", "ALTER TABLE events_copy ADD PRIMARY KEY (id)")
    source = database_for(pg_url)
    blocked = []

    def during_round(progress) -> None:
        with psycopg.connect(pg_url, autocommit=True) as other:
            other.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("UPDATE events SET note = 'raced' WHERE id = 3")
            blocked.append(progress.in_flight)
            other.execute("INSERT INTO events VALUES (31, '2024-01-20', 1, 'meanwhile')")

    window = RowFilter(windows=(TimeWindow("at", datetime(2024, 1, 1), datetime(2024, 2, 1)),))
    request = CleanupRequest(TableName("events"), window, batch_size=100,
                             proof=Side(database_for(pg_url), TableName("events_copy")))
    progress = clean_in_rounds(source, request, during_round)
    assert blocked == [30] and progress.rows_deleted == 30 and progress.rounds == 1
    # The row inserted during the round is not in the target: the next round kept it.
    assert _ids(pg_url) == [31] and progress.rows_not_verified == 1 and progress.kept[0].reason == "missing_in_target"
    assert round_committed(source, TableName("events"), ("id",), (31,)) is False  # still there
    assert round_committed(source, TableName("events"), ("id",), (3,)) is True


def test_sigkill_mid_cleanup_leaves_a_history_of_what_it_committed(tmp_path, pg_url, capsys):
    rows = 2000
    _create_events(pg_url, january=rows, february=10)
    # A deferred trigger makes COMMIT the slow part of a round (20 ms a row), so the kill lands
    # after a round's record and while it commits: the record alone cannot say whether it did.
    _execute(pg_url, """CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS
                        $$ BEGIN PERFORM pg_sleep(0.02); RETURN NULL; END $$""",
             "CREATE CONSTRAINT TRIGGER slow AFTER DELETE ON events DEFERRABLE INITIALLY DEFERRED "
             "FOR EACH ROW EXECUTE FUNCTION slow_commit()")
    config = _config(tmp_path, pg_url, f"sqlite:///{tmp_path}/dst.db")
    command = str(Path(sys.executable).parent / "sync-platform")
    with dg.DagsterInstance.get() as instance:
        _sync(config, instance)
        cleaner = subprocess.Popen([command, "clean-source", "ev", "--partition", JANUARY, "--batch-size", "50",
                                    "--config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(
                lambda: sum(r["status"] == "running" for r in _records(instance)) >= 4, "four rounds recorded", 120
            )
            # The process doing the rounds (the run's worker, which each round record names), then
            # the command that launched it and was following it.
            os.kill(int(_records(instance)[0]["pid"]), signal.SIGKILL)
        finally:
            os.kill(cleaner.pid, signal.SIGKILL)
            cleaner.wait()
        # Read at once, while the server may still be finishing the COMMIT the dead client sent:
        # the history's settlement waits for it.
        assert cli(["history", "ev", "--config", str(config)]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if "clean-source" in x)
        wait_for(lambda: not _other_backends(pg_url), "the killed client's backend to end", 60)
        deleted = rows - sum(1 for i in _ids(pg_url) if i <= rows)
        records = _records(instance)
        assert records[0]["status"] == "running" and records[0]["in_flight_rows"] == 50
        # Killed during that round's 1 s COMMIT, which the server completed: the record alone is a
        # round short, the settled history exact.
        assert records[0]["rows_deleted"] == deleted - 50
        assert line.split()[4:7] == ["interrupted", str(deleted), "deleted"], line
        assert f"rounds={deleted // 50} its last round (50 rows) committed;" in line

        _execute(pg_url, "DROP TRIGGER slow ON events")
        assert cli(["clean-source", "ev", "--partition", JANUARY, "--batch-size", "500", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        final = _records(instance)[0]
    assert f"cleaned: {rows - deleted} rows deleted from events" in out
    assert f"with 1 earlier interrupted attempt(s) at this slice: {rows} rows deleted in all" in out
    assert (final["earlier_attempts"], final["rows_deleted_all_attempts"]) == (1, rows)
    assert _ids(pg_url) == list(range(rows + 1, rows + 11))


def _other_backends(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid()").fetchone()[0]


@pytest.fixture
def ui_with_synced_table(tmp_path, pg_url):
    """items -> items_copy on one PostgreSQL database, synced and checked through the UI."""
    _execute(pg_url, "CREATE TABLE items (id int PRIMARY KEY, label text)",
             "INSERT INTO items SELECT i, 'v' || i FROM generate_series(1, 200) i")
    task = table_task("items", ("db", "items"), ("db", "items_copy"), "exports", source_timezone="UTC")
    config = write_config(
        tmp_path / "sync.yaml", {"db": pg_url}, {"exports": {"type": "local", "path": str(tmp_path / "x")}}, [task]
    )
    with running_ui({**os.environ, "SYNC_PLATFORM_CONFIG": str(config)}, tmp_path / "ui.log") as base, \
            dg.DagsterInstance.get() as instance:
        assert wait_for_run(instance, ui_launch(base, "items_sync")) == dg.DagsterRunStatus.SUCCESS
        yield base, instance


def _ui_execute_check(base: str) -> str:
    """"Execute" on the imported asset's data_diff check: a run of that check alone."""
    launched = graphql(base, """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""", {"params": {
        "selector": {"repositoryLocationName": "sync_platform", "repositoryName": "__repository__",
                     "jobName": "__ASSET_JOB", "assetSelection": [],
                     "assetCheckSelection": [{"assetKey": {"path": ["items", "items_copy"]}, "name": "data_diff"}]}}})
    assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
    return launched["launchRun"]["run"]["runId"]


def _ui_report_passed(base: str) -> None:
    """"Report evaluation" on the Checks tab, as the UI sends it (ReportCheckEvaluationMutation)."""
    reported = graphql(
        base,
        """mutation ReportCheckEvaluationMutation($eventParams: ReportAssetCheckEvaluationsParams!) {
        reportAssetCheckEvaluations(eventParams: $eventParams) { __typename
        ... on ReportAssetCheckEvaluationsSuccess { assetKey { path } } ... on PythonError { message } } }""",
        {
            "eventParams": {
                "assetKey": {"path": ["items", "items_copy"]},
                "checkName": "data_diff",
                "passed": True,
                "description": "looks fine to me",
            }
        },
    )
    assert reported["reportAssetCheckEvaluations"]["__typename"] == "ReportAssetCheckEvaluationsSuccess", reported


def test_a_check_reported_by_hand_never_unlocks_a_cleanup(ui_with_synced_table, pg_url):
    base, instance = ui_with_synced_table
    clean = {"ops": {CLEAN_SOURCE_OP: {"config": {"task": "items", "all_rows": True}}}}
    source_key = dg.AssetKey(["items", "items__source"])

    def outcome(run_id: str) -> dict:
        assert wait_for_run(instance, run_id) in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)
        record = instance.fetch_observations(source_key, limit=1).records[0]
        return {
            k: v.value
            for k, v in record.event_log_entry.dagster_event.event_specific_data.asset_observation.metadata.items()
        }

    _execute(pg_url, "UPDATE items_copy SET label = 'tampered' WHERE id = 42")
    assert wait_for_run(instance, _ui_execute_check(base)) == dg.DagsterRunStatus.FAILURE  # the platform's check fails
    _ui_report_passed(base)
    [latest] = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(["items", "items_copy"]), "data_diff"), limit=1)
    assert latest.event.dagster_event.event_specific_data.passed  # the UI now shows the check as passed

    refused = outcome(ui_launch(base, "clean_source", clean))
    assert (
        refused["status"] == "refused" and "data_diff of items_copy failed (data inconsistent)" in refused["interlock"]
    )
    assert len(_ids(pg_url, "items")) == 200

    # Forced past the interlock, the cleanup still proves every row: the tampered one stays.
    forced = {"ops": {CLEAN_SOURCE_OP: {"config": {"task": "items", "all_rows": True, "force": True}}}}
    partial = outcome(ui_launch(base, "clean_source", forced))
    assert (partial["status"], partial["rows_deleted"], partial["rows_not_verified"]) == ("partial", 199, 1)
    assert partial["interlock"].startswith("FORCED: data_diff of items_copy failed")
    assert _ids(pg_url, "items") == [42]


def test_awkward_text_keys_are_proved_and_deleted_exactly(pg_url):
    """Keys travel to PostgreSQL as array literals: quotes, backslashes, braces, commas, 'NULL',
    '' and non-ASCII must each name exactly their own row."""
    keys = ['a"b', "c\\d", "{x,y}", "NULL", "", " sp", "ü", "e,f"]
    with psycopg.connect(pg_url) as conn:
        for table in ("src", "dst"):
            conn.execute(f"CREATE TABLE {table} (k text PRIMARY KEY, v int)")
            with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                for i, key in enumerate(keys):
                    copy.write_row((key, i))
        conn.execute("UPDATE dst SET v = -1 WHERE k = 'NULL'")
    request = CleanupRequest(TableName("src"), None, batch_size=3, proof=Side(database_for(pg_url), TableName("dst")))
    progress = clean_in_rounds(database_for(pg_url), request)
    with psycopg.connect(pg_url) as conn:
        left = conn.execute("SELECT k FROM src").fetchall()
    assert left == [("NULL",)] and progress.rows_deleted == len(keys) - 1
    assert [(k.key, k.reason) for k in progress.kept] == [(("NULL",), "changed")]
