"""Allocator settings that give freed memory back to the system, so a copy's peak RSS follows the
rows it holds (a few batches and files) rather than what its allocators keep for reuse.

A copy allocates and frees the same large blocks thousands of times, from several threads: a
batch's buffers, a file's bytes, its text. Two allocators hold on to them by default:

- Arrow's memory pool (mimalloc) keeps freed pages for reuse for a second before it returns them
  (purge_delay 1000 ms in pyarrow 26's mimalloc): a copy that frees tens of megabytes a second
  holds a second of them at any time. MIMALLOC_PURGE_DELAY=0 returns them at once.
  It also backs its arena with transparent huge pages where the kernel allows (`madvise` mode),
  and a 2 MB page stays resident while any part of it is in use: MIMALLOC_ALLOW_THP=0.
  mimalloc reads its options once, when pyarrow loads, so the engine's package imports this module
  (which sets them in the environment) before any module that imports pyarrow. A process that
  loaded pyarrow earlier keeps mimalloc's defaults, and a value already in the environment is kept.
- glibc's malloc (ADBC's and connectorx's Arrow buffers, libpq, Python's bytes) raises its mmap
  threshold to the largest block freed, up to 32 MiB, after which multi-megabyte blocks come from
  the heap, whose freed space a block still in use above it keeps from being returned. A fixed
  threshold keeps every block above it mmapped, unmapped when freed.

Measured on lineitem SF1 PostgreSQL -> PostgreSQL (benchmarks/sync_benchmark.py, six paths: local
and S3, CSV and Parquet, sequential and pipelined): peak RSS 245-438 MB with the defaults, 219-331 MB
with the purge delay and the mmap threshold, at the same speed; without huge pages, 20 MB less again
on a pipelined Parquet sync (by hand: 256 against 276 MB).
"""

from __future__ import annotations

import ctypes
import os

_MIMALLOC = {
    "MIMALLOC_PURGE_DELAY": "0",  # freed pages go back at once (default: after 1000 ms)
    "MIMALLOC_ALLOW_THP": "0",  # no transparent huge pages: a 2 MB page stays resident while any byte of it is used
}
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 256 * 1024  # blocks this large or larger are mmapped (glibc's default starts at 128 KiB)


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # not a glibc system (macOS, musl, Windows)
        return False


def give_back_freed_memory() -> None:
    for option, value in _MIMALLOC.items():
        os.environ.setdefault(option, value)
    if _glibc():
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


give_back_freed_memory()
