"""Safe termination, pressed in the UI (its GraphQL API, on a live `sync-platform ui`) while a run
is exporting, importing or cleaning: the target stays as it was, the export reads as complete or
incomplete (never as a mix), and a cleanup keeps and records the rounds it committed.

The database itself sets the pace: `pace()` sleeps knob.export_s per exported row, a trigger
sleeps knob.import_s per loaded row and knob.delete_s per deleted row, so the test can terminate
each stage in its middle."""

from __future__ import annotations

import os

import dagster as dg
import psycopg
import pytest

from sync_platform.defs.naming import CLEAN_SOURCE_OP
from sync_platform.engine.errors import ExportIncomplete
from sync_platform.platform import Platform

from .conftest import (
    running_ui,
    table_task,
    ui_launch,
    ui_terminate,
    wait_for,
    wait_for_run,
    write_config,
)

ROWS = 3000


def _paced_database(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE knob (export_s float8, import_s float8, delete_s float8)")
        conn.execute("INSERT INTO knob VALUES (0, 0, 0)")
        conn.execute("CREATE FUNCTION pace() RETURNS boolean LANGUAGE sql VOLATILE AS "
                     "$$ SELECT true FROM pg_sleep((SELECT export_s FROM knob)) $$")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
        conn.execute(f"INSERT INTO items SELECT i, 'v1-' || i FROM generate_series(1, {ROWS}) i")
        conn.execute("""CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            PERFORM pg_sleep(CASE WHEN TG_OP = 'DELETE' THEN (SELECT delete_s FROM knob)
                                  ELSE (SELECT import_s FROM knob) END);
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END; END $$""")
        conn.execute("CREATE TRIGGER slow_delete BEFORE DELETE ON items FOR EACH ROW EXECUTE FUNCTION slow_row()")
        # The target table exists up front so it can carry the trigger that slows the COPY.
        conn.execute("CREATE TABLE items_copy (id int PRIMARY KEY, label text)")
        conn.execute("CREATE TRIGGER slow_insert BEFORE INSERT ON items_copy FOR EACH ROW EXECUTE FUNCTION slow_row()")


def _knob(pg_url: str, **seconds) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE knob SET " + ", ".join(f"{k} = %s" for k in seconds), tuple(seconds.values()))


def _rows(pg_url: str, table: str) -> list[tuple]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute(f"SELECT id, label FROM {table} ORDER BY id").fetchall()


def _termination_message(instance, run_id: str) -> str:
    """What the UI shows at the top of the run's one failed step: a StepTerminated saying what the
    termination left, with no interrupt or driver error chained below it."""
    [failure] = [e.dagster_event for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)]
    error = failure.step_failure_data.error
    assert error.cls_name == "StepTerminated" and error.cause is None and error.context is None, error.to_string()
    return error.message.strip().removeprefix("sync_platform.defs.assets.StepTerminated: ")


@pytest.fixture
def paced(tmp_path, pg_url):
    """A synced, verified copy of items, and the UI serving its task; yields (base, instance, platform)."""
    _paced_database(pg_url)
    task = table_task(
        "items", ("db", "items"), ("db", "items_copy"), "exports", export_batch_rows=100, source_timezone="UTC"
    )
    task["filters"] = {"source_where": "pace() = true"}
    config = write_config(
        tmp_path / "sync.yaml",
        {"db": pg_url},
        {"exports": {"type": "local", "path": str(tmp_path / "exports")}},
        [task],
    )
    env = {**os.environ, "SYNC_PLATFORM_CONFIG": str(config)}
    with running_ui(env, tmp_path / "ui.log") as base, dg.DagsterInstance.get() as instance:
        assert wait_for_run(instance, ui_launch(base, "items_sync")) == dg.DagsterRunStatus.SUCCESS
        assert _rows(pg_url, "items_copy") == _rows(pg_url, "items")
        yield base, instance, Platform.from_file(config)


def test_terminated_export_reads_incomplete_and_the_target_stays(paced, pg_url, tmp_path):
    base, instance, platform = paced
    folder = tmp_path / "exports" / "items" / "items" / "full"
    before = _rows(pg_url, "items_copy")
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE items SET label = 'v2-' || id")
    _knob(pg_url, export_s=0.002)
    run_id = ui_launch(base, "items_sync")
    wait_for(
        lambda: not (folder / "manifest.json").exists() and len(list(folder.glob("part-*"))) >= 3,
        "the export to be midway",
    )
    ui_terminate(base, instance, run_id)
    assert _termination_message(instance, run_id) == (
        "task 'items', items -> items_copy: export terminated by request: the files written so far have no manifest, "
        "so no import takes them; the target keeps its last verified copy and the next run rewrites the files")

    table = platform.table_sync("items")
    with pytest.raises(ExportIncomplete):
        platform.load(table)  # the half-written export is refused, not loaded
    assert _rows(pg_url, "items_copy") == before  # the target kept the last verified copy

    _knob(pg_url, export_s=0)
    assert wait_for_run(instance, ui_launch(base, "items_sync")) == dg.DagsterRunStatus.SUCCESS
    assert _rows(pg_url, "items_copy") == [(i, f"v2-{i}") for i in range(1, ROWS + 1)]


def test_terminated_import_leaves_the_target_as_it_was(paced, pg_url):
    base, instance, _ = paced
    before = _rows(pg_url, "items_copy")
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE items SET label = 'v2-' || id")
    _knob(pg_url, import_s=0.002)

    def copying() -> bool:
        with psycopg.connect(pg_url) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY \"items_copy\"%%' "
                                "AND state = 'active'").fetchone()[0] > 0

    run_id = ui_launch(base, "items_sync")
    wait_for(copying, "the import's COPY to run")
    ui_terminate(base, instance, run_id)
    assert _termination_message(instance, run_id) == (
        "task 'items', items -> items_copy: import terminated by request: its transaction rolled back: the target "
        "is exactly as it was")
    wait_for(lambda: not copying(), "the COPY to be gone")
    assert _rows(pg_url, "items_copy") == before


def test_terminated_cleanup_keeps_and_records_its_committed_rounds(paced, pg_url):
    base, instance, _ = paced
    _knob(pg_url, delete_s=0.002)  # a round of 200 rows takes ~0.4 s
    run_id = ui_launch(
        base,
        "clean_source",
        {"ops": {CLEAN_SOURCE_OP: {"config": {"task": "items", "batch_size": 200, "all_rows": True}}}},
    )
    wait_for(lambda: len(_rows(pg_url, "items")) <= ROWS - 400, "two rounds to commit")
    ui_terminate(base, instance, run_id)

    remaining = len(_rows(pg_url, "items"))
    assert 0 < remaining < ROWS and remaining % 200 == 0  # whole rounds only
    [record] = instance.fetch_observations(dg.AssetKey(["items", "items__source"]), limit=1).records
    observed = {
        k: v.value
        for k, v in record.event_log_entry.dagster_event.event_specific_data.asset_observation.metadata.items()
    }
    assert observed["status"] == "terminated" and record.event_log_entry.run_id == run_id
    assert observed["rows_deleted"] == ROWS - remaining and observed["rounds"] == (ROWS - remaining) // 200
