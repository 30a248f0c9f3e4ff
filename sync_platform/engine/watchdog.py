"""The spec's heartbeat_timeout: a stage that makes no progress for that many seconds is stopped.

A stage's loop calls beat() at each unit of progress (a batch read, a file written). A timer thread
watches the silence; past the timeout it calls `cancel`, which cancels the stage's query on the
database server (a hung query, a lock wait, a dead network path all end there, not only on our
side), and the stage then fails with Stalled naming the stage and the silence instead of the
driver's "canceling statement due to user request".

A reader that holds Python's GIL while it waits for the server (connectorx, MySQL's) stops every
thread of ours, the timer's too: for it SentinelWatchdog watches from a process of its own
(sentinel.py), which the beats reach through a pipe and which cancels the read by itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from .errors import Orphaned, Stalled

T = TypeVar("T")


class Watchdog:
    """`orphaned`: None while whoever asked for the stage is still there, else why not (the run
    worker of a step process is gone); the stage is then stopped the same way, as Orphaned."""

    def __init__(self, stage: str, timeout: float | None, cancel: Callable[[], None],
                 orphaned: Callable[[], str | None] | None = None):
        self.stage, self.timeout, self._cancel, self._orphaned = stage, timeout, cancel, orphaned
        self._last = time.monotonic()
        self._done = threading.Event()
        self.fired = False
        self.orphan_reason: str | None = None

    def beat(self) -> None:
        self._last = time.monotonic()

    def silent_for(self) -> float:
        """Seconds since the last beat."""
        return time.monotonic() - self._last

    def check(self) -> None:
        """Orphaned at once if whoever asked for the stage is gone; called at each unit of work
        (a sentinel in another process can cancel a read, not stop this one's loop)."""
        if self._orphaned and self.orphan_reason is None:
            self.orphan_reason = self._orphaned()
        if self.orphan_reason:
            raise self._orphan_error()

    def _orphan_error(self) -> Orphaned:
        return Orphaned(f"{self.stage} stopped: {self.orphan_reason}. This step is an orphan: it wrote no manifest "
                        "and writes nothing more, so the export is left to its run's retry")

    def beating(self, items: Iterable[T]) -> Iterator[T]:
        """`items`, with a beat at each one (a batch read from the database)."""
        for item in items:
            self.beat()
            yield item

    def _watch(self) -> None:
        while not self._done.wait(min(1.0, self.timeout / 4)):
            if self._orphaned and self.orphan_reason is None:
                self.orphan_reason = self._orphaned()
            if self.fired or self.orphan_reason or time.monotonic() - self._last > self.timeout:
                # Again at each look until the stage ends: a statement may start after the first
                # cancel (a driver's next statement), and it must not run on either.
                self.fired = True
                self._cancel()

    def __enter__(self) -> Watchdog:
        if self.timeout:
            threading.Thread(target=self._watch, name=f"watchdog {self.stage}", daemon=True).start()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._done.set()
        self._raise_if_fired(error)

    def _raise_if_fired(self, error: BaseException | None) -> None:
        if isinstance(error, Orphaned | Stalled):
            return  # raised inside (check(), an upload): it already names what happened
        if self.orphan_reason and (error is None or isinstance(error, Exception)):
            raise self._orphan_error() from None
        if self.fired and (error is None or isinstance(error, Exception)):
            raise Stalled(f"{self.stage}: no progress for {self.timeout:g} s (heartbeat_timeout); its query was "
                          "cancelled on the server. Find what blocks it (a lock, the network, the server), or raise "
                          "heartbeat_timeout") from None


class SentinelWatchdog(Watchdog):
    """The same watch from another process: `sentinel.py`, told the database's URL (through the
    pipe, never the command line) and the read's tag. A beat is one byte down the pipe."""

    def __init__(self, stage: str, timeout: float | None, database_url: str, tag: str,
                 orphaned: Callable[[], str | None] | None = None):
        super().__init__(stage, timeout, lambda: None, orphaned)  # an orphan is seen at check(): its next batch
        self._settings = {"url": database_url, "tag": tag, "timeout": timeout}
        self._sentinel: subprocess.Popen | None = None

    def beat(self) -> None:
        super().beat()
        if self._sentinel is not None:
            try:
                os.write(self._sentinel.stdin.fileno(), b".")
            except OSError:  # the sentinel is gone: nothing watches, the stage goes on
                self._sentinel = None

    def __enter__(self) -> SentinelWatchdog:
        if self.timeout:
            self._sentinel = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("sentinel.py"))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
            self._sentinel.stdin.write(json.dumps(self._settings).encode() + b"\n")
            self._sentinel.stdin.flush()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        sentinel, self._sentinel = self._sentinel, None
        if sentinel is not None:
            sentinel.stdin.close()  # end of the stage: the sentinel reports and exits
            self.fired = sentinel.stdout.read().strip() == b"fired"
            sentinel.wait()
        self._raise_if_fired(error)


def watchdog_for(database, stage: str, timeout: float | None, tag: str,
                 orphaned: Callable[[], str | None] | None = None) -> Watchdog:
    """The watchdog a read of `database` needs: a thread, or a process for a GIL-holding reader."""
    if database.read_holds_gil:
        return SentinelWatchdog(stage, timeout, database.url, tag, orphaned)
    return Watchdog(stage, timeout, lambda: database.cancel_read(tag), orphaned)
