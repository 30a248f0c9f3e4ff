#!/usr/bin/env bash
# Creates .venv with the project installed (extras as arguments, e.g. `test`). Shared by demo.sh
# and test.sh. On Debian, python3 -m venv needs the python3-venv package: installed if missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    rm -rf .venv
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
extras="$(IFS=,; echo "$*")"
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
