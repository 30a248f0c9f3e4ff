"""Row filters: which rows of a table a sync exports, replaces and diffs.

A RowFilter combines, all with AND:
- conditions `column op value`, joined by AND (match="all") or OR (match="any"); values are always
  bound parameters, never spliced into SQL, and columns are checked against the reflected table;
- time windows `start <= column < end` (wall-clock times in the task's source_timezone): the
  "last N months" rule and a partition's window;
- one custom boolean expression, as the operator wrote it (validated by validate_custom_where).

It renders to a Where: SQL text between bound values, which each driver renders with its own
placeholder (`?`, `%s`, `$1`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from .columns import Kind, TableSchema
from .errors import FilterError, UnknownName

OPERATORS = {
    "=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<=",
    "in": "IN", "not_in": "NOT IN", "like": "LIKE", "is_null": "IS NULL", "is_not_null": "IS NOT NULL",
}
_NO_VALUE = {"is_null", "is_not_null"}


class UnknownFilterName(FilterError, UnknownName):
    """An unknown operator, match or granularity, with the valid values."""

_LIST_VALUE = {"in", "not_in"}


@dataclass(frozen=True)
class Where:
    """SQL text with bound values between its parts: len(parts) == len(params) + 1."""

    parts: tuple[str, ...]
    params: tuple = ()

    def __post_init__(self) -> None:
        if len(self.parts) != len(self.params) + 1:
            raise ValueError("a Where needs one more text part than parameters")

    @classmethod
    def text(cls, sql: str) -> Where:
        return cls((sql,))

    def sql(self, marker: str, start: int = 1, escape_percent: bool = False) -> str:
        """`marker` is `?`, `%s` or `${n}` (numbered from `start`); `escape_percent` doubles the
        `%` of the text for drivers that read `%` as a placeholder."""
        out = []
        for index, part in enumerate(self.parts):
            out.append(part.replace("%", "%%") if escape_percent else part)
            if index < len(self.params):
                out.append(marker.format(n=start + index))
        return "".join(out)

    def __str__(self) -> str:
        return self.sql("?") + (f"  -- parameters: {list(self.params)!r}" if self.params else "")

    @classmethod
    def of(cls, where: Where | str | None) -> Where | None:
        """Accept plain SQL text where a Where is expected (trusted callers and tests)."""
        return cls.text(where) if isinstance(where, str) else where

    @classmethod
    def statement(cls, head: str, where: Where | str | None, tail: str = "") -> Where:
        """`head [WHERE where] tail` with the where's bound values in place."""
        where = cls.of(where)
        if where is None:
            return cls.text(head + tail)
        parts = list(where.parts)
        parts[0] = f"{head} WHERE {parts[0]}"
        parts[-1] += tail
        return cls(tuple(parts), where.params)


def and_(*wheres: Where | None) -> Where | None:
    """Conjunction of the given conditions (None ones skipped)."""
    present = [w for w in wheres if w is not None]
    return joined(present, " AND ") if present else None


def joined(pieces: list[Where], glue: str) -> Where:
    """`(a) glue (b) glue ...`, each piece's bound values kept in order."""
    parts, params = [""], []
    for index, piece in enumerate(pieces):
        parts[-1] += ("" if index == 0 else glue) + "(" + piece.parts[0]
        parts.extend(piece.parts[1:])
        params.extend(piece.params)
        parts[-1] += ")"
    return Where(tuple(parts), tuple(params))


def _typed(kind: Kind, value: Any, column: str) -> Any:
    """A config value as the Python type of the column, so every driver binds it as that type."""
    try:
        if kind in (Kind.INT16, Kind.INT32, Kind.INT64):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if kind is Kind.DECIMAL:
            return Decimal(str(value))
        if kind in (Kind.FLOAT32, Kind.FLOAT64):
            return float(value)
        if kind is Kind.BOOL:
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if kind is Kind.DATE:
            return (
                value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value))
            )
        if kind in (Kind.TIMESTAMP, Kind.TIMESTAMPTZ):
            return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return str(value)
    except (ValueError, ArithmeticError):
        raise FilterError(f"value {value!r} does not fit column {column!r} of kind {kind.value}") from None


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: Any = None

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise UnknownFilterName("operator", self.op, OPERATORS)
        if self.op in _NO_VALUE and self.value is not None:
            raise FilterError(f"operator {self.op} takes no value")
        if self.op not in _NO_VALUE and self.value is None:
            raise FilterError(f"operator {self.op} needs a value (use is_null / is_not_null for NULL)")
        if self.op in _LIST_VALUE and (not isinstance(self.value, (list, tuple)) or not self.value):
            raise FilterError(f"operator {self.op} needs a non-empty list of values")
        if self.op not in _LIST_VALUE and isinstance(self.value, (list, tuple, dict)):
            raise FilterError(f"operator {self.op} takes one value, not a list")


@dataclass(frozen=True)
class TimeWindow:
    """start <= column < end, wall-clock times in the task's source_timezone."""

    column: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise FilterError(f"time window start {self.start} is not before its end {self.end}")


@dataclass(frozen=True)
class RowFilter:
    conditions: tuple[Condition, ...] = ()
    match: str = "all"
    windows: tuple[TimeWindow, ...] = ()
    custom_sql: str | None = None

    def __post_init__(self) -> None:
        if self.match not in ("all", "any"):
            raise UnknownFilterName("match", self.match, ("all", "any"))

    def where(self, schema: TableSchema, quote) -> Where | None:
        """The filter as SQL on a table of `schema`; `quote` quotes an identifier."""

        def column_of(name: str):
            if name not in schema.names:
                raise FilterError(f"filter column {name!r} is not a column of the table; columns are {schema.names}")
            return schema.column(name)

        pieces: list[Where] = []
        for condition in self.conditions:
            column = column_of(condition.column)
            head = f"{quote(column.name)} {OPERATORS[condition.op]}"
            if condition.op in _NO_VALUE:
                pieces.append(Where.text(head))
            elif condition.op in _LIST_VALUE:
                values = tuple(_typed(column.kind, v, column.name) for v in condition.value)
                pieces.append(Where((f"{head} (", *([", "] * (len(values) - 1)), ")"), values))
            else:
                value = _typed(column.kind, condition.value, column.name)
                pieces.append(Where((f"{head} ", ""), (value,)))
        conditions = None
        if pieces:
            conditions = pieces[0] if len(pieces) == 1 else joined(pieces, " AND " if self.match == "all" else " OR ")
        windows = []
        for window in self.windows:
            column = column_of(window.column)
            if column.kind not in (Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ):
                raise FilterError(f"time window column {column.name!r} is {column.kind.value}, not a date or timestamp")
            bounds = (window.start, window.end)
            if column.kind is Kind.DATE:
                bounds = tuple(b.date() if b.time() == datetime.min.time() else b for b in bounds)
            q = quote(column.name)
            windows.append(Where((f"{q} >= ", f" AND {q} < ", ""), bounds))
        custom = Where.text(self.custom_sql) if self.custom_sql else None
        return and_(conditions, *windows, custom)


def months_before(moment: datetime, months: int) -> datetime:
    """`moment` minus whole calendar months, the day clamped to the target month's length
    (31 March - 1 month = 29 February in a leap year)."""
    import calendar

    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def partition_window(column: str, granularity: str, key: str) -> TimeWindow:
    """The window of a time partition keyed by its first day (YYYY-MM-DD): that day, or that
    month, from midnight to midnight in the task's source_timezone (as Dagster's partitions)."""
    try:
        start = datetime.fromisoformat(key)
    except ValueError:
        raise FilterError(f"partition key {key!r} is not a YYYY-MM-DD date") from None
    if granularity == "day":
        end = start + timedelta(days=1)
    elif granularity == "month":
        if start.day != 1:
            raise FilterError(f"monthly partition key {key!r} must be the first day of a month")
        end = months_before(start, -1)
    else:
        raise UnknownFilterName("granularity", granularity, ("day", "month"))
    return TimeWindow(column, start, end)


def last_window(column: str, last: int, unit: str, anchor: datetime) -> TimeWindow:
    """The spec's "last N months/years": anchor - N units <= column < anchor."""
    months = last * (12 if unit == "year" else 1)
    return TimeWindow(column, months_before(anchor, months), anchor)
