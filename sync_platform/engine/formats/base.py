from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import pyarrow as pa

from ..columns import TableSchema

# Size of the text pieces handed to a bulk loader: large enough that per-call overhead vanishes,
# small enough to keep memory flat.
CSV_CHUNK_BYTES = 1 << 20
# Rows rendered as CSV text at a time (about 2.5 MB of lineitem's text): the text of a whole file
# of 100,000 rows is never in one piece.
CSV_SLICE_ROWS = 16384


class FileFormat(ABC):
    """How one export file is written and read back."""

    name: str  # as in run_config's batch_file_format
    suffix: str

    @classmethod
    @abstractmethod
    def for_task(cls, csv_compression: str) -> FileFormat:
        """The format as a task configures it (`store.csv_compression` applies to CSV only)."""

    @classmethod
    @abstractmethod
    def for_file(cls, file_name: str) -> FileFormat | None:
        """The format that wrote a file of that name (by its suffix), None if not this one."""

    @abstractmethod
    def encode(self, table: pa.Table, schema: TableSchema) -> bytes:
        """The bytes of one export file holding `table` (canonical Arrow types)."""

    @abstractmethod
    def csv_chunks(self, data: bytes, schema: TableSchema) -> Iterator[bytes | memoryview]:
        """The file's rows as CSV text with a header line (see csv.py for the dialect), in pieces."""

    @abstractmethod
    def record_batches(self, data: bytes, schema: TableSchema) -> Iterator[pa.RecordBatch]:
        """The file's rows as canonical Arrow batches."""
