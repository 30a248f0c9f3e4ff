"""The spec's heartbeat_timeout: a stage that makes no progress for that many seconds is stopped.

A stage's loop calls beat() at each unit of progress (a batch read, a file written). A timer thread
watches the silence; past the timeout it calls `cancel`, which cancels the stage's query on the
database server (a hung query, a lock wait, a dead network path all end there, not only on our
side), and the stage then fails with Stalled naming the stage and the silence instead of the
driver's "canceling statement due to user request"."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from .errors import Stalled

T = TypeVar("T")


class Watchdog:
    def __init__(self, stage: str, timeout: float | None, cancel: Callable[[], None]):
        self.stage, self.timeout, self._cancel = stage, timeout, cancel
        self._last = time.monotonic()
        self._done = threading.Event()
        self.fired = False

    def beat(self) -> None:
        self._last = time.monotonic()

    def beating(self, items: Iterable[T]) -> Iterator[T]:
        """`items`, with a beat at each one (a batch read from the database)."""
        for item in items:
            self.beat()
            yield item

    def _watch(self) -> None:
        while not self._done.wait(min(1.0, self.timeout / 4)):
            if self.fired or time.monotonic() - self._last > self.timeout:
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
        if self.fired and (error is None or isinstance(error, Exception)):
            raise Stalled(f"{self.stage}: no progress for {self.timeout:g} s (heartbeat_timeout); its query was "
                          "cancelled on the server. Find what blocks it (a lock, the network, the server), or raise "
                          "heartbeat_timeout") from None
