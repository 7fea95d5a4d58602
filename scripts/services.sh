#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1, starting the local servers if they do not.
# Exits non-zero when either cannot be reached: the tests that need them must fail, never skip.
set -uo pipefail
PGHOST=${PGHOST:-127.0.0.1}; PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}

pg_up() { pg_isready -h "$PGHOST" -p "$PGPORT" -q 2>/dev/null; }
redis_up() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]; }

if ! pg_up; then
  echo "PostgreSQL is not answering on $PGHOST:$PGPORT; starting it" >&2
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up; then
  echo "Redis is not answering on 127.0.0.1:$REDIS_PORT; starting it" >&2
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
ok=0
pg_up || { echo "FATAL: PostgreSQL cannot be reached on $PGHOST:$PGPORT" >&2; ok=1; }
redis_up || { echo "FATAL: Redis cannot be reached on 127.0.0.1:$REDIS_PORT" >&2; ok=1; }
exit $ok
