"""Runs the CLI launches, as ordinary runs of the code location: created from the code location's
own job (so the run carries the workspace's origin, shows on the Overview timeline and each job's
Runs tab, and "View job" opens the job) and submitted through the instance's run coordinator, as
the UI's Launch button submits them (queued where the instance queues runs)."""

from __future__ import annotations

import getpass
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ..errors import SyncPlatformError
from . import naming
from .instance import LOCATION_MODULE, ensure_dagster_home

FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


class LocationNotLoaded(SyncPlatformError):
    """The code location failed to load (its configuration cannot be read): nothing was launched."""


@dataclass
class Launcher:
    instance: dg.DagsterInstance
    workspace: object  # a workspace request context (Dagster's BaseWorkspaceRequestContext)

    @property
    def launched_by(self) -> dict[str, str]:
        return {naming.VIA_TAG: "cli", naming.USER_TAG: getpass.getuser()}

    def launch(self, job_name: str, run_config: Mapping | None = None, tags: Mapping[str, str] | None = None) -> str:
        """Create the run from the code location's job and submit it; its run id. It is tagged as
        launched by the CLI, by the OS user."""
        from dagster._core.definitions.selector import JobSubsetSelector
        from dagster._utils.tags import normalize_tags

        location = self.workspace.get_code_location(naming.CODE_LOCATION)
        [repository] = location.get_repositories().values()
        remote_job = location.get_job(JobSubsetSelector(
            location_name=location.name, repository_name=repository.name, job_name=job_name, op_selection=None))
        run_config = dict(run_config or {})
        plan = location.get_execution_plan(remote_job, run_config, step_keys_to_execute=None, known_state=None,
                                           instance=self.instance).execution_plan_snapshot
        run = self.instance.create_run(
            job_name=job_name, run_id=None, run_config=run_config, resolved_op_selection=None,
            step_keys_to_execute=plan.step_keys_to_execute, op_selection=None, status=None, root_run_id=None,
            parent_run_id=None, tags=normalize_tags({**remote_job.tags, **(tags or {}), **self.launched_by}),
            job_snapshot=remote_job.job_snapshot, execution_plan_snapshot=plan,
            parent_job_snapshot=remote_job.parent_job_snapshot, remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(), asset_selection=None, asset_check_selection=None,
            asset_graph=repository.asset_graph,
        )
        return self.instance.submit_run(run.run_id, self.workspace).run_id

    def wait(self, run_ids: list[str], on_poll=None, interval: float = 0.5) -> list[dg.DagsterRun]:
        """Until every run has finished; `on_poll(runs)` after each look (a progress display)."""
        while True:
            runs = [self.instance.get_run_by_id(run_id) for run_id in run_ids]
            if on_poll:
                on_poll(runs)
            if all(run.status in FINISHED for run in runs):
                return runs
            time.sleep(interval)


@contextmanager
def code_location(config_path: str | os.PathLike) -> Iterator[Launcher]:
    """The instance (DAGSTER_HOME) and the code location of `config_path`, loaded by a code server
    as the UI loads it, under the same location name. A code server started here finishes the runs
    it launched before it exits, so a launch returns at once while its runs go on."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget

    home = ensure_dagster_home()
    os.environ["SYNC_PLATFORM_CONFIG"] = str(Path(config_path).resolve())  # the code server inherits it
    target = ModuleTarget(module_name=LOCATION_MODULE, attribute=None, working_directory=None,
                          location_name=naming.CODE_LOCATION)
    with dg.DagsterInstance.get() as instance, ExitStack() as stack:
        with _children_write_to(home / CODE_SERVER_LOG):
            process = stack.enter_context(WorkspaceProcessContext(instance, target))
            workspace = process.create_request_context()
        error = workspace.get_code_location_error(naming.CODE_LOCATION)
        if error is not None:
            raise LocationNotLoaded(f"the code location could not load: {_last_line(error)}")
        yield Launcher(instance, workspace)


CODE_SERVER_LOG = "logs/cli_code_server.log"  # under DAGSTER_HOME


@contextmanager
def _children_write_to(log: Path) -> Iterator[None]:
    """Processes started inside inherit `log` as stdout and stderr: the code server, and through it
    each run worker and step process, whose console logs would otherwise bury the CLI's own output
    (the runs' events stay in the instance, where the UI and `follow` read them)."""

    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "ab") as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _last_line(error) -> str:
    """The innermost cause's message (a load error wraps the configuration's)."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()
