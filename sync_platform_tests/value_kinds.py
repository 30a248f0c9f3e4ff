"""The registry of value kinds the type matrix (test_type_matrix.py) copies across every pair of
dialects and every file format: one entry per column kind and flavour, with awkward values, what
each source database cannot hold, what each target refuses (and why, as the refusal must say), and
a mutant value that every diff must find when it replaces a value in the target.

A new dialect joins the matrix by being in DIALECTS (conftest.py); an entry here names it only
where it cannot hold or load a value (the README's type table documents those)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from uuid import UUID

from sync_platform.engine.columns import Column, Kind


@dataclass(frozen=True)
class OneOf:
    """What a dialect holds instead, when it may hold any of several values (by how it stored them)."""

    values: tuple


@dataclass(frozen=True)
class Value:
    value: object
    not_in: frozenset[str] = frozenset()  # source dialects that cannot hold it at all
    refused_by: dict[str, str] = field(default_factory=dict)  # target dialect -> what its refusal says
    becomes: dict[str, object] = field(default_factory=dict)  # dialect -> what it holds instead (documented)


def v(value, not_in=(), becomes=None, **refused_by) -> Value:
    """A value; a dialect that refuses to load it cannot hold it as a source either."""
    return Value(value, frozenset(not_in) | frozenset(refused_by), refused_by, becomes or {})


@dataclass(frozen=True)
class ValueKind:
    name: str  # also the column name
    column: Column
    values: tuple[Value, ...]
    mutant: object  # held by every dialect, equal to none of `values`

    def accepted(self, source: str, target: str) -> list[Value]:
        return [x for x in self.values if source not in x.not_in and target not in x.refused_by]

    def refused(self, source: str, target: str) -> list[tuple[object, str]]:
        return [
            (x.value, x.refused_by[target]) for x in self.values if source not in x.not_in and target in x.refused_by
        ]


def kind(name: str, kind_: Kind, values: list, mutant, **column) -> ValueKind:
    return ValueKind(
        name, Column(name, kind_, **column), tuple(x if isinstance(x, Value) else Value(x) for x in values), mutant
    )


SHANGHAI = timezone(timedelta(hours=8))
NEW_YORK = timezone(timedelta(hours=-5))
NON_FINITE_MYSQL = "which MySQL/MariaDB FLOAT and DOUBLE cannot hold"
NAN_SQLITE = "SQLite stores NaN as NULL"
FLOAT_NON_FINITE = {"mysql": NON_FINITE_MYSQL}
TIMESTAMP_RANGE_MYSQL = "outside MySQL TIMESTAMP's range"
# They keep no sign on a zero (the diff's contract: -0.0 = 0.0); DuckDB 1.4 keeps it, except in the
# rows of a bulk INSERT ... SELECT once it has checkpointed them.
NO_NEGATIVE_ZERO = {"mysql": 0.0, "sqlite": 0.0, "duckdb": OneOf((0.0, -0.0))}

KINDS: list[ValueKind] = [
    kind("i16", Kind.INT16, [-32768, 32767, 0, None], 7),
    kind("i32", Kind.INT32, [-2147483648, 2147483647, -1], 7),
    kind("i64", Kind.INT64, [-9223372036854775808, 9223372036854775807, 1], 7),
    kind(
        "dec_5_2",
        Kind.DECIMAL,
        [Decimal("-999.99"), Decimal("0.00"), Decimal("1.50"), Decimal("-0.01")],
        Decimal("2.50"),
        precision=5,
        scale=2,
    ),
    kind(
        "dec_18_6",
        Kind.DECIMAL,
        [Decimal("123456789012.345678"), Decimal("-0.000001"), Decimal("100.000000")],
        Decimal("7.000001"),
        precision=18,
        scale=6,
    ),
    kind(
        "dec_38_10",
        Kind.DECIMAL,
        [
            Decimal("1234567890123456789012345678.1234567890"),
            Decimal("-0.0000000001"),
            Decimal("12345678901234567890.1234567890"),
            Decimal("-9999999999999999999999999999.9999999999"),
        ],
        Decimal("12345678901234567890.1234567891"),
        precision=38,
        scale=10,
    ),
    kind(
        "dec_38_0",
        Kind.DECIMAL,
        [Decimal(10**37), Decimal(-(10**38 - 1)), Decimal(0)],
        Decimal(10**37 + 1),
        precision=38,
        scale=0,
    ),
    kind(
        "numeric",
        Kind.DECIMAL,
        ["3.14159265358979323846", "-0.5", "100", "1234567890123456789012345.5"],
        "3.14159265358979323847",
    ),
    kind(
        "f32",
        Kind.FLOAT32,
        [
            0.0,
            v(-0.0, becomes=NO_NEGATIVE_ZERO),
            1.5,
            3.4028234663852886e38,
            -3.4028234663852886e38,
            1.401298464324817e-45,
            1.1754943508222875e-38,
            0.1,
            v(float("inf"), **FLOAT_NON_FINITE),
            v(float("-inf"), **FLOAT_NON_FINITE),
            v(float("nan"), mysql=NON_FINITE_MYSQL, sqlite=NAN_SQLITE),
        ],
        2.5,
    ),
    kind(
        "f64",
        Kind.FLOAT64,
        [
            0.0,
            v(-0.0, becomes=NO_NEGATIVE_ZERO),
            1.7976931348623157e308,
            -1.7976931348623157e308,
            5e-324,
            2.2250738585072014e-308,
            0.1,
            1 / 3,
            v(float("inf"), **FLOAT_NON_FINITE),
            v(float("-inf"), **FLOAT_NON_FINITE),
            v(float("nan"), mysql=NON_FINITE_MYSQL, sqlite=NAN_SQLITE),
        ],
        2.5,
    ),
    kind(
        "text",
        Kind.STRING,
        [
            "",
            "NULL",
            "<null>",
            "\\N",
            "a|b",
            "tab\there",
            "new\nline\r\n",
            'quote"s',
            "apos'",
            "ünïcödé ✓",
            "😀 emoji",
            " lead",
            "trail ",
            "a,b;c",
            "~",
            "3:abc",
            v("nul\x00byte", postgresql="cannot hold the character NUL"),
            None,
        ],
        "mutated",
    ),
    kind("varchar_20", Kind.STRING, ["abc", "", "twenty characters!!!"], "xyz", length=20),
    kind("flag", Kind.BOOL, [False, True, None], True),
    kind(
        "day", Kind.DATE, [date(1000, 1, 1), date(1970, 1, 1), date(2000, 2, 29), date(9999, 12, 31)], date(2024, 6, 1)
    ),
    kind(
        "stamp",
        Kind.TIMESTAMP,
        [
            datetime(1000, 1, 1),
            datetime(1970, 1, 1, 0, 0, 0, 1),
            datetime(2038, 1, 19, 3, 14, 8),
            datetime(9999, 12, 31, 23, 59, 59, 999999),
        ],
        datetime(2024, 6, 1, 12),
    ),
    kind(
        "instant",
        Kind.TIMESTAMPTZ,
        [
            datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
            datetime(2000, 1, 1, 12, 0, 0, 123456, tzinfo=SHANGHAI),
            datetime(2024, 3, 10, 1, 30, tzinfo=NEW_YORK),
            datetime(2038, 1, 19, 3, 14, 7, tzinfo=UTC),
            v(datetime(1900, 1, 1, tzinfo=UTC), mysql=TIMESTAMP_RANGE_MYSQL),
            v(datetime(2100, 1, 1, tzinfo=UTC), mysql=TIMESTAMP_RANGE_MYSQL),
        ],
        datetime(2024, 6, 1, 12, tzinfo=UTC),
    ),
    kind("clock", Kind.TIME, [time(0, 0), time(23, 59, 59, 999999), time(12, 34, 56, 500000)], time(8, 0)),
    kind(
        "ident",
        Kind.UUID,
        [UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), UUID(int=0), UUID(int=2**128 - 1)],
        UUID("00000000-0000-0000-0000-000000000001"),
    ),
    kind("blob", Kind.BINARY, [b"", b"\x00", b"\xff\x00abc", bytes(range(256))], b"mutant"),
    kind(
        "doc",
        Kind.JSON,
        [
            '{"a": 1}',
            "[]",
            '"text"',
            "null",
            '{"a": [true, null, 2.5], "bb": {"c": "d"}}',
            '{"z":1,  "a" : [1.50, "\\u00e9"]}',
        ],
        '{"z": 0}',
    ),  # the last one as jsonb would never print it
]
