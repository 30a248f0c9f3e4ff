"""Parquet export files: one row group per file, zstd-compressed, canonical Arrow types kept."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..columns import TableSchema
from .base import CSV_CHUNK_BYTES, FileFormat
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

    def csv_chunks(self, data: bytes, schema: TableSchema) -> Iterator[bytes]:
        buffer = io.BytesIO()
        header = True
        for batch in self.record_batches(data, schema):
            write_csv(to_csv_text_types(pa.Table.from_batches([batch]), schema), buffer, include_header=header)
            header = False
            if buffer.tell() >= CSV_CHUNK_BYTES:
                yield buffer.getvalue()
                buffer = io.BytesIO()
        if header:  # an empty file still yields its header line
            write_csv(schema.arrow_schema.empty_table(), buffer)
        if buffer.tell():
            yield buffer.getvalue()
