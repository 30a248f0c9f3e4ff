"""The type matrix: every value kind of value_kinds.KINDS x every source -> target pair of the
dialects in DIALECTS x every file format, generated. For each cell, either the value arrives
exactly (read back through each side's own reader) and countdiff, md5diff and hashdiff say "same",
or the load is refused before anything is written, naming table, column, key and reason. Then one
value per kind is changed in the target: hashdiff names exactly those keys and columns, md5diff
says "different" for each such row (countdiff compares counts only: the README says so)."""

from __future__ import annotations

import math
import struct
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest

from sync_platform.config import load_config
from sync_platform.engine import LoadFailed, TableName, TableSchema, database_for
from sync_platform.engine.columns import Column, Kind
from sync_platform.engine.diff import DiffOptions, RowKind, Side, diff
from sync_platform.engine.diff.algorithms import slice_queries
from sync_platform.engine.diff.queries import KeyRange
from sync_platform.platform import Platform

from .conftest import DIALECTS, dialect_url, table_task, write_config
from .tables import ID, ZONE, create_table, execute, read_table
from .value_kinds import KINDS, OneOf

FORMATS = ["csv", "parquet"]
PAIRS = [(s, t) for s in DIALECTS for t in DIALECTS]


def _expected(column: Column, value):
    """What a reader of the contract gives back for a value written into the source."""
    if value is None:
        return None
    if isinstance(value, OneOf):
        return OneOf(tuple(_expected(column, one) for one in value.values))
    if column.kind is Kind.DECIMAL and isinstance(value, str):
        return Decimal(value)  # an unbounded numeric compares by value (MySQL pads it to 30 places)
        return None
    if column.kind is Kind.FLOAT32:
        return struct.unpack("f", struct.pack("f", value))[0]
    if isinstance(value, UUID):
        return str(value)  # the contract's text, whatever the column's kind on that side
    return value


def _same(a, b) -> bool:
    if isinstance(a, OneOf):
        return any(_same(one, b) for one in a.values)
    if isinstance(a, str) and isinstance(b, Decimal):
        a = Decimal(a)
    if isinstance(a, Decimal) and isinstance(b, str):
        b = Decimal(b)
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return a == b


def _update(url: str, table: str, column: str, value, row_id: int) -> None:
    dialect = database_for(url, ZONE).dialect
    execute(url, f"UPDATE {dialect.qualified(TableName(table))} SET {dialect.quote(column)} = {dialect.param} "
                 f"WHERE {dialect.quote('id')} = {dialect.param}", (value, row_id))


def _canonical_differences(src_url: str, dst_url: str) -> list[tuple]:
    """(id, column, source text, target text) of every value whose canonical texts differ."""
    queries = slice_queries(
        Side(database_for(src_url, ZONE), TableName("m")),
        Side(database_for(dst_url, ZONE), TableName("m_copy")),
        DiffOptions("hashdiff"),
        need_key=True,
    )
    source, target = (q.rows(KeyRange()) for q in queries)
    names = [c.name for c in queries[0].columns]
    return [
        (key, name, a, b) for key in source for name, a, b in zip(names, source[key], target.get(key, ())) if a != b
    ]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("source, target", PAIRS, ids=[f"{s}-to-{t}" for s, t in PAIRS])
def test_every_kind_arrives_exactly_or_is_refused_and_every_change_is_found(
    source, target, fmt, tmp_path: Path, request
):
    src_url, dst_url = dialect_url(source, "src", tmp_path, request), dialect_url(target, "dst", tmp_path, request)
    rows, first_id, becomes = [], {}, {}
    for k in KINDS:
        for value in k.accepted(source, target):
            rows.append({"id": len(rows) + 1, k.name: value.value})
            becomes[len(rows), k.name] = value.becomes
            if value.value is not None:
                first_id.setdefault(k.name, len(rows))
    columns = [k.column for k in KINDS]
    create_table(src_url, "m", TableSchema((ID, *columns), ("id",)), rows, row_by_row=True)
    held, held_schema = read_table(src_url, "m")
    wrong = [(k.name, row[k.name], held[row["id"]][k.name]) for row in rows for k in KINDS if k.name in row and not
             _same(_expected(held_schema.column(k.name), becomes[row["id"], k.name].get(source, row[k.name])),
                   held[row["id"]][k.name])]
    assert not wrong, f"the {source} source does not hold what was written: {wrong}"

    refused = [(k, value, reason) for k in KINDS for value, reason in k.refused(source, target)]
    for index, (k, value, _) in enumerate(refused):
        create_table(src_url, f"r{index}", TableSchema((ID, k.column), ("id",)), [{"id": 1, k.name: value}])
    tasks = [table_task("m", ("src", "m"), ("dst", "m_copy"), "x", batch_file_format=fmt, export_batch_rows=17,
                        source_timezone=ZONE, bisection_threshold=8, bisection_factor=4)]
    tasks += [
        table_task(f"r{i}", ("src", f"r{i}"), ("dst", f"r{i}_copy"), "x", batch_file_format=fmt, source_timezone=ZONE)
        for i in range(len(refused))
    ]
    config = write_config(tmp_path / "sync.yaml", {"src": src_url, "dst": dst_url},
                          {"x": {"type": "local", "path": str(tmp_path / "x")}}, tasks)
    platform = Platform(load_config(config))

    # Accepted values arrive exactly, and every algorithm says so.
    table = platform.table_sync("m")
    platform.export(table)
    assert platform.load(table).rows == len(rows)
    arrived, arrived_schema = read_table(dst_url, "m_copy")
    wrong = [
        (k.name, held[i][k.name], arrived[i][k.name])
        for i in held
        for k in KINDS
        if not _same(
            _expected(arrived_schema.column(k.name), becomes.get((i, k.name), {}).get(target, held[i][k.name])),
            arrived[i][k.name],
        )
    ]
    assert not wrong, f"{source} -> {target} ({fmt}) changed values: {wrong}"
    for algorithm in ("countdiff", "md5diff", "hashdiff"):
        result = platform.diff(table, algorithm)
        assert result.same, (
            f"{algorithm} says {source} -> {target} ({fmt}) differs: {_canonical_differences(src_url, dst_url)}"
        )
    # The next sync goes into the table the first one created: the check before writing (the existing
    # target's types against the source's) accepts every type the import itself chose.
    platform.export(table)
    assert platform.load(table).rows == len(rows) and platform.diff(table, "hashdiff").same

    # Values the target cannot hold are refused before anything is written, each named.
    for index, (k, value, reason) in enumerate(refused):
        task = platform.table_sync(f"r{index}")
        platform.export(task)
        with pytest.raises(LoadFailed) as refusal:
            platform.load(task)
        message = str(refusal.value)
        for part in (f"r{index}_copy", f"column {k.name}", "id=1", reason):
            assert part in message, f"refusal of {value!r} into {target} does not say {part!r}: {message}"
        assert not database_for(dst_url).table_exists(TableName(f"r{index}_copy")), (
            f"{value!r}: a table was left behind"
        )

    # One value per kind changed in the target: found, each with its key and column.
    mutated = {first_id[k.name]: k for k in KINDS if k.name in first_id}
    for row_id, k in mutated.items():
        _update(dst_url, "m_copy", k.name, k.mutant, row_id)
    found = platform.diff(table, "hashdiff")
    assert {(r.key, r.kind, r.columns) for r in found.rows} == {
        ((str(i),), RowKind.CHANGED, (k.name,)) for i, k in mutated.items()}, found
    for row_id, k in mutated.items():
        sides = [
            Side(database_for(u, ZONE), TableName(n), f"id = {row_id}")
            for u, n in ((src_url, "m"), (dst_url, "m_copy"))
        ]
        assert not diff(*sides, DiffOptions("md5diff")).same, f"md5diff misses a changed {k.name}"
