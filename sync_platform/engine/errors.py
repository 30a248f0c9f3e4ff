"""Errors the engine raises; each message says what failed and what to do, never a secret."""


class SyncError(Exception):
    """Base of every engine error."""


class DatabaseUnreachable(SyncError):
    """The database at a datasource's URL could not be connected to."""


class TableNotFound(SyncError):
    """A table the task names does not exist."""


class UnsupportedColumn(SyncError):
    """A column's type has no place in the normalisation contract (see columns.py)."""


class ExportIncomplete(SyncError):
    """An export has no manifest, or its files do not match the manifest."""


class LoadFailed(SyncError):
    """An import could not complete; the target was left as it was."""


class QueryTimeout(SyncError):
    """A read-only query ran past the dialect's statement_timeout and was cancelled on the server."""
