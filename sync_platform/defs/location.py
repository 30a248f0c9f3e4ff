"""The code location: one job per task (with its cron schedule or immediate sensor), and per synced
table a source asset, an export asset, an imported-table asset and a blocking data-diff check. A
task that is not valid is left out and replaced by a job of its name whose description lists its
problems (the others load and run), as is a whole-database task whose table list cannot be read;
only a file that cannot be read fails the load. Nothing here queries a database."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dagster as dg

from ..config import DEMO_CONFIG
from ..config.loader import BrokenTask
from ..config.models import DatabaseToDatabaseTask, TaskBase
from ..errors import SyncPlatformError
from ..platform import Platform
from . import naming
from .assets import (
    build_data_diff_check,
    build_export_asset,
    build_export_files_check,
    build_imported_asset,
    build_table_step,
)
from .automation import build_archive_sensor, build_immediate_sensor, build_schedule
from .launcher import launcher_elsewhere_of
from .operations import build_operation_jobs, table_names
from .resources import SyncPlatformResource
from .specs import Kinds, partitions_def_for, table_specs


def _job(task: TaskBase, description: str) -> dg.UnresolvedAssetJobDefinition:
    if isinstance(task, DatabaseToDatabaseTask):
        # One step per table, so the executor's limit is the number of tables in flight.
        executor = dg.multiprocess_executor.configured({"max_concurrent": task.run_config.batch_parallel_size})
    elif task.executor == "multiprocess":
        executor = dg.multiprocess_executor
    else:
        # One table's steps run one after the other: a process per step would only add its start-up,
        # and a step process outlives a killed run worker (it went on writing into a failed run).
        executor = dg.in_process_executor
    return dg.define_asset_job(
        naming.job_name(task.name),
        selection=dg.AssetSelection.groups(naming.group_name(task.name)).materializable(),
        description=description or None,
        executor_def=executor,
        tags={naming.TASK_TAG: task.name},
    )


def _table_list_warning(platform: Platform, task: TaskBase) -> str | None:
    discovered = platform.discovered.get(task.name)
    return discovered and platform.table_lists.stale_message(task, discovered)


def _broken_task_job(index: int, broken: BrokenTask) -> dg.JobDefinition:
    """What an operator finds where a broken task's job would be: a job whose description is the
    problem list (file, task, field, valid values), and whose one step fails saying it again."""
    name = naming.job_name(broken.name) if naming.valid_name(broken.name) else f"invalid_task_{index}"
    problems = "\n".join(f"- {p}" for p in broken.problems)

    @dg.op(name=f"{name}__invalid", description="The task is not valid: fix the configuration file")
    def invalid_task():
        raise dg.Failure(description=f"task {broken.name!r} is not valid, so it was left out:\n{problems}")

    @dg.job(name=name, description=f"INVALID TASK, left out of the code location:\n\n{problems}",
            tags={naming.TASK_TAG: broken.name})
    def placeholder():
        invalid_task()

    return placeholder


def build_definitions(config_path: str | Path, launcher_elsewhere: str | None = None) -> dg.Definitions:
    """`launcher_elsewhere`: the name of the instance's run launcher when it starts runs on other
    hosts (tasks whose store is a local folder are then left out)."""
    platform = Platform.from_file(config_path)
    config = platform.config
    assets, checks, jobs, schedules, sensors = [], [], [], [], []
    table_syncs = platform.table_syncs  # first: a task whose table list cannot be read joins the broken
    if launcher_elsewhere:
        platform.leave_out_one_host_stores(launcher_elsewhere)
    for index, broken in enumerate(platform.broken.values()):
        warnings.warn(f"task {broken.name!r} is not valid and was left out: {'; '.join(broken.problems)}", stacklevel=1)
        jobs.append(_broken_task_job(index, broken))
    for task, tables in table_syncs.items():
        for table in tables:
            specs = table_specs(table, Kinds(*platform.kinds(table)))
            assets.append(specs.source)
            if table.one_step:
                assets.append(build_table_step(table, specs))
            else:
                assets += [build_export_asset(table, specs), build_imported_asset(table, specs)]
                checks += [build_data_diff_check(table, specs), build_export_files_check(table, specs)]
        declared = config.task(task)
        stale = _table_list_warning(platform, declared)
        if stale:
            warnings.warn(stale, stacklevel=1)  # shown in the code server's log
        jobs.append(_job(declared, "\n\n".join(filter(None, [declared.description, stale and f"WARNING: {stale}"]))))
        partitions = partitions_def_for(tables[0])  # partitions are a table_to_table feature: one table
        if declared.schedule == "immediate":
            sensors.append(build_immediate_sensor(declared, partitions))
        elif declared.schedule is not None:
            schedules.append(build_schedule(declared, partitions))
        if declared.cleanup and declared.cleanup.source_after_verify:
            sensors.append(build_archive_sensor(declared, tables))
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[*jobs, *build_operation_jobs(list(platform.table_syncs), table_names(platform.all_table_syncs()),
                                           sorted(config.s3_configs))],
        schedules=schedules,
        sensors=sensors,
        resources={naming.RESOURCE_KEY: SyncPlatformResource(config_path=str(Path(config_path).resolve()))},
    )


class ConfigNotGiven(SyncPlatformError):
    """The code location was started without SYNC_PLATFORM_CONFIG."""


@dg.definitions
def defs() -> dg.Definitions:
    """What the code server loads (`dagster ... -m sync_platform.defs.location`): the file of
    $SYNC_PLATFORM_CONFIG. Never the demo's by default: a deployment whose variable got lost would
    otherwise show and schedule the demo's tasks. Built when Dagster loads the code location."""
    path = os.environ.get("SYNC_PLATFORM_CONFIG")
    if not path:
        raise ConfigNotGiven(
            "SYNC_PLATFORM_CONFIG is not set, so the code location does not know which tasks to load: set it to the "
            f"configuration file in the environment of the code server (for the demo's: {DEMO_CONFIG}). "
            "`sync-platform ui` and `sync-platform demo` set it themselves."
        )
    return build_definitions(path, _launcher_elsewhere())


def _launcher_elsewhere() -> str | None:
    """The instance's run launcher (only the launcher: no storage is reached) when it starts runs
    on other hosts than this code server's."""
    from dagster._core.instance.ref import InstanceRef

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return None  # no instance: runs execute in this process (tests, execute_in_process)
    return launcher_elsewhere_of(InstanceRef.from_dir(home).run_launcher)
