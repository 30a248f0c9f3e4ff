"""CSV export files: RFC 4180 text, compressed with zstd (default) or gzip.

The text follows the contract of ../columns.py: a header line of column names; every string
value quoted (so `""` is the empty string) and NULL written as an unquoted empty field; binary as
`\\x` + lowercase hex; timestamps with microseconds, timestamptz in UTC with a `Z`. That is exactly
what PostgreSQL's `COPY ... (FORMAT csv)` reads, so files load without being parsed here.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv

from ...errors import UnknownName
from ..columns import Kind, TableSchema
from .base import CSV_CHUNK_BYTES, CSV_SLICE_ROWS, FileFormat

_SUFFIXES = {"zstd": ".csv.zst", "gzip": ".csv.gz"}
COMPRESSIONS = tuple(_SUFFIXES)  # store.csv_compression's valid values, the default first
# Level 1 of either codec: exports are CPU-bound and higher levels buy little on row data.
_COMPRESSION_LEVEL = 1
# A file is a sequence of independent zstd frames (gzip members), one per CSV_SLICE_ROWS rows, which
# every decompressor (and `zstd -d` / `gunzip`) reads as one stream; this keeps only a slice's text
# in memory, never the whole file's.


def hex_encode_binary(array: pa.Array) -> pa.Array:
    """Binary values as `\\x`-prefixed hex text (PostgreSQL's bytea input format)."""
    return pa.array([None if v is None else "\\x" + v.hex() for v in array.to_pylist()], pa.string())


def hex_decode_binary(array: pa.Array) -> pa.Array:
    return pa.array([None if v is None else bytes.fromhex(v[2:]) for v in array.to_pylist()], pa.binary())


def to_csv_text_types(table: pa.Table, schema: TableSchema) -> pa.Table:
    """Replace the columns Arrow's CSV writer cannot render in our contract (binary) by text."""
    for index, column in enumerate(schema.columns):
        if column.kind is Kind.BINARY:
            table = table.set_column(index, column.name, hex_encode_binary(table.column(index).combine_chunks()))
    return table


def write_csv(table: pa.Table, sink, include_header: bool = True) -> None:
    # quoting_style "needed" quotes every string value and leaves NULL as an empty field.
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=include_header, quoting_style="needed"))


class CsvFormat(FileFormat):
    name = "csv"

    def __init__(self, compression: str = "zstd"):
        if compression not in _SUFFIXES:
            raise UnknownName("CSV compression", compression, COMPRESSIONS)
        self.compression = compression
        self.suffix = _SUFFIXES[compression]

    @classmethod
    def for_task(cls, csv_compression: str) -> CsvFormat:
        return cls(csv_compression)

    @classmethod
    def for_file(cls, file_name: str) -> CsvFormat | None:
        return next((cls(c) for c, suffix in _SUFFIXES.items() if file_name.endswith(suffix)), None)

    def encode(self, table: pa.Table, schema: TableSchema) -> bytes:
        codec = pa.Codec(self.compression, compression_level=_COMPRESSION_LEVEL)
        frames = []
        for start in range(0, max(table.num_rows, 1), CSV_SLICE_ROWS):
            text = io.BytesIO()
            write_csv(to_csv_text_types(table.slice(start, CSV_SLICE_ROWS), schema), text, include_header=start == 0)
            frames.append(codec.compress(text.getbuffer(), asbytes=True))
        return b"".join(frames)

    def _text_stream(self, data: bytes) -> pa.CompressedInputStream:
        return pa.CompressedInputStream(pa.BufferReader(data), self.compression)

    def csv_chunks(self, data: bytes, schema: TableSchema) -> Iterator[bytes]:
        with self._text_stream(data) as stream:
            while chunk := stream.read(CSV_CHUNK_BYTES):
                yield chunk

    def record_batches(self, data: bytes, schema: TableSchema) -> Iterator[pa.RecordBatch]:
        text_types = {
            c.name: pa.string() if c.kind is Kind.BINARY else c.arrow_type for c in schema.columns
        }
        reader = pacsv.open_csv(
            self._text_stream(data),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=text_types,
                include_columns=schema.names,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["true"],
                false_values=["false"],
            ),
        )
        binary_columns = [i for i, c in enumerate(schema.columns) if c.kind is Kind.BINARY]
        for batch in reader:
            for i in binary_columns:
                batch = batch.set_column(i, schema.columns[i].name, hex_decode_binary(batch.column(i)))
            yield _with_nullability(batch, schema)


def _with_nullability(batch: pa.RecordBatch, schema: TableSchema) -> pa.RecordBatch:
    """Reattach the schema's field nullability, which the CSV reader does not know."""
    return pa.RecordBatch.from_arrays(batch.columns, schema=schema.arrow_schema)


__all__ = ["COMPRESSIONS", "CsvFormat", "hex_decode_binary", "hex_encode_binary", "to_csv_text_types", "write_csv"]
