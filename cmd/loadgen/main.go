// Command loadgen is Braid's open-loop load generator. It measures what the
// gateway buys a client: the composite endpoints against the same calls a
// naive mobile client would make itself against the demo services.
//
// Start the demo services and the gateway, then run every scenario in turn
// and print a table:
//
//	go run ./cmd/demo &
//	go run ./cmd/gateway -listen 127.0.0.1:8080 &
//	go run ./cmd/loadgen -scenario all -rate 200 -duration 20s
//
// The scenarios are:
//
//	dashboard        GET gateway /api/users/{id}/dashboard (the gateway makes 4 calls in parallel)
//	dashboard-naive  the same 4 calls, made one after another by the client
//	owp-batch        GET gateway /api/users/{id}/orders-with-products (orders, then one batch call)
//	owp-naive        GET orders /users/{id}/orders, then GET /products/{id} per line item (N+1)
//
// The load is open loop: request i is sent at start + i/rate whatever the
// others are doing, and its latency is measured from that scheduled time,
// so a slow server cannot slow the schedule down and hide its own latency
// (coordinated omission). A request that would exceed -concurrency in
// flight is dropped and counted, not queued. In the naive scenarios one
// request is the whole sequence of calls. Requests due in the -warmup are
// sent but not recorded. Percentiles are exact nearest-rank percentiles of
// the successful requests' latencies.
//
// Only loopback targets (127.0.0.0/8, ::1, localhost) are allowed: any
// other target URL is refused with exit status 2, and the dialer refuses
// any address a name resolves to that is not loopback.
//
// The run stops by itself at most one -timeout after -warmup + -duration
// per scenario; SIGINT stops it early and prints what was measured. The
// exit status is 1 if more than 1% of the sent requests of any scenario
// errored, 2 for bad flags, 0 otherwise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// maxErrorRate is the error rate above which the exit status is 1.
const maxErrorRate = 0.01

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, runs the chosen scenarios one after another until done
// or ctx is cancelled, and prints their results. It returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 2
	}
	names := scenarioNames
	if cfg.scenario != "all" {
		names = []string{cfg.scenario}
	}
	c := newCaller(cfg.plan.concurrency, cfg.plan.timeout)
	defer c.close()
	p := cfg.plan
	fmt.Fprintf(stderr, "loadgen: rate %g/s, warmup %v, duration %v, users %v, concurrency %d, timeout %v\n",
		p.rate, p.warmup, p.duration, p.ids, p.concurrency, p.timeout)
	var results []result
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stderr, "loadgen: running %s\n", name)
		results = append(results, runScenario(ctx, p, newScenario(name, c, cfg.targets)))
	}
	return report(cfg, results, stdout, stderr)
}

// report prints results as a table or JSON lines, prints the errors, and
// returns the exit status: 1 if any scenario's error rate is over
// maxErrorRate.
func report(cfg config, results []result, stdout, stderr io.Writer) int {
	if cfg.json {
		if err := writeJSON(stdout, results); err != nil {
			fmt.Fprintf(stderr, "loadgen: %v\n", err)
			return 1
		}
	} else {
		fmt.Fprint(stdout, formatTable(results))
	}
	writeErrors(stderr, results)
	code := 0
	for _, r := range results {
		if r.errorRate() > maxErrorRate {
			fmt.Fprintf(stderr, "loadgen: %s: %.2f%% of requests errored (limit %.0f%%)\n",
				r.Scenario, 100*r.errorRate(), 100*maxErrorRate)
			code = 1
		}
	}
	return code
}
