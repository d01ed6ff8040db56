#!/usr/bin/env bash
# soak.sh: run the gateway on the demo services under a fixed load for a
# long time while the demo's faults change every 30s, sample the gateway's
# goroutines, resident memory and open descriptors every 10s, and fail if
# they grow. Not part of CI: a soak takes 10 minutes by default.
#
#   scripts/soak.sh              # 10 minutes
#   scripts/soak.sh -d 60s       # a quick look
#   scripts/soak.sh -d 10m -r 60 -o /tmp/soak
#
# Flags:
#   -d DURATION  how long the measured load runs: 60s, 10m, ... (default 10m,
#                at least 60s)
#   -r RATE      dashboard requests per second (default 40); orders-with-products
#                gets a quarter of it
#   -w DURATION  load without faults before the measured run, so that pools are
#                warm when the first minute is sampled (default 30s)
#   -i DURATION  wait with no load after it before the idle check (default 100s:
#                longer than the upstreams' 90s idle_timeout)
#   -o DIR       where the CSV and logs go (default a new directory under $TMPDIR)
#
# Everything runs on loopback, on free ports: the demo binary (in-memory
# data), the gateway on the repo's gateway.yaml (its cache on, on Redis at
# $REDIS_URL if one answers, under a prefix of its own) and cmd/loadgen at a
# fixed open-loop rate. Every 30s the faults are cleared and the next entry
# of FAULTS is set: latency, errors, a service down, connection resets and
# the hostile modes (a body cut short, reset mid-body, too large, endless,
# dripping, not JSON), on required and optional calls in turn. The last
# minute replays the first minute's faults, so the two minutes compare like
# with like.
#
# Every 10s (at 5s, 15s, ...) it appends a row to samples.csv: seconds
# since the load began, the gateway's goroutines (/debug/pprof/goroutine on
# its admin listener), VmRSS and open descriptors (/proc/PID), its heap in
# use (/metrics), the machine's 1-minute load average and CPU and IO
# pressure (/proc/pressure, "some" avg10, to tell a busy machine from a
# slow gateway) and the fault in force. At the end it compares the last
# minute's averages with the first minute's and exits 1 if any exceeds
# 1.5 × the first + slack (goroutines 100, RSS 64 MiB, descriptors 32);
# if, once idle connections have expired, the gateway has more than 50
# goroutines or 20 descriptors over what it had before the load; or if it
# did not exit 0 on SIGTERM. summary.md holds the table.
set -euo pipefail

duration=600
rate=40
warmup=30
idlewait=100
out=""

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; exit 2; }

# seconds parses 90, 90s, 10m or 1h as seconds.
seconds() {
	case $1 in
	*h) echo $((${1%h} * 3600)) ;;
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}

while getopts "d:r:w:i:o:h" opt; do
	case $opt in
	d) duration=$(seconds "$OPTARG") ;;
	r) rate=$OPTARG ;;
	w) warmup=$(seconds "$OPTARG") ;;
	i) idlewait=$(seconds "$OPTARG") ;;
	o) out=$OPTARG ;;
	*) usage ;;
	esac
done
if ! [[ $duration =~ ^[0-9]+$ ]] || ((duration < 60)); then
	echo "soak: -d must be a duration of at least 60s, got $duration" >&2
	exit 2
fi
duration=$(((duration + 29) / 30 * 30)) # whole fault periods

# FAULTS are "service faults-json" pairs, one per 30s period, cycled. The
# first two are replayed in the last minute.
FAULTS=(
	'- -'
	'recommendations {"hostile":"endless"}'
	'users {"latency":"300ms"}'
	'orders {"error_rate":0.5}'
	'products {"reset":true}'
	'notifications {"hostile":"drip"}'
	'users {"hostile":"truncate"}'
	'orders {"hostile":"reset_mid_body"}'
	'recommendations {"hostile":"huge"}'
	'products {"hostile":"garbage"}'
	'notifications {"down":true}'
	'users {"error_rate":0.2,"error_status":503}'
	'orders {"hostile":"huge"}'
	'products {"hostile":"endless"}'
	'users {"hostile":"drip"}'
	'recommendations {"hostile":"reset_mid_body"}'
	'notifications {"hostile":"garbage"}'
	'products {"hostile":"truncate"}'
)
SERVICES=(users orders products notifications recommendations)

root=$(cd "$(dirname "$0")/.." && pwd)
out=${out:-${TMPDIR:-/tmp}/braid-soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/bin"
echo "soak: $((duration / 60))m$((duration % 60))s at $rate dashboards/s; output in $out"

(cd "$root" && go build -o "$out/bin/" ./cmd/gateway ./cmd/demo ./cmd/loadgen)

pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
trap cleanup EXIT

# await FILE REGEX: the first capture group of the first line of FILE that
# matches REGEX, waiting up to 60s for it.
await() {
	local m
	for _ in $(seq 600); do
		if m=$(sed -nE "s#$2#\\1#p" "$1" | head -1) && [[ -n $m ]]; then
			echo "$m"
			return
		fi
		sleep 0.1
	done
	echo "soak: no line matching $2 in $1 within 60s:" >&2
	cat "$1" >&2
	return 1
}

demo_args=()
for s in "${SERVICES[@]}"; do
	demo_args+=("-$s-addr" 127.0.0.1:0)
done
env -u DATABASE_URL "$out/bin/demo" "${demo_args[@]}" >"$out/demo.out" 2>"$out/demo.log" &
pids+=($!)
declare -A url
gw_env=()
for s in "${SERVICES[@]}"; do
	url[$s]=$(await "$out/demo.out" "^$s +(http://[^ ]+).*")
	gw_env+=("${s^^}_URL=${url[$s]}")
done

env "${gw_env[@]}" BRAID_CACHE_PREFIX="braid-soak-$$:" \
	"$out/bin/gateway" -config "$root/gateway.yaml" -listen 127.0.0.1:0 -admin 127.0.0.1:0 \
	>"$out/gateway.out" 2>"$out/gateway.log" &
gw_pid=$!
pids+=("$gw_pid")
gateway=$(await "$out/gateway.out" '^braid: serving on (http://[^ ]+) .*')
admin=$(await "$out/gateway.out" '.*\(admin (http://[^;]+);.*')
echo "soak: gateway pid $gw_pid at $gateway, admin $admin"

# setfault PERIOD: clear every service's faults, then set the period's.
setfault() {
	local i=$(($1 % ${#FAULTS[@]})) periods=$((duration / 30))
	if (($1 >= periods - 2)); then
		i=$(($1 - (periods - 2))) # the last minute replays the first
	fi
	read -r svc faults <<<"${FAULTS[$i]}"
	for s in "${SERVICES[@]}"; do
		curl -fsS -o /dev/null -X POST "${url[$s]}/_demo/reset"
	done
	if [[ $svc != - ]]; then
		curl -fsS -o /dev/null -X PUT -d "$faults" "${url[$svc]}/_demo/faults"
		fault="$svc $faults"
	else
		fault="none"
	fi
	printf '%4ds %s\n' "$(($1 * 30))" "$fault" >>"$out/faults.log"
}

# pressure RESOURCE: the "some avg10" of /proc/pressure/RESOURCE, or "".
pressure() {
	[[ -r /proc/pressure/$1 ]] && sed -n 's/^some avg10=\([0-9.]*\).*/\1/p' "/proc/pressure/$1"
}

# sample ELAPSED: append one CSV row.
sample() {
	local gor rss fds heap load
	gor=$(curl -fsS --max-time 5 "$admin/debug/pprof/goroutine?debug=1" | sed -n 's/^goroutine profile: total //p') || gor=""
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$gw_pid/status")
	fds=$(find "/proc/$gw_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
	heap=$(curl -fsS --max-time 5 "$admin/metrics" | awk '/^go_memstats_heap_inuse_bytes / {printf "%d", $2}') || heap=""
	read -r load _ </proc/loadavg
	echo "$1,$gor,$rss,$fds,$heap,$load,$(pressure cpu),$(pressure io),\"${fault//\"/\"\"}\"" | tee -a "$out/samples.csv" >&2
}

# idle: "goroutines RSS-KiB descriptors" of the gateway.
idle() {
	local gor rss fds
	gor=$(curl -fsS "$admin/debug/pprof/goroutine?debug=1" | sed -n 's/^goroutine profile: total //p')
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$gw_pid/status")
	fds=$(find "/proc/$gw_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
	echo "$gor $rss $fds"
}

# describe "goroutines RSS-KiB descriptors"
describe() {
	read -r g r f <<<"$1"
	echo "$g goroutines, $((r / 1024)) MiB RSS, $f descriptors"
}

echo "elapsed_s,goroutines,rss_kib,fds,heap_inuse_bytes,load1,cpu_pressure,io_pressure,fault" >"$out/samples.csv"
before=$(idle)
echo "soak: idle before the load: $(describe "$before")"

lg=("$out/bin/loadgen" -gateway "$gateway" -warmup "${warmup}s" -duration "${duration}s" -timeout 5s -concurrency 1024)
"${lg[@]}" -scenario dashboard -rate "$rate" >"$out/loadgen-dashboard.txt" 2>&1 &
lg1=$!
pids+=("$lg1")
"${lg[@]}" -scenario owp-batch -rate "$(awk -v r="$rate" 'BEGIN {print r / 4}')" >"$out/loadgen-owp.txt" 2>&1 &
lg2=$!
pids+=("$lg2")

echo "soak: ${warmup}s of warm-up without faults"
fault="none"
start=$(awk -v now="$(date +%s.%N)" -v w="$warmup" 'BEGIN {printf "%.3f", now + w}')
for ((tick = 0; tick < duration; tick += 5)); do
	# sleep until start + tick, so that the schedule does not drift
	delay=$(awk -v s="$start" -v t="$tick" -v now="$(date +%s.%N)" 'BEGIN {d = s + t - now; print (d > 0 ? d : 0)}')
	sleep "$delay"
	if ((tick % 30 == 0)); then
		setfault $((tick / 30))
	fi
	if ((tick % 10 == 5)); then
		sample "$tick"
	fi
done
for s in "${SERVICES[@]}"; do
	curl -fsS -o /dev/null -X POST "${url[$s]}/_demo/reset"
done
wait "$lg1" "$lg2" || true # loadgen exits 1 when over 1% of requests failed: expected here
echo "soak: waiting ${idlewait}s with no load"
sleep "$idlewait"
after=$(idle)
echo "soak: idle ${idlewait}s after the load: $(describe "$after")"

kill -TERM "$gw_pid"
gw_exit=0
wait "$gw_pid" || gw_exit=$?

# judge: first minute against last minute, per metric.
status=0
{
	echo "Soak: $((duration / 60)) min (after ${warmup}s of warm-up) at $rate dashboards/s + $(awk -v r="$rate" 'BEGIN {print r / 4}') orders-with-products/s, faults switching every 30s; $(nproc) CPUs."
	echo
	echo "| metric | first minute (avg) | last minute (avg) | max | limit | |"
	echo "|---|---:|---:|---:|---:|---|"
	awk -F, -v d="$duration" '
		NR == 1 { next }
		{
			t = $1
			for (c = 2; c <= 4; c++) {
				if ($c > max[c]) max[c] = $c
				if (t < 60) { first[c] += $c; nf[c]++ }
				if (t >= d - 60) { last[c] += $c; nl[c]++ }
			}
		}
		END {
			split("goroutines,RSS (MiB),open descriptors", name, ",")
			split("100,65536,32", slack, ",")
			bad = 0
			for (c = 2; c <= 4; c++) {
				f = first[c] / nf[c]; l = last[c] / nl[c]; m = max[c]; lim = 1.5 * f + slack[c - 1]
				ok = l <= lim ? "ok" : "GREW"
				if (l > lim) bad = 1
				div = c == 3 ? 1024 : 1
				printf "| %s | %.0f | %.0f | %.0f | %.0f | %s |\n", name[c - 1], f / div, l / div, m / div, lim / div, ok
			}
			exit bad
		}' "$out/samples.csv" || status=1
	echo
	read -r g0 _ f0 <<<"$before"
	read -r g1 _ f1 <<<"$after"
	verdict="ok"
	if ((g1 > g0 + 50 || f1 > f0 + 20)); then
		verdict="GREW (limit +50 goroutines, +20 descriptors)"
		echo 1 >"$out/idle-grew"
	fi
	echo "Idle before the load: $(describe "$before"); ${idlewait}s after it: $(describe "$after"): $verdict."
	echo "Gateway exit status on SIGTERM: $gw_exit."
	# Answers later than the route's timeout (2s dashboard, 3s
	# orders-with-products) by over 500ms, from the access log: the gateway
	# or the machine stalled. Reported, not judged.
	awk -F'duration_ms=' '/msg=request / && NF > 1 {
			split($2, a, " "); d = a[1] + 0; n++
			limit = index($0, "orders-with-products") ? 3500 : 2500
			if (d > limit) late++
			if (d > worst) worst = d
		}
		END { printf "Answers over the route timeout + 500ms: %d of %d (slowest %.0f ms).\n", late, n, worst }' "$out/gateway.log"
	awk -F, 'NR > 1 { if ($6 > l) l = $6; if ($7 > c) c = $7; if ($8 > io) io = $8 }
		END { printf "Machine during the run: load average up to %s, CPU pressure up to %s%%, IO pressure up to %s%%.\n", l, c, io }' "$out/samples.csv"
	echo
	echo '```'
	cat "$out/loadgen-dashboard.txt" "$out/loadgen-owp.txt" | grep -E '^ *(scenario|dashboard|owp-batch) | × ' || true
	echo '```'
} >"$out/summary.md"
[[ ! -e $out/idle-grew ]] || status=1
((gw_exit == 0)) || status=1
cat "$out/summary.md"
if ((status != 0)); then
	echo "soak: FAILED (see $out)" >&2
else
	echo "soak: ok ($out)"
fi
exit "$status"
