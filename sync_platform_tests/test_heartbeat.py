"""heartbeat_timeout enforced: an export whose source sends nothing for that long is stopped, its
query cancelled on the server, and fails naming the stage and the silence; nothing reads as
exported. The source stalls for real: the database sleeps in the source query's WHERE. An import
(every dialect) and a cleanup round waiting that long for a lock another real session holds are
stopped on the server, their transaction rolled back.

MySQL/MariaDB's reader (connectorx) holds Python's GIL while it waits for the server, so no thread
of ours runs: its watchdog is a sentinel process, tested here the same way."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

from sync_platform.config import load_config
from sync_platform.engine import ExportIncomplete, TableName, TableSchema, database_for
from sync_platform.engine.columns import Column, Kind
from sync_platform.engine.errors import Stalled
from sync_platform.platform import Platform

from .conftest import DIALECTS, dialect_url, table_task, write_config
from .tables import create_table

# A WHERE that sleeps 30 s on the first row it looks at, in each dialect's SQL, and how the server
# lists the reads still running.
STALLING_WHERE = {"postgresql": "id > 0 AND pg_sleep(CASE WHEN id = 1 THEN 30 ELSE 0 END) IS NOT NULL",
                  "mysql": "id > 0 AND SLEEP(CASE WHEN id = 1 THEN 30 ELSE 0 END) = 0"}
RUNNING = {"postgresql": "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%sync_platform read%%' "
                         "AND pid <> pg_backend_pid()",
           "mysql": "SELECT count(*) FROM information_schema.processlist WHERE info LIKE '%%sync_platform read%%' "
                    "AND id <> CONNECTION_ID()"}


@pytest.mark.parametrize("dialect", STALLING_WHERE)
def test_a_stalled_source_is_cancelled_after_heartbeat_timeout(dialect, tmp_path, request):
    url = request.getfixturevalue(DIALECTS[dialect])
    schema = TableSchema((Column("id", Kind.INT32, nullable=False), Column("label", Kind.STRING)), ("id",))
    create_table(url, "items", schema, [{"id": i, "label": f"l{i}"} for i in range(1, 51)])
    task = table_task("stuck", ("src", "items"), ("dst", "items_copy"), "x", heartbeat_timeout=2)
    task["filters"] = {"source_where": STALLING_WHERE[dialect]}
    config = write_config(tmp_path / "sync.yaml", {"src": url, "dst": f"sqlite:///{tmp_path}/dst.db"},
                          {"x": {"type": "local", "path": str(tmp_path / "x")}}, [task])
    platform = Platform(load_config(config))
    table = platform.table_sync("stuck")

    started = time.monotonic()
    with pytest.raises(Stalled) as stalled:
        platform.export(table)
    assert time.monotonic() - started < 15  # not the 30 s the query would have slept
    assert str(stalled.value).startswith(
        "export of items: no progress for 2 s (heartbeat_timeout); its query was cancelled on the server")
    assert database_for(url).query(RUNNING[dialect]) == [(0,)]  # gone from the server, not only from us
    with pytest.raises(ExportIncomplete):
        platform.load(table)  # nothing reads as exported
    assert not database_for(f"sqlite:///{tmp_path}/dst.db").table_exists(TableName("items_copy"))


@contextmanager
def _locked(url: str, table: str, dialect: str):
    """Another session holding a lock the import's clear must wait for, until the block ends."""
    if dialect == "postgresql":
        import psycopg

        with psycopg.connect(url) as conn:
            conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            yield
            conn.rollback()
    elif dialect == "mysql":
        import pymysql

        u = make_url(url)
        conn = pymysql.connect(host=u.host, port=u.port, user=u.username, password=u.password or "",
                               database=u.database)
        try:
            conn.cursor().execute(f"LOCK TABLES {table} WRITE")
            yield
        finally:
            conn.close()
    elif dialect == "duckdb":  # DuckDB's one lock is the file's: another process holding it open
        hold = "import duckdb, sys, time; held = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(99)"
        holder = subprocess.Popen([sys.executable, "-c", hold, make_url(url).database], stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert holder.stdout.readline() == "open\n"
            yield holder.pid
        finally:
            holder.kill()
            holder.wait()
    else:
        conn = sqlite3.connect(make_url(url).database, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
        finally:
            conn.close()


# How each database says the load waited past the heartbeat for another session's lock.
WAITED = {name: "waited over 2 s (heartbeat_timeout) for a lock another session holds and was stopped on the server; "
                "its transaction rolled back, nothing changed" for name in DIALECTS}
WAITED["duckdb"] = ("waited over 2 s (heartbeat_timeout) for the file: DuckDB database {path} stayed open in another "
                    "process (pid {pid}) for 2 s. DuckDB lets one process open a file at a time; nothing was changed")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_import_waiting_on_another_sessions_lock_stops_after_heartbeat_timeout(dialect, tmp_path, request):
    """The load waits for a lock another session holds on the target (a long report, a manual
    LOCK TABLE): past heartbeat_timeout the server stops the wait; the target keeps its rows."""
    target = dialect_url(dialect, "dst", tmp_path, request)
    schema = TableSchema((Column("id", Kind.INT32, nullable=False), Column("label", Kind.STRING)), ("id",))
    create_table(f"sqlite:///{tmp_path}/src.db", "items", schema, [{"id": i, "label": f"l{i}"} for i in range(1, 51)])
    task = table_task("locked", ("src", "items"), ("dst", "items_copy"), "x", heartbeat_timeout=2)
    config = write_config(tmp_path / "sync.yaml", {"src": f"sqlite:///{tmp_path}/src.db", "dst": target},
                          {"x": {"type": "local", "path": str(tmp_path / "x")}}, [task])
    platform = Platform(load_config(config))
    table = platform.table_sync("locked")
    platform.export(table)
    platform.load(table)  # the target exists, with the 50 rows
    before = sorted(database_for(target).query("SELECT id, label FROM items_copy"))

    with _locked(target, "items_copy", dialect) as holder:
        started = time.monotonic()
        with pytest.raises(Stalled) as stalled:
            platform.load(table)
        waited = time.monotonic() - started
    assert 1.5 < waited < 15, waited
    assert str(stalled.value).startswith("opening " if dialect == "duckdb" else "a write on ")
    assert WAITED[dialect].format(path=make_url(target).database, pid=holder) in str(stalled.value)
    assert sorted(database_for(target).query("SELECT id, label FROM items_copy")) == before
    assert platform.load(table).rows == 50  # the lock gone, the same import goes through


def test_a_cleanup_round_waiting_on_locked_rows_stops_after_heartbeat_timeout(tmp_path, pg_url):
    import psycopg

    schema = TableSchema((Column("id", Kind.INT32, nullable=False), Column("label", Kind.STRING)), ("id",))
    create_table(pg_url, "items", schema, [{"id": i, "label": f"l{i}"} for i in range(1, 51)])
    task = table_task("clean", ("src", "items"), ("dst", "items_copy"), "x", heartbeat_timeout=2)
    config = write_config(tmp_path / "sync.yaml", {"src": pg_url, "dst": f"sqlite:///{tmp_path}/dst.db"},
                          {"x": {"type": "local", "path": str(tmp_path / "x")}}, [task])
    platform = Platform(load_config(config))
    table = platform.table_sync("clean")
    platform.export(table)
    platform.load(table)
    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT * FROM items WHERE id <= 10 FOR UPDATE")  # an application editing rows
        with pytest.raises(Stalled, match=r"waited over 2 s \(heartbeat_timeout\) for a lock"):
            platform.clean_source(table, where="id <= 20")
        holder.rollback()
    assert database_for(pg_url).count_rows(TableName("items")) == 50  # the round rolled back
    assert platform.clean_source(table, where="id <= 20").rows_deleted == 20


class PartUploadBlackHole:
    """A TCP proxy in front of the S3 endpoint that passes every request but the uploads of export
    files, which it swallows without an answer: a store that stops answering mid-export (the
    lease and listings still get through)."""

    def __init__(self, upstream: str):
        import socket
        import threading
        from urllib.parse import urlsplit

        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: list = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    @staticmethod
    def _pump(source, sink, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and data.startswith(b"PUT ") and b"/part-" in data.split(b"\r\n", 1)[0]:
                    return  # swallowed: the client waits for an answer that never comes
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        for sock in [self.listener, *self.sockets]:
            sock.close()


def test_an_export_whose_store_stops_answering_stalls_after_heartbeat_timeout(tmp_path, s3_bucket, s3_credentials):
    """Uploads that hang (a dead network path to the store, not a refusal) end the export after
    heartbeat_timeout with a message naming the upload, instead of waiting out the S3 client's
    timeouts and retries (minutes); no manifest, so nothing reads as exported."""
    from .conftest import S3_ENDPOINT, s3_client, s3_store_config

    schema = TableSchema((Column("id", Kind.INT32, nullable=False), Column("label", Kind.STRING)), ("id",))
    create_table(f"sqlite:///{tmp_path}/src.db", "items", schema, [{"id": i, "label": f"l{i}"} for i in range(1, 51)])
    hole = PartUploadBlackHole(S3_ENDPOINT)
    try:
        task = table_task("hung", ("src", "items"), ("dst", "items_copy"), "s3", heartbeat_timeout=2,
                          export_batch_rows=10)
        config = write_config(tmp_path / "sync.yaml", {"src": f"sqlite:///{tmp_path}/src.db",
                                                      "dst": f"sqlite:///{tmp_path}/dst.db"},
                              {"s3": s3_store_config(s3_bucket, endpoint_url=hole.url)}, [task])
        platform = Platform(load_config(config))
        table = platform.table_sync("hung")
        started = time.monotonic()
        with pytest.raises(Stalled) as stalled:
            platform.export(table)
        assert time.monotonic() - started < 20  # not the S3 client's 60 s read timeout, three times
    finally:
        hole.close()
    assert re.match(rf"export of items: no progress for 2 s \(heartbeat_timeout\) while uploading "
                    rf"s3://{s3_bucket}/exports/hung/items/full/part-0000\d\.csv\.zst: the store stopped answering",
                    str(stalled.value)), str(stalled.value)
    keys = [o["Key"] for o in s3_client().list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert "exports/hung/items/full/manifest.json" not in keys  # nothing reads as exported
