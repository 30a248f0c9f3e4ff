"""Errors the engine raises; each message says what failed and what to do, never a secret. All of
them are SyncErrors, hence SyncPlatformErrors (../errors.py): callers catch that root once."""

from ..errors import SyncPlatformError, UnknownName


class SyncError(SyncPlatformError):
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


class StoreError(SyncError):
    """An object store could not be used; the message says why, never with credentials."""


class FilterError(SyncError, ValueError):
    """A filter that cannot apply to the table (unknown column, value of the wrong type...). A
    ValueError, so the configuration's validators report it as a problem of the field."""


class DiffError(SyncError, ValueError):
    """A diff that cannot be run as asked (no key for hashdiff, a column missing on one side...)."""


class CleanupRefused(SyncError):
    """A cleanup that would delete more than asked for, or what cannot be proved; says why."""


__all__ = [
    "CleanupRefused", "DatabaseUnreachable", "DiffError", "ExportIncomplete", "FilterError", "LoadFailed",
    "Orphaned", "QueryTimeout", "Stalled", "StoreError", "SyncError", "TableNotFound", "UnknownName",
    "UnsupportedColumn",
]


class Orphaned(SyncError):
    """A stage whose requester is gone (a step process whose run worker was killed) stopped itself."""


class Stalled(SyncError):
    """A stage made no progress for heartbeat_timeout seconds; its query was cancelled on the server."""
