"""One writer per export folder (engine/lease.py), with real processes: a second export of a
folder being written is refused and touches nothing; the lease of a writer killed with SIGKILL is
taken over at once; a writer frozen (SIGSTOP) past its lease's time-to-live is replaced, and when
it wakes it writes no file and no manifest; an import refuses an export another run wrote since.
The source is paced by the database: pace(id) sleeps a settable time per row of the export's query."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from sync_platform.config import load_config
from sync_platform.engine import TableName, database_for, lease
from sync_platform.engine.lease import FolderBusy
from sync_platform.engine.manifest import read_manifest
from sync_platform.platform import ExportReplaced, Platform

from .conftest import table_task, wait_for, write_config
from .tables import create_pace

ROWS = 120

# Run in a subprocess: one export of the task by writer argv[2], with a lease time-to-live of
# argv[3] seconds; prints the outcome's first line.
EXPORTER = """
import sys
from sync_platform.config import load_config
from sync_platform.engine import lease
from sync_platform.platform import Platform
lease.LEASE_TTL_S = float(sys.argv[3])
platform = Platform(load_config(sys.argv[1]))
try:
    result = platform.export(platform.table_sync("copy"), writer=sys.argv[2])
    print("exported", result.manifest.rows, flush=True)
except Exception as error:
    print(type(error).__name__, str(error), flush=True)
    sys.exit(3)
"""


@pytest.fixture
def paced(tmp_path, pg_url):
    pace = create_pace(pg_url)  # seconds per row, 0 until a test sets it
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
        conn.execute(f"INSERT INTO items SELECT i, 'item-' || i FROM generate_series(1, {ROWS}) i")
    task = table_task("copy", ("src", "items"), ("dst", "items_copy"), "x", export_batch_rows=10)
    task["filters"] = {"source_where": "pace(id) = true"}
    config = write_config(tmp_path / "sync.yaml", {"src": pg_url, "dst": f"sqlite:///{tmp_path}/dst.db"},
                          {"x": {"type": "local", "path": str(tmp_path / "x")}}, [task])
    return config, pace


def _exporter(config, writer: str, ttl: float = 120) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", EXPORTER, str(config), writer, str(ttl)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _files(config) -> list[str]:
    folder = config.parent / "x" / "copy" / "items" / "full"
    return sorted(p.name for p in folder.glob("part-*")) if folder.exists() else []


def _lease_taken(config) -> bool:
    return (config.parent / "x" / "_sync_platform" / "writers" / "copy" / "items" / "full.json").exists()


def _imported_rows(platform: Platform, tmp_path) -> list[tuple]:
    platform.load(platform.table_sync("copy"))
    return sorted(database_for(f"sqlite:///{tmp_path}/dst.db").query("SELECT id, label FROM items_copy"))


EXPECTED = [(i, f"item-{i}") for i in range(1, ROWS + 1)]


def test_a_second_writer_of_a_folder_waits_then_is_refused_and_touches_nothing(paced, tmp_path, monkeypatch):
    config, pace = paced
    pace(0.1)  # the first export takes about 12 s
    first = _exporter(config, "run first")
    wait_for(lambda: _lease_taken(config), "the first writer's lease", timeout=60)
    before = _files(config)
    platform = Platform(load_config(config))
    monkeypatch.setattr(lease, "LEASE_WAIT_S", 2)
    started = time.monotonic()
    with pytest.raises(FolderBusy) as busy:
        platform.export(platform.table_sync("copy"), writer="run second")
    assert 2 <= time.monotonic() - started < 10  # waited for the live writer, then gave up
    assert "copy/items/full is being written by run first on host" in str(busy.value)
    assert "so this export touched nothing" in str(busy.value)
    assert first.poll() is None  # the first was still writing
    assert set(before) <= set(_files(config))  # none of the first writer's files was removed
    assert first.wait(120) == 0, first.stderr.read()
    manifest = read_manifest(platform.store(platform.table_sync("copy")), "copy/items/full")
    assert manifest.writer == "run first" and manifest.rows == ROWS
    pace(0)
    assert _imported_rows(platform, tmp_path) == EXPECTED


def test_a_second_writer_waits_for_a_live_writer_to_finish_then_writes(paced, tmp_path):
    config, pace = paced
    pace(0.03)  # the first export takes about 4 s, well within the 60 s a second writer waits
    first = _exporter(config, "run first")
    wait_for(lambda: _lease_taken(config), "the first writer's lease", timeout=60)
    platform = Platform(load_config(config))
    result = platform.export(platform.table_sync("copy"), writer="run second")
    assert first.wait(60) == 0, first.stderr.read()
    assert result.manifest.writer == "run second" and result.manifest.rows == ROWS
    assert _imported_rows(platform, tmp_path) == EXPECTED


def test_the_lease_of_a_killed_writer_is_taken_over_at_once(paced, tmp_path):
    config, pace = paced
    pace(0.2)
    killed = _exporter(config, "run killed")
    wait_for(lambda: _lease_taken(config), "the killed writer's lease", timeout=60)
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    pace(0)
    platform = Platform(load_config(config))
    started = time.monotonic()
    result = platform.export(platform.table_sync("copy"), writer="run retry")
    assert time.monotonic() - started < 30  # not the lease's 120 s time-to-live
    assert result.manifest.writer == "run retry" and result.manifest.rows == ROWS
    assert _imported_rows(platform, tmp_path) == EXPECTED


def test_a_frozen_writer_replaced_after_its_lease_expired_writes_nothing_when_it_wakes(paced, tmp_path):
    config, pace = paced
    pace(0.1)
    frozen = _exporter(config, "run frozen", ttl=4)
    wait_for(lambda: _lease_taken(config), "the frozen writer's lease", timeout=60)
    os.kill(frozen.pid, signal.SIGSTOP)  # a paused VM, a process stuck in swap: silent, not dead
    try:
        time.sleep(2.5)  # silent for over half its time-to-live: no longer read as a live writer
        pace(0)
        platform = Platform(load_config(config))
        result = platform.export(platform.table_sync("copy"), writer="run newer")  # waits out the 4 s
        assert result.manifest.writer == "run newer" and result.manifest.rows == ROWS
        newer_files = {name: (config.parent / "x" / "copy" / "items" / "full" / name).read_bytes()
                       for name in _files(config)}
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    out, _ = frozen.communicate(timeout=120)
    assert frozen.returncode == 3
    assert out.startswith("LeaseLost ") and "its lease was taken by run newer on host" in out, out
    # The newer export stands: its manifest, and every file byte for byte.
    store = platform.store(platform.table_sync("copy"))
    assert read_manifest(store, "copy/items/full").writer == "run newer"
    assert {name: (config.parent / "x" / "copy" / "items" / "full" / name).read_bytes()
            for name in _files(config)} == newer_files
    assert _imported_rows(platform, tmp_path) == EXPECTED


def test_an_import_refuses_an_export_another_run_wrote_since(paced, tmp_path):
    config, _ = paced
    platform = Platform(load_config(config))
    table = platform.table_sync("copy")
    platform.export(table, writer="run mine")
    platform.export(table, writer="run other")
    with pytest.raises(ExportReplaced, match=r"was written by run other at .*, not by run mine, which exported it"):
        platform.load(table, writers=("run mine",))
    assert not database_for(f"sqlite:///{tmp_path}/dst.db").table_exists(TableName("items_copy"))
    assert platform.load(table, writers=("run other",)).rows == ROWS


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    """Each store type, as a task configures it (S3: the test endpoint, speaking real S3 HTTP)."""
    from sync_platform.engine.stores import store_from_config
    from sync_platform.engine.stores.local import LocalStoreConfig
    from sync_platform.engine.stores.s3 import S3StoreConfig

    from .conftest import S3_KEY_ID, S3_SECRET, s3_store_config

    if request.param == "local":
        return store_from_config(LocalStoreConfig(type="local", path=str(tmp_path / "store")))
    settings = s3_store_config(request.getfixturevalue("s3_bucket"), access_key_id=S3_KEY_ID,
                               secret_access_key=S3_SECRET)
    return store_from_config(S3StoreConfig(**settings))


def test_conditional_writes_let_exactly_one_writer_win(store):
    """The primitive the lease stands on, on each store: create-if-absent, replace-if-unchanged."""
    first = store.put_if("lease.json", b"a", None)
    assert first is not None
    assert store.put_if("lease.json", b"b", None) is None  # exists: a second creator loses
    assert store.get_versioned("lease.json") == (b"a", first)
    second = store.put_if("lease.json", b"c", first)
    assert second is not None and second != first
    assert store.put_if("lease.json", b"d", first) is None  # a stale version loses
    assert store.get_versioned("lease.json") == (b"c", second)
    assert store.get_versioned("missing.json") is None


def test_of_many_writers_racing_for_a_folder_exactly_one_holds_it(store, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(lease, "LEASE_WAIT_S", 1)  # the holder keeps it: the others give up after 1 s
    from sync_platform.engine.lease import WriterLease

    def take(number: int) -> str:
        lease = WriterLease(store, "task/table/full", f"writer {number}")
        try:
            lease.acquire()
            return "held"
        except FolderBusy:
            return "busy"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(take, range(8)))
    assert sorted(outcomes) == ["busy"] * 7 + ["held"]
