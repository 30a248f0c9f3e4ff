"""The read-ahead that bounds a reader without backpressure (MySQL/MariaDB's connectorx stream):
every batch in order whatever the consumer's pace, memory bounded, the lag spilled to disk and
removed, a full disk reported by name; and a real MariaDB read through it with a slow consumer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pytest

from sync_platform.engine import TableName, database_for
from sync_platform.engine import readahead as readahead_module
from sync_platform.engine.dialects import mysql as mysql_module
from sync_platform.engine.readahead import ReadAhead, SpillFailed

from .test_mysql import _mysql

SCHEMA = pa.schema([("x", pa.int64()), ("s", pa.string())])


def _batches(count: int, rows: int = 10_000):
    for i in range(count):
        xs = range(i * rows, (i + 1) * rows)
        yield pa.record_batch([pa.array(xs), pa.array([f"row {x}" for x in xs])], schema=SCHEMA)


def _reader(count: int) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(SCHEMA, _batches(count))


def _spill_dirs(directory: str) -> list[str]:
    return [d for d in os.listdir(directory) if d.startswith(readahead_module.SPILL_PREFIX)]


def test_a_slow_consumer_gets_every_batch_in_order_with_memory_bounded(tmp_path):
    ahead = ReadAhead(_reader(100), "t", memory_bytes=500_000, segment_bytes=1_000_000, directory=str(tmp_path))
    seen = []
    for batch in ahead:
        seen.extend(batch.column("x").to_pylist())
        time.sleep(0.005)  # the database is faster than its consumer
    assert seen == list(range(1_000_000))
    one_batch = next(_batches(1)).nbytes
    assert ahead.peak_memory_bytes <= max(500_000, one_batch)
    assert ahead.spilled_bytes > 50 * one_batch  # most of the lag went to disk
    assert _spill_dirs(str(tmp_path)) == []  # and is gone


def test_a_fast_consumer_spills_nothing(tmp_path):
    ahead = ReadAhead(_reader(20), "t", directory=str(tmp_path))
    assert sum(b.num_rows for b in ahead) == 200_000
    assert ahead.spilled_bytes == 0 and _spill_dirs(str(tmp_path)) == []


def test_a_consumer_that_leaves_early_leaves_no_spill_behind(tmp_path):
    ahead = ReadAhead(_reader(100), "t", memory_bytes=200_000, segment_bytes=400_000, directory=str(tmp_path))
    iterator = iter(ahead)
    next(iterator)
    time.sleep(0.5)  # let the thread spill
    assert _spill_dirs(str(tmp_path))
    iterator.close()
    for _ in range(50):
        if not _spill_dirs(str(tmp_path)):
            break
        time.sleep(0.1)
    assert _spill_dirs(str(tmp_path)) == []


@pytest.mark.parametrize("error", [RuntimeError, OSError])  # OSError: not to be taken for the spill's
def test_a_source_error_reaches_the_consumer_as_it_was(error, tmp_path):
    def failing():
        yield from _batches(30)
        raise error("the server went away")

    ahead = ReadAhead(pa.RecordBatchReader.from_batches(SCHEMA, failing()), "t", memory_bytes=100_000,
                      directory=str(tmp_path))
    with pytest.raises(error, match="the server went away") as failure:
        for _ in ahead:
            time.sleep(0.01)
    assert not isinstance(failure.value, SpillFailed) and ahead.spilled_bytes > 0
    assert _spill_dirs(str(tmp_path)) == []


# A reader spilling behind a consumer that never comes back: says so once it spills, then waits.
_SPILLING_READER = """
import sys, time, pyarrow as pa
from sync_platform.engine.readahead import ReadAhead
schema = pa.schema([("x", pa.int64())])
batches = (pa.record_batch([pa.array(range(i * 10_000, (i + 1) * 10_000))], schema=schema) for i in range(50))
ahead = ReadAhead(pa.RecordBatchReader.from_batches(schema, batches), "t", memory_bytes=100_000,
                  segment_bytes=100_000, directory=sys.argv[1])
batches = iter(ahead)  # kept: a generator dropped would close and remove its spill
next(batches)
while not ahead.spilled_bytes:
    time.sleep(0.05)
print("spilling", flush=True)
time.sleep(600)
"""


def _spilling_reader(directory: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", _SPILLING_READER, directory], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "spilling"
    return process


def test_a_reader_killed_outright_has_its_spill_swept_by_the_next_and_a_live_one_is_kept(tmp_path):
    killed, alive = _spilling_reader(str(tmp_path)), None
    try:
        orphan = _spill_dirs(str(tmp_path))
        assert len(orphan) == 1 and os.listdir(tmp_path / orphan[0])
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        assert _spill_dirs(str(tmp_path)) == orphan  # nobody removed it: the process is gone
        alive = _spilling_reader(str(tmp_path))  # its spill sweeps the orphan
        (live,) = _spill_dirs(str(tmp_path))
        assert live != orphan[0]
        ahead = ReadAhead(_reader(40), "t", memory_bytes=100_000, segment_bytes=100_000, directory=str(tmp_path))
        iterator = iter(ahead)
        next(iterator)
        time.sleep(0.5)
        assert live in _spill_dirs(str(tmp_path)) and len(_spill_dirs(str(tmp_path))) == 2  # the live one kept
        assert sum(b.num_rows for b in iterator) == 390_000
    finally:
        for process in (killed, alive):
            if process and process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture
def full_disk(tmp_path):
    """A real, tiny file system (tmpfs of 1 MB): the spill fills it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield str(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_fails_naming_the_directory(full_disk):
    ahead = ReadAhead(_reader(100), "lineitem from MariaDB", memory_bytes=100_000, segment_bytes=10_000_000,
                      directory=full_disk)
    with pytest.raises(SpillFailed) as failure:
        for _ in ahead:
            time.sleep(0.05)
    message = str(failure.value)
    assert "reading lineitem from MariaDB" in message and full_disk in message and "it is full" in message
    assert "TMPDIR" in message
    assert _spill_dirs(full_disk) == []


def test_a_mariadb_read_with_a_slow_consumer_is_exact_and_bounded(mysql_url, monkeypatch, tmp_path):
    conn = _mysql(mysql_url)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE big (id BIGINT PRIMARY KEY, label VARCHAR(40), amount DECIMAL(12,2))")
        cursor.execute("INSERT INTO big SELECT seq, CONCAT('label ', seq), seq / 7 FROM seq_1_to_60000")
        cursor.execute("SELECT id, label, amount FROM big ORDER BY id")
        expected = [(i, s, str(a)) for i, s, a in cursor.fetchall()]
    conn.close()
    monkeypatch.setattr(mysql_module, "_READ_BATCH_ROWS", 2_000)
    monkeypatch.setattr(readahead_module, "MEMORY_BYTES", 100_000)
    monkeypatch.setattr(readahead_module, "SEGMENT_BYTES", 200_000)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made = []
    monkeypatch.setattr(mysql_module, "ReadAhead", lambda *a, **k: made.append(ReadAhead(*a, **k)) or made[-1])

    database = database_for(mysql_url)
    table = TableName("big")
    rows = []
    for batch in database.read_batches(table, database.reflect(table), order_by="id"):
        rows.extend(zip(*(batch.column(c).to_pylist() for c in ("id", "label", "amount")), strict=True))
        time.sleep(0.02)
    assert [(i, s, str(a)) for i, s, a in rows] == expected
    assert made[0].spilled_bytes > 0 and made[0].peak_memory_bytes <= 100_000 + 200_000
    assert _spill_dirs(str(tmp_path)) == []
