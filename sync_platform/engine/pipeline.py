"""Export and import overlapped: the import loads each file as soon as the export has put it in
the store (verified against its size and sha256 as always), inside its one transaction, and
commits only once the export has written its manifest. A failure of either side leaves the target
as it was; the export stands on its own (its files and manifest are those of a sequential export).

    export (this thread)  --file 0--file 1--...--file n--manifest
    import (a thread)          load 0 -- load 1 -- ... -- load n -- check rows -- COMMIT

The two stages still end separately: the generator yields the ExportResult when the export is
done (the import still loading) and the ImportResult when it has committed."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from .columns import TableName, TableSchema
from .dialects import Database
from .export import ExportRequest, ExportResult, export_table
from .filters import RowFilter
from .load import ImportResult, check_target_columns, load_files
from .manifest import ExportFile, Manifest
from .progress import Progress
from .stores import ObjectStore


class ExportFailed(Exception):
    """Raised inside the import when its export failed or the caller gave up (a termination): the
    import rolls back; the export's own error, or the interruption, is the one reported."""


class FileFeed:
    """The export's files, in order, to the import; ends when the manifest is written."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()  # ExportFile entries only: a few hundred bytes each
        self.manifest: Manifest | None = None
        self._failed = False

    def put(self, entry: ExportFile) -> None:
        self._queue.put(entry)

    def finish(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._queue.put(None)

    def fail(self) -> None:
        """The import gets no further file and rolls back (even with every file already queued)."""
        self._failed = True
        self._queue.put(None)

    def __iter__(self) -> Iterator[ExportFile]:
        while True:
            item = self._queue.get()
            if self._failed:
                raise ExportFailed()
            if item is None:
                return
            yield item

    def rows(self) -> int:
        return self.manifest.rows


def export_and_import(
    source: Database, store: ObjectStore, request: ExportRequest, schema: TableSchema,
    target: Database, table: TableName, where: RowFilter | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> Iterator[ExportResult | ImportResult]:
    """Yield the ExportResult when the export is done, then the ImportResult once the import has
    committed. An error of the export is raised first; the import's (the export done) second.
    `progress`: live reports of both stages (the export's request may carry its own)."""
    check_target_columns(target, table, schema)
    target_where = where.where(schema, target.dialect.quote) if where else None
    feed = FileFeed()
    outcome: dict = {}

    def load() -> None:
        started = time.monotonic()
        try:
            estimate = source.estimated_rows(request.table) if progress else None
            rows = load_files(target, store, request.folder, table, schema, feed, feed.rows, target_where, progress,
                              estimate)
            outcome["rows"], outcome["seconds"] = rows, time.monotonic() - started
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = error

    loader = threading.Thread(target=load, name=f"import {table}", daemon=True)
    loader.start()
    try:
        exported = export_table(source, store, replace(request, progress=request.progress or progress), schema,
                                on_file=feed.put)
        feed.finish(exported.manifest)
        yield exported
        loader.join()
    finally:
        if loader.is_alive():  # the export failed, or the caller stopped (a termination): roll back
            feed.fail()
            loader.join()
    if "error" in outcome:
        raise outcome["error"]
    yield ImportResult(manifest=exported.manifest, rows=outcome["rows"], seconds=outcome["seconds"])
