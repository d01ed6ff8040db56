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
# It also fails when go.mod/go.sum are not tidy (go mod tidy -diff shows
# what would change). After the tests it fuzzes briefly, without the race
# detector: every fuzz target (each `func FuzzX` in a _test.go file, found
# by grep, so new ones join by themselves) of the packages asked for, or of
# all packages for ./..., one `go test -fuzz` at a time (Go fuzzes one
# target per package per run). Each gets -fuzztime 10s, or less when there
# are so many targets that the total would exceed BRAID_FUZZ_BUDGET seconds
# (default 60; 0 skips fuzzing); each run also builds an instrumented test
# binary first. Fuzzing starts from the seed corpora committed under each
# package's testdata/fuzz/<FuzzX>/; an input that fails is written there
# and the script stops.
#
#   bash scripts/test.sh              # everything
#   bash scripts/test.sh ./routes/    # just some packages and their fuzz targets
#                                     # (services still checked; Jaeger is built
#                                     # only when e2e tests run)
#   BRAID_FUZZ_BUDGET=0 bash scripts/test.sh   # no fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_HOST=127.0.0.1 REDIS_PORT=6379
FUZZ_BUDGET=${BRAID_FUZZ_BUDGET:-60} FUZZ_MAX_EACH=10

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

check_tidy() {
  say "go mod tidy -diff"
  local diff
  if ! diff=$(go mod tidy -diff 2>&1); then
    say "go.mod/go.sum are not tidy: run go mod tidy and commit the result. It would change:"
    printf '%s\n' "$diff" >&2
    exit 1
  fi
}

# asked DIR: whether the package in DIR (e.g. ./aggregate) is among pkgs.
asked() {
  local dir=${1#./} p
  for p in "${pkgs[@]}"; do
    p=${p#./}; p=${p%/}
    case $p in
      ...) return 0 ;;
      */...) [[ $dir == "${p%/...}" || $dir == "${p%/...}"/* ]] && return 0 ;;
      *) [[ $dir == "$p" ]] && return 0 ;;
    esac
  done
  return 1
}

# fuzz_targets prints "DIR NAME" for each fuzz target of the packages asked
# for, in a stable order.
fuzz_targets() {
  local file
  grep -rlE --include='*_test.go' --exclude-dir=testdata --exclude-dir=tools '^func Fuzz[A-Za-z0-9_]*\(' . | sort |
    while read -r file; do
      asked "$(dirname "$file")" || continue
      grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | sed "s|^func |$(dirname "$file") |"
    done
}

run_fuzz() {
  local targets t each dir name
  mapfile -t targets < <(fuzz_targets)
  [ ${#targets[@]} -gt 0 ] || return 0
  if [ "$FUZZ_BUDGET" -le 0 ]; then say "fuzzing skipped (BRAID_FUZZ_BUDGET=0)"; return 0; fi
  each=$((FUZZ_BUDGET / ${#targets[@]}))
  each=$((each > FUZZ_MAX_EACH ? FUZZ_MAX_EACH : each < 1 ? 1 : each))
  say "fuzzing ${#targets[@]} targets, ${each}s each"
  for t in "${targets[@]}"; do
    read -r dir name <<<"$t"
    say "go test -run '^\$' -fuzz '^$name\$' -fuzztime ${each}s $dir/"
    fuzz_one "$dir" "$name" "$each"
  done
}

# fuzz_one fuzzes one target. Go 1.26's fuzz coordinator can fail a target
# with a bare "context deadline exceeded" at the end of -fuzztime when a
# worker is slow to stop (go.dev/issue/75804, fixed in Go 1.27): no input
# failed and none is written. That one outcome passes, after the target's
# corpus is replayed to make sure nothing reproducible was found; any other
# failure fails the run.
fuzz_one() {
  local dir=$1 name=$2 each=$3 out before after
  before=$({ ls "$dir/testdata/fuzz/$name" 2>/dev/null || true; } | wc -l)
  if out=$(go test -run '^$' -fuzz "^$name\$" -fuzztime "${each}s" "$dir/" 2>&1); then
    echo "$out"; return 0
  fi
  echo "$out"
  after=$({ ls "$dir/testdata/fuzz/$name" 2>/dev/null || true; } | wc -l)
  if [ "$before" = "$after" ] && echo "$out" | grep -q '^    context deadline exceeded$' &&
    ! echo "$out" | grep -qE 'panic:|Failing input|failure while testing seed corpus'; then
    say "$name: the fuzz coordinator's shutdown race (go.dev/issue/75804), no failing input; replaying the corpus"
    go test -run "^$name\$" "$dir/" || { say "$name: the corpus fails"; exit 1; }
    return 0
  fi
  exit 1
}

ensure_postgres
ensure_redis

check_gofmt() { # every Go file of the work tree, tracked or new, that exists
  say "gofmt"
  local files unformatted
  files=$( { git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go'; } |
    while read -r f; do [ -f "$f" ] && echo "$f"; done)
  unformatted=$(echo "$files" | xargs -r gofmt -l)
  if [ -n "$unformatted" ]; then say "gofmt would change:"; echo "$unformatted" >&2; exit 1; fi
}

check_gofmt

say "go vet ./..."
go vet ./...

check_tidy

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
case " ${pkgs[*]} " in *e2e*|*" ./... "*) ensure_jaeger ;; esac
say "go test -race -count=1 ${pkgs[*]}"
go test -race -count=1 -timeout 15m "${pkgs[@]}"

run_fuzz
