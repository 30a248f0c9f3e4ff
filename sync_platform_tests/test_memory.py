"""The engine's allocator settings (engine/memory.py), each in a fresh interpreter: they apply as
the engine loads, once per process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ANONYMOUS_MB = """
def anonymous_mb():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) // 1024
"""


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")} | env
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)


@pytest.mark.parametrize(("preset", "expected"), [(None, "0"), ("25", "25")])
def test_arrow_pool_purges_freed_pages_at_once_unless_told_otherwise(preset, expected):
    env = {"MIMALLOC_VERBOSE": "1"} | ({"MIMALLOC_PURGE_DELAY": preset} if preset else {})
    done = run("import sync_platform.engine, pyarrow; print(pyarrow.default_memory_pool().backend_name)", **env)
    assert done.stdout.strip() == "mimalloc"  # mimalloc's verbose lines are about Arrow's own pool
    assert f"option 'purge_delay': {expected}" in done.stderr


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="Linux only: reads /proc")
@pytest.mark.parametrize("engine_loaded", [True, False])
def test_freed_megabyte_blocks_go_back_to_the_system(engine_loaded):
    """After a 20 MB block is freed, glibc's default would serve 1 MB blocks from the heap, where
    the last one still in use keeps the 99 freed below it resident."""
    code = ("import sync_platform.engine\n" if engine_loaded else "") + ANONYMOUS_MB + """
big = b"x" * (20 << 20)
del big
before = anonymous_mb()
blocks = [b"x" * (1 << 20) for _ in range(100)]
last = blocks[-1]
del blocks
print(anonymous_mb() - before)
"""
    retained_mb = int(run(code).stdout)
    if engine_loaded:
        assert retained_mb < 20
    else:  # the control: what the setting prevents
        assert retained_mb > 80
