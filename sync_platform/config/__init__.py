"""The operators' YAML configuration: models and loader."""

import os
from pathlib import Path

from .loader import ConfigError, load_config, platform_home
from .models import RunConfig, SyncConfig, TableToTableTask

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "demo" / "sync.yaml"


def default_config_path() -> Path:
    """$SYNC_PLATFORM_CONFIG, else the demo configuration shipped with the package."""
    return Path(os.environ.get("SYNC_PLATFORM_CONFIG") or DEMO_CONFIG)


__all__ = [
    "ConfigError", "DEMO_CONFIG", "RunConfig", "SyncConfig", "TableToTableTask",
    "default_config_path", "load_config", "platform_home",
]
