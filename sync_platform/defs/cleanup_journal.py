"""The record of source cleanups, kept as observations on the source table's asset: one per round
while a cleanup runs, written after the round's DELETE and before its COMMIT, and one when it ends
(cleaned, partial, dry-run, refused, failed, terminated). Read back, it tells what each attempt
committed, even an attempt whose process was killed: its last record names the round it was
committing and one key of it, and that row being gone from the source says the round committed."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from . import eventlog
from .launcher import process_exists

RUNNING = "running"
FINISHED_SLICE = {"cleaned", "partial"}  # walked the whole slice: earlier attempts are history


def probe_value(key: tuple | None) -> list | None:
    """A key as JSON the source's driver can bind again (None where a value cannot be: binary)."""
    if key is None or any(isinstance(v, (bytes, bytearray, memoryview)) for v in key):
        return None
    return [v if isinstance(v, (int, float, str)) or v is None else str(v) for v in key]


@dataclass(frozen=True)
class Attempt:
    """One cleanup run on a slice, as its latest record says."""

    run_id: str
    timestamp: float
    partition: str | None
    record: dict  # the latest observation's metadata, as plain values

    @property
    def status(self) -> str:
        return self.record.get("status", "?")

    @property
    def slice(self) -> str | None:
        return self.record.get("slice")

    def alive(self, instance: dg.DagsterInstance) -> bool | None:
        """Whether the process recording this attempt still runs (None: cannot tell from here)."""
        run = instance.get_run_by_id(self.run_id)
        if run is None or run.is_finished:
            return False
        if self.record.get("host") != socket.gethostname() or not self.record.get("pid"):
            return None
        return process_exists(int(self.record["pid"]))

    def committed(self, round_committed: Callable[[tuple, tuple], bool] | None) -> Committed:
        """What this attempt committed, as its records say. The round its last record names as
        being committed is settled by that round's probe key when `round_committed` is given."""
        rows, rounds = int(self.record.get("rows_deleted", 0)), int(self.record.get("rounds", 0))
        in_flight, probe = int(self.record.get("in_flight_rows", 0)), self.record.get("probe")
        if self.status != RUNNING or not in_flight:
            return Committed(rows, rounds)
        if probe is None or round_committed is None:
            return Committed(rows, rounds, f"round {rounds + 1} ({in_flight} rows) was committing: not settled")
        keyed_by = tuple(k.strip() for k in str(self.record.get("keyed_by", "")).split(","))
        if round_committed(keyed_by, tuple(probe)):
            return Committed(rows + in_flight, rounds + 1, f"its last round ({in_flight} rows) committed")
        return Committed(rows, rounds, f"its last round ({in_flight} rows) did not commit")


@dataclass(frozen=True)
class Committed:
    rows: int
    rounds: int
    note: str = ""
    interrupted: bool = False  # its process died while it was running (killed, host lost)


def attempts(instance: dg.DagsterInstance, source_key: dg.AssetKey, partition: str | None = None,
             all_partitions: bool = False, limit: int = 1000) -> list[Attempt]:
    """The latest record of each cleanup run on the source table (of `partition`), newest first."""
    latest: dict[str, Attempt] = {}
    for record in eventlog.observations(instance, source_key, limit):
        entry = record.event_log_entry
        if not all_partitions and entry.dagster_event.partition != partition:
            continue
        if entry.run_id not in latest:  # records come newest first
            latest[entry.run_id] = Attempt(entry.run_id, entry.timestamp, entry.dagster_event.partition,
                                           eventlog.observation_metadata(record))
    return list(latest.values())


def since_last_finished(earlier: list[tuple[Attempt, Committed]], slice_text: str) -> list[tuple[Attempt, Committed]]:
    """Of the attempts (newest first, each with the rows it committed), those at this slice since
    it was last walked to its end: what the total across attempts adds up."""
    found = []
    for attempt, committed in earlier:
        if attempt.slice != slice_text or attempt.status in ("refused", "dry-run"):
            continue
        if attempt.status in FINISHED_SLICE:
            break
        found.append((attempt, committed))
    return found
