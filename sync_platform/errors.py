"""The error vocabulary: every error the platform raises on purpose derives from SyncPlatformError,
so the CLI and the Dagster layer each catch it once and show its message (never a traceback, never
a secret). The engine's, the configuration's, the stores' and the diff's errors are its subclasses.
"""

from __future__ import annotations

from collections.abc import Iterable


class SyncPlatformError(Exception):
    """Root of every foreseen failure: the message says what failed and what to do."""


class UnknownName(SyncPlatformError, ValueError):
    """A name that is not one of the known values of its kind (a task, a table, a file format, a
    store type, an algorithm, a URL scheme): carries the kind, the value and the valid values, the
    shape of dlt's ValueErrorWithKnownValues. A ValueError, so a configuration validator that
    raises it becomes a validation problem naming the field."""

    def __init__(self, kind: str, value: object, valid: Iterable[str], *, owner: str = "",
                 adjective: str = "unknown", listing: str = "valid values"):
        self.kind, self.value, self.valid = kind, value, tuple(valid)
        head = f"{owner} has no {kind} {value!r}" if owner else f"{adjective} {kind} {value!r}"
        super().__init__(f"{head}; {listing}: {', '.join(self.valid) or '(none)'}")

    def __str__(self) -> str:
        return str(self.args[0])


def foreseen(error: BaseException) -> bool:
    """An error an operator can act on from its message: the platform's own, or a database refusing
    a statement (every DB-API driver's errors derive from a class named DatabaseError: a constraint,
    a type, a permission, a lost connection)."""
    return isinstance(error, SyncPlatformError) or any(cls.__name__ == "DatabaseError" for cls in type(error).__mro__)


def one_line(error: BaseException) -> str:
    """The error as an operator reads it: its message, with the driver's class for a database's."""
    if isinstance(error, SyncPlatformError):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
