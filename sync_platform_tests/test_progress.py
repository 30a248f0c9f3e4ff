"""Live progress: every stage reports rows and bytes done, the expected total, rows/s and an ETA,
at its start, every REPORT_EVERY_S while it runs and at its end; a run of the code location
shows the reports in its step log and in its tags, and `sync-platform run --wait` on a terminal
draws them as bars. The source is paced by the database: pace(id) sleeps every 20,000th row."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psycopg

from sync_platform.config import load_config
from sync_platform.defs import naming
from sync_platform.engine import progress as progress_module
from sync_platform.engine.progress import Progress
from sync_platform.platform import Platform

from .conftest import table_task, write_config
from .tables import create_pace

ROWS = 100_000


def _paced_source(url: str, seconds_every_20000_rows: float) -> None:
    create_pace(url, every=20_000, seconds=seconds_every_20000_rows)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
        conn.execute(f"INSERT INTO items SELECT id, 'item-' || id || repeat('x', 200) "
                     f"FROM generate_series(1, {ROWS}) id")
        conn.execute("ANALYZE items")  # the estimate the export's total starts from


def _config(tmp_path, pg_url, one_step: bool):
    if one_step:  # a database task: its table is exported and imported in one step, overlapped
        task = {"name": "copy", "type": "database_to_database", "source": {"datasource": "db"},
                "target": {"datasource": "db", "schema": "dw"}, "store": {"s3_config_id": "x"},
                "copy_mode": "tables", "tables": [{"source": "items"}],
                "run_config": {"export_batch_rows": 10_000}, "filters": {"source_where": "pace(id) = true"}}
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA dw")
    else:
        task = table_task("copy", ("db", "items"), ("db", "items_copy"), "x", export_batch_rows=10_000)
        task["filters"] = {"source_where": "pace(id) = true"}
    return write_config(tmp_path / "sync.yaml", {"db": pg_url}, {"x": {"type": "local", "path": str(tmp_path / "x")}},
                        [task])


def test_export_and_import_report_rows_rate_and_eta_as_they_go(tmp_path, pg_url, monkeypatch):
    monkeypatch.setattr(progress_module, "REPORT_EVERY_S", 0.5)
    _paced_source(pg_url, 0.5)  # about 2.5 s of export
    platform = Platform(load_config(_config(tmp_path, pg_url, one_step=False)))
    table = platform.table_sync("copy")
    reports: list[Progress] = []
    exported = platform.export(table, progress=reports.append)
    platform.load(table, progress=reports.append)
    export = [r for r in reports if r.stage == "export"]
    imported = [r for r in reports if r.stage == "import"]

    assert export[0].rows == 0 and export[0].total_rows == ROWS and export[0].estimated  # pg_class.reltuples
    running = [r for r in export if 0 < r.rows < ROWS]
    assert running, export  # reported while it ran, not only at its ends
    assert all(r.rows_per_s > 0 and r.eta_s is not None and r.fraction < 1 for r in running)
    assert [r.rows for r in export] == sorted(r.rows for r in export)
    assert export[-1].done and export[-1].rows == ROWS and export[-1].bytes == exported.manifest.bytes
    assert re.fullmatch(r"export of items: 100,000 of 100,000 rows \(100%\), \d+\.\d MB, [\d,]+ rows/s, done",
                        export[-1].line())
    assert running[0].line().startswith("export of items: ") and " of ~100,000 rows (" in running[0].line()
    assert imported[0].total_rows == ROWS and not imported[0].estimated  # the manifest's count
    assert imported[-1].done and imported[-1].rows == ROWS


def _on_a_terminal(command: list[str], env: dict, timeout: float) -> str:
    """Run `command` with a pseudo-terminal as its stdout and stderr (a real terminal to rich);
    everything it wrote."""
    master, slave = pty.openpty()
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the command has exited
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    process.wait(30)
    os.close(master)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]
    return output.decode(errors="replace")


def test_a_run_shows_its_progress_in_its_log_its_tags_and_as_bars_in_the_cli(tmp_path, pg_url):
    """A real run of the code location (`sync-platform run --wait`, on a terminal): the pipelined
    table's export and import each report while they run."""
    _paced_source(pg_url, 5)  # about 25 s of export: reports at 10 s and 20 s
    config = _config(tmp_path, pg_url, one_step=True)
    command = [str(Path(sys.executable).parent / "sync-platform"), "run", "copy", "--wait", "--config", str(config)]
    shown = _on_a_terminal(command, {**os.environ, "COLUMNS": "200"}, timeout=240)

    assert re.search(r"copy_sync|launched run", shown)
    bars = [line for line in shown.splitlines() if "export" in line and "━" in line]
    assert bars, shown[-3000:]  # the bar drawn while the export ran
    assert re.search(r"\d[\d,]* of ~100,000", shown), shown[-3000:]
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs(limit=1)
        latest = Progress.from_json(run.tags[naming.progress_tag("dw.items")])
        # the table's last stage: its data_diff check's pass over both sides
        assert latest.stage == "diff" and latest.done and latest.rows == 2 * ROWS
        lines = [e.user_message for e in instance.all_logs(run.run_id) if "rows/s" in (e.user_message or "")]
    during = [line for line in lines if line.startswith("export of items: ") and "ETA" in line]
    assert during, lines  # the 10 s reports, in the step's log
    assert any(line.startswith("import of dw.items: ") and line.endswith("done") for line in lines), lines
    assert any(line.startswith("diff of items (source) and dw.items (target): 200,000 of 200,000 rows (100%)")
               for line in lines), lines


def test_the_cli_diff_draws_its_pass_as_a_bar_on_a_terminal(tmp_path):
    """`sync-platform diff` outside Dagster: on a terminal its first pass over both sides is a bar
    (rows of both sides), removed once the verdict is printed."""
    import sqlite3

    for name in ("src", "dst"):
        with sqlite3.connect(tmp_path / f"{name}.db") as conn:
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
            conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"n{i}") for i in range(1, 3001)])
    config = write_config(tmp_path / "sync.yaml",
                          {"src": f"sqlite:///{tmp_path}/src.db", "dst": f"sqlite:///{tmp_path}/dst.db"},
                          {"x": {"type": "local", "path": str(tmp_path / "x")}},
                          [table_task("copy", ("src", "t"), ("dst", "t"), "x")])
    command = [str(Path(sys.executable).parent / "sync-platform"), "diff", "copy", "--config", str(config)]
    shown = _on_a_terminal(command, {**os.environ, "COLUMNS": "200"}, timeout=120)

    bars = [line for line in shown.splitlines() if "t (source) and t (target)" in line and "━" in line]
    assert bars and any("6,000 of 6,000" in line and "done" in line for line in bars), shown[-3000:]
    assert shown.rstrip().endswith("same"), shown[-3000:]
