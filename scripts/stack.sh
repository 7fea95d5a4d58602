#!/usr/bin/env bash
# Run the docker-compose.yml stack directly on this machine (no Docker engine needed): migrate once, then
# gunicorn (web), a Celery worker, celery-beat and Flower, with the same commands as the compose services.
#
#   scripts/stack.sh [start]   migrate and start the processes, wait until they answer
#   scripts/stack.sh status    which processes run, and whether web, Flower and the worker answer
#   scripts/stack.sh stop      stop them (TERM, then KILL after 20 s)
#
# Configuration comes from the environment, like the compose services' (defaults in brackets):
#   DATABASE_URL       [postgres://postgres@127.0.0.1:5432/horizon]; the database is created if missing
#   CELERY_BROKER_URL  [redis://127.0.0.1:6379/0]
#   WEB_PORT [8000], FLOWER_PORT [5555], WORKER_POOL [threads], WORKER_CONCURRENCY [500], HORIZON_STACK_DIR [var/stack] (logs, pids)
# PostgreSQL and Redis themselves are not started here (scripts/services.sh starts the local ones).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
BIN=${VENV:-$REPO/.venv}/bin
[[ -x "$BIN/celery" ]] || BIN=$(dirname "$(command -v celery)")
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/horizon}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}
export HORIZON_DISPATCH=celery
WEB_PORT=${WEB_PORT:-8000}
FLOWER_PORT=${FLOWER_PORT:-5555}
DIR=${HORIZON_STACK_DIR:-$REPO/var/stack}
SERVICES=(web worker beat flower)
# The worker's node name: `celery inspect ping -d` and Flower show it; unique per stack directory's port.
NODE="horizon-stack-${WEB_PORT}@$(hostname)"

command_for() {
  case $1 in
    web) echo "$BIN/gunicorn horizon_project.wsgi:application --bind 127.0.0.1:$WEB_PORT --workers 2" ;;
    worker) echo "$BIN/celery -A horizon_project worker --loglevel=INFO -Q horizon,horizon.control -P ${WORKER_POOL:-threads} --concurrency=${WORKER_CONCURRENCY:-500} -E -n $NODE" ;;
    beat) echo "$BIN/celery -A horizon_project beat --loglevel=INFO --scheduler django_celery_beat.schedulers:DatabaseScheduler --pidfile=" ;;
    # Flower keeps its own /metrics: it stays out of the shared directory of ours.
    flower) echo "env -u PROMETHEUS_MULTIPROC_DIR $BIN/celery -A horizon_project flower --port=$FLOWER_PORT --address=127.0.0.1" ;;
  esac
}

pid_of() { [[ -f "$DIR/$1.pid" ]] && cat "$DIR/$1.pid"; }
alive() { local pid; pid=$(pid_of "$1") && [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; }

create_database() {
  # Only for PostgreSQL URLs; connects to the server's "postgres" database to create ours.
  "$BIN/python" - <<'EOF'
import os
import sys
from urllib.parse import unquote, urlparse

import psycopg
from psycopg import sql

url = urlparse(os.environ["DATABASE_URL"])
if url.scheme not in ("postgres", "postgresql"):
    sys.exit(0)
name = unquote(url.path.lstrip("/"))
params = {"host": url.hostname or "127.0.0.1", "port": url.port or 5432, "user": unquote(url.username or "postgres")}
if url.password:
    params["password"] = unquote(url.password)
with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **params) as conn:
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"created database {name}")
EOF
}

wait_for() {  # wait_for WHAT SECONDS COMMAND...
  local what=$1 seconds=$2
  shift 2
  for _ in $(seq 1 "$seconds"); do
    if "$@" >/dev/null 2>&1; then echo "  $what: ok"; return 0; fi
    sleep 1
  done
  echo "  $what: no answer after ${seconds} s (see $DIR/*.log)" >&2
  return 1
}

check() {
  local ok=0
  wait_for "web  http://127.0.0.1:$WEB_PORT/healthz" "${1:-1}" curl -fsS "http://127.0.0.1:$WEB_PORT/healthz" || ok=1
  wait_for "flower http://127.0.0.1:$FLOWER_PORT/healthcheck" "${1:-1}" curl -fsS "http://127.0.0.1:$FLOWER_PORT/healthcheck" || ok=1
  wait_for "worker $NODE (celery inspect ping)" "${1:-1}" "$BIN/celery" -A horizon_project inspect ping -d "$NODE" --timeout 2 || ok=1
  return $ok
}

start() {
  mkdir -p "$DIR"
  # /metrics (web) adds up what every process recorded (docs/operations.md): one shared
  # directory, emptied at each start so that counts begin at zero with the stack.
  export PROMETHEUS_MULTIPROC_DIR="$DIR/prometheus"
  rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  for name in "${SERVICES[@]}"; do
    if alive "$name"; then echo "$name already runs (pid $(pid_of "$name")); run '$0 stop' first" >&2; exit 1; fi
  done
  echo "database: ${DATABASE_URL%%@*}@...  broker: $CELERY_BROKER_URL  logs: $DIR"
  create_database
  "$BIN/python" manage.py migrate --noinput >"$DIR/migrate.log" 2>&1 || { cat "$DIR/migrate.log" >&2; exit 1; }
  echo "  migrate: ok"
  # The admin's CSS and JS: gunicorn serves them from STATIC_ROOT through WhiteNoise.
  "$BIN/python" manage.py collectstatic --noinput --verbosity 0 >"$DIR/collectstatic.log" 2>&1 \
    || { cat "$DIR/collectstatic.log" >&2; exit 1; }
  echo "  collectstatic: ok"
  for name in "${SERVICES[@]}"; do
    # setsid: each process leads its own group, so stop reaches its children (gunicorn's and the
    # worker's pool) even if the leader died first. No job control here, so the pid stays the same.
    # shellcheck disable=SC2046
    setsid $(command_for "$name") >"$DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/$name.pid"
    echo "  $name: started (pid $!)"
  done
  if check 60; then
    echo "the stack runs: web http://127.0.0.1:$WEB_PORT/admin/  flower http://127.0.0.1:$FLOWER_PORT/"
  else
    echo "some processes do not answer; '$0 stop' stops the others" >&2
    exit 1
  fi
}

stop() {
  for name in "${SERVICES[@]}"; do
    local pid
    pid=$(pid_of "$name") || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "  $name (pid $pid) ignored TERM for 20 s: KILL" >&2
        kill -KILL -- "-$pid" 2>/dev/null || true
      fi
      echo "  $name: stopped (pid $pid)"
    fi
    rm -f "$DIR/$name.pid"
  done
}

status() {
  for name in "${SERVICES[@]}"; do
    if alive "$name"; then echo "  $name: running (pid $(pid_of "$name"))"; else echo "  $name: not running"; fi
  done
  check 1
}

case ${1:-start} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
