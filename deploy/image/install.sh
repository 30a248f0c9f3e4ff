#!/usr/bin/env bash
# The image's two build steps (deploy/Dockerfile), also run by the tests:
#   install.sh dependencies VENV   create VENV and install pyproject.toml's pinned dependencies
#                                  and dagster-k8s (from the package index)
#   install.sh project VENV        build this repository's wheel and install it into VENV without
#                                  dependencies and without the package index
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
step="${1:?usage: install.sh dependencies|project VENV}"
VENV="${2:?usage: install.sh dependencies|project VENV}"
PYTHON="${PYTHON:-python3}"

case "$step" in
  dependencies)
    "$PYTHON" -m venv "$VENV"
    # The same pins as pyproject.toml (read from it, not repeated here); dagster-k8s pairs with
    # dagster's version as the other libraries do.
    mapfile -t pins < <("$PYTHON" - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
deps = project["dependencies"]
print("\n".join(deps))
core = next(d for d in deps if d.startswith("dagster-postgres=="))
print("dagster-k8s==" + core.split("==")[1])
PY
    )
    "$VENV/bin/python" -m pip install -q "${pins[@]}" "setuptools>=70.1"  # setuptools: builds step 2's wheel
    ;;
  project)
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # Built from a copy (setuptools writes build/ beside the sources), with VENV's setuptools: no
    # build environment is downloaded.
    mkdir "$work/src"
    cp -r "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/sync_platform" "$work/src/"
    "$VENV/bin/python" -m pip wheel -q --no-deps --no-build-isolation --no-index -w "$work" "$work/src"
    "$VENV/bin/python" -m pip install -q --no-deps --no-index "$work"/sync_platform-*.whl
    "$VENV/bin/python" -c "import sync_platform.defs.location"  # the package is whole
    ;;
  *) echo "install.sh: unknown step '$step'; valid steps: dependencies, project" >&2; exit 2 ;;
esac
