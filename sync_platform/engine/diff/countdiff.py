"""countdiff: the row counts of both sides, queried in parallel."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..columns import TableName
from ..dialects import Dialect


@dataclass(frozen=True)
class CountDiff:
    source_rows: int
    target_rows: int
    seconds: float

    @property
    def same(self) -> bool:
        return self.source_rows == self.target_rows


def count_diff(
    source: Dialect,
    source_table: TableName,
    target: Dialect,
    target_table: TableName,
    source_where: str | None = None,
    target_where: str | None = None,
) -> CountDiff:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="countdiff") as pool:
        source_count = pool.submit(source.count_rows, source_table, source_where)
        target_count = pool.submit(target.count_rows, target_table, target_where)
        return CountDiff(source_count.result(), target_count.result(), time.monotonic() - started)
