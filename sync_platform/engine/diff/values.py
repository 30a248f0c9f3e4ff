"""Value objects of a diff: what is compared, how, and what was found."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from ...registry import Registry
from ..columns import TableName, TableSchema
from ..dialects import Database
from ..errors import DiffError, UnknownName
from ..filters import RowFilter, Where

# name -> the function comparing two sides (algorithms.py registers them).
ALGORITHMS: Registry = Registry("algorithm")
# hashdiff's defaults when the spec's "no default" leaves them unset (run_config uses these too).
DEFAULT_BISECTION_FACTOR = 32
DEFAULT_BISECTION_THRESHOLD = 16384


class UnknownAlgorithm(DiffError, UnknownName):
    """An algorithm name that is not registered, with the valid ones."""


@dataclass(frozen=True)
class Side:
    """One side of a diff: a table (and the WHERE of its slice) in some database."""

    database: Database
    table: TableName
    where: RowFilter | Where | str | None = None  # a RowFilter is rendered on the reflected table

    def __str__(self) -> str:
        return f"{self.database.dialect.name}:{self.table}" + (f" WHERE {self.where}" if self.where else "")

    def rendered(self, schema: TableSchema | None = None) -> Side:
        """This side with a RowFilter turned into SQL for its table (`schema`, else reflected)."""
        if not isinstance(self.where, RowFilter):
            return self
        return replace(
            self, where=self.where.where(schema or self.database.reflect(self.table), self.database.dialect.quote)
        )


@dataclass(frozen=True)
class DiffOptions:
    algorithm: str = "md5diff"
    key_columns: tuple[str, ...] | None = None  # default: the source's primary key
    extra_columns: tuple[str, ...] | None = None  # default: every non-key column of the source
    limit: int = 1000
    threads: int = 1
    bisection_factor: int = DEFAULT_BISECTION_FACTOR
    bisection_threshold: int = DEFAULT_BISECTION_THRESHOLD
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise UnknownAlgorithm("algorithm", self.algorithm, ALGORITHMS.names)
        if not 1 <= self.limit <= 1000:
            raise DiffError(f"limit must be 1..1000 (got {self.limit})")
        if self.threads < 1 or self.bisection_factor < 2:
            raise DiffError("threads must be >= 1 and bisection_factor >= 2")
        if self.bisection_factor >= self.bisection_threshold:
            raise DiffError(
                f"bisection_factor ({self.bisection_factor}) must be less than bisection_threshold "
                f"({self.bisection_threshold})"
            )


class RowKind(str, Enum):
    MISSING = "missing_in_target"  # in the source only
    EXTRA = "extra_in_target"  # in the target only
    CHANGED = "changed"  # in both, some compared column differs


@dataclass(frozen=True)
class RowDiff:
    key: tuple[str | None, ...]  # the key's canonical text, column by column
    kind: RowKind
    columns: tuple[str, ...] = ()  # the differing columns of a CHANGED row


@dataclass(frozen=True)
class DiffResult:
    algorithm: str
    source_rows: int
    target_rows: int
    same: bool
    key_columns: tuple[str, ...] = ()
    rows: tuple[RowDiff, ...] = ()  # up to `limit` differing rows (hashdiff only)
    truncated: bool = False  # hashdiff stopped at `limit`: there may be more differences
    segments: int = 0  # segment checksums compared on each side
    seconds: float = 0.0
    checksums: tuple[int, int] | None = field(default=None, compare=False)
    # The diff contradicted itself (checksums differ, yet no row differs value by value): a defect
    # of the diff's encoding for some column type, not a data inconsistency. Says which.
    inconsistency: str | None = None

    @property
    def verdict(self) -> str:
        """same | different | diff error."""
        return "diff error" if self.inconsistency else ("same" if self.same else "different")

    @property
    def explanation(self) -> str:
        """Why "different" comes without rows, or why the diff could not decide; "" otherwise."""
        if self.inconsistency:
            return self.inconsistency
        if self.same or self.rows:
            return ""
        if self.algorithm == "countdiff":
            return (
                f"countdiff compares row counts only ({self.source_rows} source rows, {self.target_rows} target rows)"
            )
        if self.algorithm == "md5diff":
            return "md5diff compares whole-slice checksums and cannot name rows; run hashdiff to list them"
        return "the slices' row counts or checksums differ"

    def key_text(self, row: RowDiff) -> str:
        """`id=4` or `l_orderkey=1, l_linenumber=3`."""
        return ", ".join(f"{name}={'NULL' if v is None else v}" for name, v in zip(self.key_columns, row.key))

    @property
    def differences(self) -> int | None:
        """Rows known to differ: exact for hashdiff (a lower bound when truncated), else None."""
        return len(self.rows) if self.algorithm == "hashdiff" else None
