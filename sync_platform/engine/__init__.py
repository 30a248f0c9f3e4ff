"""The sync engine: plain Python that knows nothing of Dagster.

dialects/  databases: SQL idioms (SqlDialect) and connections, reflection, streaming reads,
           atomic bulk loads (Database)
formats/   export file formats (CSV + zstd/gzip, Parquet)
stores/    where export files live (local folder, S3)
export.py  table -> files + manifest;  load.py  files -> target table;  diff/  data diffs
pipeline.py the import overlapping the export;  lease.py  one writer per export folder
watchdog.py heartbeat_timeout (sentinel.py: its out-of-process half);  progress.py  live reports
readahead.py a reader without backpressure (MySQL's) bounded in memory, its lag spilled to disk
columns.py the normalisation contract every part shares
memory.py  allocator settings that give freed memory back (applied here, before pyarrow loads)
"""

from . import memory  # noqa: F401 - first: its settings apply as it loads, before pyarrow does
from .columns import Column, Kind, TableName, TableSchema
from .dialects import Database, SqlDialect, database_for
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
    "Column",
    "Database",
    "DatabaseUnreachable",
    "ExportIncomplete",
    "ExportRequest",
    "ExportResult",
    "ImportResult",
    "Kind",
    "LoadFailed",
    "Manifest",
    "SqlDialect",
    "SyncError",
    "TableName",
    "TableNotFound",
    "TableSchema",
    "UnsupportedColumn",
    "database_for",
    "export_table",
    "file_format",
    "import_export",
    "read_manifest",
]
