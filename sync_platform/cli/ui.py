"""`ui`: the Dagster UI (webserver, daemon and code server: `dagster dev`) on the instance the CLI uses."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..config import platform_home
from .render import out


def cmd_ui(args) -> int:
    from ..defs.instance import ensure_dagster_home, workspace_file
    from .config_commands import discover_missing_table_lists

    os.environ.setdefault("SYNC_PLATFORM_HOME", str(platform_home()))
    os.environ["SYNC_PLATFORM_CONFIG"] = str(Path(args.config).resolve())
    home = ensure_dagster_home()
    out(f"DAGSTER_HOME={home}; config {args.config}")
    discover_missing_table_lists(Path(args.config))
    # The dagster command installed beside this interpreter (a venv need not be on PATH).
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    command = [dagster, "dev", "-w", str(workspace_file(home)), "-h", args.host, "-p", str(args.port)]
    os.execvp(command[0], command)


def register(sub, config_option) -> None:
    ui = sub.add_parser("ui", help="start the Dagster UI on the same instance the CLI uses")
    config_option(ui)
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
