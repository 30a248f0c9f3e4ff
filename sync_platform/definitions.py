"""The code location: one job per task (with its cron schedule or immediate sensor), and per synced
table an export asset, an imported-table asset and a blocking data-diff check. A configuration
error fails the load with its message."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from . import naming
from .assets import (
    build_data_diff_check,
    build_export_asset,
    build_imported_asset,
    build_single_run_partitions,
    partitions_def_for,
)
from .automation import build_immediate_sensor, build_schedule
from .config import default_config_path, load_config
from .config.models import LocalStoreConfig
from .engine.dialects import url_scheme
from .platform import Platform
from .resources import SyncPlatformResource


def build_definitions(config_path: str | Path) -> dg.Definitions:
    config = load_config(config_path)
    platform = Platform(config)
    assets, checks, jobs, schedules, sensors = [], [], [], [], []
    for task, tables in platform.table_syncs.items():
        for table in tables:
            store_kind = "file" if isinstance(config.s3_configs[table.store_id], LocalStoreConfig) else "s3"
            target_url = config.datasources[table.target.datasource].url.get_secret_value()
            target_kind = url_scheme(target_url)
            if table.partition and table.partition.backfill == "single_run":
                assets.append(build_single_run_partitions(table, store_kind, target_kind))
            else:
                assets += [build_export_asset(table, store_kind), build_imported_asset(table, target_kind)]
                checks.append(build_data_diff_check(table))
        jobs.append(
            dg.define_asset_job(
                naming.job_name(task),
                selection=dg.AssetSelection.groups(naming.group_name(task)),
                description=config.task(task).description or None,
            )
        )
        declared = config.task(task)
        partitions = partitions_def_for(tables[0])
        if declared.schedule == "immediate":
            sensors.append(build_immediate_sensor(declared, partitions))
        elif declared.schedule is not None:
            schedules.append(build_schedule(declared, partitions))
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={naming.RESOURCE_KEY: SyncPlatformResource(config_path=str(Path(config_path).resolve()))},
    )


defs = build_definitions(default_config_path())
