"""File formats of export files, keyed by the run_config value `batch_file_format`.

A format turns a canonical Arrow table (see ../columns.py) into the bytes of one export file, and
reads such bytes back either as CSV text (what bulk loaders such as PostgreSQL's COPY consume
fastest) or as canonical Arrow batches (what the other loaders and the diff consume).
"""

from __future__ import annotations

from .base import FileFormat
from .csv import CsvFormat
from .parquet import ParquetFormat

CSV_COMPRESSIONS = ("zstd", "gzip")


def file_format(name: str, csv_compression: str = "zstd") -> FileFormat:
    """The format called `name` ("csv" or "parquet")."""
    if name == "csv":
        return CsvFormat(compression=csv_compression)
    if name == "parquet":
        return ParquetFormat()
    raise ValueError(f"unknown file format {name!r}; valid values: csv, parquet")


def format_for_file(file_name: str) -> FileFormat:
    """The format that wrote `file_name`, from its suffix (as listed in a manifest)."""
    for suffix, fmt in (
        (".csv.zst", CsvFormat("zstd")),
        (".csv.gz", CsvFormat("gzip")),
        (".parquet", ParquetFormat()),
    ):
        if file_name.endswith(suffix):
            return fmt
    raise ValueError(f"cannot tell the format of export file {file_name!r}")


__all__ = ["CSV_COMPRESSIONS", "CsvFormat", "FileFormat", "ParquetFormat", "file_format", "format_for_file"]
