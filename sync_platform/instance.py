"""The Dagster instance the CLI and `dagster dev` share: $DAGSTER_HOME, by default
$SYNC_PLATFORM_HOME/dagster_home (~/.sync_platform/dagster_home)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .config import platform_home

PROJECT_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"
_MINIMAL_DAGSTER_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


def ensure_dagster_home() -> Path:
    """Default DAGSTER_HOME and give it the project's dagster.yaml if it has none."""
    home = Path(os.environ.get("DAGSTER_HOME") or platform_home() / "dagster_home").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    target = home / "dagster.yaml"
    if not target.exists():
        if PROJECT_DAGSTER_YAML.exists():
            shutil.copyfile(PROJECT_DAGSTER_YAML, target)
        else:
            target.write_text(_MINIMAL_DAGSTER_YAML)
    return home
