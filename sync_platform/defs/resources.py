"""The Dagster resource that hands assets a Platform built from the configuration file."""


from functools import cached_property

from dagster import ConfigurableResource

from ..platform import Platform


class SyncPlatformResource(ConfigurableResource):
    """Loads the sync configuration (path given at definition time) in the run's process."""

    config_path: str

    @cached_property
    def platform(self) -> Platform:
        return Platform.from_file(self.config_path)
