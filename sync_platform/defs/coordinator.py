"""Run coordinators that tag every run with the task it belongs to before it is launched or queued,
whoever submits it: the task's job, the asset page's Materialize, a check executed alone, a
backfill, a schedule, a sensor, the CLI. Dagster runs launched from the asset page belong to the
implicit asset job and carry none of a job's tags; submitting is the one step they all go through.
So filters by `sync_platform/task` find every run of a task, and the queue's tag concurrency limits
apply to all of them (the tag is there before the run is dequeued).

Configured in dagster.yaml (`run_coordinator: {module: sync_platform.defs.coordinator, class: ...}`):
`TaskTaggingRunCoordinator` launches at once (the embedded default), `QueuedTaskTaggingRunCoordinator`
queues under the daemon with QueuedRunCoordinator's settings (the deployment).
"""

from __future__ import annotations

from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.run_coordinator.sync_in_memory_run_coordinator import SyncInMemoryRunCoordinator
from dagster._core.storage.dagster_run import DagsterRun

from . import naming

_OPERATION_OPS = (naming.CLEAN_SOURCE_OP, naming.CLEAN_EXPORTS_OP)


def tasks_of(run: DagsterRun) -> set[str]:
    """The tasks a run works on: its selected assets' and checks' tasks, or an operation's task."""
    keys = [*(run.asset_selection or ()), *(check.asset_key for check in run.asset_check_selection or ())]
    tasks = {naming.task_of(key) for key in keys}
    for op in _OPERATION_OPS:
        task = ((run.run_config or {}).get("ops", {}).get(op, {}).get("config") or {}).get("task")
        if isinstance(task, str):
            tasks.add(task)
    return tasks


def task_tags(run: DagsterRun) -> dict[str, str]:
    """The tag to add: none if the run has it already (a task's job) or belongs to no task."""
    if naming.TASK_TAG in run.tags:
        return {}
    tasks = tasks_of(run)
    return {naming.TASK_TAG: ",".join(sorted(tasks))} if tasks else {}


class _TagsTasks:
    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        tags = task_tags(context.dagster_run)
        if tags:
            self._instance.add_run_tags(context.dagster_run.run_id, tags)
            context = SubmitRunContext(self._instance.get_run_by_id(context.dagster_run.run_id), context.workspace)
        return super().submit_run(context)


class TaskTaggingRunCoordinator(_TagsTasks, SyncInMemoryRunCoordinator):
    """Dagster's default coordinator (launch at once), tagging each run with its task."""


class QueuedTaskTaggingRunCoordinator(_TagsTasks, QueuedRunCoordinator):
    """Dagster's QueuedRunCoordinator (same settings), tagging each run with its task first."""
