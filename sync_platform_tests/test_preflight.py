"""Bad input that only the databases can reveal is refused before anything is written: by
`sync-platform validate --connect`, and by a real run of the code location (the export step fails
with the task, the field and the fix, and neither the store nor the target is touched)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from .conftest import table_task, write_config

# Each case: the task's name, what to change in its table_task(), and words its refusal must hold.
# The source is SQLite (orders has a primary key, events has none); the target is a fresh PostgreSQL
# database holding `typed_wrong`, an orders table whose `note` is an integer.
CASES = {
    "no_schema": ({"target": ("dst", "warehouse.orders_copy")},
                  ["target: schema 'warehouse' does not exist", "create it"]),
    "wrong_types": ({"target": ("dst", "typed_wrong")},
                    ["target table typed_wrong has columns whose types cannot hold the source's",
                     "(note: int32 cannot hold string)"]),
    "hashdiff_no_key": ({"source": ("src", "events"), "run_config": {"algorithm": "hashdiff"}},
                        ["run_config.algorithm: hashdiff needs key columns, and events has no primary key",
                         "set run_config.key_columns, or use md5diff"]),
    "unknown_key_column": ({"run_config": {"key_columns": ["id", "nope"]}},
                           ["run_config.key_columns[1]: table orders has no column 'nope'; valid values: id, note"]),
    "unknown_order_column": ({"run_config": {"import_order_by": "id, notes DESC"}},
                             ["run_config.import_order_by: table orders has no column 'notes'"]),
}


@pytest.fixture
def broken_config(tmp_path, pg_url) -> Path:
    with sqlite3.connect(tmp_path / "src.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT)")
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(i, f"n{i}") for i in range(5)])
        conn.execute("CREATE TABLE events (at TEXT, what TEXT)")
        conn.execute("INSERT INTO events VALUES ('2026-01-01', 'x')")
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE typed_wrong (id bigint PRIMARY KEY, note integer)"))
    engine.dispose()
    tasks = []
    for name, (change, _) in CASES.items():
        task = table_task(name, change.get("source", ("src", "orders")), change.get("target", ("dst", "orders_copy")),
                          "exports", **change.get("run_config", {}))
        tasks.append(task)
    return write_config(tmp_path / "sync.yaml", {"src": f"sqlite:///{tmp_path}/src.db", "dst": pg_url},
                        {"exports": {"type": "local", "path": str(tmp_path / "exports")}}, tasks)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sync_platform.cli", *args], capture_output=True, text=True,
                          timeout=300)


def _target_tables(pg_url: str) -> dict[str, list]:
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(sa.text(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"))]
        rows = {name: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {name}"))] for name in names}
    engine.dispose()
    return rows


def test_validate_connect_names_each_problem_before_a_run(broken_config):
    plain = _cli("validate", str(broken_config))
    assert plain.returncode == 0, plain.stderr  # the settings parse; only the databases reveal these
    done = _cli("validate", "--connect", str(broken_config))
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == f"{len(CASES)} problem(s) in {broken_config}:"
    for name, (_, words) in CASES.items():
        [line] = [line for line in done.stderr.splitlines() if line.startswith(f"  - task {name!r}: ")]
        for word in words:
            assert word in line, (name, line)


def test_a_run_refuses_before_writing_anything(broken_config, pg_url, tmp_path):
    from sync_platform.defs import naming
    from sync_platform.defs.eventlog import run_outcome
    from sync_platform.defs.runner import code_location

    before = _target_tables(pg_url)
    with code_location(broken_config) as launcher:
        run_ids = {name: launcher.launch(naming.job_name(name)) for name in CASES}
        launcher.wait(list(run_ids.values()))
        outcomes = {name: run_outcome(launcher.instance, run_id) for name, run_id in run_ids.items()}
    for name, (_, words) in CASES.items():
        outcome = outcomes[name]
        assert outcome.run.status.value == "FAILURE", name
        assert not outcome.materialized, (name, outcome.materialized)
        [(step, reason)] = outcome.failures.items()
        source = "events" if name == "hashdiff_no_key" else "orders"
        assert step == naming.step_name(naming.export_asset_key(name, source)), step
        assert "refused before writing anything" in reason and f"task {name!r}" in reason, reason
        for word in words:
            assert word in reason, (name, reason)
    assert not (tmp_path / "exports").exists() or not any((tmp_path / "exports").rglob("*.*"))
    assert _target_tables(pg_url) == before == {"public.typed_wrong": []}


def test_run_wait_exits_non_zero_with_the_reason(broken_config):
    done = _cli("run", "no_schema", "--wait", "--config", str(broken_config))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "launched run " in done.stdout
    assert "schema 'warehouse' does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    summary = [line for line in done.stdout.splitlines() if "orders -> warehouse.orders_copy" in line]
    assert summary and "run failure" in summary[0], done.stdout
