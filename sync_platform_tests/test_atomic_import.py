"""Exactly-once imports: a re-run replaces, a failure, a termination or a killed process leaves the
target as it was, and readers never see a mix of old and new rows."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from sync_platform.config import load_config
from sync_platform.engine import TableName, database_for
from sync_platform.engine.errors import ExportIncomplete
from sync_platform.engine.stores import LocalStore
from sync_platform.platform import Platform

from .conftest import DIALECTS, table_task, write_config


def _numbers_table(url: str, name: str, rows: int, label: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (id bigint PRIMARY KEY, label text, pad text)")
        conn.execute(f"TRUNCATE {name}")
        conn.execute(
            f"INSERT INTO {name} SELECT g, %s || g, repeat('x', 50) FROM generate_series(1, %s) g", (label, rows)
        )


def _pg_rows(url: str, name: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT id, label, pad FROM {name} ORDER BY id").fetchall()


def _platform(tmp_path, source_url: str, target_url: str, **run_config) -> Platform:
    config = write_config(
        tmp_path / "sync.yaml",
        {"src": source_url, "dst": target_url},
        {"exports": {"type": "local", "path": str(tmp_path / "exports")}},
        [table_task("copy", ("src", "source_rows"), ("dst", "target_rows"), "exports", **run_config)],
    )
    return Platform(load_config(config))


def test_rerun_leaves_exactly_one_copy(pg_url, tmp_path):
    _numbers_table(pg_url, "source_rows", 1000, "v1-")
    platform = _platform(tmp_path, pg_url, pg_url, export_batch_rows=300)
    table = platform.table_sync("copy")
    for _ in range(3):
        platform.export(table)
        platform.load(table)
    assert _pg_rows(pg_url, "target_rows") == _pg_rows(pg_url, "source_rows")
    # The source changes; the next run replaces the whole target, no stale or doubled rows.
    _numbers_table(pg_url, "source_rows", 700, "v2-")
    platform.export(table)
    platform.load(table)
    assert _pg_rows(pg_url, "target_rows") == _pg_rows(pg_url, "source_rows")
    assert len(LocalStore(tmp_path / "exports").list("copy/source_rows/full")) == 3 + 1  # stale 4th part removed


def test_sqlite_rerun_leaves_exactly_one_copy(tmp_path):
    src = f"sqlite:///{tmp_path}/src.db"
    import sqlite3

    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("CREATE TABLE source_rows (id INTEGER PRIMARY KEY, label TEXT, pad TEXT)")
    conn.executemany("INSERT INTO source_rows VALUES (?, ?, ?)", [(i, f"r{i}", "x") for i in range(1, 501)])
    conn.commit()
    platform = _platform(tmp_path, src, f"sqlite:///{tmp_path}/dst.db", export_batch_rows=100)
    table = platform.table_sync("copy")
    for _ in range(2):
        platform.export(table)
        platform.load(table)
    rows = sqlite3.connect(tmp_path / "dst.db").execute("SELECT * FROM target_rows ORDER BY id").fetchall()
    assert rows == [(i, f"r{i}", "x") for i in range(1, 501)]


class _InterruptingStore(LocalStore):
    """Raises `error` when the import fetches its `after`-th file (a termination mid-import)."""

    def __init__(self, root, error: BaseException, after: int):
        super().__init__(root)
        self.error, self.after, self.fetched = error, after, 0

    def get(self, key):
        if key.rsplit("/", 1)[-1].startswith("part-"):
            self.fetched += 1
            if self.fetched > self.after:
                raise self.error
        return super().get(key)


@pytest.mark.parametrize("target", ["postgresql", "sqlite"])
@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("store failed")], ids=["terminated", "failed"])
def test_interrupted_import_leaves_target_as_it_was(target, error, pg_url, tmp_path, monkeypatch):
    _numbers_table(pg_url, "source_rows", 5000, "new-")
    target_url = pg_url if target == "postgresql" else f"sqlite:///{tmp_path}/dst.db"
    platform = _platform(tmp_path, pg_url, target_url, export_batch_rows=500)
    table = platform.table_sync("copy")
    # Old content: a first full sync of different rows.
    _numbers_table(pg_url, "source_rows", 300, "old-")
    platform.export(table)
    platform.load(table)
    dialect = database_for(target_url)
    old = [
        r
        for b in dialect.read_batches(TableName("target_rows"), dialect.reflect(TableName("target_rows")))
        for r in b.to_pylist()
    ]
    _numbers_table(pg_url, "source_rows", 5000, "new-")
    platform.export(table)

    store = _InterruptingStore(tmp_path / "exports", error, after=4)
    monkeypatch.setattr(platform, "store", lambda _table: store)
    with pytest.raises(type(error)):
        platform.load(table)
    after = [
        r
        for b in dialect.read_batches(TableName("target_rows"), dialect.reflect(TableName("target_rows")))
        for r in b.to_pylist()
    ]
    assert after == old and len(after) == 300


def test_corrupted_export_file_is_refused_before_loading(pg_url, tmp_path):
    _numbers_table(pg_url, "source_rows", 1000, "v-")
    platform = _platform(tmp_path, pg_url, pg_url, export_batch_rows=400)
    table = platform.table_sync("copy")
    platform.export(table)
    part = tmp_path / "exports" / "copy" / "source_rows" / "full" / "part-00001.csv.zst"
    part.write_bytes(part.read_bytes()[:-3] + b"xyz")
    with pytest.raises(ExportIncomplete, match="does not match its manifest"):
        platform.load(table)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('target_rows')").fetchone()[0] is None  # not even created


class _SlowStore(LocalStore):
    """Holds the import at its third file until `gate` opens."""

    def __init__(self, root, gate: threading.Event):
        super().__init__(root)
        self.gate = gate

    def get(self, key):
        if key.endswith("part-00002.csv.zst"):
            self.gate.wait(30)
        return super().get(key)


def _wait_until_writing(url: str) -> None:
    deadline = time.monotonic() + 20
    with psycopg.connect(url, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            if watcher.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'target_rows' "
                "AND l.mode IN ('RowExclusiveLock', 'AccessExclusiveLock') AND l.granted AND l.pid <> pg_backend_pid()"
            ).fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the import never started writing")


def _paused_load(platform, table, tmp_path, monkeypatch, load):
    gate = threading.Event()
    store = _SlowStore(tmp_path / "exports", gate)
    monkeypatch.setattr(platform, "store", lambda _table: store)
    loader = threading.Thread(target=load)
    loader.start()
    return gate, loader


def test_full_refresh_readers_never_see_a_mix(pg_url, tmp_path, monkeypatch):
    _numbers_table(pg_url, "source_rows", 200, "old-")
    platform = _platform(tmp_path, pg_url, pg_url, export_batch_rows=100)
    table = platform.table_sync("copy")
    platform.export(table)
    platform.load(table)
    _numbers_table(pg_url, "source_rows", 1000, "new-")
    platform.export(table)

    gate, loader = _paused_load(platform, table, tmp_path, monkeypatch, lambda: platform.load(table))
    try:
        _wait_until_writing(pg_url)
        # Mid-import, a reader either still sees all the old rows or waits for the commit; a short
        # lock_timeout turns the wait into an error so the test can observe it.
        with psycopg.connect(pg_url, autocommit=True) as reader:
            reader.execute("SET lock_timeout = '300ms'")
            try:
                seen = reader.execute("SELECT count(*), min(label) FROM target_rows").fetchone()
                assert seen == (200, "old-1")
            except psycopg.errors.LockNotAvailable:
                pass
    finally:
        gate.set()
        loader.join(30)
    assert _pg_rows(pg_url, "target_rows") == _pg_rows(pg_url, "source_rows")


def test_slice_replace_readers_keep_old_rows_until_commit(pg_url, tmp_path, monkeypatch):
    """Replacing a slice (a WHERE, as partitions will) leaves other rows alone and lets readers
    read the old slice until the commit."""
    from sync_platform.engine import import_export

    _numbers_table(pg_url, "source_rows", 200, "old-")
    platform = _platform(tmp_path, pg_url, pg_url, export_batch_rows=25)
    table = platform.table_sync("copy")
    platform.export(table)
    platform.load(table)
    _numbers_table(pg_url, "source_rows", 100, "new-")  # the new content of ids 1..100
    platform.export(table)

    target = database_for(pg_url)
    slice_load = lambda: import_export(  # noqa: E731
        target, platform.store(table), table.export_folder(), TableName("target_rows"), where='"id" <= 100'
    )
    gate, loader = _paused_load(platform, table, tmp_path, monkeypatch, slice_load)
    try:
        _wait_until_writing(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as reader:
            assert reader.execute("SELECT count(*), min(label), max(label) FROM target_rows").fetchone() == (
                200,
                "old-1",
                "old-99",
            )
    finally:
        gate.set()
        loader.join(30)
    rows = _pg_rows(pg_url, "target_rows")
    assert [r[1] for r in rows] == [f"new-{i}" for i in range(1, 101)] + [f"old-{i}" for i in range(101, 201)]


_KILLABLE_IMPORT = """
import sys
from sync_platform.config import load_config
from sync_platform.platform import Platform
platform = Platform(load_config(sys.argv[1]))
platform.load(platform.table_sync("copy"))
"""


def test_killed_import_leaves_target_as_it_was(pg_url, tmp_path):
    _numbers_table(pg_url, "source_rows", 500, "old-")
    platform = _platform(tmp_path, pg_url, pg_url, export_batch_rows=20000)
    table = platform.table_sync("copy")
    platform.export(table)
    platform.load(table)
    old = _pg_rows(pg_url, "target_rows")
    _numbers_table(pg_url, "source_rows", 600_000, "new-")
    platform.export(table)

    process = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE_IMPORT, str(tmp_path / "sync.yaml")], env=os.environ.copy()
    )
    try:
        deadline = time.monotonic() + 60
        with psycopg.connect(pg_url, autocommit=True) as watcher:
            copying = False
            while time.monotonic() < deadline and process.poll() is None:
                copying = (
                    watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %%target_rows%%FROM STDIN%%' "
                        "AND state = 'active'"
                    ).fetchone()[0]
                    > 0
                )
                if copying:
                    break
                time.sleep(0.01)
        assert copying, "the import finished or failed before it could be killed mid-COPY"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    # The server notices the dropped connection and rolls the transaction back.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            if not conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %%target_rows%%FROM STDIN%%'"
            ).fetchone()[0]:
                break
        time.sleep(0.1)
    assert _pg_rows(pg_url, "target_rows") == old


def _sqlite_numbers(path, rows: int) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE source_rows (id INTEGER PRIMARY KEY, label TEXT, pad TEXT)")
        conn.execute("WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?) "
                     "INSERT INTO source_rows SELECT i, 'n-' || i, printf('%.50c', 'x') FROM g", (rows,))
    return f"sqlite:///{path}"


def _target_rows(url: str) -> list[tuple]:
    return sorted(tuple(r) for r in database_for(url).query("SELECT id, label, pad FROM target_rows"))


@pytest.mark.parametrize("target", ["postgresql", "mysql"])
def test_two_first_loads_of_one_table_at_once_both_succeed_once(target, tmp_path, request):
    """Two runs loading a table that does not exist yet: both used to create it and one failed on
    pg_type's unique index (PostgreSQL); now the second waits for the first and replaces its rows."""
    target_url = request.getfixturevalue(DIALECTS[target])
    platform = _platform(tmp_path, _sqlite_numbers(tmp_path / "src.db", 20_000), target_url, export_batch_rows=5000)
    table = platform.table_sync("copy")
    platform.export(table)
    outcomes = []

    def load():
        try:
            outcomes.append(platform.load(table).rows)
        except Exception as error:  # noqa: BLE001 - the assertion shows it
            outcomes.append(error)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert outcomes == [20_000, 20_000]
    assert _target_rows(target_url) == [(i, f"n-{i}", "x" * 50) for i in range(1, 20_001)]
    assert database_for(target_url).list_tables() == ["target_rows"]  # no staging table left


def test_a_killed_first_load_into_mariadb_leaves_no_table(mysql_url, tmp_path):
    """MariaDB commits CREATE TABLE by itself: a first load killed mid-LOAD DATA used to leave an
    empty target table. The table is now built under a staging name and renamed after COMMIT."""
    platform = _platform(tmp_path, _sqlite_numbers(tmp_path / "src.db", 400_000), mysql_url,
                         export_batch_rows=100_000)
    table = platform.table_sync("copy")
    platform.export(table)
    target = database_for(mysql_url)
    process = subprocess.Popen([sys.executable, "-c", _KILLABLE_IMPORT, str(tmp_path / "sync.yaml")],
                               env=os.environ.copy())
    try:
        deadline, loading = time.monotonic() + 60, False
        while time.monotonic() < deadline and process.poll() is None and not loading:
            loading = bool(target.query("SELECT 1 FROM information_schema.processlist WHERE info LIKE "
                                        "'LOAD DATA LOCAL INFILE%%target_rows%%'"))
            time.sleep(0.01)
        assert loading, "the first load finished or failed before it could be killed mid-LOAD DATA"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert not target.table_exists(TableName("target_rows"))  # no empty, no partial target table
    assert platform.load(table).rows == 400_000  # the next load drops the staging table and goes on
    assert database_for(mysql_url).list_tables() == ["target_rows"]
    assert _target_rows(mysql_url)[::40_000] == [(i, f"n-{i}", "x" * 50) for i in range(1, 400_001, 40_000)]
