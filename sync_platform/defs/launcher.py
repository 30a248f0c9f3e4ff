"""A run launcher whose run workers the daemon's run monitoring can check.

Dagster's DefaultRunLauncher starts each run worker as a subprocess of the code server. A code
server that sees its worker die reports the run failed itself; one that died with it (a killed
process tree, a lost host) reports nothing, and the launcher cannot say whether the worker lives,
so the run stayed STARTED forever. This launcher is the DefaultRunLauncher plus a health check:
the worker's pid is the one that wrote the run's RUN_START event; when the code server runs on
this host, a pid that no longer exists is a dead worker, and run monitoring marks the run failed
(a pid the system has given to a new process meanwhile reads alive: max_runtime bounds that).
Code servers on other hosts are not judged here: their runs are bounded by
`dagster/max_runtime` (deploy/dagster.yaml's max_runtime_seconds), or by a launcher of the
platform they run on (K8sRunLauncher checks its pods itself).
"""

from __future__ import annotations

import os
import socket

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin

from .eventlog import worker_pid

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", socket.gethostname()}


def process_exists(pid: int) -> bool:
    """Whether a process of this host has that pid (signal 0 only asks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def _code_server_is_local(run: dg.DagsterRun) -> bool:
    origin = run.remote_job_origin
    if origin is None:
        return False
    location = origin.repository_origin.code_location_origin
    if isinstance(location, GrpcServerCodeLocationOrigin):
        return location.host in _LOCAL_HOSTS
    return True  # a code server this process tree started (dagster dev, the CLI)


class MonitoredRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher with a run worker health check for run monitoring."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        if not _code_server_is_local(run):
            # Run monitoring fails a run on any answer but RUNNING: not knowing is not a death.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "the run worker is on another host; not checked here")
        pid = worker_pid(self._instance, run.run_id)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "the run worker has not started executing yet")
        if process_exists(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        gone = f"the run worker (pid {pid}) is gone: killed, or its host lost it"
        return CheckRunHealthResult(WorkerStatus.FAILED, gone, run_worker_id=str(pid))


def launcher_elsewhere_of(launcher) -> str | None:
    """The launcher's class name when it may start run workers on other hosts than the code
    server's (K8sRunLauncher, EcsRunLauncher, DockerRunLauncher...); None when runs execute beside
    the code server (DefaultRunLauncher and its subclasses, in-process runs)."""
    from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher

    if launcher is None or isinstance(launcher, DefaultRunLauncher | SyncInMemoryRunLauncher):
        return None  # none configured: the DefaultRunLauncher
    return type(launcher).__name__
