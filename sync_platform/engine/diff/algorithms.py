"""countdiff, md5diff and hashdiff.

hashdiff bisects the key space, level by level, comparing segment checksums computed inside both
databases:

    level 0   [---------------------- whole slice ----------------------]   count+checksum, each side
                                   | differ
    level 1   [--][--][--][--][--][--][--][--] ... (bisection_factor)       boundaries = key quantiles
                      | differ          | differ                            of the larger side; every
    level 2       [-][-][-]...      [-][-][-]...                             segment of a range in ONE
                     | < bisection_threshold rows                           GROUP BY scan per side
    leaf          fetch both sides' rows (canonical text), compare in memory -> missing / extra / changed

Ranges of one level run in parallel (`threads` ranges at once, both sides of each concurrently).
Work stays proportional to the rows: boundaries are quantiles of the keys actually present, so an
outlier key at 10^12 or big gaps do not produce empty or overfull segments.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ..columns import Column, Kind, TableSchema
from ..progress import Progress, ProgressMeter
from .queries import KeyRange, SliceQueries, Stats
from .values import ALGORITHMS, DiffError, DiffOptions, DiffResult, RowDiff, RowKind, Side

log = logging.getLogger("sync_platform.diff")
_EMPTY = Stats(0, 0)


def _resolve_columns(
    source: TableSchema, target: TableSchema, options: DiffOptions, need_key: bool
) -> tuple[list[Column], list[Column], list[Column], list[Column]]:
    """Key and compared columns, as (source keys, source columns, target keys, target columns)."""
    keys = list(options.key_columns or source.primary_key)
    if need_key and not keys:
        raise DiffError(
            "hashdiff needs key columns: the source table has no primary key; set run_config.key_columns "
            "(countdiff and md5diff work without one)"
        )
    extra = (
        list(options.extra_columns) if options.extra_columns is not None else [n for n in source.names if n not in keys]
    )
    for side, schema in (("source", source), ("target", target)):
        missing = [n for n in keys + extra if n not in schema.names]
        if missing:
            raise DiffError(f"the {side} table has no column(s) {missing}; its columns are {schema.names}")
    return (
        [source.column(n) for n in keys],
        [source.column(n) for n in extra],
        [target.column(n) for n in keys],
        [target.column(n) for n in extra],
    )


def _naive_against_aware(source: list[Column], target: list[Column]) -> tuple[frozenset[str], frozenset[str]]:
    """Columns holding a naive timestamp where the other side has a timestamptz: those compare as
    UTC instants, the naive values read in their side's time zone (the task's source_timezone)."""
    pairs = list(zip(source, target))
    naive = {Kind.TIMESTAMP}, {Kind.TIMESTAMPTZ}
    source_naive = frozenset(s.name for s, t in pairs if {s.kind} == naive[0] and {t.kind} == naive[1])
    target_naive = frozenset(t.name for s, t in pairs if {t.kind} == naive[0] and {s.kind} == naive[1])
    return source_naive, target_naive


_INTEGERS = {Kind.INT16, Kind.INT32, Kind.INT64}
_TEXT_KINDS = {Kind.STRING, Kind.JSON}


def _natively_hashable(source: Side, target: Side, s_cols: list[Column], t_cols: list[Column]) -> frozenset[str] | None:
    """Both sides one dialect with a native row hash: the columns it may hash as typed values
    (same kind on both sides, or integers of any width); None: use md5 of canonical text."""
    dialect = source.database.dialect
    if type(dialect) is not type(target.database.dialect) or dialect.native_row_hash_sql([]) is None:
        return None
    return frozenset(
        s.name
        for s, t in zip(s_cols, t_cols)
        if s.kind in dialect.natively_hashable and s.typed_hash and t.typed_hash
        and (s.kind == t.kind or {s.kind, t.kind} <= _INTEGERS)
    )


def count_diff(source: Side, target: Side, options: DiffOptions, logger: Callable[[str], None],
               progress: Callable[[Progress], None] | None = None) -> DiffResult:
    """Two count(*), one query each: nothing to report until they return (`progress` unused)."""
    started = time.monotonic()
    source, target = source.rendered(), target.rendered()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="countdiff") as pool:
        counts = [pool.submit(s.database.count_rows, s.table, s.where) for s in (source, target)]
        source_rows, target_rows = (f.result() for f in counts)
    return DiffResult(
        "countdiff", source_rows, target_rows, source_rows == target_rows, seconds=time.monotonic() - started
    )


def _key_order(key: tuple) -> tuple:
    """Sort canonical key texts as people read them: numbers by value, the rest as text (ISO dates
    and timestamps sort chronologically as text)."""
    parts = []
    for value in key:
        try:
            parts.append((0, Decimal(value), ""))
        except (InvalidOperation, TypeError):
            parts.append((1, Decimal(0), value or ""))
    return tuple(parts)


# Rows of a scan piece of the first pass: a few seconds of hashing on the slowest side (SQLite's
# Python md5, ~70k rows/s), so every 10 s progress report has moved.
PIECE_ROWS = 500_000


def _whole_slices(sides: tuple[SliceQueries, SliceQueries], progress: Callable[[Progress], None] | None
                  ) -> tuple[Stats, Stats]:
    """Each side's row count and checksum of its whole slice, both sides at once, each piece by
    piece (its database's scan pieces), reported as the diff's progress: rows hashed on both
    sides, of the expected total (each side's estimate; a filtered slice's extrapolated from the
    pieces read so far)."""
    plans = [side.scan_pieces(PIECE_ROWS) for side in sides]
    estimates = [side.database.estimated_rows(side.side.table) if progress and not side.side.where else None
                 for side in sides]
    done = [[0, 0], [0, 0]]  # rows, pieces of each side
    lock = threading.Lock()

    def expected() -> int | None:
        totals = []
        for (rows, pieces), plan, estimate in zip(done, plans, estimates):
            if estimate is not None:
                totals.append(max(estimate, rows))
            elif pieces:
                totals.append(rows * len(plan.conditions) // pieces)
            else:
                return None
        return sum(totals)

    subject = f"{sides[0].side.table} (source) and {sides[1].side.table} (target)"
    with ProgressMeter("diff", subject, expected(), progress) as meter:
        def whole(index: int) -> Stats:
            def on_piece(rows: int) -> None:
                with lock:
                    done[index][0] += rows
                    done[index][1] += 1
                    meter.add(rows, 0)
                    meter.total_rows = expected()

            return sides[index].whole_stats(plans[index], on_piece)

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="first-pass") as pool:
            source, target = (f.result() for f in [pool.submit(whole, index) for index in (0, 1)])
        meter.total_rows = meter.rows
    return source, target


@dataclass
class _Range:
    key_range: KeyRange
    source: Stats
    target: Stats


class _HashDiff:
    def __init__(self, source: SliceQueries, target: SliceQueries, options: DiffOptions, logger: Callable[[str], None]):
        self.source, self.target, self.options, self.log = source, target, options, logger
        self.found: list[RowDiff] = []
        self.segments = 0
        self.pool = ThreadPoolExecutor(max_workers=2 * options.threads, thread_name_prefix="hashdiff")

    def both(self, fn_name: str, *args) -> tuple:
        futures = [self.pool.submit(getattr(side, fn_name), *args) for side in (self.source, self.target)]
        return tuple(f.result() for f in futures)

    def split(self, r: _Range) -> tuple[list[_Range], Stats, Stats]:
        """Cut a differing range at its larger side's key quantiles; return the differing segments
        and the range's totals on each side."""
        started = time.monotonic()
        larger = self.source if r.source.rows >= r.target.rows else self.target
        rows = max(r.source.rows, r.target.rows)
        bounds = larger.quantiles(r.key_range, rows, self.options.bisection_factor)
        source, target = self.both("stats", r.key_range, bounds)
        edges = [r.key_range.low, *bounds, r.key_range.high]
        children = []
        totals = [
            Stats(sum(x.rows for x in side.values()), sum(x.checksum for x in side.values()))
            for side in (source, target)
        ]
        for index in range(len(bounds) + 1):
            s, t = source.get(index, _EMPTY), target.get(index, _EMPTY)
            self.segments += 1
            child = KeyRange(edges[index], edges[index + 1])
            if self.options.verbose:
                self.log(
                    f"segment {child}: source {s.rows} rows checksum {s.checksum:x}, target {t.rows} rows "
                    f"checksum {t.checksum:x}, {'same' if s == t else 'DIFFERENT'}"
                )
            if s != t:
                if (s.rows, t.rows) == (r.source.rows, r.target.rows):
                    raise DiffError(
                        f"key columns {[k.name for k in self.source.keys]} are not unique (a segment cannot be "
                        "split further); give unique key_columns"
                    )
                children.append(_Range(child, s, t))
        if self.options.verbose:
            self.log(f"split {r.key_range} into {len(bounds) + 1} segments in {time.monotonic() - started:.3f}s")
        return children, *totals

    def compare_rows(self, r: _Range) -> list[RowDiff]:
        source_rows, target_rows = self.both("rows", r.key_range)
        names = [c.name for c in self.source.columns]
        diffs = []
        for key in sorted(source_rows.keys() | target_rows.keys(), key=_key_order):
            if key not in target_rows:
                diffs.append(RowDiff(key, RowKind.MISSING))
            elif key not in source_rows:
                diffs.append(RowDiff(key, RowKind.EXTRA))
            elif source_rows[key] != target_rows[key]:
                changed = tuple(n for n, a, b in zip(names, source_rows[key], target_rows[key]) if a != b)
                diffs.append(RowDiff(key, RowKind.CHANGED, changed))
        if self.options.verbose:
            self.log(
                f"compared {len(source_rows)} / {len(target_rows)} rows of {r.key_range} in memory: {len(diffs)} differ"
            )
        return diffs

    def run(self, progress: Callable[[Progress], None] | None) -> tuple[Stats, Stats, bool]:
        """The whole slices first (the check of a good copy ends there, in one pass with progress),
        then bisect level by level; return each side's totals and whether `limit` cut the search."""
        try:
            source, target = _whole_slices((self.source, self.target), progress)
            self.segments = 1
            if source == target:
                return source, target, False
            root = _Range(KeyRange(), source, target)
            if max(root.source.rows, root.target.rows) < self.options.bisection_threshold:
                self.found = self.compare_rows(root)
                level = []
            else:
                level, _, _ = self.split(root)
            while level and len(self.found) < self.options.limit:
                leaves, inner = [], []
                for r in level:
                    (leaves if max(r.source.rows, r.target.rows) < self.options.bisection_threshold else inner).append(
                        r
                    )
                # Ranges of a level in parallel: `threads` at once, each with both sides concurrently.
                with ThreadPoolExecutor(max_workers=self.options.threads, thread_name_prefix="level") as ranges:
                    for diffs in ranges.map(self.compare_rows, leaves):
                        self.found.extend(diffs)
                    level = [child for children, _, _ in ranges.map(self.split, inner) for child in children]
            truncated = len(self.found) > self.options.limit or (bool(level) and len(self.found) >= self.options.limit)
            del self.found[self.options.limit :]
            return source, target, truncated
        finally:
            self.pool.shutdown(cancel_futures=True)


def slice_queries(
    source: Side, target: Side, options: DiffOptions, need_key: bool
) -> tuple[SliceQueries, SliceQueries]:
    """Both sides' queries under the contract: the same key and compared columns, each rendered in
    its own dialect, hashing rows the same way on both sides."""
    source_schema, target_schema = (s.database.reflect(s.table) for s in (source, target))
    source, target = source.rendered(source_schema), target.rendered(target_schema)
    s_keys, s_cols, t_keys, t_cols = _resolve_columns(source_schema, target_schema, options, need_key)
    source_naive, target_naive = _naive_against_aware(s_keys + s_cols, t_keys + t_cols)
    native = _natively_hashable(source, target, s_keys + s_cols, t_keys + t_cols)
    # One encoding per column pair, whatever each side stores it as: text if either side is text.
    textual = [s.kind in _TEXT_KINDS or t.kind in _TEXT_KINDS for s, t in zip(s_keys + s_cols, t_keys + t_cols)]
    source_text = frozenset(c.name for c, text in zip(s_keys + s_cols, textual) if text)
    target_text = frozenset(c.name for c, text in zip(t_keys + t_cols, textual) if text)
    return (SliceQueries(source, s_keys, s_cols, native, source_naive, source_text, source_schema),
            SliceQueries(target, t_keys, t_cols, native, target_naive, target_text, target_schema))


def md5_diff(source: Side, target: Side, options: DiffOptions, logger: Callable[[str], None],
             progress: Callable[[Progress], None] | None = None) -> DiffResult:
    started = time.monotonic()
    source_q, target_q = slice_queries(source, target, options, need_key=False)
    try:
        s_stats, t_stats = _whole_slices((source_q, target_q), progress)
        if options.verbose:
            logger(f"md5diff: source {s_stats.rows} rows checksum {s_stats.checksum:x}, "
                   f"target {t_stats.rows} rows checksum {t_stats.checksum:x}")
        return DiffResult(
            "md5diff", s_stats.rows, t_stats.rows, s_stats == t_stats, key_columns=tuple(k.name for k in source_q.keys),
            segments=1, seconds=time.monotonic() - started, checksums=(s_stats.checksum, t_stats.checksum),
        )
    finally:
        for side in (source_q, target_q):
            side.database.close()


def hash_diff(source: Side, target: Side, options: DiffOptions, logger: Callable[[str], None],
              progress: Callable[[Progress], None] | None = None) -> DiffResult:
    started = time.monotonic()
    source_q, target_q = slice_queries(source, target, options, need_key=True)
    try:
        run = _HashDiff(source_q, target_q, options, logger)
        s_stats, t_stats, truncated = run.run(progress)
        inconsistency = None
        if s_stats != t_stats and not run.found and not truncated:
            columns = [f"{s.name} ({s.kind.value} vs {t.kind.value})" for s, t in
                       zip(source_q.keys + source_q.columns, target_q.keys + target_q.columns)]
            inconsistency = (
                f"the checksums differ ({s_stats.rows} vs {t_stats.rows} rows) but every row compares equal value by "
                "value: "
                f"the diff encodes some column type differently on the two sides (columns: {', '.join(columns)}). "
                "This is a defect of the diff, not evidence of inconsistent data; please report it"
            )
        return DiffResult(
            "hashdiff", s_stats.rows, t_stats.rows, s_stats == t_stats and not run.found,
            key_columns=tuple(k.name for k in source_q.keys), rows=tuple(run.found), truncated=truncated,
            segments=run.segments, seconds=time.monotonic() - started, checksums=(s_stats.checksum, t_stats.checksum),
            inconsistency=inconsistency,
        )
    finally:
        for side in (source_q, target_q):
            side.database.close()


# The order is the spec's: md5diff is the default.
ALGORITHMS.register(
    "md5diff", md5_diff, "row counts and an order-independent checksum of every row, computed in each database"
)
ALGORITHMS.register(
    "hashdiff", hash_diff, "segment checksums bisected down to the differing rows (missing / extra / changed)"
)
ALGORITHMS.register("countdiff", count_diff, "row counts of source and target")


def diff(source: Side, target: Side, options: DiffOptions, logger: Callable[[str], None] | None = None,
         progress: Callable[[Progress], None] | None = None) -> DiffResult:
    """Compare the source slice with the target slice using options.algorithm; md5diff and
    hashdiff report their first pass (every row of both sides) to `progress` as it goes."""
    return ALGORITHMS.get_value(options.algorithm)(source, target, options, logger or log.info, progress)
