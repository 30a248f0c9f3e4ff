"""Live progress of a stage: rows and bytes done, the expected total, rows/s and an ETA, reported
to a callback when the stage starts, every `every` seconds while it runs (whether or not a file
completed meanwhile: a silent stage shows its rate falling) and when it ends."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

REPORT_EVERY_S = 10.0
# Stages whose rows are read inside the databases (a diff's checksums): no bytes pass through us.
ROWS_ONLY_STAGES = frozenset({"diff"})


@dataclass(frozen=True)
class Progress:
    stage: str  # "export", "import", "diff" (rows of both sides)
    subject: str  # the table, as messages name it
    rows: int
    bytes: int
    total_rows: int | None  # expected: the manifest's count, or the database's estimate (~)
    seconds: float
    done: bool = False
    estimated: bool = True  # total_rows is the database's estimate, not a count

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        if self.done:
            return 1.0
        return min(1.0, self.rows / self.total_rows) if self.total_rows else None

    @property
    def eta_s(self) -> float | None:
        if self.done:
            return 0.0
        if not self.total_rows or not self.rows_per_s:
            return None
        return max(0.0, (self.total_rows - self.rows) / self.rows_per_s)

    def line(self) -> str:
        """`export of orders: 1,200,000 of ~6,001,215 rows (20%), 151.2 MB, 210,432 rows/s, ETA 23 s`."""
        total = ""
        if self.total_rows is not None:
            total = f" of {'~' if self.estimated and not self.done else ''}{self.total_rows:,}"
        share = f" ({self.fraction:.0%})" if self.fraction is not None else ""
        eta = "done" if self.done else (f"ETA {self.eta_s:,.0f} s" if self.eta_s is not None else "ETA unknown")
        size = "" if self.stage in ROWS_ONLY_STAGES else f" {self.bytes / 1e6:,.1f} MB,"
        return (f"{self.stage} of {self.subject}: {self.rows:,}{total} rows{share},{size} "
                f"{self.rows_per_s:,.0f} rows/s, {eta}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Progress:
        return cls(**json.loads(text))


class ProgressMeter:
    """`with ProgressMeter(...) as meter: meter.add(rows, bytes)`; reports go to `report`."""

    def __init__(self, stage: str, subject: str, total_rows: int | None, report: Callable[[Progress], None] | None,
                 every: float | None = None, estimated: bool = True):
        self.stage, self.subject, self.total_rows, self._report = stage, subject, total_rows, report
        self.every, self.estimated = every or REPORT_EVERY_S, estimated
        self.rows = self.bytes = 0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def add(self, rows: int, size: int) -> None:
        with self._lock:  # stages add from several threads (readers, uploads, both sides of a diff)
            self.rows += rows
            self.bytes += size

    def snapshot(self, done: bool = False) -> Progress:
        total = self.rows if done and self.total_rows is None else self.total_rows
        return Progress(self.stage, self.subject, self.rows, self.bytes, total, time.monotonic() - self._started,
                        done, self.estimated and not done)

    def _emit(self, done: bool = False) -> None:
        try:
            self._report(self.snapshot(done))
        except Exception:  # noqa: BLE001, S110 - a report that fails (a log sink, a tag write) never fails the stage
            pass

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self._emit()

    def __enter__(self) -> ProgressMeter:
        if self._report:
            self._emit()
            threading.Thread(target=self._tick, name=f"progress {self.stage}", daemon=True).start()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._stop.set()
        if self._report and error is None:
            self._emit(done=True)
