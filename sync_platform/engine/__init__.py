"""The sync engine: plain Python that knows nothing of Dagster.

dialects/  databases (reflect, stream rows out as Arrow, bulk-load atomically)
formats/   export file formats (CSV + zstd/gzip, Parquet)
stores/    where export files live (local folder, S3)
export.py  table -> files + manifest;  load.py  files -> target table;  diff/  data diffs
columns.py the normalisation contract every part shares
"""

from .columns import Column, Kind, TableName, TableSchema
from .dialects import Dialect, dialect_for
from .errors import (
    DatabaseUnreachable,
    ExportIncomplete,
    LoadFailed,
    SyncError,
    TableNotFound,
    UnsupportedColumn,
)
from .export import ExportRequest, ExportResult, export_table
from .formats import file_format
from .load import ImportResult, import_export
from .manifest import Manifest, read_manifest

__all__ = [
    "Column", "DatabaseUnreachable", "Dialect", "ExportIncomplete", "ExportRequest", "ExportResult", "ImportResult",
    "Kind", "LoadFailed", "Manifest", "SyncError", "TableName", "TableNotFound", "TableSchema", "UnsupportedColumn",
    "dialect_for", "export_table", "file_format", "import_export", "read_manifest",
]
