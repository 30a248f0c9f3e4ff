#!/usr/bin/env bash
# Installs the project into .venv and runs the demo: seeds a SQLite source under
# ~/.sync_platform (or $SYNC_PLATFORM_HOME), syncs it through Dagster, prints a summary.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
exec "$ROOT/.venv/bin/sync-platform" demo "$@"
