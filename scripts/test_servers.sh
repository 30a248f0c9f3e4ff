#!/usr/bin/env bash
# Starts (or stops) the real servers the test suite needs, on private ports and data dirs:
#   PostgreSQL 15 (Debian package; a private cluster run as the `postgres` user)
#   an S3 endpoint speaking real S3 HTTP (moto's server)
# Usage: scripts/test_servers.sh up|down|env
#   up    starts both and writes their URLs to $STATE_DIR/env (source it before pytest)
#   down  stops the processes this script started (by PID) and removes the state dir
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE_DIR="${SYNC_TEST_STATE_DIR:-$ROOT/.test-servers}"
PG_PORT="${SYNC_TEST_PG_PORT:-55432}"
S3_PORT="${SYNC_TEST_S3_PORT:-55433}"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

up() {
  mkdir -p "$STATE_DIR"
  # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
  local pgdata="$STATE_DIR/pgdata"
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    mkdir -p "$pgdata"; chown postgres:postgres "$STATE_DIR" "$pgdata"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  chown postgres:postgres "$STATE_DIR"
  if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w \
      -o "-p $PG_PORT -k $pgdata -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  fi
  # moto's server: real S3 over HTTP on loopback.
  if ! { [ -f "$STATE_DIR/moto.pid" ] && kill -0 "$(cat "$STATE_DIR/moto.pid")" 2>/dev/null; }; then
    setsid "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$STATE_DIR/moto.log" 2>&1 &
    echo $! >"$STATE_DIR/moto.pid"
    for _ in $(seq 50); do
      curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break; sleep 0.2
    done
  fi
  cat >"$STATE_DIR/env" <<ENV
export SYNC_TEST_PG_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres
export SYNC_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
ENV
  echo "servers up; source $STATE_DIR/env"
}

down() {
  [ -f "$STATE_DIR/moto.pid" ] && kill "$(cat "$STATE_DIR/moto.pid")" 2>/dev/null || true
  if [ -f "$STATE_DIR/pgdata/PG_VERSION" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$STATE_DIR/pgdata" -m fast stop >/dev/null 2>&1 || true
  fi
  rm -rf "$STATE_DIR"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) cat "$STATE_DIR/env" ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
