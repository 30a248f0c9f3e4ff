#!/usr/bin/env bash
# Sets up and runs the whole test suite on a fresh Debian machine with Python 3.11:
#   1. Debian packages the tests need (PostgreSQL, MariaDB, Chromium for the UI tests, curl)
#   2. the virtualenv .venv with the project and its test extras
#   3. the real servers (scripts/test_servers.sh: PostgreSQL, MariaDB, S3 endpoint), stopped on exit
#   4. ruff (lint), then pytest with any arguments given to this script
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
id postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
command -v mariadbd >/dev/null || missing+=(mariadb-server)
command -v mariadb >/dev/null || missing+=(mariadb-client)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bash scripts/setup.sh test
.venv/bin/ruff check .  # lint first: a failure costs seconds, not a server start

bash scripts/test_servers.sh up
trap 'bash scripts/test_servers.sh down' EXIT
eval "$(bash scripts/test_servers.sh env)"

.venv/bin/python -m pytest "$@"
