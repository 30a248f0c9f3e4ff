#!/usr/bin/env bash
# The image's entrypoint.
#   code-server   validate $SYNC_PLATFORM_CONFIG (exit 1 with every problem: the pod does not
#                 start serving a broken file), then serve the code location over gRPC on
#                 0.0.0.0:$SYNC_PLATFORM_CODE_PORT
#   anything else run as given: what Dagster's Helm chart and K8sRunLauncher pass (dagster api
#                 grpc ..., dagster code-server start ..., dagster api execute_run ...)
set -euo pipefail
case "${1:-code-server}" in
  code-server)
    [ -f "${SYNC_PLATFORM_CONFIG:-}" ] || {
      echo "entrypoint: SYNC_PLATFORM_CONFIG=${SYNC_PLATFORM_CONFIG:-} is not a file: mount the tasks' YAML there" >&2
      exit 2
    }
    sync-platform validate "$SYNC_PLATFORM_CONFIG"
    exec python -m dagster code-server start -m sync_platform.defs.location --location-name sync_platform \
      -h "${SYNC_PLATFORM_CODE_HOST:-0.0.0.0}" -p "${SYNC_PLATFORM_CODE_PORT:-3030}"
    ;;
  *) exec "$@" ;;
esac
