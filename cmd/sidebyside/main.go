// Command sidebyside measures Braid against the aggregator anyone could
// write in an afternoon (cmd/baseline), with the same load, on the same
// fake upstreams, in alternating rounds:
//
//	go run ./cmd/sidebyside                           # dashboard, 4 calls, c=1 and c=32
//	go run ./cmd/sidebyside -fanout 16 -concurrency 1,32,256
//	go run ./cmd/sidebyside -scenario batch -keys 1000
//	go run ./cmd/sidebyside -trace 1,100              # also Braid tracing 1 % and 100 %
//	go run ./cmd/sidebyside -braid-transport net/http # Braid on Go's http.Transport, like the baseline
//	go run ./cmd/sidebyside -rate 2500 -concurrency 32 -trace 1,100  # every side at 2500 requests/s
//
// It builds cmd/gateway and cmd/baseline (or takes -gateway-bin and
// -baseline-bin), then starts, each as its own process on loopback:
//
//   - the fake upstreams: this binary again, serving static JSON close in
//     size to the demo services' (users, orders, notifications,
//     recommendations; products by id for the batch scenario), so that
//     their CPU is counted against neither side;
//   - the baseline;
//   - Braid: the real gateway binary with the repository's gateway.yaml
//     (or, for -fanout other than 4, a generated one like it), its
//     upstream URLs pointed at the fake upstreams and BRAID_CACHE_DISABLED=true
//     so that every request reaches them. Tracing is off (no
//     OTEL_EXPORTER_OTLP_ENDPOINT) unless -trace adds Braid processes that
//     sample that percentage of requests and export to a sink in the
//     driver that answers 200 to POST /v1/traces.
//
// It checks that every side answers the same JSON document, then drives
// the sides in turn with a closed-loop load: for each -concurrency c, c
// workers each send a request and wait for its answer, -warmup unrecorded
// then -duration measured. With -rate r the load is open loop instead:
// every side is sent r requests per second on a fixed schedule, at most c
// in flight, so that CPU per request is compared at the same load (the
// steadier measure on a shared machine; throughput is then r for every
// side that keeps up, and latency counts from when a request was due); -rounds rounds alternate the order of the sides
// (baseline first, then Braid first, …) so that drift of the shared
// machine cancels out. For each side it prints throughput (200s per
// second), p50/p99 latency of the 200s, the side's CPU per request
// (utime+stime from /proc/PID/stat over the window, in clock ticks of
// getconf CLK_TCK, or 100 if getconf fails), the fake upstreams' CPU per
// request and upstream calls per request (counted by the fake upstreams),
// and each Braid row's ratios to the baseline. Only 200 answers count;
// the others are listed.
//
// The driver, the load workers and all the processes share the machine's
// cores. SIGINT or SIGTERM stops the run; every child is stopped when the
// driver returns, and killed by the kernel if the driver dies. The exit
// status is 0 after a run (failed requests are reported, not fatal), 1
// when the run could not be made, 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// baselineName is the baseline's side name.
const baselineName = "baseline"

func main() {
	if os.Getenv(roleEnv) == roleUpstreams {
		os.Exit(runUpstreams(os.Args[1:], os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config is a validated command line.
type config struct {
	scenario    string // dashboard or batch
	fanout      int
	keys        int
	concurrency []int
	rate        float64 // open loop at this many requests per second; 0: closed loop
	rounds      int
	warmup      time.Duration
	duration    time.Duration
	trace       []float64 // sampling percentages of the traced Braid sides
	gatewayBin  string
	baselineBin string
	gatewayConf string
	transport   string // BRAID_UPSTREAM_TRANSPORT for Braid, "" for the configuration's default
	keep        bool
}

var errUsage = errors.New("invalid flags")

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("sidebyside", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.scenario, "scenario", "dashboard", "dashboard (parallel calls) or batch (orders, then their products by id)")
	fs.IntVar(&c.fanout, "fanout", 4, "dashboard: calls per request, the dashboard's four repeated (1 to 64)")
	fs.IntVar(&c.keys, "keys", 100, "batch: distinct product ids per request (1 to 1000)")
	conc := fs.String("concurrency", "1,32", "comma-separated numbers of closed-loop workers (with -rate: of requests in flight at most)")
	fs.Float64Var(&c.rate, "rate", 0, "open loop: send each side this many requests per second on a fixed schedule, so that every side's CPU per request is measured at the same load (0: closed loop)")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds per concurrency, alternating which side goes first")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unrecorded warm-up before each measured window")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured window per side, concurrency and round")
	trace := fs.String("trace", "", "comma-separated sampling percentages: one more Braid side per value, tracing to a local sink (e.g. 1,100)")
	fs.StringVar(&c.gatewayBin, "gateway-bin", "", "gateway binary (default: go build ./cmd/gateway)")
	fs.StringVar(&c.baselineBin, "baseline-bin", "", "baseline binary (default: go build ./cmd/baseline)")
	fs.StringVar(&c.gatewayConf, "config", "", "Braid's configuration (default: the repository's gateway.yaml, or a generated one for -fanout other than 4)")
	fs.StringVar(&c.transport, "braid-transport", "", "Braid's upstream transport, as BRAID_UPSTREAM_TRANSPORT: auto, lean or net/http (default: the configuration's, auto)")
	fs.BoolVar(&c.keep, "keep", false, "keep the working directory (binaries, configuration, process logs)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.concurrency, err = parseList(*conc, strconv.Atoi); err != nil {
		return c, fmt.Errorf("%w: -concurrency: %v", errUsage, err)
	}
	if c.trace, err = parseList(*trace, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
		return c, fmt.Errorf("%w: -trace: %v", errUsage, err)
	}
	return c, c.validate(fs.NArg())
}

func (c config) validate(args int) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
	}
	switch {
	case args > 0:
		return bad("unexpected arguments")
	case c.scenario != "dashboard" && c.scenario != "batch":
		return bad("-scenario must be dashboard or batch, got %q", c.scenario)
	case c.fanout < 1 || c.fanout > 64:
		return bad("-fanout must be from 1 to 64, got %d", c.fanout)
	case c.keys < 1 || c.keys > 1000:
		return bad("-keys must be from 1 to 1000 (Braid's default max_keys), got %d", c.keys)
	case c.transport != "" && c.transport != "auto" && c.transport != "lean" && c.transport != "net/http":
		return bad("-braid-transport must be auto, lean or net/http, got %q", c.transport)
	case len(c.concurrency) == 0:
		return bad("-concurrency is empty")
	case c.rounds < 1:
		return bad("-rounds must be positive, got %d", c.rounds)
	case c.warmup < 0 || c.duration <= 0:
		return bad("-warmup must not be negative and -duration must be positive")
	case !(c.rate >= 0 && c.rate <= 1e6):
		return bad("-rate must be from 0 (closed loop) to 1000000 requests per second, got %v", c.rate)
	}
	for _, n := range c.concurrency {
		if n < 1 || n > 4096 {
			return bad("-concurrency values must be from 1 to 4096, got %d", n)
		}
	}
	for _, p := range c.trace {
		if !(p > 0 && p <= 100) {
			return bad("-trace values must be percentages in (0, 100], got %v", p)
		}
	}
	return nil
}

// parseList parses a comma-separated list; "" is an empty list.
func parseList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := parse(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// run parses args, runs the comparison and prints the report on stdout,
// progress on stderr. It returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "sidebyside: %v\n", err)
		return 2
	}
	rep, err := compare(ctx, cfg, stderr)
	if rep != nil {
		rep.write(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sidebyside: %v\n", err)
		return 1
	}
	return 0
}
