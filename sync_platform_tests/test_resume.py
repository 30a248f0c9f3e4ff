"""Resume of one-query exports (MySQL/MariaDB InnoDB, SQLite): the table is read in its primary
key's order, which is its storage order, and the journal records every 10 files the files so far
and the key of their last row. An export killed with SIGKILL half-way is re-run: it keeps the
files of the last checkpoint, reads only the rows after its key, and the copy equals the source.
A table written since the kill is exported again whole."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pymysql
import pytest
from sqlalchemy.engine import make_url

from sync_platform.config import load_config
from sync_platform.engine.columns import TableName
from sync_platform.engine.dialects import database_for
from sync_platform.engine.filters import Where
from sync_platform.platform import Platform

from .conftest import table_task, wait_for, write_config

ROWS, EVERY = 40_000, 1000  # files of EVERY rows: 40 files, a checkpoint every 10


class Source:
    """A source database of one dialect, with its SQL idioms for the test's table."""

    def __init__(self, dialect: str, url: str):
        self.dialect, self.url = dialect, url

    def connect(self):
        if self.dialect == "sqlite":
            return sqlite3.connect(make_url(self.url).database, isolation_level=None)
        url = make_url(self.url)
        return pymysql.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                               database=url.database, autocommit=True)

    def run(self, *statements: str) -> None:
        conn = self.connect()
        try:
            for statement in statements:
                conn.cursor().execute(statement)
        finally:
            conn.close()

    def rows(self, table: str) -> list[tuple]:
        conn = self.connect()
        try:
            cursor = conn.cursor()
            cursor.execute(f"SELECT a, b, n FROM {table} ORDER BY a, b")
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            conn.close()

    def create_items(self, composite: bool) -> None:
        """ROWS rows; the pace column n is 1..ROWS in key order. SQLite stores a table in its key's
        order when the key is the rowid (INTEGER PRIMARY KEY) or the table is WITHOUT ROWID."""
        if composite:
            columns, rows = "a int, b varchar(20), n int NOT NULL, PRIMARY KEY (a, b)", [
                (n // 7, f"k{n % 7}", n) for n in range(1, ROWS + 1)]
        else:
            columns, rows = "a INTEGER PRIMARY KEY, b varchar(20), n int NOT NULL", [
                (n * 3, f"l{n}", n) for n in range(1, ROWS + 1)]
        suffix = " ENGINE=InnoDB" if self.dialect == "mysql" else " WITHOUT ROWID" if composite else ""
        marker = "%s" if self.dialect == "mysql" else "?"
        conn = self.connect()
        try:
            cursor = conn.cursor()
            cursor.execute("BEGIN")
            cursor.execute(f"CREATE TABLE items ({columns}){suffix}")
            cursor.executemany(f"INSERT INTO items VALUES ({marker}, {marker}, {marker})", rows)
            cursor.execute("COMMIT")
        finally:
            conn.close()


@pytest.fixture(params=["mysql", "sqlite", "sqlite-wal"])
def source(request, tmp_path) -> Source:
    """MySQL/MariaDB, or a SQLite file in its default rollback-journal mode or in WAL mode (commits
    go to the -wal file, which the identity reads too)."""
    if request.param == "mysql":
        return Source("mysql", request.getfixturevalue("mysql_url"))
    source = Source("sqlite", f"sqlite:///{tmp_path}/src.db")
    if request.param == "sqlite-wal":
        source.run("PRAGMA journal_mode = WAL")
    return source


def _config(tmp_path, source: Source, source_where: str | None = None):
    target = source.url if source.dialect == "mysql" else f"sqlite:///{tmp_path}/dst.db"
    task = table_task("copy", ("src", "items"), ("dst", "items_copy"), "x", export_batch_rows=EVERY)
    if source_where:
        task["filters"] = {"source_where": source_where}
    return write_config(tmp_path / "sync.yaml", {"src": source.url, "dst": target},
                        {"x": {"type": "local", "path": str(tmp_path / "x")}}, [task])


# The export in a subprocess (killed by the test), on a slow disk: every write to the store takes
# 0.3 s (MySQL's reader, connectorx, holds the GIL while it waits for the server, so a slow source
# would freeze the whole process instead of pacing it).
EXPORT = """
import sys, time
from sync_platform.config import load_config
from sync_platform.engine.stores.local import LocalStore
from sync_platform.platform import Platform
put = LocalStore.put
LocalStore.put = lambda self, key, data: (time.sleep(0.3), put(self, key, data))
platform = Platform(load_config(sys.argv[1]))
platform.export(platform.table_sync("copy"))
"""


def _journal(tmp_path):
    return tmp_path / "x" / "_sync_platform" / "journal" / "copy" / "items" / "full.json"


def _killed_half_way(tmp_path, config) -> dict:
    """The export killed with SIGKILL once its journal holds half the files; that journal."""
    export = subprocess.Popen([sys.executable, "-c", EXPORT, str(config)])

    def half_kept() -> dict | None:
        state = _journal(tmp_path).exists() and json.loads(_journal(tmp_path).read_text())
        return state if state and len(state["files"].get("0", [])) >= ROWS // EVERY // 2 else None

    wait_for(half_kept, "half of the files in the journal", timeout=120)
    export.send_signal(signal.SIGKILL)
    export.wait(30)
    return json.loads(_journal(tmp_path).read_text())


def _copied(tmp_path, source: Source, config, load: bool = True) -> list[tuple]:
    """The target's rows (once loaded from the export)."""
    if load:
        platform = Platform(load_config(config))
        platform.load(platform.table_sync("copy"))
    target = source if source.dialect == "mysql" else Source("sqlite", f"sqlite:///{tmp_path}/dst.db")
    return target.rows("items_copy")


@pytest.mark.parametrize(("composite", "pipelined"), [(False, False), (True, True)],
                         ids=["integer key, sequential import", "composite key (int, text), pipelined import"])
def test_an_export_killed_half_way_rereads_only_the_rows_after_its_last_checkpoint(composite, pipelined, source,
                                                                                    tmp_path):
    source.create_items(composite)
    time.sleep(1.1)  # MySQL: a table written in the export's very second has no identity (no journal)
    config = _config(tmp_path, source)
    state = _killed_half_way(tmp_path, config)
    kept = state["files"]["0"]
    assert len(kept) % 10 == 0 and 0 < len(kept) < ROWS // EVERY, [f["name"] for f in kept]
    platform = Platform(load_config(config))
    if pipelined:  # the kept files reach the import first, then the rows read after them
        result, imported = platform.export_and_load(platform.table_sync("copy"))
        assert imported.rows == ROWS
    else:
        result = platform.export(platform.table_sync("copy"))
    assert result.resumed_rows == sum(f["rows"] for f in kept) == len(kept) * EVERY
    assert [f.name for f in result.manifest.files] == [f"part-{n:05d}.csv.zst" for n in range(ROWS // EVERY)]
    assert not _journal(tmp_path).exists()
    assert _copied(tmp_path, source, config, load=not pipelined) == source.rows("items")


def test_a_table_written_since_the_kill_is_exported_again_whole(source, tmp_path):
    source.create_items(composite=False)
    time.sleep(1.1)
    config = _config(tmp_path, source)
    _killed_half_way(tmp_path, config)
    source.run("UPDATE items SET b = 'changed' WHERE a = 3")  # a row of the files the journal kept
    platform = Platform(load_config(config))
    result = platform.export(platform.table_sync("copy"))
    assert result.resumed_rows == 0
    copied = _copied(tmp_path, source, config)
    assert copied == source.rows("items") and copied[0] == (3, "changed", 1)


# Run in a process of its own while the test's export waits (connectorx holds the GIL meanwhile):
# once the resumed query sleeps on the server (its snapshot taken), commit a change to a kept row.
WRITE_DURING_THE_RESUMED_QUERY = """
import sys, time, pymysql
from sqlalchemy.engine import make_url
url = make_url(sys.argv[1])
conn = pymysql.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                       database=url.database, autocommit=True)
cursor = conn.cursor()
deadline = time.monotonic() + 60
while not cursor.execute("SELECT 1 FROM information_schema.processlist WHERE state = 'User sleep' "
                         "AND info LIKE '%%pace_knob%%'"):
    assert time.monotonic() < deadline, "the resumed query never began"
    time.sleep(0.05)
cursor.execute("UPDATE items SET b = 'changed' WHERE a = 3")
cursor.execute("UPDATE pace_knob SET seconds = 0")
"""


def test_a_table_written_once_the_resumed_read_has_begun_is_exported_again_whole(tmp_path, mysql_url):
    """The identity matched when the re-run began, then a kept row changed before the resumed
    query's snapshot could be checked: the kept files are dropped, nothing reached the import."""
    source = Source("mysql", mysql_url)
    source.create_items(composite=False)
    # A pause at the first row after any checkpoint (every 10,000 rows), only while the knob is set.
    source.run("CREATE TABLE pace_knob (seconds float) ENGINE=InnoDB", "INSERT INTO pace_knob VALUES (0)")
    time.sleep(1.1)
    config = _config(tmp_path, source, f"(n % {10 * EVERY} <> 1 OR SLEEP((SELECT seconds FROM pace_knob)) = 0)")
    _killed_half_way(tmp_path, config)
    source.run("UPDATE pace_knob SET seconds = 3")
    writer = subprocess.Popen([sys.executable, "-c", WRITE_DURING_THE_RESUMED_QUERY, mysql_url])
    platform = Platform(load_config(config))
    result, imported = platform.export_and_load(platform.table_sync("copy"))
    assert writer.wait(30) == 0
    assert result.resumed_rows == 0 and imported.rows == ROWS
    copied = source.rows("items_copy")
    assert copied == source.rows("items") and copied[0] == (3, "changed", 1)


def test_a_table_not_stored_in_its_key_order_is_read_as_before(tmp_path, mysql_url):
    """SQLite: a text primary key of a rowid table is an index beside the table; MySQL: a filter
    that the optimizer serves from a secondary index and a sort. Neither is read in key order."""
    sqlite_db = database_for(f"sqlite:///{tmp_path}/src.db")
    Source("sqlite", f"sqlite:///{tmp_path}/src.db").run("CREATE TABLE t (k text PRIMARY KEY, v int)")
    mysql_db = database_for(mysql_url)
    Source("mysql", mysql_url).run("CREATE TABLE t (k int PRIMARY KEY, v int, KEY (v)) ENGINE=InnoDB",
                                   "INSERT INTO t VALUES (1, 5), (2, 6), (3, 7)", "ANALYZE TABLE t")
    table = TableName("t")
    assert sqlite_db.ordered_key(table, sqlite_db.reflect(table), None, None) is None
    schema = mysql_db.reflect(table)
    assert mysql_db.ordered_key(table, schema, None, None) == ("k",)
    assert mysql_db.ordered_key(table, schema, None, "k desc") is None
    assert mysql_db.ordered_key(table, schema, Where.text("`v` = 6"), None) is None


def test_a_mysql_table_written_this_second_has_no_identity(mysql_url):
    Source("mysql", mysql_url).run("CREATE TABLE t (k int PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO t VALUES (1)")
    database, table = database_for(mysql_url), TableName("t")
    assert database.table_identity(table) is None
    time.sleep(1.1)
    identity = database.table_identity(table)
    assert identity is not None and database.table_identity(table) == identity
    Source("mysql", mysql_url).run("INSERT INTO t VALUES (2)")
    time.sleep(1.1)
    assert database.table_identity(table) not in (None, identity)
