"""Export: stream a table out of its database into files of `batch_rows` rows plus a manifest.

    database --batches--> rebatch to batch_rows --> [encode + upload] x parallel --> manifest

Encoding (Arrow CSV writer + zstd/gzip, or Parquet) and uploads run in `parallel` worker threads;
both release the GIL. At most `parallel` files are in flight, and of those at most one per CPU
still holds its rows (encoding is CPU-bound: more at once would only wait, holding their rows;
an overlapping import keeps one CPU); the others hold only their encoded bytes while they upload.
So memory stays at about (CPUs + 1) x one file's rows + parallel x one file's bytes, whatever the
table's size.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from .columns import TableName, TableSchema
from .dialects import Database
from .errors import Stalled
from .filters import RowFilter, Where, and_
from .formats import FileFormat
from .journal import ExportJournal
from .lease import WriterLease
from .manifest import ExportFile, Manifest, manifest_key
from .progress import Progress, ProgressMeter
from .stores import ObjectStore
from .watchdog import watchdog_for


@dataclass(frozen=True)
class ExportRequest:
    task: str
    table: TableName
    folder: str  # store key of the export's folder: <task>/<table>/<partition>
    file_format: FileFormat
    batch_rows: int = 100_000
    parallel: int = 5
    where: RowFilter | None = None
    order_by: str | None = None
    extra: dict = field(default_factory=dict)  # recorded in the manifest (e.g. the filter's anchor)
    heartbeat_timeout: float | None = None  # seconds without a batch read or a file written: Stalled
    writer: str = field(default_factory=lambda: f"process {os.getpid()}")  # who writes: in lease and manifest
    orphaned: Callable[[], str | None] | None = None  # why the requester is gone (see watchdog.py), else None
    progress: Callable[[Progress], None] | None = None  # live reports (progress.py), every 10 s
    readers: int = 1  # chunks read at once from one shared snapshot, where the source can (chunked export)

    def __post_init__(self) -> None:
        if self.batch_rows < 1 or self.parallel < 1:
            raise ValueError("batch_rows and parallel must be positive")
        if not self.folder or self.folder.startswith("/") or ".." in self.folder.split("/"):
            raise ValueError(f"invalid export folder {self.folder!r}")


@dataclass(frozen=True)
class ExportResult:
    manifest: Manifest
    location: str
    seconds: float
    resumed_rows: int = 0  # rows of chunks an interrupted export had completed, kept (journal.py)


def rebatch(batches: Iterable[pa.RecordBatch], rows: int, schema: pa.Schema) -> Iterator[pa.Table]:
    """Regroup a stream of batches into tables of exactly `rows` rows (the last may be shorter)."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - pending_rows, batch.num_rows)
            pending.append(batch.slice(0, take))
            pending_rows += take
            batch = batch.slice(take)
            if pending_rows == rows:
                yield pa.Table.from_batches(pending, schema)
                pending, pending_rows = [], 0
    if pending_rows:
        yield pa.Table.from_batches(pending, schema)


def _put_file(store: ObjectStore, key: str, rows: int, data: bytes) -> ExportFile:
    store.put(key, data)
    return ExportFile(name=key.rsplit("/", 1)[1], rows=rows, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may run on (a container's share)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def export_table(
    source: Database, store: ObjectStore, request: ExportRequest, schema: TableSchema | None = None,
    on_file: Callable[[ExportFile], None] | None = None,
) -> ExportResult:
    """`on_file`: called with each file once it is in the store, in the manifest's order (an
    import that overlaps the export loads them as they come)."""
    started = time.monotonic()
    schema = schema or source.reflect(request.table)
    where = request.where.where(schema, source.dialect.quote) if request.where else None  # checks columns, values
    query = str(source.dialect.select_sql(request.table, schema, where, request.order_by))
    folder = request.folder
    with WriterLease(store, folder, request.writer) as lease:
        # Remove the old manifest first: until the new one is written the export reads as incomplete.
        store.delete([manifest_key(folder)])
        previous_files = set(store.list(folder))
        chunked = None
        if source.can_share_snapshot:
            chunked = _write_chunked(source, store, request, schema, where, lease, on_file, query)
        # One query: the source cannot share a snapshot, or the table cannot be split.
        written, resumed_rows = chunked or _write_files(source, store, request, schema, where, lease, on_file, query)
        current = {f"{folder}/{f.name}" for f in written}
        store.delete(sorted(previous_files - current - {manifest_key(folder)}))
        manifest = Manifest(
            task=request.task,
            source_table=str(request.table),
            source_query=query,
            file_format=request.file_format.name,
            schema=schema,
            files=tuple(written),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            order_by=request.order_by,
            extra=dict(request.extra),
            writer=request.writer,
        )
        lease.renew()  # a conditional write: the lease is still ours, so no newer export is overwritten
        store.put(manifest_key(folder), manifest.to_json().encode())
        store.delete([ExportJournal.key(folder)])  # complete: nothing left to resume
    return ExportResult(manifest=manifest, location=store.url(folder), seconds=time.monotonic() - started,
                        resumed_rows=resumed_rows)


class _FileWriter:
    """Encodes and uploads an export's files for the threads that read its rows: at most one file
    per CPU still holding its rows (encoding is CPU-bound: more at once would only wait, holding
    their rows), less the CPU an overlapping import (on_file) renders and loads on (measured from
    MariaDB on 2 cores: 28 MB less, no slower); each reading thread has up to its share of
    `parallel` files in flight, the rest of them holding only their encoded bytes while they upload."""

    def __init__(self, store: ObjectStore, request: ExportRequest, schema: TableSchema, lease: WriterLease,
                 watchdog, readers: int, overlapped: bool):
        self.store, self.request, self.schema, self.lease, self.watchdog = store, request, schema, lease, watchdog
        self.window = max(1, request.parallel // readers)
        self.encoding = threading.Semaphore(max(1, min(request.parallel, _cpus() - overlapped)))
        self.pool = ThreadPoolExecutor(max_workers=request.parallel, thread_name_prefix="export")

    def write(self, tables: Iterable[pa.Table], key: Callable[[int], str],
              done: Callable[[ExportFile], None]) -> None:
        """Write `tables` as the files key(0), key(1), ...; done(file) with each once it is in
        the store, in that order."""
        in_flight: deque[tuple[Future, str]] = deque()  # (upload, its key), oldest first
        for number, table in enumerate(tables):
            self.watchdog.beat()
            self.lease.check()  # a writer whose lease was taken writes no further file
            self.watchdog.check()  # nor one whose requester is gone
            if len(in_flight) >= self.window:
                done(self._uploaded(in_flight))
            self.encoding.acquire()  # CPU-bound work ahead of it: it ends
            in_flight.append((self.pool.submit(self._encode_and_put, key(number), [table]), key(number)))
            del table  # held by the encoder alone
        while in_flight:
            done(self._uploaded(in_flight))

    def _encode_and_put(self, key: str, rows: list[pa.Table]) -> ExportFile:
        table = rows.pop()  # the last reference: the rows are freed once encoded, before the upload
        try:
            count, data = table.num_rows, self.request.file_format.encode(table, self.schema)
        finally:
            del table
            self.encoding.release()
        return _put_file(self.store, key, count, data)

    def _uploaded(self, in_flight: deque[tuple[Future, str]]) -> ExportFile:
        """The oldest file in flight, once written; Stalled if the store stays silent past the
        heartbeat (the upload's thread is left to the client's own timeouts)."""
        future, key = in_flight.popleft()
        timeout = self.request.heartbeat_timeout
        while True:
            try:
                done = future.result(timeout=1.0)
                self.watchdog.beat()
                return done
            except FutureTimeout:
                if timeout and self.watchdog.silent_for() > timeout:
                    raise Stalled(
                        f"export of {self.request.table}: no progress for {timeout:g} s (heartbeat_timeout) while "
                        f"uploading {self.store.url(key)}: the store stopped answering. The files written so far "
                        "have no manifest, so no import takes them; check the store's endpoint and the network "
                        "to it, or raise heartbeat_timeout"
                    ) from None

    def close(self, failed: bool) -> None:
        # On failure, do not wait for an upload that hangs: its thread ends with the client's timeouts.
        self.pool.shutdown(wait=not failed, cancel_futures=True)


class _TableChanged(Exception):
    """A resumed read's snapshot is not the table the journal's files were read from."""


def _write_files(source: Database, store: ObjectStore, request: ExportRequest, schema: TableSchema, where,
                 lease: WriterLease, on_file: Callable[[ExportFile], None] | None,
                 query: str) -> tuple[list[ExportFile], int]:
    """Read the table with one query and write its files; the files written, in order, and the
    rows kept from an interrupted export. Where the source reads the table in its primary key's
    order at no cost (ordered_key), the query follows the key, and every few files the journal
    records the files so far and the key of their last row: a re-run reads the rows after it."""
    folder = request.folder
    total = source.estimated_rows(request.table)
    # A table of fewer files than a checkpoint's would lose less than one to a kill: no journal.
    big = total is None or total // request.batch_rows >= CHUNK_FILES
    key = source.ordered_key(request.table, schema, where, request.order_by) if big else None
    identity = source.table_identity(request.table) if key else None
    journal = None
    if not identity:
        key = None  # never resumed: read as the query always was
    else:
        journal = ExportJournal.load(store, folder)
        if journal and journal.after and journal.resumable(store, folder, query, request.file_format.name,
                                                           request.batch_rows, identity):
            try:
                return _read_files(source, store, request, schema, where, lease, on_file, key, journal, total)
            except _TableChanged:
                pass  # written since the identity was read: exported again whole, below
        journal = ExportJournal(query, request.file_format.name, request.batch_rows, identity, [])
        journal.save(store, folder)  # replaces a journal that cannot be resumed
    return _read_files(source, store, request, schema, where, lease, on_file, key, journal, total)


def _read_files(source: Database, store: ObjectStore, request: ExportRequest, schema: TableSchema, where,
                lease: WriterLease, on_file: Callable[[ExportFile], None] | None, key: tuple[str, ...] | None,
                journal: ExportJournal | None, total: int | None) -> tuple[list[ExportFile], int]:
    """The one query, read from after the journal's key when it has one (a resume: its files are
    kept), checkpointed in the journal (when given) every few files; `total`: the rows expected."""
    written: list[ExportFile] = []
    kept = journal.files.get(0, []) if journal and journal.after else []
    resumed_rows = sum(f.rows for f in kept)
    tag = uuid.uuid4().hex
    watchdog = watchdog_for(source, f"export of {request.table}", request.heartbeat_timeout, tag, request.orphaned)
    after = source.dialect.after_key(key, journal.after_key()) if kept else None
    order_by = request.order_by or (", ".join(key) if key else None)
    reader = source.read_batches(request.table, schema, and_(where, after), order_by, tag)
    meter = ProgressMeter("export", str(request.table), total, request.progress)
    files = _FileWriter(store, request, schema, lease, watchdog, 1, on_file is not None)
    # A checkpoint every CHUNK_FILES files, at most MAX_CHUNKS of them: what a resume may redo.
    every = max(CHUNK_FILES, -(-(total or 0) // request.batch_rows // MAX_CHUNKS))
    last_keys: deque[pa.Table] = deque()  # the key of each file's last row, files in flight oldest first

    def keyed(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
        for table in tables:
            if journal:  # take copies the row: the file's rows are freed once it is encoded
                last_keys.append(table.select(list(key)).take([table.num_rows - 1]))
            yield table

    def deliver_kept() -> None:
        """A resumed read, once its query has begun (its snapshot taken): if the table is still
        the one the kept files were read from, they are the export's first files."""
        if kept and source.table_identity(request.table) != journal.identity:
            raise _TableChanged  # before any file reached on_file: the export starts again cleanly
        for entry in kept:
            meter.add(entry.rows, entry.bytes)
            if on_file:
                on_file(entry)
            written.append(entry)

    def after_kept(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        begun = False
        for batch in batches:
            if not begun:
                deliver_kept()
                begun = True
            yield batch
        if not begun:  # no row after the kept ones
            deliver_kept()

    def done(entry: ExportFile) -> None:
        meter.add(entry.rows, entry.bytes)
        if on_file:
            on_file(entry)
        written.append(entry)
        if journal:
            last_key = last_keys.popleft()
            if (len(written) - len(kept)) % every == 0:
                journal.keep(written, last_key)
                journal.save(store, request.folder)

    failed = True
    try:
        with closing(reader), watchdog, meter:
            files.write(keyed(rebatch(watchdog.beating(after_kept(reader)), request.batch_rows, schema.arrow_schema)),
                        lambda number: f"{request.folder}/part-{number + len(kept):05d}{request.file_format.suffix}",
                        done)
        failed = False
    finally:
        files.close(failed)
    return written, resumed_rows


CHUNKS_PER_READER = 4  # chunks of unequal cost even out when each reader takes several
CHUNK_FILES = 10  # a big table's chunks hold about this many files: what a resume may redo per reader
MAX_CHUNKS = 256  # the journal, rewritten as each chunk completes, stays small


def _write_chunked(source: Database, store: ObjectStore, request: ExportRequest, schema: TableSchema, where,
                   lease: WriterLease, on_file: Callable[[ExportFile], None] | None,
                   query: str) -> tuple[list[ExportFile], int] | None:
    """`readers` threads each reading a chunk (a key or block range) at a time, all in ONE
    snapshot the source shares (so rows changed meanwhile never mix two states), each writing its
    chunk's files `part-<chunk>-<n>`; the files in chunk order (the manifest's, and on_file's), and
    the rows of chunks kept from an interrupted export (its journal, journal.py). None when the
    table cannot be split: the caller reads it with one reader."""
    folder = request.folder
    with source.shared_snapshot() as (connection, snapshot):
        identity = source.table_identity(request.table, connection)
        estimate = source.estimated_rows(request.table)
        journal = ExportJournal.load(store, folder)
        if journal and journal.conditions and journal.resumable(store, folder, query, request.file_format.name,
                                                                request.batch_rows, identity):
            conditions = [Where.text(condition) for condition in journal.conditions]
        else:
            files_expected = (estimate or 0) // request.batch_rows
            if files_expected < request.readers * CHUNKS_PER_READER:
                return None  # too small to split (or never analyzed): one query
            chunks = max(request.readers * CHUNKS_PER_READER, min(MAX_CHUNKS, -(-files_expected // CHUNK_FILES)))
            # One reader keeps the order one query would read in; several follow the key, which the
            # import then loads in.
            conditions = source.chunk_conditions(connection, request.table, schema, where, request.order_by,
                                                 chunks, key_order=request.readers > 1)
            if conditions is None:
                return None
            journal = identity is not None and ExportJournal(query, request.file_format.name, request.batch_rows,
                                                            identity, [c.sql("?") for c in conditions])
            if journal:
                journal.save(store, folder)
        tag = uuid.uuid4().hex
        watchdog = watchdog_for(source, f"export of {request.table}", request.heartbeat_timeout, tag,
                                request.orphaned)
        meter = ProgressMeter("export", str(request.table), estimate, request.progress)
        kept = journal.files if journal else {}
        files: dict[int, list[ExportFile]] = {index: list(kept.get(index, [])) for index in range(len(conditions))}
        complete: set[int] = set(kept)
        pending = deque(index for index in range(len(conditions)) if index not in complete)
        resumed_rows = sum(f.rows for index in complete for f in files[index])
        meter.add(resumed_rows, sum(f.bytes for index in complete for f in files[index]))
        lock = threading.Lock()
        stop = threading.Event()
        errors: list[BaseException] = []
        delivered = [0, 0]  # the chunk being delivered to on_file, and how many of its files were

        def deliver() -> None:  # under lock: every file of the chunks in order, as soon as it exists
            chunk, count = delivered
            while chunk < len(conditions):
                for entry in files[chunk][count:]:
                    if on_file:
                        on_file(entry)
                count = len(files[chunk])
                if chunk not in complete:
                    break
                chunk, count = chunk + 1, 0
            delivered[:] = [chunk, count]

        def until_stopped(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
            for table in tables:
                if stop.is_set():
                    return
                yield table

        def read_chunks() -> None:
            try:
                while not stop.is_set():
                    with lock:
                        if not pending:
                            return
                        chunk = pending.popleft()
                    reader = source.read_batches(request.table, schema, and_(where, conditions[chunk]),
                                                 request.order_by, tag, snapshot)

                    def done(entry: ExportFile, chunk: int = chunk) -> None:
                        with lock:
                            meter.add(entry.rows, entry.bytes)
                            files[chunk].append(entry)
                            deliver()

                    with closing(reader):
                        writer.write(
                            until_stopped(rebatch(watchdog.beating(reader), request.batch_rows, schema.arrow_schema)),
                            lambda number, chunk=chunk: f"{folder}/part-{chunk:05d}-{number:05d}"
                                                        f"{request.file_format.suffix}",
                            done)
                    if stop.is_set():
                        return
                    with lock:
                        complete.add(chunk)
                        if journal:  # written after the chunk's files: a resume keeps exactly these
                            journal.files[chunk] = files[chunk]
                            journal.save(store, folder)
                        deliver()
            except BaseException as error:  # noqa: BLE001 - handed to the export's thread
                errors.append(error)
                stop.set()

        with lock:
            deliver()  # the kept chunks' files first
        threads = [threading.Thread(target=read_chunks, name=f"export reader {n}", daemon=True)
                   for n in range(min(request.readers, len(conditions)))]
        writer = _FileWriter(store, request, schema, lease, watchdog, len(threads), on_file is not None)
        with watchdog, meter:
            for thread in threads:
                thread.start()
            try:
                for thread in threads:
                    while thread.is_alive():
                        thread.join(1.0)
                        if request.heartbeat_timeout and watchdog.silent_for() > request.heartbeat_timeout + 5:
                            raise Stalled(
                                f"export of {request.table}: no progress for {request.heartbeat_timeout:g} s "
                                "(heartbeat_timeout) in any of its readers (a read or an upload): stopped. The files "
                                "written so far have no manifest, so no import takes them"
                            )
            finally:
                stop.set()
                writer.close(failed=bool(errors) or any(thread.is_alive() for thread in threads))
            if errors:
                raise errors[0]
        return [entry for chunk in range(len(conditions)) for entry in files[chunk]], resumed_rows
