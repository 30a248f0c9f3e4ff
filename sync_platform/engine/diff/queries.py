"""The SQL a diff runs on one side, built from that side's dialect idioms.

A row is encoded as the concatenation of its columns' tokens, a prefix-free code, so no value can
imitate a separator or a NULL:
- strings and JSON (any character possible): `<length in UTF-8 bytes>:<text>`, NULL `~`:
  ('a|b', 'c') -> "3:a|b1:c" but ('a', 'b|c') -> "1:a3:b|c"; '' -> "0:", '<null>' -> "6:<null>";
- every other kind, whose canonical text only uses digits, hex, `-+.:eE ` and never `|` or `~`:
  `<text>|`, NULL `~|` (so the canonical expression is evaluated once per value).
Its md5, cut to 60 bits, is the row hash; a slice's checksum is the exact sum of its row hashes
(order-independent), compared together with the row count.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from math import ceil

from ..columns import Column, Kind, TableSchema
from ..dialects.base import Query, ScanPieces
from ..filters import Where
from .values import DiffError, Side

Key = tuple  # a key's values as the side's driver returns them
_COLON, _BAR = "':'", "'|'"  # SQL literals of the row encoding
_TEXT_KINDS = (Kind.STRING, Kind.JSON)  # any character possible: length-prefixed


@dataclass(frozen=True)
class Stats:
    rows: int
    checksum: int


@dataclass(frozen=True)
class KeyRange:
    """Keys k with low <= k < high; None is unbounded."""

    low: Key | None = None
    high: Key | None = None

    def __str__(self) -> str:
        return f"[{'-inf' if self.low is None else self.low}, {'+inf' if self.high is None else self.high})"


class SliceQueries:
    def __init__(
        self,
        side: Side,
        keys: Sequence[Column],
        columns: Sequence[Column],
        native_hash: frozenset[str] | None = None,
        naive_as_utc: frozenset[str] = frozenset(),
        length_prefixed: frozenset[str] | None = None,
        schema: TableSchema | None = None,
    ):
        """`native_hash`: when both sides are the same dialect, the columns whose typed values it may
        hash (the others enter the same row hash as canonical text); None: md5 of the encoded row.
        `naive_as_utc`: naive timestamp columns compared with a timestamptz on the other side.
        `length_prefixed`: the columns encoded as `<length>:<text>`, decided for the pair of sides
        (a uuid compared with a CHAR(36) is text on both); default: this side's strings and JSON.
        `schema`: the table's, reflected (its scan pieces follow its primary key)."""
        self.side, self.schema = side, schema
        self.naive_as_utc = naive_as_utc
        self.length_prefixed = (frozenset(c.name for c in [*keys, *columns] if c.kind in _TEXT_KINDS)
                                if length_prefixed is None else length_prefixed)
        self.database = side.database
        self.dialect = side.database.dialect  # the SQL idioms; queries go to self.database
        self.keys = list(keys)
        self.columns = list(columns)  # compared non-key columns
        d = self.dialect
        self._key_sql = [d.key_sql(k) for k in self.keys]
        if native_hash is not None:
            values = [
                d.quote(c.name) if c.name in native_hash else self._canonical(c) for c in self.keys + self.columns
            ]
            row_hash = d.native_row_hash_sql(values)
        else:
            row_hash = d.row_hash_sql(d.concat_sql([self._encoded(c) for c in self.keys + self.columns]))
        self._row_hash = row_hash
        self._checksum = d.checksum_sum_sql(row_hash)

    def _text(self, column: Column) -> str:
        if column.name in self.naive_as_utc:
            return self.dialect.naive_as_utc_sql(column)
        return self.dialect.canonical_text_sql(column)

    def _encoded(self, column: Column) -> str:
        # NULL is tested on the column itself: some canonical expressions map NULL to text
        # (SQLite's hex(NULL) is '', printf('%e', NULL) is 0).
        q = self.dialect.quote(column.name)
        text = self._text(column)
        if column.name in self.length_prefixed:
            token = self.dialect.concat_sql([self.dialect.byte_length_sql(text), _COLON, text])
            return f"(CASE WHEN {q} IS NULL THEN '~' ELSE {token} END)"
        return f"(CASE WHEN {q} IS NULL THEN '~|' ELSE {self.dialect.concat_sql([text, _BAR])} END)"

    def _canonical(self, column: Column) -> str:
        return f"CASE WHEN {self.dialect.quote(column.name)} IS NULL THEN NULL ELSE {self._text(column)} END"

    def _filter(self, key_range: KeyRange, piece: str | None = None) -> tuple[str, tuple]:
        conditions, params = [f"({piece})"] if piece else [], ()
        where = Where.of(self.side.where)
        if where is not None:
            conditions.append(f"({where.sql(self.dialect.param, escape_percent=self.dialect.param_escapes_percent)})")
            params += self.dialect.bind(where)
        for bound, op, first_op in ((key_range.low, ">=", ">="), (key_range.high, "<", "<=")):
            if bound is not None:
                compared, value_params = self.dialect.key_compare_sql(self._key_sql, op, bound)
                conditions.append(compared)
                params += value_params
                if len(self.keys) > 1:
                    # Redundant, but planners estimate a plain range on the first key column well
                    # (a row-value range poorly) and so pick the index instead of a full scan.
                    conditions.append(f"{self._key_sql[0]} {first_op} {self.dialect.param}")
                    params += (self.dialect.param_value(bound[0]),)
        return (" WHERE " + " AND ".join(conditions)) if conditions else "", params

    def _table(self) -> str:
        return self.dialect.qualified(self.side.table)

    def stats(self, key_range: KeyRange, bounds: Sequence[Key] = (), piece: str | None = None,
              query: Query | None = None) -> dict[int, Stats]:
        """Row count and checksum of each segment of the range cut at `bounds` (one scan), within
        one of the table's scan pieces if given, run by `query` (default: the database's)."""
        where, params = self._filter(key_range, piece)
        if bounds:
            whens, bound_params = [], ()
            for index, bound in enumerate(bounds):
                compared, value_params = self.dialect.key_compare_sql(self._key_sql, "<", bound)
                whens.append(f"WHEN {compared} THEN {index}")
                bound_params += value_params
            segment = f"CASE {' '.join(whens)} ELSE {len(bounds)} END"
            params = bound_params + params
        else:
            segment = "0"
        sql = f"SELECT {segment} AS segment, count(*), {self._checksum} FROM {self._table()}{where} GROUP BY 1"
        return {int(s): Stats(int(n), int(c or 0)) for s, n, c in (query or self.database.query)(sql, params)}

    def scan_pieces(self, rows_per_piece: int) -> ScanPieces:
        """The table's scan pieces (Database.scan_pieces), or the whole table as one."""
        pieces = self.database.scan_pieces(self.side.table, self.schema, rows_per_piece) if self.schema else None
        return pieces or ScanPieces([None])

    def whole_stats(self, pieces: ScanPieces, on_piece: Callable[[int], None]) -> Stats:
        """The slice's row count and checksum, as the sum over the table's scan pieces (checksums
        add up exactly), calling `on_piece(rows)` after each: progress on a pass that would
        otherwise be one silent query. The pieces are read `pieces.workers` at once, all in one
        snapshot, so a row that moves while they are read (an UPDATE writing its new version in a
        later block) is still counted exactly once."""
        todo = queue.SimpleQueue()
        for piece in pieces.conditions:
            todo.put(piece)
        workers = min(pieces.workers, len(pieces.conditions))

        def read_pieces(query: Query) -> Stats:
            rows = checksum = 0
            while True:
                try:
                    piece = todo.get_nowait()
                except queue.Empty:
                    return Stats(rows, checksum)
                found = self.stats(KeyRange(), piece=piece, query=query).get(0, Stats(0, 0))
                rows, checksum = rows + found.rows, checksum + found.checksum
                on_piece(found.rows)

        with self.database.consistent_queries(workers) as queries, ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="scan-piece") as pool:
            found = list(pool.map(read_pieces, queries))
        return Stats(sum(s.rows for s in found), sum(s.checksum for s in found))

    def quantiles(self, key_range: KeyRange, rows: int, segments: int) -> list[Key]:
        """Keys cutting the range into `segments` parts of equal row counts: boundaries follow the
        data, so skewed or sparse keys split as evenly as dense ones."""
        step = max(ceil(rows / segments), 1)
        where, params = self._filter(key_range)
        names = ", ".join(f"{k} AS k{i}" for i, k in enumerate(self._key_sql))
        order = ", ".join(self._key_sql)
        aliases = ", ".join(f"k{i}" for i in range(len(self.keys)))
        sql = (
            f"SELECT {aliases} FROM (SELECT {names}, row_number() OVER (ORDER BY {order}) AS rn "
            # rn - 1 a multiple of step, in integer arithmetic (MariaDB's / divides exactly) and
            # without % (a placeholder for some drivers)
            f"FROM {self._table()}{where}) numbered WHERE rn > 1 AND (rn - 1) = "
            f"{self.dialect.int_div_sql('rn - 1', step)} * {step} "
            "ORDER BY rn"
        )
        bounds = [tuple(row) for row in self.database.query(sql, params)]
        if len(bounds) >= segments:  # a range of `rows` rows has at most segments - 1 inner cuts
            raise DiffError(
                f"{self.side} returned {len(bounds)} boundaries for {rows} rows cut into {segments} segments, which is "
                "impossible: the database computed the quantiles wrongly; nothing further was asked of it"
            )
        return bounds

    def rows(self, key_range: KeyRange) -> dict[tuple, tuple]:
        """Canonical texts of the range's rows: key -> compared column values."""
        where, params = self._filter(key_range)
        select = ", ".join(self._canonical(c) for c in self.keys + self.columns)
        found = self.database.query(f"SELECT {select} FROM {self._table()}{where}", params)
        width = len(self.keys)
        rows = {tuple(row[:width]): tuple(row[width:]) for row in found}
        if len(rows) != len(found):
            raise DiffError(
                f"key columns {[k.name for k in self.keys]} are not unique in {self.side}; give unique key_columns"
            )
        return rows


    # --- row by row, for a cleanup that deletes only rows proved identical (../cleanup.py) -----------
    def next_rows_sql(self, after: Key | None, limit: int, lock: bool) -> tuple[str, tuple]:
        """The slice's next `limit` rows after key `after`, in this database's own key order (the
        primary key's index): each row's key as the driver returns it, the key's canonical text and
        the row hash. `lock`: hold those rows against change until the transaction ends."""
        plain = [self.dialect.quote(k.name) for k in self.keys]
        where, params = self._filter(KeyRange())
        if after is not None:
            compared, value_params = self.dialect.key_compare_sql(plain, ">", after)
            where = f"{where} AND {compared}" if where else f" WHERE {compared}"
            params += value_params
        # Aliased: a canonical expression may carry its column's name (PostgreSQL's "id"::text).
        width = len(plain)
        select = ", ".join(
            [f"{p} AS k{i}" for i, p in enumerate(plain)]
            + [f"{self._canonical(k)} AS t{i}" for i, k in enumerate(self.keys)]
            + [f"{self._row_hash} AS h"]
        )
        order = ", ".join(f"k{i}" for i in range(width))
        lock_sql = self.dialect.lock_rows_sql if lock else ""
        return f"SELECT {select} FROM {self._table()}{where} ORDER BY {order} LIMIT {int(limit)}{lock_sql}", params

    def hashes(self, keys: Sequence[Key]) -> dict[tuple, int]:
        """Canonical key text -> row hash of this table's rows (whole table, not only the slice)
        having one of `keys`, which may come from the other side's driver."""
        found: dict[tuple, int] = {}
        select = ", ".join([self._canonical(k) for k in self.keys] + [self._row_hash])
        step = self.dialect.keys_per_statement
        for start in range(0, len(keys), step):
            condition, params = self.dialect.key_in(self.keys, keys[start : start + step])
            for row in self.database.query(f"SELECT {select} FROM {self._table()} WHERE {condition}", params):
                found[tuple(row[: len(self.keys)])] = int(row[len(self.keys)])
        return found
