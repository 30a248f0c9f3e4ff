"""The Dagster resource that hands assets a Platform built from the configuration file."""

from functools import cached_property

from dagster import ConfigurableResource, InitResourceContext

from ..platform import Platform
from . import naming


class SyncPlatformResource(ConfigurableResource):
    """Loads the sync configuration (path given at definition time) in the run's process."""

    config_path: str

    @cached_property
    def platform(self) -> Platform:
        return Platform.from_file(self.config_path)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Record on the run which configuration of its tasks it ran (the audit reads it)."""
        run, instance = context.dagster_run, context.instance
        if run is None or instance is None or naming.CONFIG_HASH_TAG in run.tags:
            return
        tasks = [t for t in run.tags.get(naming.TASK_TAG, "").split(",") if t in self.platform.table_syncs]
        if tasks:
            hashes = ",".join(f"{t}:{self.platform.config.task(t).config_hash}" for t in tasks)
            instance.add_run_tags(run.run_id, {naming.CONFIG_HASH_TAG: hashes})
