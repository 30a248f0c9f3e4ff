"""hashdiff across every pair of dialects on a composite (text, date) key whose text values sort
differently under common collations (case, accents, punctuation, digits, emoji): both sides
must cut and order the key space byte-wise alike, ask for at most bisection_factor segments a
range, and find exactly the rows changed, deleted and inserted in the target."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from sync_platform.config import load_config
from sync_platform.engine import TableName, TableSchema, database_for
from sync_platform.engine.columns import Column, Kind
from sync_platform.engine.diff import RowKind
from sync_platform.platform import Platform

from .conftest import DIALECTS, dialect_url, table_task, write_config
from .tables import ZONE, create_table, execute

PAIRS = [(s, t) for s in DIALECTS for t in DIALECTS]
NAMES = ["a", "A", "b", "B", "_", "~", "é", "e", "z", "Z", "ä", "ß", "ss", "1", "10", "9", "-x", " a", "Ω", "😀"]
DAYS = 1000
SCHEMA = TableSchema((Column("name", Kind.STRING, False, length=20), Column("day", Kind.DATE, False),
                      Column("amount", Kind.INT32)), ("name", "day"))


@pytest.mark.parametrize("source, target", PAIRS, ids=[f"{s}-to-{t}" for s, t in PAIRS])
def test_hashdiff_on_collation_sensitive_composite_keys(source, target, tmp_path, request):
    src_url, dst_url = dialect_url(source, "src", tmp_path, request), dialect_url(target, "dst", tmp_path, request)
    rows = [{"name": n, "day": date(2020, 1, 1) + timedelta(days=d), "amount": i * DAYS + d}
            for i, n in enumerate(NAMES) for d in range(DAYS)]
    create_table(src_url, "k", SCHEMA, rows)
    task = table_task("k", ("src", "k"), ("dst", "k_copy"), "x", source_timezone=ZONE, algorithm="hashdiff",
                      bisection_factor=32, bisection_threshold=256, heartbeat_timeout=3)
    config = write_config(tmp_path / "sync.yaml", {"src": src_url, "dst": dst_url},
                          {"x": {"type": "local", "path": str(tmp_path / "x")}}, [task])
    platform = Platform(load_config(config))
    table = platform.table_sync("k")
    platform.export(table)
    platform.load(table)

    same = platform.diff(table)
    assert same.same and same.source_rows == len(rows), same
    assert same.segments <= 32 + 32 * 32  # two levels at most for 20,000 rows and a threshold of 256

    dialect = database_for(dst_url, ZONE).dialect
    copy, q = dialect.qualified(TableName("k_copy")), dialect.quote
    where = f"{q('name')} = {dialect.param} AND {q('day')} = {dialect.param}"
    execute(dst_url, f"UPDATE {copy} SET {q('amount')} = -1 WHERE {where}", ("ß", date(2020, 1, 1)))
    execute(dst_url, f"UPDATE {copy} SET {q('amount')} = NULL WHERE {where}", ("😀", date(2022, 9, 26)))
    execute(dst_url, f"DELETE FROM {copy} WHERE {where}", ("A", date(2021, 5, 5)))
    execute(dst_url, f"INSERT INTO {copy} VALUES ({dialect.param}, {dialect.param}, 7)", ("ss ", date(2020, 1, 1)))
    found = platform.diff(table)
    assert {(r.key, r.kind, r.columns) for r in found.rows} == {
        (("ß", "2020-01-01"), RowKind.CHANGED, ("amount",)),
        (("😀", "2022-09-26"), RowKind.CHANGED, ("amount",)),
        (("A", "2021-05-05"), RowKind.MISSING, ()),
        (("ss ", "2020-01-01"), RowKind.EXTRA, ()),
    }, found
