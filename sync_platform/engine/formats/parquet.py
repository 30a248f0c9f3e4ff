"""Parquet export files: one row group per file, zstd-compressed, canonical Arrow types kept."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..columns import TableSchema
from .base import CSV_SLICE_ROWS, FileFormat
from .csv import to_csv_text_types, write_csv

_READ_BATCH_ROWS = 65536


class ParquetFormat(FileFormat):
    name = "parquet"
    suffix = ".parquet"

    @classmethod
    def for_task(cls, csv_compression: str) -> ParquetFormat:
        return cls()

    @classmethod
    def for_file(cls, file_name: str) -> ParquetFormat | None:
        return cls() if file_name.endswith(cls.suffix) else None

    def encode(self, table: pa.Table, schema: TableSchema) -> bytes:
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd", row_group_size=max(table.num_rows, 1))
        return sink.getvalue()

    def record_batches(self, data: bytes, schema: TableSchema) -> Iterator[pa.RecordBatch]:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        yield from parquet.iter_batches(batch_size=_READ_BATCH_ROWS, columns=schema.names)

    def csv_chunks(self, data: bytes, schema: TableSchema) -> Iterator[memoryview]:
        """One piece of text per CSV_SLICE_ROWS rows, each a view of its own buffer (no copy)."""
        parquet = pq.ParquetFile(pa.BufferReader(data))
        header = True
        for batch in parquet.iter_batches(batch_size=CSV_SLICE_ROWS, columns=schema.names):
            buffer = io.BytesIO()
            write_csv(to_csv_text_types(pa.Table.from_batches([batch]), schema), buffer, include_header=header)
            header = False
            yield buffer.getbuffer()
        if header:  # an empty file still yields its header line
            buffer = io.BytesIO()
            write_csv(schema.arrow_schema.empty_table(), buffer)
            yield buffer.getbuffer()
