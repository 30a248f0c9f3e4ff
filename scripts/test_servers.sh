#!/usr/bin/env bash
# Starts (or stops) the real servers the test suite needs, on private ports and data dirs:
#   PostgreSQL 15 (Debian package; a private cluster run as the `postgres` user)
#   MariaDB (Debian mariadb-server; a private datadir run as the `mysql` user, time zone tables loaded)
#   an S3 endpoint speaking real S3 HTTP (moto's server)
# Usage: scripts/test_servers.sh up|down|env
#   up    starts both and writes their URLs and test credentials to $STATE_DIR/env
#   env   prints that file: eval "$(scripts/test_servers.sh env)" before running pytest yourself
#   down  stops the processes this script started (by PID) and removes the state dir
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# Outside the checkout: the postgres user must be able to reach its data dir wherever we are cloned.
STATE_DIR="${SYNC_TEST_STATE_DIR:-/tmp/sync-platform-test-servers}"
PG_PORT="${SYNC_TEST_PG_PORT:-55432}"
S3_PORT="${SYNC_TEST_S3_PORT:-55433}"
MY_PORT="${SYNC_TEST_MYSQL_PORT:-55434}"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

mariadb_running() {
  [ -f "$STATE_DIR/mariadb/mariadb.pid" ] && kill -0 "$(cat "$STATE_DIR/mariadb/mariadb.pid")" 2>/dev/null
}

mariadb_up() {
  # Socket, pid and log live in the datadir: the server runs as mysql, which owns only that.
  local datadir="$STATE_DIR/mariadb" sock="$STATE_DIR/mariadb/mariadb.sock"
  if [ ! -d "$datadir/mysql" ]; then
    mkdir -p "$datadir"; chown mysql:mysql "$datadir"
    mariadb-install-db --no-defaults --user=mysql --datadir="$datadir" --auth-root-authentication-method=socket \
      --skip-test-db >"$STATE_DIR/mariadb-install.log" 2>&1
  fi
  if ! mariadb_running; then
    # fsync and binary log off: a throwaway test server. local_infile: LOAD DATA LOCAL INFILE.
    setsid mariadbd --no-defaults --user=mysql --datadir="$datadir" --port="$MY_PORT" --bind-address=127.0.0.1 \
      --socket="$sock" --pid-file="$datadir/mariadb.pid" --log-error="$datadir/mariadb.log" \
      --local-infile=1 --skip-log-bin --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
      --innodb-buffer-pool-size=512M --max-connections=300 --character-set-server=utf8mb4 \
      --collation-server=utf8mb4_bin >/dev/null 2>&1 &
    for _ in $(seq 150); do
      mariadb --no-defaults -S "$sock" -u root -e "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2
    done
    mariadb --no-defaults -S "$sock" -u root -e "SELECT 1" >/dev/null
  fi
  if [ ! -f "$STATE_DIR/mariadb.ready" ]; then
    # Named time zones (source_timezone) need the zone tables.
    mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null | mariadb --no-defaults -S "$sock" -u root mysql
    mariadb --no-defaults -S "$sock" -u root -e "CREATE USER IF NOT EXISTS 'sync'@'%' IDENTIFIED BY 'sync-test';
      GRANT ALL ON *.* TO 'sync'@'%' WITH GRANT OPTION;"
    touch "$STATE_DIR/mariadb.ready"
  fi
}

moto_running() {  # our moto, not a stale PID reused by another process
  [ -f "$STATE_DIR/moto.pid" ] && grep -q moto_server "/proc/$(cat "$STATE_DIR/moto.pid")/cmdline" 2>/dev/null
}

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
      -o "-p $PG_PORT -k $pgdata -c listen_addresses=127.0.0.1 -c fsync=off -c jit=off -c max_connections=200" start >/dev/null
  fi
  mariadb_up
  # moto's server: real S3 over HTTP on loopback, with authentication on, so that wrong
  # credentials fail as they would on AWS. Its first INITIAL_NO_AUTH_ACTION_COUNT requests are
  # unauthenticated: exactly the IAM calls below that create the test users and their keys.
  if ! moto_running; then
    rm -f "$STATE_DIR/s3.env"
    INITIAL_NO_AUTH_ACTION_COUNT=5 setsid "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" \
      >"$STATE_DIR/moto.log" 2>&1 &
    echo $! >"$STATE_DIR/moto.pid"
    for _ in $(seq 100); do
      curl -sf -o /dev/null "http://127.0.0.1:$S3_PORT/moto-api/data.json" && break; sleep 0.2
    done
  fi
  [ -f "$STATE_DIR/s3.env" ] || "$PY" - "$S3_PORT" >"$STATE_DIR/s3.env" <<'PY'
import json, sys, boto3
iam = boto3.client("iam", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
iam.create_user(UserName="sync-tests")                                    # 1
key = iam.create_access_key(UserName="sync-tests")["AccessKey"]          # 2
iam.put_user_policy(UserName="sync-tests", PolicyName="s3", PolicyDocument=json.dumps(policy))  # 3
iam.create_user(UserName="no-permissions")                               # 4
denied = iam.create_access_key(UserName="no-permissions")["AccessKey"]   # 5
print(f"export SYNC_TEST_S3_KEY_ID={key['AccessKeyId']}")
print(f"export SYNC_TEST_S3_SECRET={key['SecretAccessKey']}")
print(f"export SYNC_TEST_S3_DENIED_KEY_ID={denied['AccessKeyId']}")
print(f"export SYNC_TEST_S3_DENIED_SECRET={denied['SecretAccessKey']}")
PY
  cat >"$STATE_DIR/env" <<ENV
export SYNC_TEST_PG_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres
export SYNC_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export SYNC_TEST_MYSQL_URL=mysql+pymysql://sync:sync-test@127.0.0.1:$MY_PORT/mysql
ENV
  cat "$STATE_DIR/s3.env" >>"$STATE_DIR/env"
  echo "servers up; source $STATE_DIR/env"
}

down() {
  if moto_running; then
    local pid; pid="$(cat "$STATE_DIR/moto.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if mariadb_running; then
    local pid; pid="$(cat "$STATE_DIR/mariadb/mariadb.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
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
