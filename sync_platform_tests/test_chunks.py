"""Chunked exports from PostgreSQL: the table is split at the quantiles of its primary key (any
orderable key, composite included; run_config export_readers > 1) or in ranges of heap blocks (no
key, or one reader: the default), the chunks are read by that many readers at once, all in ONE
exported snapshot, and the target ends identical to the source. A transfer between two rows
committed while the chunks are read must not show half-done: the export is the source at one moment."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from sync_platform.config import load_config
from sync_platform.platform import Platform

from .conftest import table_task, wait_for, write_config
from .tables import create_pace

SHAPES = {
    "composite key (int, text)": ("(a int, b text, label text, PRIMARY KEY (a, b))",
                                  "SELECT i / 7, 'k' || (i % 7), 'l' || i FROM generate_series(1, 60000) i"),
    "bigint key": ("(id bigint PRIMARY KEY, label text)", "SELECT i * 3, 'l' || i FROM generate_series(1, 60000) i"),
    "date and text key": ("(day date, name text, n int, PRIMARY KEY (day, name))",
                          "SELECT date '2020-01-01' + i / 50, 'n' || (i % 50), i FROM generate_series(1, 60000) i"),
    "no key (heap blocks)": ("(v int, label text)", "SELECT i % 1000, 'l' || i FROM generate_series(1, 60000) i"),
}


def _config(tmp_path, url, **run_config):
    return write_config(tmp_path / "sync.yaml", {"db": url}, {"x": {"type": "local", "path": str(tmp_path / "x")}},
                        [table_task("copy", ("db", "items"), ("db", "items_copy"), "x", **run_config)])


def _differences(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM items_copy), (SELECT count(*) FROM (SELECT * FROM items EXCEPT ALL "
            "SELECT * FROM items_copy) d), (SELECT count(*) FROM (SELECT * FROM items_copy EXCEPT ALL "
            "SELECT * FROM items) d)").fetchone()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("pipelined", [False, True], ids=["sequential", "pipelined"])
def test_a_chunked_export_copies_every_row_exactly(shape, pipelined, tmp_path, pg_url):
    columns, rows = SHAPES[shape]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE items {columns}")
        conn.execute(f"INSERT INTO items {rows}")
        conn.execute("ANALYZE items")
    platform = Platform(load_config(_config(tmp_path, pg_url, export_readers=3, export_batch_rows=4000)))
    table = platform.table_sync("copy")
    if pipelined:
        exported, imported = platform.export_and_load(table)
        assert imported.rows == 60000
    else:
        exported = platform.export(table)
        platform.load(table)
    chunks = {f.name.split("-")[1] for f in exported.manifest.files}
    assert len(chunks) > 3, [f.name for f in exported.manifest.files]  # read in chunks, not by one reader
    assert [f.name for f in exported.manifest.files] == sorted(f.name for f in exported.manifest.files)
    assert _differences(pg_url) == (60000, 0, 0)


def test_an_order_other_than_the_key_is_read_by_one_reader(tmp_path, pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
        conn.execute("INSERT INTO items SELECT i, 'l' || (60000 - i) FROM generate_series(1, 60000) i")
        conn.execute("ANALYZE items")
    platform = Platform(load_config(_config(tmp_path, pg_url, export_readers=3, export_batch_rows=4000,
                                            import_order_by="label")))
    exported = platform.export(platform.table_sync("copy"))
    assert {f.name.split("-")[1].split(".")[0] for f in exported.manifest.files} == {
        f"{n:05d}" for n in range(len(exported.manifest.files))}  # part-00000, part-00001...: one reader


@pytest.mark.parametrize("readers", [1, 2])
def test_rows_changed_during_a_chunked_export_do_not_mix_two_states(readers, tmp_path, pg_url):
    """40,000 accounts of 100 each; while the chunks are read (paced by the database), another
    session moves 50 from the first account to the last in one committed transaction. Read in one
    snapshot, the export holds the moment before (total 4,000,000, both accounts at 100); readers
    with snapshots of their own would hold 4,000,050 (the first chunk before, the last after).
    One reader (the default) reads its chunks (heap block ranges) one after another, in one snapshot too."""
    config = _paced_accounts(tmp_path, pg_url, every=2000, seconds=0.3, readers=readers)
    platform = Platform(load_config(config))
    table = platform.table_sync("copy")
    result: list = []
    export = threading.Thread(target=lambda: result.append(platform.export(table)))
    export.start()
    folder = tmp_path / "x" / "copy" / "items" / "full"
    wait_for(lambda: folder.exists() and any(folder.glob("part-00000-*")), "the first chunk's first file", timeout=60)
    with psycopg.connect(pg_url) as conn:  # the transfer, committed while the later chunks are still to be read
        conn.execute("UPDATE items SET balance = balance - 50 WHERE id = 1")
        conn.execute("UPDATE items SET balance = balance + 50 WHERE id = 40000")
    transferred_at = time.monotonic()
    export.join(120)
    assert result, "the export did not finish"
    assert time.monotonic() - transferred_at > 1  # the last chunk was read after the transfer
    platform.load(table)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT sum(balance), count(*) FROM items_copy").fetchone() == (4_000_000, 40000)
        assert conn.execute("SELECT id, balance FROM items_copy WHERE id IN (1, 40000) ORDER BY id").fetchall() == [
            (1, 100), (40000, 100)]
        assert conn.execute("SELECT sum(balance) FROM items").fetchone() == (4_000_000,)  # the source moved on


# One chunked export of the task in a subprocess (killed by the test).
EXPORT = """
import sys
from sync_platform.config import load_config
from sync_platform.platform import Platform
platform = Platform(load_config(sys.argv[1]))
platform.export(platform.table_sync("copy"))
"""


def _paced_accounts(tmp_path, pg_url, every: int = 1000, seconds: float = 0.25, readers: int = 2):
    """40,000 accounts of 100 each, exported by `readers` readers in files of `every` rows; the
    source's query sleeps `seconds` every `every` rows."""
    create_pace(pg_url, every, seconds)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, balance int)")
        conn.execute("INSERT INTO items SELECT i, 100 FROM generate_series(1, 40000) i")
        conn.execute("ANALYZE items")
    task = table_task("copy", ("db", "items"), ("db", "items_copy"), "x", export_readers=readers,
                      export_batch_rows=every)
    task["filters"] = {"source_where": "pace(id) = true"}
    return write_config(tmp_path / "sync.yaml", {"db": pg_url}, {"x": {"type": "local", "path": str(tmp_path / "x")}},
                        [task])


def _killed_half_way(tmp_path, config) -> dict:
    """The export killed with SIGKILL once half its chunks are complete; the journal it left."""
    import json
    import signal
    import subprocess
    import sys

    journal = tmp_path / "x" / "_sync_platform" / "journal" / "copy" / "items" / "full.json"
    export = subprocess.Popen([sys.executable, "-c", EXPORT, str(config)])
    def half_complete() -> bool:
        state = journal.exists() and json.loads(journal.read_text())
        return bool(state) and len(state["files"]) >= len(state["conditions"]) / 2

    wait_for(half_complete, "half of the chunks complete", timeout=120)
    export.send_signal(signal.SIGKILL)
    export.wait(30)
    return json.loads(journal.read_text())


@pytest.mark.parametrize("readers", [1, 2])
def test_a_chunked_export_killed_half_way_rereads_only_its_incomplete_chunks(readers, tmp_path, pg_url):
    """One reader (the default, heap block ranges) or two (key ranges): 4 chunks a reader."""
    config = _paced_accounts(tmp_path, pg_url, readers=readers)
    state = _killed_half_way(tmp_path, config)
    complete_rows = sum(f["rows"] for files in state["files"].values() for f in files)
    assert 0 < complete_rows < 40000 and len(state["conditions"]) == 4 * readers
    assert ("ctid" in state["conditions"][0]) == (readers == 1), state["conditions"][0]
    platform = Platform(load_config(config))
    result = platform.export(platform.table_sync("copy"))
    assert result.resumed_rows == complete_rows  # every chunk complete at the kill is kept, not read again
    assert not (tmp_path / "x" / "_sync_platform" / "journal" / "copy" / "items" / "full.json").exists()
    platform.load(platform.table_sync("copy"))
    assert _differences(pg_url) == (40000, 0, 0)


def test_a_table_written_since_the_kill_is_exported_again_whole(tmp_path, pg_url):
    config = _paced_accounts(tmp_path, pg_url)
    _killed_half_way(tmp_path, config)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a change to a chunk the killed export had read
        conn.execute("UPDATE items SET balance = 7 WHERE id = 1")
        conn.execute("SELECT pg_stat_force_next_flush()")  # publish the count now, not within 10 s
    platform = Platform(load_config(config))
    result = platform.export(platform.table_sync("copy"))
    assert result.resumed_rows == 0
    platform.load(platform.table_sync("copy"))
    assert _differences(pg_url) == (40000, 0, 0)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT balance FROM items_copy WHERE id = 1").fetchone() == (7,)
