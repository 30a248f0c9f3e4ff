#!/usr/bin/env bash
# The deployment's three processes on one host: the code server (gRPC), the webserver and the
# daemon, on the Dagster instance in $DAGSTER_HOME (deploy/dagster.yaml: PostgreSQL storage, run
# queue, run monitoring, retries, S3 compute logs). README "Deploy".
#
#   scripts/deploy.sh start     start the three (each waits for the one before it to answer)
#   scripts/deploy.sh stop      stop them (TERM, then KILL after 30 s)
#   scripts/deploy.sh status    which are running
#
# Required: DAGSTER_HOME, SYNC_PLATFORM_CONFIG, and the variables of $DAGSTER_HOME/dagster.yaml
# (DAGSTER_PG_*, DAGSTER_COMPUTE_LOGS_*). Optional: SYNC_PLATFORM_CODE_HOST (127.0.0.1),
# SYNC_PLATFORM_CODE_PORT (4266), SYNC_PLATFORM_WEB_HOST (127.0.0.1), SYNC_PLATFORM_WEB_PORT (3000).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${SYNC_PLATFORM_BIN:-$ROOT/.venv/bin}"

fail() { echo "deploy: $*" >&2; exit 2; }
[ -n "${DAGSTER_HOME:-}" ] || fail "set DAGSTER_HOME to the instance's folder (it receives deploy/dagster.yaml)"
RUN="$DAGSTER_HOME/run"
LOGS="$DAGSTER_HOME/process-logs"  # (Dagster empties $DAGSTER_HOME/logs at start)
export SYNC_PLATFORM_CODE_HOST="${SYNC_PLATFORM_CODE_HOST:-127.0.0.1}"
export SYNC_PLATFORM_CODE_PORT="${SYNC_PLATFORM_CODE_PORT:-4266}"
WEB_HOST="${SYNC_PLATFORM_WEB_HOST:-127.0.0.1}"
WEB_PORT="${SYNC_PLATFORM_WEB_PORT:-3000}"
WORKSPACE="$ROOT/deploy/workspace.yaml"

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

launch() {  # name, command...: in its own session, logging to $LOGS/<name>.log
  local name="$1"; shift
  if running "$name"; then echo "$name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
  echo "$name started (pid $!, log $LOGS/$name.log)"
}

wait_until() {  # what, seconds, command...
  local what="$1" seconds="$2"; shift 2
  for _ in $(seq "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  fail "$what did not answer within ${seconds}s; see $LOGS"
}

start() {
  [ -n "${SYNC_PLATFORM_CONFIG:-}" ] || fail "set SYNC_PLATFORM_CONFIG to the tasks' YAML file (a deployment never falls back to the demo)"
  [ -f "$SYNC_PLATFORM_CONFIG" ] || fail "SYNC_PLATFORM_CONFIG=$SYNC_PLATFORM_CONFIG: no such file"
  mkdir -p "$DAGSTER_HOME" "$RUN" "$LOGS"
  if [ ! -f "$DAGSTER_HOME/dagster.yaml" ]; then
    cp "$ROOT/deploy/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
    echo "wrote $DAGSTER_HOME/dagster.yaml from deploy/dagster.yaml"
  fi
  "$BIN/sync-platform" validate "$SYNC_PLATFORM_CONFIG"  # exit 1 on any problem: nothing starts
  launch code-server "$BIN/dagster" code-server start -m sync_platform.defs.location \
    --location-name sync_platform -h "$SYNC_PLATFORM_CODE_HOST" -p "$SYNC_PLATFORM_CODE_PORT"
  wait_until "the code server" 120 "$BIN/dagster" api grpc-health-check \
    -h "$SYNC_PLATFORM_CODE_HOST" -p "$SYNC_PLATFORM_CODE_PORT"
  launch webserver "$BIN/dagster-webserver" -w "$WORKSPACE" -h "$WEB_HOST" -p "$WEB_PORT"
  launch daemon "$BIN/dagster-daemon" run -w "$WORKSPACE"
  wait_until "the webserver" 120 curl -sf "http://$WEB_HOST:$WEB_PORT/server_info"
  echo "UI: http://$WEB_HOST:$WEB_PORT"
}

stop_one() {
  local name="$1" pid
  running "$name" || { rm -f "$RUN/$name.pid"; return; }
  pid="$(cat "$RUN/$name.pid")"
  kill -TERM "$pid"  # the process only: a code server lets its run workers finish their runs
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
  rm -f "$RUN/$name.pid"
  echo "$name stopped"
}

case "${1:-}" in
  start) start ;;
  stop) for name in daemon webserver code-server; do stop_one "$name"; done ;;
  status)
    for name in code-server webserver daemon; do
      if running "$name"; then echo "$name running (pid $(cat "$RUN/$name.pid"))"; else echo "$name stopped"; fi
    done ;;
  *) fail "usage: scripts/deploy.sh start|stop|status" ;;
esac
