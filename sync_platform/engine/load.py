"""Import: load every file of an export into the target table in one atomic replacement.

Files are fetched ahead by a small thread pool while the database consumes the current one, and
each is checked against the manifest (size and sha256) before a byte of it is loaded; any mismatch
aborts the transaction and leaves the target as it was.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from .columns import TableName, TableSchema, cannot_hold
from .dialects import Database
from .errors import ExportIncomplete, LoadFailed
from .filters import RowFilter, Where
from .formats import FileFormat, format_for_file
from .manifest import ExportFile, Manifest, read_manifest
from .progress import Progress, ProgressMeter
from .stores import ObjectStore, StoredObject

_PREFETCH_FILES = 1


@dataclass(frozen=True)
class VerifiedFile:
    """An export file whose bytes matched the manifest. For a loader of CSV text, the prefetch
    thread already rendered it as text (decompressed, or encoded from Parquet), so that work
    overlaps the database's; Arrow batches are decoded lazily (decoding those ahead was measured:
    no faster, ~85 MB more memory)."""

    data: bytes
    rows: int
    fmt: FileFormat
    schema: TableSchema
    csv_text: tuple[bytes | memoryview, ...] | None = None  # its pieces: never joined, which would hold the text twice

    @property
    def size(self) -> int:
        return len(self.data)

    def csv_chunks(self) -> Iterator[bytes | memoryview]:
        if self.csv_text is not None:
            return iter(self.csv_text)
        return self.fmt.csv_chunks(self.data, self.schema)

    def record_batches(self) -> Iterator[pa.RecordBatch]:
        return self.fmt.record_batches(self.data, self.schema)


@dataclass(frozen=True)
class StoredFile:
    """An export file for a database that reads the store itself (DuckDB's read_parquet over a
    path or s3://): its bytes matched the manifest at `stored.version`, and `unchanged()` says
    whether the store still holds that version, so a load that read it can commit."""

    stored: StoredObject
    rows: int
    fmt: FileFormat
    schema: TableSchema
    store: ObjectStore
    key: str

    @property
    def size(self) -> int:
        return self.stored.bytes

    def unchanged(self) -> bool:
        return self.store.version(self.key) == self.stored.version

    def csv_chunks(self) -> Iterator[bytes | memoryview]:
        return self.fmt.csv_chunks(self.store.get(self.key), self.schema)

    def record_batches(self) -> Iterator[pa.RecordBatch]:
        return self.fmt.record_batches(self.store.get(self.key), self.schema)


@dataclass(frozen=True)
class ImportResult:
    manifest: Manifest
    rows: int
    seconds: float


def _mismatch(store: ObjectStore, key: str) -> ExportIncomplete:
    return ExportIncomplete(f"{store.url(key)} does not match its manifest (size or sha256): re-run the export")


def _fetch(store: ObjectStore, folder: str, entry: ExportFile, schema: TableSchema, as_text: bool) -> VerifiedFile:
    key = f"{folder}/{entry.name}"
    data = store.get(key)
    if len(data) != entry.bytes or hashlib.sha256(data).hexdigest() != entry.sha256:
        raise _mismatch(store, key)
    fmt = format_for_file(entry.name)
    text = tuple(fmt.csv_chunks(data, schema)) if as_text else None
    return VerifiedFile(data=data, rows=entry.rows, fmt=fmt, schema=schema, csv_text=text)


def _pin(store: ObjectStore, folder: str, entry: ExportFile, schema: TableSchema) -> StoredFile:
    key = f"{folder}/{entry.name}"
    stored = store.stored_object(key)
    if stored.bytes != entry.bytes or stored.sha256 != entry.sha256:
        raise _mismatch(store, key)
    return StoredFile(stored=stored, rows=entry.rows, fmt=format_for_file(entry.name), schema=schema, store=store,
                      key=key)


def _verified_files(store: ObjectStore, folder: str, entries: Iterable[ExportFile], schema: TableSchema,
                    target: Database) -> Iterator[VerifiedFile | StoredFile]:
    """Each file of `entries`, fetched ahead by one thread and checked against its entry (pinned in
    the store, for a target that reads the store itself). `entries` may block between files (an
    export still writing them): the wait happens in the fetch thread."""
    entries = iter(entries)

    def fetch_next() -> VerifiedFile | StoredFile | None:
        entry = next(entries, None)
        if entry is None:
            return None
        if target.reads_store_files:
            return _pin(store, folder, entry, schema)
        return _fetch(store, folder, entry, schema, target.loads_csv_text)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fetch")
    pending = deque(pool.submit(fetch_next) for _ in range(_PREFETCH_FILES))
    try:
        while True:
            current = pending.popleft()
            pending.append(pool.submit(fetch_next))
            verified = current.result()
            if verified is None:
                return
            yield verified
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def target_problem(target: Database, table: TableName, schema: TableSchema) -> str | None:
    """Why an existing target table cannot take the export of `schema` (None: it can, or it does not
    exist yet): exported columns it lacks (extra target columns stay NULL), or columns of a type
    that cannot hold the source's."""
    if not target.table_exists(table):
        return None
    existing = target.reflect(table)
    missing = [name for name in schema.names if name not in existing.names]
    if missing:
        return (f"target table {table} lacks the exported columns {missing}; its columns are {existing.names}. "
                "Add them or drop the target table to let the import create it.")
    mismatched = [f"{c.name}: {why}" for c in schema.columns if (why := cannot_hold(existing.column(c.name), c))]
    if mismatched:
        return (f"target table {table} has columns whose types cannot hold the source's ({'; '.join(mismatched)}); "
                "alter them, or drop the target table to let the import create it")
    return None


def check_target_columns(target: Database, table: TableName, schema: TableSchema) -> None:
    problem = target_problem(target, table, schema)
    if problem:
        raise LoadFailed(problem)


def import_export(
    target: Database,
    store: ObjectStore,
    folder: str,
    table: TableName,
    where: RowFilter | Where | str | None = None,
    manifest: Manifest | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> ImportResult:
    """Replace the target rows matching `where` (all rows when None) by the export's rows.
    `manifest`: the folder's manifest when the caller has already read it."""
    started = time.monotonic()
    manifest = manifest or read_manifest(store, folder)
    check_target_columns(target, table, manifest.schema)
    if isinstance(where, RowFilter):
        where = where.where(manifest.schema, target.dialect.quote)
    rows = load_files(target, store, folder, table, manifest.schema, manifest.files, manifest.rows, where, progress)
    return ImportResult(manifest=manifest, rows=rows, seconds=time.monotonic() - started)


def load_files(target: Database, store: ObjectStore, folder: str, table: TableName, schema: TableSchema,
               entries: Iterable[ExportFile], expected_rows: int | Callable[[], int],
               where: Where | str | None = None, progress: Callable[[Progress], None] | None = None,
               estimated_rows: int | None = None) -> int:
    """The one transaction of an import: replace the rows matching `where` by those of `entries`,
    each verified before it is loaded; rows loaded. `progress`: live reports against the
    manifest's count (or `estimated_rows` while the export is still writing)."""
    counted = isinstance(expected_rows, int)
    meter = ProgressMeter("import", str(table), expected_rows if counted else estimated_rows, progress,
                          estimated=not counted)

    def loaded_files() -> Iterator[VerifiedFile | StoredFile]:
        for verified in _verified_files(store, folder, entries, schema, target):
            yield verified
            meter.add(verified.rows, verified.size)  # asked for the next: this one is loaded

    with meter:
        return target.replace_rows(table, schema, loaded_files(), expected_rows=expected_rows, where=where)
