"""database_to_database tasks: whole database and table lists, one subtask (step) per table,
batch_parallel_size tables at a time, failed tables re-run alone, status in the spec's words."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from dagster._core.definitions.reconstruct import ReconstructableRepository

from sync_platform.cli import main as cli
from sync_platform.config import ConfigError, load_config
from sync_platform.defs import naming
from sync_platform.defs.location import build_definitions
from sync_platform.defs.status import StatusReader
from sync_platform.platform import Platform

from .conftest import (
    fresh_pg_database,
    running_ui,
    s3_store_config,
    ui_launch,
    ui_reexecute_from_failure,
    ui_terminate,
    wait_for,
    wait_for_run,
)
from .tpch import DDL, load_tpch

TPCH_TABLES = sorted(DDL)


@pytest.fixture(scope="session")
def tpch_url():
    """The 8 TPC-H tables at scale factor 0.01 (lineitem ~60k rows), once per session."""
    with fresh_pg_database("tpch") as url:
        load_tpch(url, 0.01)
        yield url


def database_task(name: str, source: str, target: str, copy_mode: str, **fields) -> dict:
    run_config = fields.pop("run_config", {})
    return {"name": name, "type": "database_to_database", "source": {"datasource": source},
            "target": {"datasource": target}, "store": {"s3_config_id": "exports"}, "copy_mode": copy_mode,
            "run_config": run_config, **fields}


def write(tmp_path, datasources: dict, *tasks: dict, name: str = "sync.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({
        "datasources": {k: {"url": v} for k, v in datasources.items()},
        "s3_configs": {"exports": {"type": "local", "path": str(tmp_path / "exports")}},
        "tasks": list(tasks),
    }, sort_keys=False))
    return path


def recon_job(tmp_path, config_path, job_name: str):
    """The job as a multiprocess run needs it: loadable again in each step's process."""
    module = tmp_path / f"defs_{uuid.uuid4().hex[:6]}.py"
    module.write_text(
        f"from sync_platform.defs.location import build_definitions\ndefs = build_definitions({str(config_path)!r})\n"
    )
    return ReconstructableRepository.for_file(str(module), "defs").get_reconstructable_job(job_name)


def step_windows(instance, run_id) -> dict[str, tuple[float, float]]:
    starts, ends = {}, {}
    for entry in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
                                                    dg.DagsterEventType.STEP_FAILURE}):
        target = starts if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START else ends
        target[entry.step_key] = entry.timestamp
    return {step: (starts[step], ends[step]) for step in starts}


def max_overlap(windows) -> int:
    moments = sorted([(s, 1) for s, _ in windows] + [(e, -1) for _, e in windows], key=lambda m: (m[0], m[1]))
    running = peak = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    return peak


def rows_of(url: str, table: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall())


def test_whole_database_pg_to_pg_in_parallel_with_every_check_passing(tmp_path, tpch_url, pg_url):
    config = write(
        tmp_path,
        {"src": tpch_url, "dst": pg_url},
        database_task(
            "tpch", "src", "dst", "whole_database", run_config={"batch_parallel_size": 3, "algorithm": "hashdiff"}
        ),
    )
    assert cli(["refresh-tables", "--config", str(config)]) == 0
    defs = build_definitions(config)
    job = defs.resolve_job_def("tpch_sync")
    keys = job.asset_layer.asset_graph.get_all_asset_keys()
    assert sorted(k.path[-1] for k in keys if not k.path[-1].endswith(("__source", "__export"))) == TPCH_TABLES
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(recon_job(tmp_path, config, "tpch_sync"), instance=instance)
        assert result.success
        checks = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.check_name == "data_diff"}
        assert sorted(checks) == TPCH_TABLES and all(c.passed for c in checks.values())
        windows = step_windows(instance, result.run_id)
        assert sorted(windows) == sorted(naming.table_step_name("tpch", t) for t in TPCH_TABLES)
        assert max_overlap(windows.values()) <= 3  # batch_parallel_size
    for table in TPCH_TABLES:
        assert rows_of(pg_url, table) == rows_of(tpch_url, table), table
    with psycopg.connect(pg_url) as conn:  # primary keys came along
        keys = conn.execute(
            "SELECT count(*) FROM information_schema.table_constraints WHERE constraint_type = 'PRIMARY KEY' AND "
            "table_schema = 'public'"
        ).fetchone()
    assert keys == (8,)


def _sqlite_shop(path) -> str:
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INT, amount NUMERIC(10,2), status TEXT);
        CREATE TABLE audit_log (id INTEGER PRIMARY KEY, note TEXT);
    """)
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?)", [(i, f"c{i}", "FR" if i % 3 else "CN") for i in range(1, 31)]
    )
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                     [(i, i % 30 + 1, f"{i * 7 % 500}.25", "open" if i % 4 else "closed") for i in range(1, 201)])
    conn.executemany("INSERT INTO audit_log VALUES (?, ?)", [(i, "x") for i in range(5)])
    conn.commit()
    return f"sqlite:///{path}"


def test_table_list_sqlite_to_pg_with_renames_overrides_and_filters(tmp_path, pg_url):
    source = _sqlite_shop(tmp_path / "shop.db")
    task = database_task("shop", "src", "dst", "tables",
                         filters={"conditions": [{"column": "status", "op": "=", "value": "open"}]},
                         tables=[{"source": "orders", "target": "dw_orders", "run_config": {"algorithm": "hashdiff"}},
                                 {"source": "customers", "target": "dim_customers",
                                  "filters": {"conditions": [{"column": "country", "op": "=", "value": "CN"}]}}])
    config = write(tmp_path, {"src": source, "dst": pg_url}, task)
    platform = Platform.from_file(config)
    orders, customers = platform.table_syncs["shop"]
    assert (orders.run_config.algorithm, customers.run_config.algorithm) == ("hashdiff", "md5diff")
    defs = build_definitions(config)
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("shop_sync").execute_in_process(instance=instance)
        assert result.success
        diffs = [e for e in result.get_asset_check_evaluations() if e.check_name == "data_diff"]
        assert {e.asset_key.path[-1] for e in diffs if e.passed} == {
            "dw_orders",
            "dim_customers",
        }
    src = sqlite3.connect(tmp_path / "shop.db")
    with psycopg.connect(pg_url) as conn:
        dw_orders = conn.execute("SELECT id, customer_id, amount::text, status FROM dw_orders ORDER BY id").fetchall()
        dim = conn.execute("SELECT id, name, country FROM dim_customers ORDER BY id").fetchall()
        assert conn.execute("SELECT to_regclass('audit_log')").fetchone() == (None,)  # not in the list
    assert dw_orders == [(i, c, f"{float(a):.2f}", s) for i, c, a, s in
                         src.execute("SELECT * FROM orders WHERE status = 'open' ORDER BY id").fetchall()]
    assert dim == src.execute("SELECT * FROM customers WHERE country = 'CN' ORDER BY id").fetchall()


def test_one_failing_table_does_not_stop_the_others_and_reruns_alone(tmp_path):
    source = _sqlite_shop(tmp_path / "shop.db")
    target = sqlite3.connect(tmp_path / "dw.db")
    target.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INT, amount NUMERIC(10,2), "
                   "status TEXT CHECK (status <> 'closed'))")  # refuses a quarter of the rows
    target.commit()
    config = write(tmp_path, {"src": source, "dst": f"sqlite:///{tmp_path}/dw.db"},
                   database_task("shop", "src", "dst", "whole_database", run_config={"batch_parallel_size": 2}))
    assert cli(["refresh-tables", "--config", str(config)]) == 0
    defs = build_definitions(config)
    tables = Platform.from_file(config).table_syncs["shop"]
    with dg.DagsterInstance.get() as instance:
        reader = StatusReader.for_definitions(instance, defs)
        assert {reader.table_status(t).status for t in tables} == {"created"}

        first = dg.execute_job(recon_job(tmp_path, config, "shop_sync"), instance=instance)
        assert not first.success
        assert max_overlap(step_windows(instance, first.run_id).values()) <= 2
        statuses = {t.source.table: reader.table_status(t) for t in tables}
        assert {n: s.status for n, s in statuses.items()} == {
            "audit_log": "completed",
            "customers": "completed",
            "orders": "failed",
        }
        failed_import = statuses["orders"].stages[1]
        assert failed_import.outcome == "failed" and "CHECK constraint failed" in failed_import.message
        assert statuses["orders"].stages[0].outcome == "ok" and statuses["orders"].stages[2].outcome == "not run"
        assert target.execute("SELECT count(*) FROM orders").fetchone() == (0,)  # nothing half-loaded

        target.execute("DROP TABLE orders")  # the operator fixes the target, then re-executes from failure
        target.commit()
        again = dg.execute_job(recon_job(tmp_path, config, "shop_sync"), instance=instance,
                               reexecution_options=dg.ReexecutionOptions.from_failure(first.run_id, instance))
        assert again.success
        assert list(step_windows(instance, again.run_id)) == [naming.table_step_name("shop", "orders")]
        assert {reader.table_status(t).status for t in tables} == {"completed"}
    assert target.execute("SELECT count(*) FROM orders").fetchone() == (200,)


def _slow_and_fast(pg_url: str, target_schema: str, sleep_s: int) -> dict:
    """Schema app with tables slow (its export and diff wait sleep_s in the source query) and
    fast; a task copying both into target_schema."""
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE SCHEMA app")
        for table in ("slow", "fast"):
            conn.execute(f"CREATE TABLE app.{table} (id int PRIMARY KEY, v text)")
            conn.execute(f"INSERT INTO app.{table} VALUES (1, 'a'), (2, 'b')")
    task = database_task(
        "app",
        "db",
        "db",
        "tables",
        tables=[
            {"source": "slow", "filters": {"source_where": f"(SELECT pg_sleep({sleep_s})::text) = ''"}},
            {"source": "fast"},
        ],
    )
    task["source"]["schema"], task["target"]["schema"] = "app", target_schema
    return task


def test_status_shows_running_and_data_inconsistent(tmp_path, pg_url):
    task = _slow_and_fast(pg_url, "dw", 3)
    with psycopg.connect(pg_url) as conn:  # the target alters what it receives: the check must see it
        conn.execute("CREATE SCHEMA dw")
        conn.execute("CREATE TABLE dw.fast (id int PRIMARY KEY, v text)")
        conn.execute(
            "CREATE FUNCTION dw.mangle() RETURNS trigger AS $$ BEGIN NEW.v := NEW.v || '!'; RETURN NEW; END $$ "
            "LANGUAGE plpgsql"
        )
        conn.execute("CREATE TRIGGER mangle BEFORE INSERT ON dw.fast FOR EACH ROW EXECUTE FUNCTION dw.mangle()")
    config = write(tmp_path, {"db": pg_url}, task)
    defs = build_definitions(config)
    slow, fast = Platform.from_file(config).table_syncs["app"]
    with dg.DagsterInstance.get() as instance:
        run = threading.Thread(
            target=lambda: defs.resolve_job_def("app_sync").execute_in_process(instance=instance, raise_on_error=False)
        )
        run.start()
        seen = set()
        while run.is_alive():
            seen.add(StatusReader.for_definitions(instance, defs).table_status(slow).status)
            time.sleep(0.2)
        run.join()
        assert "running" in seen
        final = {
            t.source.table_name.name: StatusReader.for_definitions(instance, defs).table_status(t) for t in (slow, fast)
        }
    assert final["slow"].status == "completed"
    assert final["fast"].status == "data-inconsistent"
    assert final["fast"].stages[2].outcome == "inconsistent" and final["fast"].stages[2].rows == "2/2"


def test_status_command_prints_one_row_per_table(tmp_path, capsys):
    source = _sqlite_shop(tmp_path / "shop.db")
    config = write(
        tmp_path,
        {"src": source, "dst": f"sqlite:///{tmp_path}/dw.db"},
        database_task("shop", "src", "dst", "tables", tables=[{"source": "orders"}, {"source": "customers"}]),
    )
    with dg.DagsterInstance.get() as instance:
        build_definitions(config).resolve_job_def("shop_sync").execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(["shop", "orders__export"]), dg.AssetKey(["shop", "orders"])],
        )
    assert cli(["status", "shop", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    orders = next(line for line in lines if line.startswith("orders -> orders"))
    customers = next(line for line in lines if line.startswith("customers -> customers"))
    assert "completed" in orders and "ok 200 rows" in orders and "passed 200/200 rows" in orders
    assert "created" in customers and "not run" in customers
    assert lines[-1] == "shop: 2 tables, 1 completed, 1 created"


def job_assets(defs, job: str) -> set:
    return defs.resolve_job_def(job).asset_layer.asset_graph.get_all_asset_keys()


def _invalid_job_description(defs, job: str) -> str:
    description = defs.resolve_job_def(job).description
    assert description.startswith("INVALID TASK, left out of the code location:"), description
    return description


def test_whole_database_needs_a_discovered_table_list(tmp_path):
    """A missing or foreign list leaves only its task out (its job says why); the others load."""
    source = _sqlite_shop(tmp_path / "shop.db")
    task = database_task("shop", "src", "dst", "whole_database", exclude=["audit_log"])
    listed = database_task("listed", "src", "dst", "tables", tables=[{"source": "orders", "target": "orders_2"}])
    config = write(tmp_path, {"src": source, "dst": f"sqlite:///{tmp_path}/dw.db"}, task, listed)
    with pytest.warns(UserWarning, match="task 'shop' is not valid and was left out"):
        defs = build_definitions(config)
    assert re.search(r"task 'shop' \(copy_mode whole_database\): its table list has not been discovered yet \(no "
                     r"file://.*/exports/_sync_platform/table_lists/shop/\w+\.json\); run `sync-platform "
                     r"refresh-tables shop --config", _invalid_job_description(defs, "shop_sync"))
    assert dg.AssetKey(["listed", "orders_2"]) in job_assets(defs, "listed_sync")
    assert cli(["refresh-tables", "shop", "--config", str(config)]) == 0
    assert [t.source.table for t in Platform.from_file(config).table_syncs["shop"]] == ["customers", "orders"]

    # Loading the definitions does not touch the source: it works with the source gone.
    os.rename(tmp_path / "shop.db", tmp_path / "gone.db")
    keys = build_definitions(config).resolve_job_def("shop_sync").asset_layer.asset_graph.get_all_asset_keys()
    assert len([key for key in keys if key.path[0] == "shop"]) == 6

    # The same file pointing at another source: the stored list is refused, naming both sources.
    write(tmp_path, {"src": f"sqlite:///{tmp_path}/gone.db", "dst": f"sqlite:///{tmp_path}/dw.db"}, task, listed)
    with pytest.warns(UserWarning, match="task 'shop' is not valid"):
        description = _invalid_job_description(build_definitions(config), "shop_sync")
    assert re.search("the stored table list came from sqlite:///.*shop.db.* but the task now reads sqlite:///.*gone.db",
                     description)

    # Back on its source, a list older than table_list_max_age_days is reported stale, and used.
    write(tmp_path, {"src": source, "dst": f"sqlite:///{tmp_path}/dw.db"}, task, listed)
    platform = Platform.from_file(config)
    store, key = platform.task_store(platform.config.task("shop")), platform.table_lists.key(
        platform.config, platform.config.task("shop"))
    store.put(key, json.dumps({**json.loads(store.get(key)), "discovered_at": "2020-01-01T00:00:00+00:00"}).encode())
    with pytest.warns(
        UserWarning, match=r"task 'shop': table list discovered \d+ days ago \(table_list_max_age_days: 7\)"
    ):
        defs = build_definitions(config)
    assert "WARNING: task 'shop': table list discovered" in defs.resolve_job_def("shop_sync").description


def test_a_table_list_is_read_by_every_host_from_the_tasks_store(tmp_path, s3_bucket, s3_credentials):
    """Discovered on one host, the list is in the task's bucket: another host (another home, another
    path for the same file) loads the task from it without querying the source; a host whose store
    is unreachable leaves that task out and loads the others."""
    source = _sqlite_shop(tmp_path / "shop.db")
    document = {
        "datasources": {"src": {"url": source}, "dst": {"url": f"sqlite:///{tmp_path}/dw.db"}},
        "s3_configs": {"exports": s3_store_config(s3_bucket)},
        "tasks": [database_task("shop", "src", "dst", "whole_database", exclude=["audit_log"]),
                  database_task("other", "src", "dst", "tables", tables=[{"source": "orders"}])],
    }
    here = tmp_path / "host_a" / "sync.yaml"
    here.parent.mkdir()
    here.write_text(yaml.safe_dump(document))
    assert cli(["refresh-tables", "shop", "--config", str(here)]) == 0

    elsewhere = tmp_path / "host_b" / "etc" / "sync.yaml"
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_text(yaml.safe_dump(document))
    os.rename(tmp_path / "shop.db", tmp_path / "gone.db")  # the second host never reaches the source
    loaded = subprocess.run(
        [sys.executable, "-c", "from sync_platform.defs.location import build_definitions; import sys; "
         "d = build_definitions(sys.argv[1]); "
         "graph = d.resolve_job_def('shop_sync').asset_layer.asset_graph; "
         "print(sorted(k.to_user_string() for k in graph.get_all_asset_keys()))",
         str(elsewhere)],
        env={**os.environ, "SYNC_PLATFORM_HOME": str(tmp_path / "host_b" / "home"), "HOME": str(tmp_path / "host_b")},
        capture_output=True, text=True, timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "'shop/customers'" in loaded.stdout and "'shop/orders'" in loaded.stdout and "audit_log" not in loaded.stdout

    unreachable = {**document, "s3_configs": {"exports": s3_store_config(s3_bucket, endpoint_url="http://127.0.0.1:9")}}
    elsewhere.write_text(yaml.safe_dump(unreachable))
    with pytest.warns(UserWarning, match="task 'shop' is not valid"):
        defs = build_definitions(elsewhere)
    assert re.search(r"S3 lookup of s3://.*/_sync_platform/table_lists/shop/.* failed: endpoint unreachable",
                     _invalid_job_description(defs, "shop_sync"))
    assert "INVALID" not in (defs.resolve_job_def("other_sync").description or "")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"copy_mode": "tables"}, "copy_mode 'tables' needs a non-empty tables list"),
        (
            {"copy_mode": "whole_database", "tables": [{"source": "a", "target": "b"}]},
            "copy_mode 'whole_database' keeps table names",
        ),
        (
            {"copy_mode": "tables", "tables": [{"source": "a"}, {"source": "A"}]},
            "source names ['a'] appear more than once",
        ),
        (
            {"copy_mode": "tables", "tables": [{"source": "a", "target": "x"}, {"source": "b", "target": "x"}]},
            "target names ['x'] appear more than once",
        ),
        ({"copy_mode": "tables", "tables": [{"source": "s.a"}]}, "give the table name without a schema"),
        (
            {"copy_mode": "tables", "tables": [{"source": "a", "run_config": {"limit": 0}}]},
            "tables.0.run_config.limit: Input should be greater than or equal to 1",
        ),
        (
            {
                "copy_mode": "tables",
                "run_config": {"bisection_threshold": 50},
                "tables": [{"source": "a", "run_config": {"bisection_factor": 64}}],
            },
            "tables[0] (a): run_config: bisection_factor (64) must be less than bisection_threshold (50)",
        ),
        ({"copy_mode": "everything"}, "copy_mode: Input should be 'whole_database' or 'tables'"),
        (
            {"copy_mode": "tables", "tables": [{"source": "a"}], "exclude": ["b"]},
            "exclude applies to copy_mode 'whole_database' only",
        ),
        ({"copy_mode": "whole_database", "target_datasource": "src"}, "same datasource and schema"),
        ({"copy_mode": "tables", "tables": [{"source": "a"}], "partition": {}}, "unknown field 'partition'"),
    ],
)
def test_bad_database_tasks_are_rejected(tmp_path, fields, message):
    task = database_task("db", "src", fields.pop("target_datasource", "dst"), fields.pop("copy_mode"), **fields)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, {"src": "sqlite:///a.db", "dst": "sqlite:///b.db"}, task))
    assert any(p.startswith("task 'db' (tasks[0]): ") and message in p for p in caught.value.problems), (
        caught.value.problems
    )


def test_whole_database_refuses_names_the_target_cannot_keep(tmp_path):
    long_name = "t" * 64
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute('CREATE TABLE "my table" (id int)')  # quoted everywhere: kept as it is
    conn.execute(f'CREATE TABLE "{long_name}" (id int)')
    conn.commit()
    config = write(tmp_path, {"src": f"sqlite:///{tmp_path}/src.db", "dst": "postgresql://u@127.0.0.1:1/dw"},
                   database_task("db", "src", "dst", "whole_database"))
    with pytest.raises(ValueError, match=rf"cannot keep these source table names in the target: \['{long_name}'\] are "
                                         r"longer than the target's 63-byte limit\. Use copy_mode: tables"):
        Platform(load_config(config), config).table_lists.refresh(load_config(config), load_config(config).tasks[0])
    lists = Platform(load_config(config), config).table_lists
    assert not lists.exists(load_config(config), load_config(config).tasks[0])


def test_status_through_termination_and_restart_from_the_ui(tmp_path, pg_url):
    """Launched, terminated and re-executed from failure as the UI does it (its GraphQL API, on a
    live `sync-platform ui`): the slow table reads running, then terminated, then restarting, then
    completed."""
    config = write(tmp_path, {"db": pg_url}, _slow_and_fast(pg_url, "public", 4))
    defs = build_definitions(config)
    slow = Platform.from_file(config).table_syncs["app"][0]
    env = {**os.environ, "SYNC_PLATFORM_CONFIG": str(config)}

    with running_ui(env, tmp_path / "ui.log") as base, dg.DagsterInstance.get() as instance:
        def status() -> str:
            return StatusReader.for_definitions(instance, defs).table_status(slow).status

        run_id = ui_launch(base, "app_sync")
        wait_for(lambda: status() == "running", "the slow table to run")
        ui_terminate(base, instance, run_id)
        assert status() == "terminated"
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT to_regclass('public.slow')").fetchone() == (None,)  # nothing half-written

        retry_id = ui_reexecute_from_failure(base, run_id)
        wait_for(lambda: status() == "restarting", "the re-execution to reach the slow table")
        assert wait_for_run(instance, retry_id) == dg.DagsterRunStatus.SUCCESS
        assert status() == "completed"
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT * FROM public.slow ORDER BY id").fetchall() == [(1, "a"), (2, "b")]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_step_whose_run_worker_is_killed_stops_itself(tmp_path, pg_url):
    """A database task's tables run in step processes of their own. Killed with SIGKILL, the run
    worker leaves them running (they used to go on exporting into the failed run beside its
    retry): each sees it is an orphan within seconds, cancels its read, writes no manifest,
    releases the folder's lease and records no materialization into the run."""
    from sync_platform.defs.eventlog import worker_pid

    config = write(tmp_path, {"db": pg_url}, _slow_and_fast(pg_url, "dw", 50))  # slow: its read sleeps 50 s
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE SCHEMA dw")
    lease = tmp_path / "exports" / "_sync_platform" / "writers" / "app" / "app.slow" / "full.json"
    env = {**os.environ, "SYNC_PLATFORM_CONFIG": str(config)}
    with running_ui(env, tmp_path / "ui.log") as base, dg.DagsterInstance.get() as instance:
        run_id = ui_launch(base, "app_sync")
        wait_for(lambda: lease.exists(), "the slow table's export", timeout=120)
        worker = worker_pid(instance, run_id)
        steps = _children(worker)
        assert steps, "the step processes of the run worker"
        os.kill(worker, signal.SIGKILL)
        killed = time.time()
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in steps), "the orphaned steps to end",
                 timeout=40)
        assert time.time() - killed < 30  # not the 50 s its read would have slept
        assert not (tmp_path / "exports" / "app" / "app.slow" / "full" / "manifest.json").exists()
        assert json.loads(lease.read_text())["released"] is True
        late = [e for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
                if e.timestamp > killed and "slow" in e.dagster_event.asset_key.to_user_string()]
        assert late == []
        failures = [e for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
                    if "slow" in (e.step_key or "")]
        assert any("is an orphan" in str(e.dagster_event.event_specific_data.error) for e in failures), failures
