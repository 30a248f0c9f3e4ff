"""The diff's first pass, read in scan pieces (Database.scan_pieces: PostgreSQL heap block ranges,
MySQL/MariaDB primary-key ranges, SQLite rowid ranges) so that it reports live progress: for every
dialect pair, md5diff and hashdiff give exactly the result of one query per side (counts,
checksums, the differing rows), the reports rise to both sides' rows, and a row that moves while
the pieces are read (a PostgreSQL UPDATE writing its new version in a later block, a MySQL key
changed into a later range) is counted once: every piece reads one snapshot."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from sync_platform.engine import TableName, TableSchema, database_for
from sync_platform.engine.columns import Column, Kind
from sync_platform.engine.diff import DiffOptions, RowKind, Side, algorithms, diff
from sync_platform.engine.diff.queries import SliceQueries
from sync_platform.engine.progress import Progress

from .conftest import DIALECTS, dialect_url
from .tables import ID, ZONE, create_table, execute

ROWS = 3_000
PIECE_ROWS = 250  # ~12 pieces a side
SCHEMA = TableSchema((ID, Column("name", Kind.STRING), Column("amount", Kind.DECIMAL, precision=12, scale=2)),
                     primary_key=("id",))
PIECED = {"postgresql", "mysql", "sqlite"}  # duckdb reads a table in one query
PAIRS = [(s, t) for s in DIALECTS for t in DIALECTS]


def _rows(ids) -> list[dict]:
    return [{"id": i, "name": f"name {i}" + "x" * (i % 40), "amount": Decimal(i % 1000) / 4} for i in ids]


def _analyzed(url: str, table: str) -> None:
    """Statistics, as a database has them for any table that has lived a while: the pieces' sizes
    (and MySQL's estimate of the row count) come from them."""
    if url.startswith("postgresql"):
        execute(url, f"ANALYZE {table}")
    elif url.startswith("mysql"):
        database_for(url).query(f"ANALYZE TABLE {table}")


def _pieces_seen(monkeypatch) -> list[tuple[str, int]]:
    seen, real = [], SliceQueries.scan_pieces

    def recorded(self, rows_per_piece):
        pieces = real(self, rows_per_piece)
        seen.append((self.database.dialect.name, len(pieces.conditions)))
        return pieces

    monkeypatch.setattr(SliceQueries, "scan_pieces", recorded)
    return seen


def _diff(src: str, dst: str, algorithm: str, progress=None):
    return diff(Side(database_for(src, ZONE), TableName("a")), Side(database_for(dst, ZONE), TableName("b")),
                DiffOptions(algorithm=algorithm, bisection_factor=8, bisection_threshold=100), progress=progress)


@pytest.mark.parametrize("algorithm", ["md5diff", "hashdiff"])
@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
def test_pieces_give_the_one_query_result_and_report_progress(source, target, algorithm, tmp_path, request,
                                                               monkeypatch):
    src, dst = dialect_url(source, "src", tmp_path, request), dialect_url(target, "dst", tmp_path, request)
    rows = _rows(range(1, ROWS + 1))
    changed = {r["id"]: dict(r) for r in rows}
    changed[7]["name"], changed[1500]["amount"] = "changed", Decimal("0.01")
    del changed[2999]
    changed[ROWS + 5] = _rows([ROWS + 5])[0]
    create_table(src, "a", SCHEMA, rows)
    create_table(dst, "b", SCHEMA, list(changed.values()))
    _analyzed(src, "a")
    _analyzed(dst, "b")

    monkeypatch.setattr(algorithms, "PIECE_ROWS", 10**12)
    whole = _diff(src, dst, algorithm)
    monkeypatch.setattr(algorithms, "PIECE_ROWS", PIECE_ROWS)
    seen = _pieces_seen(monkeypatch)
    reports: list[Progress] = []
    pieced = _diff(src, dst, algorithm, reports.append)

    for dialect, url in ((source, src), (target, dst)):
        counted = [n for d, n in seen if d == database_for(url).dialect.name]
        assert counted and all(n >= 8 if dialect in PIECED else n == 1 for n in counted), (dialect, seen)
    assert (pieced.same, pieced.source_rows, pieced.target_rows, pieced.checksums) == (
        whole.same, whole.source_rows, whole.target_rows, whole.checksums)
    assert (pieced.source_rows, pieced.target_rows, pieced.same) == (ROWS, ROWS, False)
    assert pieced.rows == whole.rows
    if algorithm == "hashdiff":
        assert {(r.key, r.kind) for r in pieced.rows} == {
            (("7",), RowKind.CHANGED), (("1500",), RowKind.CHANGED), (("2999",), RowKind.MISSING),
            ((str(ROWS + 5),), RowKind.EXTRA)}
    assert reports[0].stage == "diff" and reports[0].rows == 0
    assert reports[-1].done and reports[-1].rows == reports[-1].total_rows == 2 * ROWS
    assert reports[-1].line().startswith("diff of a (source) and b (target): 6,000 of 6,000 rows (100%), ")
    assert " MB" not in reports[-1].line()


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_a_row_moved_while_the_pieces_are_read_counts_once(dialect, tmp_path, request, monkeypatch):
    """Between the source's first piece and all its others, 20 rows move to the table's last piece
    (PostgreSQL: an update too large for its block writes the new version at the end; MySQL: the key
    changed beyond the others). Read in one snapshot, the source is still the state the target
    copied: the same rows once each, so the diff is clean. Without it they would count twice."""
    src, dst = dialect_url(dialect, "src", tmp_path, request), f"sqlite:///{tmp_path}/dst.db"
    rows = _rows(range(1, ROWS + 1))
    create_table(src, "a", SCHEMA, rows)
    create_table(dst, "b", SCHEMA, rows)
    _analyzed(src, "a")
    monkeypatch.setattr(algorithms, "PIECE_ROWS", PIECE_ROWS)
    moved = threading.Event()
    real, first = SliceQueries.stats, []
    move = ("UPDATE a SET name = repeat('y', 2000) WHERE id <= 20" if dialect == "postgresql"
            else f"UPDATE a SET id = id + {10 * ROWS} WHERE id <= 20")

    def paced(self, key_range, bounds=(), piece=None, query=None):
        if piece is None or self.side.table.name != "a":
            return real(self, key_range, bounds, piece, query)
        if not first:
            first.append(piece)
            found = real(self, key_range, bounds, piece, query)
            execute(src, move)  # committed: every later piece of the pass could see it
            moved.set()
            return found
        assert moved.wait(60)
        return real(self, key_range, bounds, piece, query)

    monkeypatch.setattr(SliceQueries, "stats", paced)
    result = _diff(src, dst, "hashdiff")
    assert first and moved.is_set()
    assert (result.source_rows, result.target_rows, result.same, result.rows) == (ROWS, ROWS, True, ())
    monkeypatch.setattr(SliceQueries, "stats", real)
    after = _diff(src, dst, "hashdiff")  # the moved rows, seen now: exactly those 20 differ
    assert after.source_rows == ROWS and len(after.rows) == (20 if dialect == "postgresql" else 40)
