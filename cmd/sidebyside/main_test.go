package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The driver starts the fake upstreams by running its own binary
	// again; under test that binary is this one.
	if os.Getenv(roleEnv) == roleUpstreams {
		os.Exit(runUpstreams(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// TestCompare runs very short comparisons end to end, with real processes,
// and checks by counting: both sides answered only 200s, every upstream
// call was made, the report has every row. It asserts nothing about speed.
func TestCompare(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gateway, err := build(ctx, dir, "gateway", "github.com/braidgw/braid/cmd/gateway")
	if err != nil {
		t.Fatal(err)
	}
	baseline, err := build(ctx, dir, "baseline", "github.com/braidgw/braid/cmd/baseline")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string // besides one round of 200 ms at c=2
		sides     []string
		callsPer  float64
		wantSpans bool
		requests  int // per side and round when not 0: -rate × -duration
	}{
		{"dashboard with the repository's gateway.yaml, traced at 100%", []string{"-trace", "100", "-rounds", "2"},
			[]string{"baseline", "braid", "braid+trace100%"}, 4, true, 0},
		{"generated fan-out 5, Braid on net/http", []string{"-fanout", "5", "-braid-transport", "net/http"}, []string{"baseline", "braid"}, 5, false, 0},
		{"batch of 150 keys", []string{"-scenario", "batch", "-keys", "150"}, []string{"baseline", "braid"}, 3, false, 0}, // orders + 2 chunks
		{"open loop at 100 requests/s", []string{"-rate", "100"}, []string{"baseline", "braid"}, 4, false, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-gateway-bin", gateway, "-baseline-bin", baseline,
				"-duration", "200ms", "-warmup", "50ms", "-rounds", "1", "-concurrency", "2"}, tt.args...)
			cfg, err := parseFlags(args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var progress bytes.Buffer
			rep, err := compare(ctx, cfg, &progress)
			if err != nil {
				t.Fatalf("%v\nprogress:\n%s", err, progress.String())
			}
			if len(rep.rows) != len(tt.sides) {
				t.Fatalf("%d rows, want %d: %+v", len(rep.rows), len(tt.sides), rep.rows)
			}
			for i, r := range rep.rows {
				if r.Side != tt.sides[i] || r.Concurrency != 2 || r.Rounds != cfg.rounds {
					t.Errorf("row %d is %s c=%d rounds=%d, want %s c=2 rounds=%d", i, r.Side, r.Concurrency, r.Rounds, tt.sides[i], cfg.rounds)
				}
				if r.OK == 0 || r.NonOK != 0 || r.OK != r.Requests {
					t.Errorf("%s: %d of %d requests answered 200, failures %s (%s)", r.Side, r.OK, r.Requests, r.failures(), r.FirstError)
				}
				// CPU is read in clock ticks (10 ms): the open-loop case's 20
				// requests can cost a side less than one, and read 0; the
				// closed-loop cases serve hundreds and must read some.
				cpuRead := r.GatewayCPU > 0 || tt.requests > 0 && r.GatewayCPU == 0
				if !(r.OKPerSec > 0 && r.P50 > 0 && r.P99 >= r.P50 && cpuRead && r.UpstreamCPU >= 0) {
					t.Errorf("%s: numbers not sane: %+v", r.Side, r)
				}
				if tt.requests > 0 && r.Requests != tt.requests*cfg.rounds {
					t.Errorf("%s: %d requests, want %d (the schedule's)", r.Side, r.Requests, tt.requests*cfg.rounds)
				}
				if r.CallsPerReq != tt.callsPer {
					t.Errorf("%s: %.3f upstream calls per request, want %v", r.Side, r.CallsPerReq, tt.callsPer)
				}
			}
			var out bytes.Buffer
			rep.write(&out)
			for _, s := range tt.sides[1:] {
				if !strings.Contains(out.String(), "| 2 | "+s+" / baseline | ") {
					t.Errorf("report has no ratio row for %s:\n%s", s, out.String())
				}
			}
			if spans := rep.sink != nil && rep.sink.requests.Load() > 0; spans != tt.wantSpans {
				t.Errorf("spans exported: %v, want %v", spans, tt.wantSpans)
			}
		})
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stopped before anything was started: no child is left behind
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-gateway-bin", "/nonexistent/gateway", "-baseline-bin", "/nonexistent/baseline"}, &stdout, &stderr); code != 1 {
		t.Errorf("run = %d, want 1; stderr:\n%s", code, stderr.String())
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope"}, {"-fanout", "0"}, {"-keys", "1001"}, {"-concurrency", "0"},
		{"-concurrency", "a"}, {"-rounds", "0"}, {"-duration", "0s"}, {"-trace", "0"}, {"-trace", "101"}, {"-braid-transport", "fast"}, {"-rate", "-1"}, {"-rate", "NaN"}, {"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("parseFlags(%q) = %v, want errUsage", args, err)
		}
	}
	c, err := parseFlags([]string{"-concurrency", "1, 32,256", "-trace", "1,100", "-rate", "2500"}, io.Discard)
	if err != nil || len(c.concurrency) != 3 || c.concurrency[2] != 256 || len(c.trace) != 2 || c.trace[0] != 1 || c.rate != 2500 {
		t.Errorf("parseFlags = %+v, %v", c, err)
	}
}

// TestDriveOpenLoop: at a rate, the schedule's requests are sent (the
// window's 100 at 200/s over 500 ms), never more than the workers at once.
func TestDriveOpenLoop(t *testing.T) {
	var inFlight, peak, total atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		total.Add(1)
		time.Sleep(time.Millisecond) // a little work, so that requests overlap
	}))
	defer srv.Close()
	client := newClient(3)
	defer client.CloseIdleConnections()
	l := load{path: func(id int) string { return "/u/" + strconv.Itoa(id) }, concurrency: 3, rate: 200}
	var next atomic.Int64
	start := time.Now()
	workers := drive(context.Background(), client, srv.URL, l, &next, start, start.Add(500*time.Millisecond))
	sent, ok := 0, 0
	for _, w := range workers {
		sent += w.requests
		ok += w.ok
	}
	if sent != 100 || ok != 100 || total.Load() != 100 {
		t.Errorf("sent %d, %d answered 200, the server saw %d; want the schedule's 100", sent, ok, total.Load())
	}
	if peak.Load() > 3 {
		t.Errorf("%d requests in flight at once, more than the 3 workers", peak.Load())
	}
}

func TestFanoutConfigNamesMatchTheBaseline(t *testing.T) {
	got := string(fanoutConfig(9))
	for _, want := range []string{
		`- {name: user, upstream: users, path: "/users/{id}"}`,
		`- {name: orders_2, upstream: orders, path: "/users/{id}/orders", query: {limit: "5"}}`,
		`- {name: notifications_2, upstream: notifications, path: "/users/{id}/notifications", query: {unread: "true"}, optional: true}`,
		`- {name: user_3, upstream: users, path: "/users/{id}"}`,
		`users: {url: "${USERS_URL}", transport: "${BRAID_UPSTREAM_TRANSPORT:-auto}"}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("generated config lacks %s:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "- {name: "); n != 9 {
		t.Errorf("%d calls, want 9", n)
	}
}

func TestCPUTicksOfThisProcess(t *testing.T) {
	n, err := cpuTicks(os.Getpid())
	if err != nil || n < 0 {
		t.Fatalf("cpuTicks = %d, %v", n, err)
	}
	if _, err := cpuTicks(-1); err == nil {
		t.Error("cpuTicks(-1) succeeded")
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{50: 50, 99: 99, 100: 100, 1: 1} {
		if got := percentile(d, p); got != want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", p, got, want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}
