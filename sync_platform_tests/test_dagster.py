"""The Dagster layer: names, kinds, metadata, the blocking data-diff check, and load-time errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from sqlalchemy.engine import make_url

from sync_platform.config import ConfigError, load_config
from sync_platform.defs import naming
from sync_platform.defs.location import build_definitions

from .conftest import table_task, write_config

PASSWORD = "not-a-real-pw-7f3a"


def _source(tmp_path, rows=250) -> str:
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total DECIMAL(10,2), note TEXT)")
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(i, f"{i}.25", f"n{i}") for i in range(rows)])
    conn.commit()
    return f"sqlite:///{tmp_path}/src.db"


def _config(tmp_path, target_url, **run_config) -> str:
    return str(
        write_config(
            tmp_path / "sync.yaml",
            {"src": _source(tmp_path), "dw": target_url},
            {"exports": {"type": "local", "path": str(tmp_path / "exports")}},
            [
                {
                    **table_task(
                        "orders_copy",
                        ("src", "orders"),
                        ("dw", "dw_orders"),
                        "exports",
                        export_batch_rows=100,
                        **run_config,
                    ),
                    "description": "Orders to the warehouse",
                }
            ],
        )
    )


def test_definitions_shape(tmp_path):
    defs = build_definitions(_config(tmp_path, f"sqlite:///{tmp_path}/dw.db"))
    export_key, imported_key = (
        dg.AssetKey(["orders_copy", "orders__export"]),
        dg.AssetKey(["orders_copy", "dw_orders"]),
    )
    source_key = dg.AssetKey(["orders_copy", "orders__source"])
    graph = defs.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) == {source_key, export_key, imported_key}
    assert graph.get(imported_key).parent_keys == {export_key} and graph.get(export_key).parent_keys == {source_key}
    assert not graph.get(source_key).is_materializable  # observed (cleanup history), never materialized
    assert {graph.get(k).group_name for k in (source_key, export_key, imported_key)} == {"orders_copy"}
    assert graph.get(export_key).kinds == {"file", "csv"} and graph.get(imported_key).kinds == {"sqlite"}
    check_key = dg.AssetCheckKey(imported_key, naming.DATA_DIFF_CHECK)
    assert check_key in graph.asset_check_keys
    assert graph.get_check_spec(check_key).blocking
    assert defs.resolve_job_def("orders_copy_sync").description == "Orders to the warehouse"


def test_job_run_records_metadata_and_never_secrets(tmp_path, pg_url):
    target = make_url(pg_url).set(password=PASSWORD).render_as_string(hide_password=False)  # trust auth ignores it
    defs = build_definitions(_config(tmp_path, target))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("orders_copy_sync").execute_in_process(instance=instance)
        assert result.success
        meta = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
        assert meta["orders__export"]["rows"].value == 250 and meta["orders__export"]["files"].value == 3
        assert meta["orders__export"]["bytes"].value > 0 and meta["orders__export"]["rows_per_s"].value > 0
        location = (tmp_path / "exports" / "orders_copy" / "orders" / "full").as_uri()
        assert meta["orders__export"]["location"].value == location
        assert meta["dw_orders"]["dagster/row_count"].value == 250
        [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "data_diff"]
        assert check.passed and check.metadata["source_rows"].value == check.metadata["target_rows"].value == 250
        everything = " ".join(str(record) for record in instance.all_logs(result.run_id))
        assert PASSWORD not in everything
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*), sum(total) FROM dw_orders").fetchone() == (
            250,
            sum(i + 0.25 for i in range(250)),
        )


@pytest.mark.parametrize("algorithm", ["countdiff", "md5diff", "hashdiff"])
def test_data_diff_check_fails_as_error_when_rows_differ(tmp_path, algorithm):
    defs = build_definitions(_config(tmp_path, f"sqlite:///{tmp_path}/dw.db", algorithm=algorithm))
    check_key = dg.AssetCheckKey(dg.AssetKey(["orders_copy", "dw_orders"]), naming.DATA_DIFF_CHECK)
    assert defs.resolve_asset_graph().get_check_spec(check_key).description.startswith(f"{algorithm}: ")
    with dg.DagsterInstance.ephemeral() as instance:
        assert defs.resolve_job_def("orders_copy_sync").execute_in_process(instance=instance).success
        conn = sqlite3.connect(tmp_path / "dw.db")
        conn.execute("DELETE FROM dw_orders WHERE id < 3")
        conn.execute("UPDATE dw_orders SET note = 'changed' WHERE id = 100")
        conn.commit()
        # The check alone, as an operator runs it from the asset's Checks tab.
        check_only = dg.Definitions(
            assets=defs.assets, asset_checks=defs.asset_checks, resources=defs.resources,
            jobs=[dg.define_asset_job("check_only", selection=dg.AssetSelection.checks(check_key))],
        )
        result = check_only.resolve_job_def("check_only").execute_in_process(instance=instance, raise_on_error=False)
        [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "data_diff"]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
        assert not result.success  # blocking: the step fails, so nothing downstream runs
        meta = check.metadata
        assert (meta["algorithm"].value, meta["source_rows"].value, meta["target_rows"].value) == (algorithm, 250, 247)
        if algorithm == "hashdiff":
            assert meta["differences"].value == 4
            records = [r.data for r in meta["differing_rows"].value.records]
            assert records == [
                {"key": "id=0", "kind": "missing_in_target", "columns": ""},
                {"key": "id=1", "kind": "missing_in_target", "columns": ""},
                {"key": "id=2", "kind": "missing_in_target", "columns": ""},
                {"key": "id=100", "kind": "changed", "columns": "note"},
            ]
        else:
            assert "differing_rows" not in meta


def test_an_invalid_task_is_shown_in_place_of_its_job_and_the_location_loads(tmp_path):
    bad = write_config(
        tmp_path / "bad.yaml", {"src": "sqlite:///a.db"}, {"exports": {"type": "local", "path": "/tmp/x"}},
        [table_task("orders_copy", ("src", "orders"), ("warehouse", "dw_orders"), "exports")],
    )
    with pytest.raises(
        ConfigError, match=r"task 'orders_copy' \(tasks\[0\]\): target.datasource: unknown datasource 'warehouse'"
    ):
        load_config(bad)  # what `sync-platform validate` reports, strictly
    job = build_definitions(bad).resolve_job_def("orders_copy_sync")
    assert "target.datasource: unknown datasource 'warehouse'; valid values: src" in job.description
    result = job.execute_in_process(raise_on_error=False)
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert (
        "task 'orders_copy' is not valid, so it was left out" in failure.step_failure_data.user_failure_data.description
    )
    # When Dagster loads the code location: it loads (the UI shows the job's description).
    dagster = str(Path(sys.executable).parent / "dagster")
    loaded = subprocess.run(
        [dagster, "definitions", "validate", "-m", "sync_platform.defs.location"], capture_output=True, text=True,
        env={**__import__("os").environ, "SYNC_PLATFORM_CONFIG": str(bad)},
    )
    assert loaded.returncode == 0, loaded.stderr


def test_the_code_location_refuses_to_load_without_a_configuration():
    """A code server whose SYNC_PLATFORM_CONFIG got lost must not serve (and schedule) the demo."""
    dagster = str(Path(sys.executable).parent / "dagster")
    env = {k: v for k, v in __import__("os").environ.items() if k != "SYNC_PLATFORM_CONFIG"}
    loaded = subprocess.run([dagster, "definitions", "validate", "-m", "sync_platform.defs.location"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert loaded.returncode != 0
    assert "SYNC_PLATFORM_CONFIG is not set, so the code location does not know which tasks to load" in (
        loaded.stdout + loaded.stderr)
    assert "demo_orders" not in loaded.stdout + loaded.stderr
