"""The one seam from a synced table to its Dagster specs (the role of dagster-sling's translator):
the source, export and imported-table AssetSpecs, the data_diff AssetCheckSpec and the partitions,
with their keys (from naming), groups, kinds (from the registries), descriptions and dependencies.
Both ways a table is executed (separate steps, or one step: assets.py) build from these."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from ..engine.diff import ALGORITHMS
from ..platform import TableSync
from . import naming


def partitions_def_for(table: TableSync) -> dg.TimeWindowPartitionsDefinition | None:
    """Daily or monthly partitions in the task's source_timezone, keyed YYYY-MM-DD (end exclusive)."""
    partition = table.partition
    if partition is None:
        return None
    kind = dg.DailyPartitionsDefinition if partition.granularity == "day" else dg.MonthlyPartitionsDefinition
    return kind(
        start_date=partition.start.isoformat(),
        end_date=partition.end.isoformat() if partition.end else None,
        timezone=table.run_config.source_timezone,
    )


@dataclass(frozen=True)
class Kinds:
    """What each end of a table is, as Dagster shows it: the databases' and the store's kinds."""

    source: str  # "postgresql", "mysql", "sqlite"
    store: str  # "file", "s3"
    target: str


@dataclass(frozen=True)
class TableSpecs:
    source: dg.AssetSpec  # external: observed (cleanup history), never materialized
    export: dg.AssetSpec
    imported: dg.AssetSpec
    check: dg.AssetCheckSpec  # data_diff on the imported table, blocking
    export_files: dg.AssetCheckSpec  # the export's state in the store: present / deleted / not-exist
    partitions: dg.TimeWindowPartitionsDefinition | None

    @property
    def check_key(self) -> dg.AssetCheckKey:
        return self.check.key


def check_description(table: TableSync) -> str:
    algorithm = table.run_config.algorithm
    return f"{algorithm}: {ALGORITHMS[algorithm].description} must match (ERROR = data inconsistent)."


def table_specs(table: TableSync, kinds: Kinds) -> TableSpecs:
    partitions = partitions_def_for(table)
    group = naming.group_name(table.task)
    source_key = naming.source_asset_key(table.task, table.source.table)
    export_key = naming.export_asset_key(table.task, table.source.table)
    imported_key = naming.imported_asset_key(table.task, table.target.table)
    fmt = table.run_config.batch_file_format
    return TableSpecs(
        source=dg.AssetSpec(
            key=source_key,
            group_name=group,
            kinds={kinds.source},
            partitions_def=partitions,
            description=f"Source table {table.source.datasource}.{table.source.table}; its cleanup history is in its "
                        "events.",
        ),
        export=dg.AssetSpec(
            key=export_key,
            deps=[source_key],
            group_name=group,
            kinds={kinds.store, fmt},
            partitions_def=partitions,
            description=f"Export files of {table.source.datasource}.{table.source.table} ({fmt}).",
        ),
        imported=dg.AssetSpec(
            key=imported_key,
            deps=[export_key],
            group_name=group,
            kinds={kinds.target},
            partitions_def=partitions,
            description=f"{table.target.datasource}.{table.target.table}, loaded atomically from the export files.",
        ),
        # Partitioned like the assets: "Execute" on the check asks for a partition, and each
        # partition's result is its own (the Checks tab and the Partitions tab show which failed).
        check=dg.AssetCheckSpec(
            naming.DATA_DIFF_CHECK,
            asset=imported_key,
            blocking=True,
            description=check_description(table),
            partitions_def=partitions,
        ),
        export_files=dg.AssetCheckSpec(
            naming.EXPORT_FILES_CHECK, asset=export_key, partitions_def=partitions,
            description="The export's files in the store: present (a manifest and every file it lists), deleted "
                        "(by clean_exports), not-exist or incomplete. WARN when they are not there: the import of "
                        "that partition is refused until it is exported again.",
        ),
        partitions=partitions,
    )
