"""Every Dagster name derives from here: asset keys, groups, checks, steps, jobs, schedules,
sensors, op names of the operation jobs, and the run tags the platform sets or reads.

Layout, for task `orders_copy` copying `orders` into `dw_orders` (schemas are left out of keys):
    source asset     orders_copy/orders__source      (the source table; cleanup history)
    export asset     orders_copy/orders__export      (the files in the store)
    imported asset   orders_copy/dw_orders           (the target table)
    check            data_diff on the imported asset, export_files on the export asset
The UI's lineage sidebar and graph show a key's last part, so the three assets of a table read
`orders__source`, `orders__export`, `dw_orders`: each part names the table and, but for the target,
what it is. The first part of every key is the task.
    job              orders_copy_sync
    group            orders_copy
    schedule         orders_copy_schedule    (schedule: {cron: ...})
    sensor           orders_copy_immediate   (schedule: immediate)
    sensor           orders_copy_archive     (cleanup: {source_after_verify: true})
    op jobs          clean_source, clean_exports, test_s3_connection  (one each, for every task)
"""

from __future__ import annotations

import re

from dagster import AssetCheckKey, AssetKey

DATA_DIFF_CHECK = "data_diff"
EXPORT_FILES_CHECK = "export_files"  # present / deleted / not-exist, on the export asset
CLEAN_SOURCE_JOB = "clean_source"
CLEAN_EXPORTS_JOB = "clean_exports"
TEST_S3_JOB = "test_s3_connection"
# The operation jobs' one op each: their run config is {"ops": {<op>: {"config": {...}}}}.
CLEAN_SOURCE_OP, CLEAN_EXPORTS_OP, TEST_S3_OP = "delete_source_rows", "delete_export_files", "s3_round_trip"
RESOURCE_KEY = "sync"
CODE_LOCATION = "sync_platform"  # the code location's name, in every workspace the platform starts

# Run tags: ours, and Dagster's that we read or set.
TASK_TAG = "sync_platform/task"  # on every run of a task (defs/coordinator.py); several tasks: comma-joined
CONFIG_HASH_TAG = "sync_platform/config_hash"  # task:hash of each task the run ran, added when a step starts
VIA_TAG = "sync_platform/via"  # "cli" on runs the CLI launches
USER_TAG = "user"  # who launched the run; the CLI sets it, the UI's launchpad can (else: the OS user)
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
SCHEDULED_TIME_TAG = "dagster/scheduled_execution_time"
PARENT_RUN_TAG = "dagster/parent_run_id"
PROGRESS_TAG_PREFIX = "sync_platform/progress/"  # + target table [+ /partition]: the latest Progress, as JSON


def progress_tag(target_table: str, partition_key: str | None = None) -> str:
    """The run tag holding a table's (partition's) live progress; tag keys take [A-Za-z0-9_.-/]."""
    name = f"{target_table}/{partition_key}" if partition_key else target_table
    return PROGRESS_TAG_PREFIX + re.sub(r"[^A-Za-z0-9_./-]", "_", name)


def valid_name(task: str) -> bool:
    """Whether a task's name can name Dagster objects (letters, digits, _)."""
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", task) is not None


def key_part(table: str) -> str:
    """A table's name (without its schema: a task reads one schema) made safe for an asset key."""
    return re.sub(r"[^A-Za-z0-9_]", "_", table.rpartition(".")[2])


def group_name(task: str) -> str:
    return task


SOURCE_SUFFIX, EXPORT_SUFFIX = "__source", "__export"


def source_asset_key(task: str, source_table: str) -> AssetKey:
    return AssetKey([task, key_part(source_table) + SOURCE_SUFFIX])


def export_asset_key(task: str, source_table: str) -> AssetKey:
    return AssetKey([task, key_part(source_table) + EXPORT_SUFFIX])


def task_of(key: AssetKey) -> str:
    """The task an asset key of the platform belongs to (its first part)."""
    return key.path[0]


def imported_asset_key(task: str, target_table: str) -> AssetKey:
    return AssetKey([task, key_part(target_table)])


def step_name(key: AssetKey) -> str:
    """The step (op) that materializes one asset: its key's parts joined by '__'."""
    return "__".join(key.path)


def check_step_name(check: AssetCheckKey) -> str:
    return f"{check.asset_key.to_python_identifier()}_{check.name}"


def table_step_name(task: str, target_table: str) -> str:
    """The one step that exports, imports and checks a table (assets.build_table_step)."""
    return f"{task}__{key_part(target_table)}__sync"


def job_name(task: str) -> str:
    return f"{task}_sync"


def schedule_name(task: str) -> str:
    return f"{task}_schedule"


def immediate_sensor_name(task: str) -> str:
    return f"{task}_immediate"


def archive_sensor_name(task: str) -> str:
    return f"{task}_archive"


def instigator_names(task) -> list[str]:
    """The schedule and sensors a task (config model) gets."""
    names = []
    if task.schedule == "immediate":
        names.append(immediate_sensor_name(task.name))
    elif task.schedule is not None:
        names.append(schedule_name(task.name))
    if task.cleanup and task.cleanup.source_after_verify:
        names.append(archive_sensor_name(task.name))
    return names
