#!/usr/bin/env bash
# Runs Braid's whole test suite: format and vet checks, then every package's
# tests with the race detector, including the end-to-end tests against real
# PostgreSQL. It makes the services the tests need reachable first: if
# PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) is down it starts the
# local one, and if it cannot, it stops with a message saying how. It never
# skips tests.
#
# The e2e tests run a real Jaeger, built from the Go module proxy at the
# version pinned in tools/go.mod (its own module, so Jaeger's dependencies
# never enter Braid's go.mod). The binary is cached outside the repo, in
# ${XDG_CACHE_HOME:-$HOME/.cache}/braid/jaeger-<version>, and reused by later
# runs on the same machine: the first build takes several minutes on two
# cores, later runs none. BRAID_JAEGER_BIN, if set, names a binary to use
# instead; the script exports it for the tests.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh ./routes/  # just some packages (services still checked;
#                                   # Jaeger is built only when e2e tests run)
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

ensure_jaeger() {
  if [ -n "${BRAID_JAEGER_BIN:-}" ]; then
    [ -x "$BRAID_JAEGER_BIN" ] && { say "Jaeger: $BRAID_JAEGER_BIN (BRAID_JAEGER_BIN)"; return 0; }
    say "BRAID_JAEGER_BIN=$BRAID_JAEGER_BIN is not an executable file"; exit 1
  fi
  local version cache bin
  version=$(go -C tools list -m -f '{{.Version}}' github.com/jaegertracing/jaeger)
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/braid
  bin=$cache/jaeger-$version
  if [ -x "$bin" ]; then
    say "Jaeger $version: $bin (cached)"
  else
    say "building Jaeger $version from the Go module proxy (tools/go.mod) into $bin;"
    say "the first build takes several minutes, later runs reuse it"
    mkdir -p "$cache"
    local start=$SECONDS
    (cd tools && go build -o "$bin.partial.$$" github.com/jaegertracing/jaeger/cmd/jaeger) || {
      rm -f "$bin.partial.$$"; say "building Jaeger failed"; exit 1; }
    mv "$bin.partial.$$" "$bin"
    say "built Jaeger in $((SECONDS - start))s"
  fi
  export BRAID_JAEGER_BIN=$bin
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
case " ${pkgs[*]} " in *e2e*|*" ./... "*) ensure_jaeger ;; esac
say "go test -race -count=1 ${pkgs[*]}"
go test -race -count=1 -timeout 15m "${pkgs[@]}"
