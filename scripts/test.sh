#!/usr/bin/env bash
# Runs Braid's whole test suite: format and vet checks, then every package's
# tests with the race detector, including the end-to-end tests against real
# PostgreSQL. It makes the services the tests need reachable first: if
# PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) is down it starts the
# local one, and if it cannot, it stops with a message saying how. It never
# skips tests.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh ./routes/  # just some packages (services still checked)
set -euo pipefail
cd "$(dirname "$0")/.."

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_HOST=127.0.0.1 REDIS_PORT=6379

say() { printf 'test.sh: %s\n' "$*" >&2; }

wait_for() { # wait_for NAME CHECK-COMMAND...
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  say "$name did not come up"; return 1
}

ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_isready -h "$PG_HOST" -p "$PG_PORT" -q; then return 0; fi
  say "PostgreSQL is not reachable on $PG_HOST:$PG_PORT; starting the local cluster"
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    wait_for PostgreSQL pg_isready -h "$PG_HOST" -p "$PG_PORT" -q && return 0
  fi
  say "cannot start PostgreSQL. Install and start it (Debian: apt-get install postgresql;"
  say "pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start), with trust auth"
  say "for user postgres and a database named test, or set BRAID_TEST_DATABASE_URL."
  exit 1
}

ensure_redis() {
  if command -v redis-cli >/dev/null && redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then return 0; fi
  say "Redis is not reachable on $REDIS_HOST:$REDIS_PORT; starting a local redis-server"
  if command -v redis-server >/dev/null; then
    mkdir -p /tmp/braid-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir /tmp/braid-redis --logfile /tmp/braid-redis/redis.log || true
    wait_for Redis sh -c "redis-cli -h $REDIS_HOST -p $REDIS_PORT ping | grep -q PONG" && return 0
  fi
  say "cannot start Redis. Install and start it (Debian: apt-get install redis-server;"
  say "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '')."
  exit 1
}

ensure_postgres
ensure_redis

say "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then say "gofmt would change:"; echo "$unformatted" >&2; exit 1; fi

say "go vet ./..."
go vet ./...

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
say "go test -race -count=1 ${pkgs[*]}"
go test -race -count=1 -timeout 15m "${pkgs[@]}"
