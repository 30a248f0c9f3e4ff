"""The pipelined import (engine/pipeline.py), on real PostgreSQL databases: the import loads files
while the export is still writing them, and commits only after the manifest; an export that fails
part-way, an import the target refuses, and a process killed with SIGKILL mid-way all leave the
target exactly as it was. The source is paced by the database: pace(id) sleeps a settable time
every 20,000th row; rows are wide enough (about 220 bytes) that the reader streams several batches."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from sync_platform.config import load_config
from sync_platform.engine import ExportResult, ImportResult
from sync_platform.engine.manifest import read_manifest
from sync_platform.platform import Platform

from .conftest import table_task, wait_for, write_config
from .tables import create_pace

ROWS = 200_000
LABEL = "'{}-' || id || repeat('x', 200)"

# One pipelined sync of the task, in a subprocess (killed by the test).
SYNC = """
import sys
from sync_platform.config import load_config
from sync_platform.platform import Platform
platform = Platform(load_config(sys.argv[1]))
for stage in platform.export_and_load(platform.table_sync("copy")):
    print(type(stage).__name__, flush=True)
"""


# A session of the import: its last statement a COPY into the target.
LOADING = "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY \"items_copy\"%%FROM STDIN%%'"

# Every row of a table, as one digest: the target compared with the source row by row.
CONTENT = "SELECT count(*), md5(string_agg(id || ':' || label, ',' ORDER BY id)) FROM {}"


@dataclass
class Setup:
    platform: Platform
    config: object
    run: object  # run(sql, *params): the rows, on a connection of its own
    pace: object  # pace(seconds): the source's sleep every 20,000th row
    old: list  # the target's content after the first sync
    new: list  # the source's content since: what a sync that commits leaves in the target


@pytest.fixture
def setup(tmp_path, pg_url):
    """items (source) synced once into items_copy (target); then every source label changes, so a
    sync that commits is seen, and one that rolls back leaves the old labels."""
    pace = create_pace(pg_url, every=20_000)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
        conn.execute(f"INSERT INTO items SELECT id, {LABEL.format('old')} FROM generate_series(1, {ROWS}) id")
    task = table_task("copy", ("db", "items"), ("db", "items_copy"), "x", export_batch_rows=20_000)
    # A row labelled 'boom' makes the source query fail on the server when the scan reaches it.
    task["filters"] = {"source_where": "pace(id) AND 1 / (CASE WHEN label = 'boom' THEN 0 ELSE 1 END) = 1"}
    config = write_config(tmp_path / "sync.yaml", {"db": pg_url}, {"x": {"type": "local", "path": str(tmp_path / "x")}},
                          [task])
    platform = Platform(load_config(config))
    list(platform.export_and_load(platform.table_sync("copy")))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        old = conn.execute(CONTENT.format("items")).fetchall()
        conn.execute(f"UPDATE items SET label = {LABEL.format('new')}")

    def run(sql: str, *params):
        with psycopg.connect(pg_url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else None

    return Setup(platform, config, run, pace, old, run(CONTENT.format("items")))




def _target(run) -> list[tuple]:
    return run(CONTENT.format("items_copy"))


def _manifest_written(platform) -> bool:
    try:
        read_manifest(platform.store(platform.table_sync("copy")), "copy/items/full")
        return True
    except Exception:  # noqa: BLE001 - not yet
        return False


def test_the_import_loads_while_the_export_writes_and_commits_after_the_manifest(setup):
    platform, run = setup.platform, setup.run
    setup.pace(0.5)  # the export takes about 5 s
    stages: list = []
    worker = threading.Thread(target=lambda: stages.extend(platform.export_and_load(platform.table_sync("copy"))))
    worker.start()
    # Before the manifest exists, the import's session has already run COPY into the target...
    wait_for(lambda: not _manifest_written(platform) and run(f"{LOADING} AND xact_start IS NOT NULL"),
             "a COPY into the target while the export writes", timeout=60)
    assert not _manifest_written(platform)  # (readers of the target wait for its commit: TRUNCATE)
    worker.join(120)
    exported, imported = stages
    assert isinstance(exported, ExportResult) and isinstance(imported, ImportResult)
    assert exported.manifest.rows == imported.rows == ROWS
    assert _target(run) == setup.new


def test_an_export_that_fails_part_way_leaves_the_target_as_it_was(setup):
    platform, run = setup.platform, setup.run
    # The source query fails on the server at the row updated last (the end of the heap), after
    # the files of every other row were loaded.
    run("UPDATE items SET label = 'boom' WHERE id = 80")
    with pytest.raises(Exception, match="division by zero"):
        for _ in platform.export_and_load(platform.table_sync("copy")):
            pass
    assert _target(run) == setup.old
    assert not run(f"{LOADING} AND state <> 'idle'")


def test_an_import_the_target_refuses_leaves_it_as_it_was_and_the_export_stands(setup):
    platform, run = setup.platform, setup.run
    run("ALTER TABLE items_copy ADD CONSTRAINT no_new_77 CHECK (label NOT LIKE 'new-77x%%')")
    stages = platform.export_and_load(platform.table_sync("copy"))
    exported = next(stages)
    assert exported.manifest.rows == ROWS and _manifest_written(platform)
    with pytest.raises(Exception, match="no_new_77"):
        next(stages)
    assert _target(run) == setup.old


def test_a_sync_killed_mid_way_leaves_the_target_as_it_was(setup):
    platform, config, run = setup.platform, setup.config, setup.run
    setup.pace(0.5)
    sync = subprocess.Popen([sys.executable, "-c", SYNC, str(config)], stdout=subprocess.PIPE, text=True)
    wait_for(lambda: run(LOADING), "the import's first COPY", timeout=60)
    sync.send_signal(signal.SIGKILL)
    sync.wait(30)
    wait_for(lambda: not run(LOADING), "the killed import's session to end", timeout=60)
    assert _target(run) == setup.old
    setup.pace(0)
    assert [type(s).__name__ for s in platform.export_and_load(platform.table_sync("copy"))] == [
        "ExportResult", "ImportResult"]
    assert _target(run) == setup.new


def test_a_table_to_table_task_asking_for_the_pipeline_runs_its_table_in_one_overlapped_step(setup, tmp_path):
    """`pipeline: true`: a real run of the code location (`sync-platform run --wait`) exports,
    imports (overlapped) and checks the table in one step; each stage is still materialized."""
    import yaml

    document = yaml.safe_load(setup.config.read_text())
    document["tasks"][0]["pipeline"] = True
    setup.config.write_text(yaml.safe_dump(document))
    command = [str(Path(sys.executable).parent / "sync-platform"), "run", "copy", "--wait", "--config",
               str(setup.config)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _target(setup.run) == setup.new
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs(limit=1)
        steps = {e.step_key for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)}
        materialized = {e.dagster_event.asset_key.to_user_string()
                        for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
        checks = [e.dagster_event.event_specific_data for e in instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    assert steps == {"copy__items_copy__sync"}, steps
    assert materialized == {"copy/items__export", "copy/items_copy"}
    assert {(c.check_name, c.passed) for c in checks} == {("data_diff", True), ("export_files", True)}
