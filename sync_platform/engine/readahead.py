"""Read-ahead for a reader without backpressure, bounded in memory: a thread takes batches as fast
as the database sends them, keeps up to `memory_bytes` of them in memory and writes the rest to
spill files (Arrow IPC, uncompressed: the cheapest to write and read back), which the consumer
reads back in order and deletes.

Why not slow the reader down instead: connectorx's Arrow stream (MySQL/MariaDB) reads at the
server's pace into an unbounded channel whatever its consumer does, so a consumer slower than the
server (a slow store, a pipelined import) would otherwise hold the table's unread rows in memory;
and a MySQL server drops a client that stops reading for net_write_timeout seconds anyway. Paging
the query instead would bound memory too, but each page would read its own snapshot: the spill
keeps the export one query, one snapshot. The price is disk: at most what the consumer lags
behind, in the temporary directory (TMPDIR), deleted as it is read and when the read ends; a
reader killed outright (kill -9) leaves its directory to the next read-ahead to spill there, which
removes it once its lock shows nobody holds it.

    for batch in ReadAhead(reader, "lineitem from MariaDB"):   # a pa.RecordBatchReader
        ...
"""

from __future__ import annotations

import errno
import fcntl
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import pyarrow as pa

from .errors import SyncError

SPILL_PREFIX = "sync-platform-readahead-"  # a spill directory's name in TMPDIR

# Measured on lineitem SF1 from MariaDB (batches of ~10 MB, benchmarks/read_ahead_benchmark.py):
# 16 MB in memory and 16 MB files kept the read at 205 MB peak RSS, consumer fast or slow; 64 MB
# each cost 60 MB more RSS and no speed.
MEMORY_BYTES = 16 * 2**20  # batches held in memory before they go to disk (at least one is)
SEGMENT_BYTES = 16 * 2**20  # one spill file at most; the consumer reads a file once it is closed


class SpillFailed(SyncError):
    """The read-ahead could not write its spill files (a full or read-only temporary directory)."""


@dataclass(frozen=True)
class _Segment:
    """A closed spill file, in the queue where its batches belong."""

    path: str


class _SpillFile:
    """The spill file being written: batches appended (Arrow IPC stream) until it is handed over."""

    def __init__(self, path: str, schema: pa.Schema):
        self.path, self.bytes = path, 0
        self._writer = pa.ipc.new_stream(path, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        self.bytes += batch.nbytes

    def close(self) -> None:
        self._writer.close()


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = object()


class ReadAhead:
    def __init__(self, reader: pa.RecordBatchReader, subject: str, memory_bytes: int | None = None,
                 segment_bytes: int | None = None, directory: str | None = None):
        self._reader, self.subject, self._directory = reader, subject, directory  # directory: TMPDIR's
        self._memory_bytes = memory_bytes or MEMORY_BYTES
        self._segment_bytes = segment_bytes or SEGMENT_BYTES
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # batches, closed segments, then _END or _Failed
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._held = 0  # bytes of the batches in the queue
        self._spill_dir: str | None = None
        self._spill_lock: int | None = None  # its lock's descriptor while the directory exists
        self.peak_memory_bytes = 0  # the most the queue held in memory: at most memory_bytes, or one batch
        self.spilled_bytes = 0

    # --- the draining thread -------------------------------------------------------------------
    def _drain(self) -> None:
        spill: _SpillFile | None = None  # the file batches go to once one did not fit in memory
        try:
            for batch in self._reader:  # pyarrow releases the GIL while it waits for the next batch
                if self._closed.is_set():
                    break
                size = batch.nbytes
                with self._lock:
                    in_memory = spill is None and (self._held == 0 or self._held + size <= self._memory_bytes)
                    if in_memory:
                        self._held += size
                        self.peak_memory_bytes = max(self.peak_memory_bytes, self._held)
                if in_memory:
                    self._queue.put(batch)
                    continue
                with self._spilling():
                    spill = spill or _SpillFile(self._new_spill_path(), batch.schema)
                    spill.write(batch)
                    self.spilled_bytes += size
                    # Hand the file over when it is full, or at once when the consumer has nothing
                    # left to read (a slow server must not keep it waiting for a full file).
                    if spill.bytes >= self._segment_bytes or self._queue.empty():
                        handed, spill = spill, None  # forgotten first: a close that failed is not retried
                        self._hand_over(handed)
            if spill is not None:
                with self._spilling():
                    handed, spill = spill, None
                    self._hand_over(handed)
            self._queue.put(_END)
        except BaseException as error:  # noqa: BLE001 - every failure reaches the consumer, re-raised there
            self._queue.put(_Failed(error))  # first: nothing below may keep the consumer waiting
            if spill is not None:
                with suppress(Exception):  # the same full disk, most likely: the first error is the one reported
                    spill.close()
        finally:
            self._reader.close()  # ends the database's stream when the consumer left early
            if self._closed.is_set():  # the consumer left first: the last one out removes the files
                self._remove_spill()

    @contextmanager
    def _spilling(self) -> Iterator[None]:
        """The spill's own writes: their OSErrors are SpillFailed (a source's pass through as they are)."""
        try:
            yield
        except OSError as error:
            raise self._spill_error(error) from None

    def _new_spill_path(self) -> str:
        if self._spill_dir is None:
            self._spill_dir, self._spill_lock = _locked_spill_dir(self._directory or tempfile.gettempdir())
        handle, path = tempfile.mkstemp(suffix=".arrows", dir=self._spill_dir)
        os.close(handle)
        return path

    def _hand_over(self, spill: _SpillFile) -> None:
        spill.close()
        self._queue.put(_Segment(spill.path))

    def _spill_error(self, error: OSError) -> SpillFailed:
        where = self._spill_dir or self._directory or tempfile.gettempdir()
        full = error.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error)  # pyarrow sets no errno
        why = "it is full" if full else str(error).splitlines()[0]
        return SpillFailed(
            f"reading {self.subject}: the read-ahead could not write its spill file in {where} ({why}). The "
            "export reads faster than its files are written and keeps the difference on disk there; free "
            "space in that directory or point TMPDIR at a larger one, then run again. Nothing was exported"
        )

    def _remove_spill(self) -> None:
        """Called by the consumer, the thread or both: once."""
        with self._lock:
            lock, self._spill_lock = self._spill_lock, None
        if lock is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)
            os.close(lock)

    # --- the consumer --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[pa.RecordBatch]:
        thread = threading.Thread(target=self._drain, name=f"read-ahead {self.subject}", daemon=True)
        thread.start()
        ended = False  # the thread has finished writing: its files are ours to remove
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    ended = True
                    return
                if isinstance(item, _Failed):
                    ended = True
                    raise item.error
                if isinstance(item, _Segment):
                    yield from self._read_segment(item.path)
                    continue
                with self._lock:
                    self._held -= item.nbytes
                yield item
        finally:
            self._closed.set()
            if ended or not thread.is_alive():
                self._remove_spill()

    @staticmethod
    def _read_segment(path: str) -> Iterator[pa.RecordBatch]:
        try:
            with pa.OSFile(path, "rb") as file:  # batch by batch: not mapped, so not all in memory at once
                yield from pa.ipc.open_stream(file)
        finally:
            os.unlink(path)


_LOCK = ".lock"


def _locked_spill_dir(parent: str) -> tuple[str, int]:
    """A new spill directory and the descriptor of its lock (flock, held until closed; the kernel
    releases it when the process dies, however it dies). First the directories of readers that
    died without removing theirs (kill -9, a host restarted) are swept: only a lock that can be
    taken shows nobody reads them any more (a pid could be another container's)."""
    for entry in os.scandir(parent):
        if entry.name.startswith(SPILL_PREFIX) and entry.is_dir(follow_symlinks=False):
            _sweep_if_orphaned(entry.path)
    directory = tempfile.mkdtemp(prefix=SPILL_PREFIX, dir=parent)
    # Locked under another name, then renamed: a sweeper never finds the lock file unlocked.
    handle, path = tempfile.mkstemp(dir=directory)
    fcntl.flock(handle, fcntl.LOCK_EX)
    os.rename(path, os.path.join(directory, _LOCK))
    return directory, handle


def _sweep_if_orphaned(directory: str) -> None:
    try:
        handle = os.open(os.path.join(directory, _LOCK), os.O_RDONLY)
    except OSError:  # no lock yet (being created) or already removed: not ours to judge
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # its reader is alive
    finally:
        os.close(handle)
    shutil.rmtree(directory, ignore_errors=True)
