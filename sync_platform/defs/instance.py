"""The Dagster instance the CLI and the UI share: $DAGSTER_HOME, by default
$SYNC_PLATFORM_HOME/dagster_home (~/.sync_platform/dagster_home), and the workspace that names the
code location the same way everywhere (naming.CODE_LOCATION)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..config import platform_home
from . import naming

LOCATION_MODULE = "sync_platform.defs.location"  # the code location's module: its `defs`
PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[2] / "dagster.yaml"
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


def workspace_file(home: Path) -> Path:
    """A workspace.yaml in DAGSTER_HOME loading the code location under its one name."""
    path = home / "workspace.yaml"
    path.write_text(f"load_from:\n  - python_module:\n      module_name: {LOCATION_MODULE}\n"
                    f"      location_name: {naming.CODE_LOCATION}\n")
    return path
