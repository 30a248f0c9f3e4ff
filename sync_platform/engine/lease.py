"""One writer per export folder: a lease object in the store the folder lives in.

Two runs of one table and partition (two backfills, a retry beside an orphaned step of the run it
retries) would otherwise write the same part files and manifest, and one run's import could load
a mix. A writer takes the folder's lease before touching it, renews it while it writes, and
releases it at the end. Every change of the lease is a conditional write (S3's If-None-Match /
If-Match; a file lock for a local folder), so of two writers racing for it exactly one wins.

What a writer finds in the lease, and does:
- none, released, or held by a process of this host that is gone: takes it at once;
- renewed within the last half of its time-to-live: a live writer. Waited for, up to
  LEASE_WAIT_S (a step that has just stopped, an orphan stopping itself, releases it), then
  refused with FolderBusy naming it: this export has touched nothing;
- silent for longer (a lost host, a frozen process): waits until its time-to-live has passed
  (at most `ttl`), then takes it; a writer that renews meanwhile is live after all: refused.
A writer whose renewal finds the lease taken (it was silent past its time-to-live) has lost it:
it writes no further file and no manifest (LeaseLost), so a newer export is never overwritten by
an older writer that woke up."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass

from .errors import StoreError, SyncError
from .stores import ObjectStore

LEASE_TTL_S = 120.0  # a writer renews every ttl/4; one silent for a ttl may be replaced
LEASE_WAIT_S = 60.0  # how long a live writer's release is waited for
_HELD_HERE: set[str] = set()  # keys this process holds: a lease of our pid not in here is stale
_ACQUIRING = threading.Lock()


class FolderBusy(SyncError):
    """Another live writer holds the export folder's lease; nothing was written."""


class LeaseLost(SyncError):
    """The writer's lease was taken by another writer; it stopped before its manifest."""


@dataclass(frozen=True)
class Holder:
    writer: str  # who, for people: e.g. "run 3f2a… (task copy)"
    host: str
    pid: int
    renewed_at: float  # epoch seconds, by the writer's clock
    ttl: float
    released: bool = False

    def describe(self, now: float) -> str:
        silent = max(0.0, now - self.renewed_at)
        return f"{self.writer} on host {self.host} (pid {self.pid}, lease renewed {silent:.0f} s ago)"

    def gone(self) -> bool:
        """A process of this host that no longer exists (or a lease of this process left over)."""
        if self.host != socket.gethostname():
            return False
        if self.pid == os.getpid():
            return True  # this process holds no such lease (checked by the caller): left over
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


class WriterLease:
    """`with WriterLease(store, folder, writer):` holds the folder's lease for the block."""

    def __init__(self, store: ObjectStore, folder: str, writer: str, ttl: float | None = None):
        self.store, self.folder, self.writer, self.ttl = store, folder, writer, ttl or LEASE_TTL_S
        self.key = f"_sync_platform/writers/{folder}.json"
        self._here = store.url(self.key)  # this process's name for it, store included (_HELD_HERE)
        self._version: str | None = None
        self._renewed = 0.0
        self._lost_to: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one conditional write at a time: the renewer's or the writer's

    def _mine(self, released: bool = False) -> bytes:
        holder = Holder(self.writer, socket.gethostname(), os.getpid(), time.time(), self.ttl, released)
        return json.dumps(asdict(holder)).encode()

    def acquire(self) -> None:
        started = time.monotonic()
        while True:
            wait = self._try_acquire(started)
            if wait is None:
                return
            time.sleep(wait)

    def _try_acquire(self, started: float) -> float | None:
        """One look and one conditional write: None once held, else how long to wait first."""
        with _ACQUIRING:  # this process's writers one at a time: its own leases are told apart by _HELD_HERE
            current = self.store.get_versioned(self.key)
            version = None
            if current is not None:
                holder, version = Holder(**json.loads(current[0])), current[1]
                now = time.time()
                free = holder.released or (holder.gone() and self._here not in _HELD_HERE) or (
                    now - holder.renewed_at > holder.ttl)
                if not free:
                    live = now - holder.renewed_at <= holder.ttl / 2
                    waited = time.monotonic() - started
                    # a live writer is waited for LEASE_WAIT_S; a silent one at most one ttl, plus races
                    if waited > (LEASE_WAIT_S if live else 2 * holder.ttl):
                        raise FolderBusy(
                            f"{self.store.url(self.folder)} is being written by {holder.describe(now)} (waited "
                            f"{waited:.0f} s): two writers would mix their files, so this export touched nothing. "
                            "Let that writer finish (or terminate its run), then run this again"
                        )
                    return 1.0 if live else min(holder.renewed_at + holder.ttl - now + 0.5, self.ttl / 4)
            new_version = self.store.put_if(self.key, self._mine(), version)
            if new_version is None:
                return 0.0  # another writer changed the lease between our read and our write: look again
            self._version, self._renewed = new_version, time.monotonic()
            _HELD_HERE.add(self._here)
            return None

    def renew(self) -> None:
        """Prove the lease is still this writer's (a conditional write) and extend it; LeaseLost
        if another writer has taken it."""
        with self._lock:
            if self._lost_to is None:
                try:
                    new_version = self.store.put_if(self.key, self._mine(), self._version)
                except StoreError:
                    if time.monotonic() - self._renewed < self.ttl / 2:
                        return  # an outage shorter than half the ttl: the lease still holds
                    raise
                if new_version is None:
                    current = self.store.get_versioned(self.key)
                    self._lost_to = (Holder(**json.loads(current[0])).describe(time.time()) if current
                                     else "someone who deleted it")
                else:
                    self._version, self._renewed = new_version, time.monotonic()
        self.check()

    def check(self) -> None:
        """LeaseLost once the lease is known taken (by the renewer thread or a renew())."""
        if self._lost_to is not None:
            raise LeaseLost(
                f"{self.store.url(self.folder)}: this writer ({self.writer}) was silent for longer than the lease's "
                f"{self.ttl:g} s and its lease was taken by {self._lost_to}; it stopped without a manifest, so its "
                "files are never imported and the newer export stands"
            )

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                self.renew()
            except (LeaseLost, StoreError):
                if self._lost_to is not None:
                    return
                # A longer outage: check() stays quiet, the next renew() (before the manifest) decides.

    def release(self) -> None:
        self._stop.set()
        _HELD_HERE.discard(self._here)
        with self._lock:
            if self._lost_to is None and self._version is not None:
                try:
                    self.store.put_if(self.key, self._mine(released=True), self._version)
                except StoreError:
                    pass  # not released: the next writer takes it once it expires (or at once, on this host)

    def __enter__(self) -> WriterLease:
        self.acquire()
        threading.Thread(target=self._renew_until_stopped, name=f"lease {self.folder}", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
