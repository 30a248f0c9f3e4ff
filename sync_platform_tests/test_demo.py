"""`sync-platform demo`: seeds, syncs through Dagster into the shared instance, prints a summary."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg

from sync_platform.engine import TableName, database_for
from sync_platform.engine.columns import Kind

from .tables import read_table


def test_demo_runs_and_lands_in_the_instance(tmp_path):
    home, dagster_home = tmp_path / "home", tmp_path / "home" / "dagster_home"
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "SYNC_PLATFORM_CONFIG")}
    env["SYNC_PLATFORM_HOME"] = str(home)
    command = shutil.which("sync-platform", path=str(Path(sys.executable).parent)) or "sync-platform"
    done = subprocess.run([command, "demo"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("task "))
    assert lines[0].startswith("seeded demo source") and lines[1].startswith(
        "discovered 5 tables for task 'demo_replica'"
    )
    rows = [line.split() for line in lines[header + 2 : header + 20]]
    assert [r[0] for r in rows] == ["demo_orders", "demo_lineitem", "demo_customers", "demo_large_orders"] + [
        "demo_lineitem_archive"] * 6 + ["demo_replica"] * 5 + ["demo_analytics"] * 3
    assert [r[1] for r in rows[-8:-3]] == ["customer", "lineitem", "nation", "orders", "region"]
    assert [" ".join(r[1:4]) for r in rows[-3:]] == ["orders -> fact_orders", "lineitem -> fact_lineitem",
                                                     "customer -> dim_customer"]
    assert [r[4] for r in rows[4:10]] == ["[2025-07]", "[2025-08]", "[2025-09]", "[2025-10]", "[2025-11]", "[2025-12]"]
    for r in rows:  # exported = imported, check passed, run ok
        exported, imported, check = (r[-5], r[-4], r[-3])
        assert exported == imported and check == "passed" and r[-1] == "ok", r
    assert f"DAGSTER_HOME={dagster_home}" in done.stdout
    assert (dagster_home / "dagster.yaml").exists()

    # The warehouse holds exactly the source rows.
    source = sqlite3.connect(home / "demo" / "source.db")
    warehouse = sqlite3.connect(home / "demo" / "warehouse.db")
    for src, dst, key in (("orders", "orders", "o_orderkey"), ("customer", "dim_customer", "c_custkey")):
        assert source.execute(f"SELECT * FROM {src} ORDER BY {key}").fetchall() == \
            warehouse.execute(f"SELECT * FROM {dst} ORDER BY {key}").fetchall()
    # Filters: exactly the rows of the hand-written query.
    large = ("SELECT * FROM orders WHERE o_totalprice > 300000 AND o_orderpriority IN ('1-URGENT', '2-HIGH') "
             "AND o_orderstatus <> 'P' ORDER BY 1")
    expected = source.execute(large).fetchall()
    assert 0 < len(expected) < 15000
    assert warehouse.execute("SELECT * FROM large_orders ORDER BY 1").fetchall() == expected
    # The monthly archive: second half of 2025, quantities over 10, exactly.
    archive = ("SELECT * FROM lineitem WHERE l_quantity > 10 AND l_shipdate >= '2025-07-01' "
               "AND l_shipdate < '2026-01-01' ORDER BY 1, 2")
    assert (
        warehouse.execute("SELECT * FROM lineitem_archive ORDER BY 1, 2").fetchall()
        == source.execute(archive).fetchall()
    )
    # Parquet + import_order_by: lineitem lands in ship-date order.
    shipdates = [r[0] for r in warehouse.execute("SELECT l_shipdate FROM lineitem ORDER BY rowid")]
    assert shipdates == sorted(shipdates) and len(shipdates) > 50_000

    # The whole-database replica: every table of the source, row for row.
    replica = sqlite3.connect(home / "demo" / "replica.db")
    for table in ("region", "nation", "customer", "orders", "lineitem"):
        assert replica.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() == \
            source.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall(), table

    # The DuckDB warehouse: each table row for row, as each side's own reader gives it.
    source_url, analytics_url = f"sqlite:///{home}/demo/source.db", f"duckdb:///{home}/demo/analytics.duckdb"
    for src, dst, key in (("orders", "fact_orders", "o_orderkey"), ("customer", "dim_customer", "c_custkey")):
        assert read_table(analytics_url, dst, key)[0] == read_table(source_url, src, key)[0], dst
    copied, schema = read_table(analytics_url, "fact_lineitem", "l_orderkey")
    assert schema.column("l_extendedprice").kind is Kind.DECIMAL and len(copied) == len(
        read_table(source_url, "lineitem", "l_orderkey")[0])
    # The runs, materializations and check results are in the instance `dagster dev` will open.
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert sorted({r.job_name for r in runs}) == [
            "demo_analytics_sync", "demo_customers_sync", "demo_large_orders_sync", "demo_lineitem_archive_sync",
            "demo_lineitem_sync", "demo_orders_sync", "demo_replica_sync"]
        assert len(runs) == 4 + 1 + 1 + 1  # the archive's six months in one run (partition.backfill: single_run)
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        months = {f"2025-{m:02d}-01" for m in range(7, 13)}
        archive_key = dg.AssetKey(["demo_lineitem_archive", "lineitem_archive"])
        assert instance.get_materialized_partitions(archive_key) == months
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(archive_key, "data_diff"), limit=20)
        assert {c.partition for c in checks} == months
        assert all(c.event.dagster_event.event_specific_data.passed for c in checks)
        latest = instance.get_latest_materialization_event(dg.AssetKey(["demo_orders", "orders"]))
        assert latest.asset_materialization.metadata["rows"].value == 15000

    # A second run re-syncs without duplicating anything.
    again = subprocess.run([command, "demo"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert warehouse.execute("SELECT count(*) FROM orders").fetchone()[0] == 15000
    assert database_for(analytics_url).count_rows(TableName("fact_orders")) == 15000
