"""Round-trip fidelity: every awkward value arrives exactly, for each pair of dialects, each file
format and each store. Target rows are read back with the target database's own driver."""

from __future__ import annotations

import psycopg
import pytest

from sync_platform.config import load_config
from sync_platform.engine import TableName, database_for
from sync_platform.platform import Platform

from .conftest import needs_postgres, s3_store_config, table_task, write_config
from .sample_data import ROWS, create_pg, create_sqlite, normalised, read_pg

PAIRS = ["sqlite->sqlite", "sqlite->postgresql", "postgresql->postgresql", "postgresql->sqlite"]


def _read_sqlite(url: str, table: str) -> list[tuple]:
    dialect = database_for(url)
    name = TableName(table)
    rows = [r for b in dialect.read_batches(name, dialect.reflect(name), order_by="id") for r in b.to_pylist()]
    return [tuple(r.values()) for r in rows]


def _setup(pair: str, tmp_path, request) -> tuple[dict, str, str]:
    source_kind, target_kind = pair.split("->")
    urls = {}
    for role, kind in (("src", source_kind), ("dst", target_kind)):
        if kind == "sqlite":
            urls[role] = f"sqlite:///{tmp_path}/{role}.db"
        else:
            urls[role] = request.getfixturevalue("pg_url")  # one database may serve both roles
    if source_kind == "sqlite":
        create_sqlite(tmp_path / "src.db", "sample")
    else:
        create_pg(urls["src"], "sample")
    return urls, source_kind, target_kind


@pytest.mark.parametrize("store", ["local", "s3"])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("pair", PAIRS)
def test_round_trip_is_exact(pair, fmt, store, tmp_path, request):
    urls, _, target_kind = _setup(pair, tmp_path, request)
    if store == "s3":
        request.getfixturevalue("s3_credentials")
        stores = {"exports": s3_store_config(request.getfixturevalue("s3_bucket"))}
    else:
        stores = {"exports": {"type": "local", "path": str(tmp_path / "exports")}}
    config = write_config(
        tmp_path / "sync.yaml",
        {"src": urls["src"], "dst": urls["dst"]},
        stores,
        [
            table_task(
                "copy", ("src", "sample"), ("dst", "sample_copy"), "exports", batch_file_format=fmt, export_batch_rows=2
            )
        ],
    )
    platform = Platform(load_config(config))
    table = platform.table_sync("copy")

    exported = platform.export(table)
    assert exported.manifest.rows == len(ROWS)
    assert [f.rows for f in exported.manifest.files] == [2, 2, 2]  # export_batch_rows files
    assert platform.load(table).rows == len(ROWS)

    actual = (
        read_pg(urls["dst"], "sample_copy") if target_kind == "postgresql" else _read_sqlite(urls["dst"], "sample_copy")
    )
    assert actual == normalised(ROWS)
    # '' and NULL stay distinct, and so do the strings 'NULL', '\N' and '<null>'.
    assert actual[1][5] == "" and actual[2][5] is None and actual[3][5] == "NULL" and actual[3][6] == "\\N"
    assert actual[1][11] == b"" and actual[2][11] is None
    assert platform.diff(table, "countdiff").same


@needs_postgres
def test_target_table_gets_mapped_types(pg_url, tmp_path):
    create_sqlite(tmp_path / "src.db", "sample")
    config = write_config(
        tmp_path / "sync.yaml",
        {"src": f"sqlite:///{tmp_path}/src.db", "dst": pg_url},
        {"exports": {"type": "local", "path": str(tmp_path / "exports")}},
        [table_task("copy", ("src", "sample"), ("dst", "sample_copy"), "exports")],
    )
    platform = Platform(load_config(config))
    table = platform.table_sync("copy")
    platform.export(table)
    platform.load(table)
    import psycopg

    with psycopg.connect(pg_url) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns c "
                "JOIN pg_attribute a ON a.attname = c.column_name AND a.attrelid = 'sample_copy'::regclass "
                "WHERE table_name = 'sample_copy'"
            ).fetchall()
        )
        primary_key = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = "
            "ANY(i.indkey) "
            "WHERE i.indrelid = 'sample_copy'::regclass AND i.indisprimary"
        ).fetchall()
    assert types == {
        "id": "bigint", "i": "integer", "s": "smallint", "n": "numeric(12,3)", "f": "double precision",
        "t": "text", "vc": "character varying(40)", "d": "date", "ts": "timestamp(6) without time zone",
        "tstz": "timestamp(6) with time zone", "b": "boolean", "by": "bytea",
    }
    assert primary_key == [("id",)]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("unbounded_numeric", [False, True], ids=["bounded", "unbounded-numeric"])
def test_postgres_specific_types_round_trip(fmt, unbounded_numeric, pg_url, tmp_path):
    """uuid, jsonb, time, real and numerics of every size (scaled-bigint, text and unbounded paths)."""
    extra = ", big numeric" if unbounded_numeric else ""
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            f"CREATE TABLE special (id int PRIMARY KEY, u uuid, j jsonb, tm time, r real, wide numeric(30,10), "
            f"tiny numeric(3,0){extra})"
        )
        conn.execute(
            "INSERT INTO special VALUES "
            f"(1, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{{\"k\": [1, \"x\"]}}', '23:59:59.999999', 3.25, "
            f"'-12345678901234567890.0123456789', -999{', 1.5e20' if unbounded_numeric else ''}),"
            f"(2, NULL, NULL, NULL, NULL, NULL, NULL{', -0.000001' if unbounded_numeric else ''})"
        )
    config = write_config(
        tmp_path / "sync.yaml", {"db": pg_url}, {"exports": {"type": "local", "path": str(tmp_path / "exports")}},
        [table_task("copy", ("db", "special"), ("db", "special_copy"), "exports", batch_file_format=fmt)],
    )
    platform = Platform(load_config(config))
    table = platform.table_sync("copy")
    platform.export(table)
    platform.load(table)
    with psycopg.connect(pg_url) as conn:
        source = conn.execute("SELECT * FROM special ORDER BY id").fetchall()
        copied = conn.execute("SELECT * FROM special_copy ORDER BY id").fetchall()
        types = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'special_copy'::regclass AND "
            "attnum > 0 ORDER BY attnum"
        ).fetchall()
    assert copied == source
    assert str(copied[0][1]) == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" and copied[0][2] == {"k": [1, "x"]}
    assert [t[0] for t in types][:7] == [
        "integer",
        "uuid",
        "json",
        "time(6) without time zone",
        "real",
        "numeric(30,10)",
        "numeric(3,0)",
    ]
