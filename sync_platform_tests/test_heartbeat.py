"""heartbeat_timeout enforced: an export whose source sends nothing for that long is stopped, its
query cancelled on the server, and fails naming the stage and the silence; nothing reads as
exported. The source stalls for real: the database sleeps in the source query's WHERE.

MySQL/MariaDB is not in the matrix: connectorx holds Python's GIL while it waits for the server,
so no watchdog thread runs until the query returns (README, heartbeat_timeout)."""

from __future__ import annotations

import time

import pytest

from sync_platform.config import load_config
from sync_platform.engine import ExportIncomplete, TableName, TableSchema, database_for
from sync_platform.engine.columns import Column, Kind
from sync_platform.engine.errors import Stalled
from sync_platform.platform import Platform

from .conftest import DIALECTS, table_task, write_config
from .tables import create_table

# A WHERE that sleeps 30 s on the first row it looks at, in each dialect's SQL, and how the server
# lists the reads still running.
STALLING_WHERE = {"postgresql": "id > 0 AND pg_sleep(CASE WHEN id = 1 THEN 30 ELSE 0 END) IS NOT NULL"}
RUNNING = {"postgresql": "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%sync_platform read%%' "
                         "AND pid <> pg_backend_pid()"}


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
