"""Column model and the normalisation contract shared by export, import and diff.

Every dialect reads rows into Arrow batches of the *canonical* Arrow type of each column kind, and
every file format and loader starts from those batches. The contract:

| kind        | canonical Arrow type        | CSV text (see formats/csv.py)                  |
|-------------|-----------------------------|------------------------------------------------|
| int16/32/64 | int16 / int32 / int64       | decimal digits                                 |
| decimal     | decimal128(p, s) if p <= 38 | fixed point with exactly s digits (-0.00 = 0.00)|
|             | else string (exact text)    |                                                |
| float32/64  | float32 / float64           | shortest text that round-trips exactly         |
| string      | string (UTF-8)              | always quoted; "" is the empty string          |
| bool        | bool                        | true / false                                   |
| date        | date32                      | YYYY-MM-DD                                     |
| timestamp   | timestamp[us] (naive)       | YYYY-MM-DD HH:MM:SS.ffffff                     |
| timestamptz | timestamp[us, UTC]          | YYYY-MM-DD HH:MM:SS.ffffffZ (always UTC)       |
| time        | time64[us]                  | HH:MM:SS.ffffff                                |
| binary      | binary                      | \\x followed by lowercase hex                   |
| uuid        | string, lowercase hyphenated| quoted text                                    |
| json        | string (the JSON text)      | quoted text                                    |

NULL is distinct from every value: in CSV an unquoted empty field, in Parquet a null.
Timestamps carry microseconds; a naive timestamp is a wall-clock time in the task's
`source_timezone`, a timestamptz an instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

import pyarrow as pa

MAX_DECIMAL128_PRECISION = 38


class Kind(str, Enum):
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    DECIMAL = "decimal"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BOOL = "bool"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    TIME = "time"
    BINARY = "binary"
    UUID = "uuid"
    JSON = "json"


_FIXED_ARROW_TYPES = {
    Kind.INT16: pa.int16(),
    Kind.INT32: pa.int32(),
    Kind.INT64: pa.int64(),
    Kind.FLOAT32: pa.float32(),
    Kind.FLOAT64: pa.float64(),
    Kind.STRING: pa.string(),
    Kind.BOOL: pa.bool_(),
    Kind.DATE: pa.date32(),
    Kind.TIMESTAMP: pa.timestamp("us"),
    Kind.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    Kind.TIME: pa.time64("us"),
    Kind.BINARY: pa.binary(),
    Kind.UUID: pa.string(),
    Kind.JSON: pa.string(),
}


@dataclass(frozen=True)
class Column:
    """One column: its name, kind and the details a target needs to recreate it."""

    name: str
    kind: Kind
    nullable: bool = True
    precision: int | None = None  # decimal only
    scale: int | None = None  # decimal only
    length: int | None = None  # bounded strings only (varchar(n))
    # A fixed-length char(n): its trailing spaces are padding, not data (SQL compares char values
    # without them), so it travels unpadded and is recreated as char(n) where the target has it.
    padded: bool = False
    # Its database type hashes as the kind's own type does (a diff between two databases of one
    # dialect may then hash typed values). False for e.g. a PostgreSQL enum, hashed by label OID.
    typed_hash: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a column needs a name")
        if not isinstance(self.kind, Kind):
            object.__setattr__(self, "kind", Kind(self.kind))
        if self.kind is Kind.DECIMAL:
            if self.scale is not None and self.precision is None:
                raise ValueError(f"column {self.name}: a decimal scale needs a precision")
            if self.precision is not None and not (0 <= (self.scale or 0) <= self.precision):
                raise ValueError(f"column {self.name}: decimal({self.precision},{self.scale}) is not valid")
        elif self.precision is not None or self.scale is not None:
            raise ValueError(f"column {self.name}: precision/scale only apply to decimals")
        if self.padded and self.kind is not Kind.STRING:
            raise ValueError(f"column {self.name}: only strings are padded (char(n))")

    @property
    def arrow_type(self) -> pa.DataType:
        if self.kind is Kind.DECIMAL:
            if self.precision is not None and self.precision <= MAX_DECIMAL128_PRECISION:
                return pa.decimal128(self.precision, self.scale or 0)
            return pa.string()  # unbounded numeric: kept as its exact text
        return _FIXED_ARROW_TYPES[self.kind]

    def to_dict(self) -> dict:
        out: dict = {"name": self.name, "kind": self.kind.value, "nullable": self.nullable}
        for key in ("precision", "scale", "length"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.padded:
            out["padded"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Column:
        return cls(
            name=data["name"],
            kind=Kind(data["kind"]),
            nullable=data.get("nullable", True),
            precision=data.get("precision"),
            scale=data.get("scale"),
            length=data.get("length"),
            padded=data.get("padded", False),
        )


_IDENTIFIER_PART = re.compile(r"^[^\x00]+$")


@dataclass(frozen=True)
class TableName:
    """A table, optionally qualified by a schema: `orders` or `sales.orders`."""

    name: str
    schema: str | None = None

    def __post_init__(self) -> None:
        for part in (self.name, self.schema):
            if part is not None and not _IDENTIFIER_PART.match(part):
                raise ValueError(f"invalid table name part {part!r}")

    @classmethod
    def parse(cls, text: str) -> TableName:
        schema, dot, name = text.rpartition(".")
        if not name or (dot and not schema):
            raise ValueError(f"invalid table name {text!r}: expected 'table' or 'schema.table'")
        return cls(name=name, schema=schema or None)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class TableSchema:
    """The columns and primary key of a table, in table order."""

    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if not names:
            raise ValueError("a table needs at least one column")
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"duplicate column names: {sorted(duplicates)}")
        missing = [k for k in self.primary_key if k not in names]
        if missing:
            raise ValueError(f"primary key columns {missing} are not columns of the table")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns])

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"no column {name!r}; columns are {self.names}")

    def to_dict(self) -> dict:
        return {"columns": [c.to_dict() for c in self.columns], "primary_key": list(self.primary_key)}

    @classmethod
    def from_dict(cls, data: dict) -> TableSchema:
        return cls(
            columns=tuple(Column.from_dict(c) for c in data["columns"]),
            primary_key=tuple(data.get("primary_key", ())),
        )


# Kinds a target column may have for a source column of another kind: exact widenings only, so
# the copy compares equal to its source under the contract (int64 into a double would not).
_WIDER = {
    Kind.INT16: {Kind.INT32, Kind.INT64, Kind.DECIMAL},
    Kind.INT32: {Kind.INT64, Kind.DECIMAL},
    Kind.INT64: {Kind.DECIMAL},
    Kind.FLOAT32: {Kind.FLOAT64},
    Kind.UUID: {Kind.STRING},  # MySQL keeps a uuid as CHAR(36)
    Kind.JSON: {Kind.STRING},  # MariaDB's JSON is LONGTEXT
}
_INTEGER_DIGITS = {Kind.INT16: 5, Kind.INT32: 10, Kind.INT64: 19}


def cannot_hold(target: Column, source: Column) -> str | None:
    """Why a target column cannot hold every value of a source column (None: it can). Decided by
    type alone; a value that does not fit a bounded type the source does not bound (text into
    varchar(n)) is refused by the load itself, which then leaves the target as it was."""
    def spelled(c: Column) -> str:
        if c.kind is Kind.DECIMAL and c.precision:
            return f"decimal({c.precision},{c.scale or 0})"
        return f"{c.kind.value}({c.length})" if c.length else c.kind.value

    if target.kind is not source.kind and target.kind not in _WIDER.get(source.kind, ()):
        return f"{spelled(target)} cannot hold {spelled(source)}"
    if target.kind is Kind.DECIMAL and target.precision:
        scale, digits = source.scale or 0, _INTEGER_DIGITS.get(source.kind)
        if source.kind is Kind.DECIMAL:
            if source.precision is None:
                return None  # unbounded: value by value, at the load
            digits = source.precision - scale
        if (target.scale or 0) < scale or target.precision - (target.scale or 0) < digits:
            return f"{spelled(target)} cannot hold {spelled(source)}"
    if target.kind is Kind.STRING and target.length and source.length and target.length < source.length:
        return f"{spelled(target)} cannot hold {spelled(source)}"
    if target.kind is Kind.STRING and target.length and source.kind is Kind.UUID and target.length < 36:
        return f"{spelled(target)} cannot hold a uuid (36 characters)"
    return None
