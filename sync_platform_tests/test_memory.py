"""What bounds a copy's memory: the engine's allocator settings (engine/memory.py), each checked
in a fresh interpreter since they apply as the engine loads, and the export's files in flight."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

from sync_platform.engine import TableName, database_for, export
from sync_platform.engine.formats import CsvFormat
from sync_platform.engine.stores.local import LocalStore

ANONYMOUS_MB = """
def anonymous_mb():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) // 1024
"""


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")} | env
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)


@pytest.mark.parametrize(("preset", "expected"), [(None, "0"), ("25", "25")])
def test_arrow_pool_purges_freed_pages_at_once_unless_told_otherwise(preset, expected):
    env = {"MIMALLOC_VERBOSE": "1"} | ({"MIMALLOC_PURGE_DELAY": preset} if preset else {})
    done = run("import sync_platform.engine, pyarrow; print(pyarrow.default_memory_pool().backend_name)", **env)
    assert done.stdout.strip() == "mimalloc"  # mimalloc's verbose lines are about Arrow's own pool
    assert f"option 'purge_delay': {expected}" in done.stderr


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="Linux only: reads /proc")
@pytest.mark.parametrize("engine_loaded", [True, False])
def test_freed_megabyte_blocks_go_back_to_the_system(engine_loaded):
    """After a 20 MB block is freed, glibc's default would serve 1 MB blocks from the heap, where
    the last one still in use keeps the 99 freed below it resident."""
    code = ("import sync_platform.engine\n" if engine_loaded else "") + ANONYMOUS_MB + """
big = b"x" * (20 << 20)
del big
before = anonymous_mb()
blocks = [b"x" * (1 << 20) for _ in range(100)]
last = blocks[-1]
del blocks
print(anonymous_mb() - before)
"""
    retained_mb = int(run(code).stdout)
    if engine_loaded:
        assert retained_mb < 20
    else:  # the control: what the setting prevents
        assert retained_mb > 80


class _Concurrency:
    """How many calls are inside a block at once, at most."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self._lock = threading.Lock()

    @contextmanager
    def inside(self):
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.02)
            yield
        finally:
            with self._lock:
                self.now -= 1


@pytest.mark.parametrize(("overlapped", "encoding_at_most"), [(False, 2), (True, 1)])
def test_an_export_holds_the_rows_of_one_file_per_cpu_while_its_uploads_run_in_parallel(
    tmp_path, monkeypatch, overlapped, encoding_at_most
):
    """Encoding is CPU-bound: files beyond one per CPU waiting for it would only hold their rows
    (measured: 5 x 100,000 lineitem rows in flight from MariaDB, 70 MB more), and an import that
    overlaps the export (on_file) keeps one CPU. The uploads still run `parallel` at once, on
    encoded bytes."""
    url = f"sqlite:///{tmp_path / 'src.db'}"
    with sqlite3.connect(tmp_path / "src.db") as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"item {i}") for i in range(2000)])
    encoding, uploading = _Concurrency(), _Concurrency()

    class CountedCsv(CsvFormat):
        def encode(self, table, schema):
            with encoding.inside():
                return super().encode(table, schema)

    class CountedStore(LocalStore):
        def put(self, key, data):
            with uploading.inside():
                time.sleep(0.1)  # an upload much slower than an encode: they pile up, as on S3
                super().put(key, data)

    monkeypatch.setattr(export, "_cpus", lambda: 2)
    store = CountedStore(tmp_path / "store")
    result = export.export_table(database_for(url), store, export.ExportRequest(
        task="t", table=TableName("items"), folder="t/items/full", file_format=CountedCsv(), batch_rows=100,
        parallel=5), on_file=(lambda entry: None) if overlapped else None)
    assert (encoding.most, uploading.most) == (encoding_at_most, 5)
    assert len(result.manifest.files) == 20
    rows = [row for entry in result.manifest.files
            for batch in CsvFormat().record_batches(store.get(f"t/items/full/{entry.name}"), result.manifest.schema)
            for row in zip(*(column.to_pylist() for column in batch.columns))]
    assert rows == [(i, f"item {i}") for i in range(2000)]
