"""DuckDB as the warehouse target, on real DuckDB files: the load is DuckDB's own read_parquet /
read_csv of the export's files where the store keeps them (a local folder, or the S3 endpoint
through httpfs), in one transaction; a file replaced in the store while it is loaded rolls the load
back; `mppsql_server_name` names the DuckDB secret the load reads S3 with. (The type matrix, the
key-order diff, the cleanup proof and the lock wait cover DuckDB through DIALECTS.)"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from sync_platform.config import load_config
from sync_platform.engine import ExportIncomplete, LoadFailed, TableName, TableSchema, database_for
from sync_platform.engine.columns import Column, Kind
from sync_platform.engine.filters import Where
from sync_platform.engine.load import load_files
from sync_platform.engine.manifest import read_manifest
from sync_platform.platform import Platform

from .conftest import S3_ENDPOINT, S3_KEY_ID, S3_SECRET, s3_store_config, table_task, write_config
from .tables import create_table, read_table

SCHEMA = TableSchema(
    (Column("id", Kind.INT64, nullable=False), Column("label", Kind.STRING), Column("amount", Kind.DECIMAL,
     precision=12, scale=2), Column("day", Kind.DATE), Column("at", Kind.TIMESTAMPTZ), Column("raw", Kind.BINARY)),
    ("id",),
)
ROWS = [{"id": i, "label": f"l{i}\n\"q\"" if i % 7 else None, "amount": Decimal(i) / 4,
         "day": date(2024, 1, 1 + i % 28), "at": datetime(2024, 1, 1, i % 24, tzinfo=UTC), "raw": bytes([i % 256, 0])}
        for i in range(1, 2001)]


def _platform(tmp_path: Path, store: dict, fmt: str, **run_config) -> tuple[Platform, str, str]:
    source, target = f"sqlite:///{tmp_path}/src.db", f"duckdb:///{tmp_path}/warehouse.duckdb"
    create_table(source, "items", SCHEMA, ROWS)
    task = table_task("copy", ("src", "items"), ("dw", "items"), "x", batch_file_format=fmt, export_batch_rows=300,
                      **run_config)
    config = write_config(tmp_path / "sync.yaml", {"src": source, "dw": target}, {"x": store}, [task])
    return Platform(load_config(config)), source, target


@pytest.fixture
def s3_store(s3_bucket, s3_credentials):
    if not S3_ENDPOINT:
        pytest.skip("SYNC_TEST_S3_ENDPOINT is not set")
    return s3_store_config(s3_bucket)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("where", ["local", "s3"])
def test_duckdb_loads_the_files_itself_from_the_store(where, fmt, tmp_path, request):
    store = request.getfixturevalue("s3_store") if where == "s3" else {"type": "local", "path": str(tmp_path / "x")}
    platform, source, target = _platform(tmp_path, store, fmt)
    table = platform.table_sync("copy")
    exported = platform.export(table)
    assert len(exported.manifest.files) == 7
    assert platform.load(table).rows == 2000
    assert read_table(target, "items")[0] == read_table(source, "items")[0]
    assert platform.diff(table, algorithm="hashdiff").same
    # A second load replaces the rows (the same 2000, once), and a window replace keeps the others.
    assert platform.load(table).rows == 2000
    assert database_for(target).count_rows(TableName("items")) == 2000
    statements = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        schema = statements.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'items' "
                                    "ORDER BY column_index").fetchall()
    finally:
        statements.close()
    assert schema == [("id", "BIGINT"), ("label", "VARCHAR"), ("amount", "DECIMAL(12,2)"), ("day", "DATE"),
                      ("at", "TIMESTAMP WITH TIME ZONE"), ("raw", "BLOB")]


def test_a_file_replaced_in_the_store_while_it_is_loaded_rolls_the_load_back(tmp_path):
    platform, source, target = _platform(tmp_path, {"type": "local", "path": str(tmp_path / "x")}, "parquet")
    table = platform.table_sync("copy")
    platform.export(table)
    platform.load(table)
    store = platform.store(table)
    manifest = read_manifest(store, table.export_folder())
    first = f"{table.export_folder()}/{manifest.files[0].name}"
    original = store.get(first)

    def entries():  # the first file is replaced (same rows: the export re-run) once DuckDB has read it
        yield manifest.files[0]
        store.put(first, original)
        yield from manifest.files[1:]

    database = database_for(target)
    database.execute_write(Where.statement("UPDATE items SET label = 'before'", None))
    with pytest.raises(ExportIncomplete, match=r"part-00000.parquet was replaced in the store while items was loaded "
                                               r"from it \(1 file\(s\)\); rolled back, nothing changed"):
        load_files(database, store, table.export_folder(), TableName("items"), manifest.schema, entries(),
                   manifest.rows)
    assert {r[0] for r in database.query("SELECT DISTINCT label FROM items")} == {"before"}
    assert database.count_rows(TableName("items")) == 2000


def test_a_file_that_does_not_match_its_manifest_is_never_loaded(tmp_path):
    platform, _, target = _platform(tmp_path, {"type": "local", "path": str(tmp_path / "x")}, "csv")
    table = platform.table_sync("copy")
    manifest = platform.export(table).manifest
    store = platform.store(table)
    last = f"{table.export_folder()}/{manifest.files[-1].name}"
    store.put(last, store.get(f"{table.export_folder()}/{manifest.files[0].name}"))  # another file's bytes
    with pytest.raises(ExportIncomplete, match=r"does not match its manifest \(size or sha256\)"):
        platform.load(table)
    assert not database_for(target).table_exists(TableName("items"))


def test_mppsql_server_name_is_the_duckdb_secret_the_load_reads_s3_with(tmp_path, s3_store):
    secrets = tmp_path / "secrets"
    target = f"duckdb:///{tmp_path}/warehouse.duckdb?secret_directory={secrets}"
    source = f"sqlite:///{tmp_path}/src.db"
    create_table(source, "items", SCHEMA, ROWS)
    task = table_task("copy", ("src", "items"), ("dw", "items"), "x", batch_file_format="parquet",
                      mppsql_server_name="warehouse_reader")
    config = write_config(tmp_path / "sync.yaml", {"src": source, "dw": target}, {"x": s3_store}, [task])
    platform = Platform(load_config(config))
    table = platform.table_sync("copy")
    platform.export(table)
    with pytest.raises(LoadFailed, match=r"mppsql_server_name 'warehouse_reader' names no DuckDB secret of .*; its "
                                         r"secrets are none: create it"):
        platform.load(table)

    # The operator creates the secret (its own keys, kept by DuckDB) in a DuckDB shell of their own.
    endpoint = S3_ENDPOINT.split("://", 1)[1]
    create = (f"CREATE PERSISTENT SECRET warehouse_reader (TYPE s3, KEY_ID '{S3_KEY_ID}', SECRET '{S3_SECRET}', "
              f"ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')")
    shell = ("import duckdb, sys; from sync_platform.engine.dialects.duckdb import httpfs_extension; "
             "c = duckdb.connect(); c.execute(f\"SET secret_directory = '{sys.argv[1]}'\"); "
             "c.execute(f\"LOAD '{httpfs_extension()}'\"); c.execute(sys.argv[2])")
    subprocess.run([sys.executable, "-c", shell, str(secrets), create], check=True)
    assert platform.load(table).rows == 2000
    assert read_table(target, "items")[0] == read_table(source, "items")[0]
