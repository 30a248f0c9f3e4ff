"""File formats of export files, keyed by the run_config value `batch_file_format`.

A format turns a canonical Arrow table (see ../columns.py) into the bytes of one export file, and
reads such bytes back either as CSV text (what bulk loaders such as PostgreSQL's COPY consume
fastest) or as canonical Arrow batches (what the other loaders and the diff consume). A new
format is a module with a FileFormat subclass, plus one `FORMATS.register` line here.
"""

from __future__ import annotations

from ...registry import Registry
from .base import FileFormat
from .csv import COMPRESSIONS as CSV_COMPRESSIONS
from .csv import CsvFormat
from .parquet import ParquetFormat

# Registration order is the order valid values are listed in (csv, the spec's default, first).
FORMATS: Registry[type[FileFormat]] = Registry("file format")
FORMATS.register("csv", CsvFormat, "RFC 4180 text with a header, zstd (default) or gzip compressed")
FORMATS.register("parquet", ParquetFormat, "Parquet, one row group a file, zstd compressed, Arrow types kept")


def file_format(name: str, csv_compression: str = "zstd") -> FileFormat:
    """The format called `name`, with the task's CSV compression where it applies."""
    return FORMATS.get_value(name).for_task(csv_compression)


def format_for_file(file_name: str) -> FileFormat:
    """The format that wrote `file_name`, from its suffix (as listed in a manifest)."""
    for entry in FORMATS.values():
        found = entry.value.for_file(file_name)
        if found is not None:
            return found
    raise ValueError(f"cannot tell the format of export file {file_name!r}")


__all__ = ["CSV_COMPRESSIONS", "FORMATS", "CsvFormat", "FileFormat", "ParquetFormat", "file_format", "format_for_file"]
