package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// durations returns 1ms, 2ms, …, n ms.
func durations(n int) []time.Duration {
	d := make([]time.Duration, n)
	for i := range d {
		d[i] = time.Duration(i+1) * time.Millisecond
	}
	return d
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"p50 of 1..100", durations(100), 50, 50 * time.Millisecond},
		{"p95 of 1..100", durations(100), 95, 95 * time.Millisecond},
		{"p99 of 1..100", durations(100), 99, 99 * time.Millisecond},
		{"max of 1..100", durations(100), 100, 100 * time.Millisecond},
		{"p50 of 1..10", durations(10), 50, 5 * time.Millisecond},
		{"p95 of 1..10", durations(10), 95, 10 * time.Millisecond},
		{"p99 of 1..1000", durations(1000), 99, 990 * time.Millisecond},
		{"p50 of 1..3", durations(3), 50, 2 * time.Millisecond},
		{"p1 of 1..100", durations(100), 1, time.Millisecond},
		{"one sample", durations(1), 99, time.Millisecond},
		{"no samples", nil, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.samples, tt.p); got != tt.want {
				t.Errorf("percentile(%d samples, %v) = %v, want %v", len(tt.samples), tt.p, got, tt.want)
			}
		})
	}
}

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		url      string
		loopback bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://127.5.5.5:9101", true},
		{"http://[::1]:9102", true},
		{"http://localhost:9103", true},
		{"https://LOCALHOST", true},
		{"http://10.0.0.1:8080", false},
		{"http://192.168.1.1", false},
		{"http://example.com", false},
		{"http://8.8.8.8:53", false},
		{"http://[2001:db8::1]:80", false},
		{"http://localhost.example.com", false},
		{"http://127.0.0.1.nip.io", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := checkLoopback(tt.url)
			if tt.loopback && err != nil {
				t.Errorf("checkLoopback(%q) = %v, want nil", tt.url, err)
			}
			if !tt.loopback && !errors.Is(err, ErrNotLoopback) {
				t.Errorf("checkLoopback(%q) = %v, want ErrNotLoopback", tt.url, err)
			}
		})
	}
	for _, bad := range []string{"127.0.0.1:8080", "ftp://127.0.0.1", "http://[::1"} {
		if err := checkLoopback(bad); !errors.Is(err, errUsage) {
			t.Errorf("checkLoopback(%q) = %v, want errUsage", bad, err)
		}
	}
}

func TestLoopbackOnlyDialControl(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:80": true, "[::1]:80": true, "10.0.0.1:80": false, "93.184.216.34:443": false} {
		if err := loopbackOnly("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("loopbackOnly(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestParseIDRange(t *testing.T) {
	tests := []struct {
		in      string
		want    idRange
		wantErr bool
	}{
		{"1-300", idRange{1, 300}, false},
		{"7", idRange{7, 7}, false},
		{"5-5", idRange{5, 5}, false},
		{"", idRange{}, true},
		{"a-b", idRange{}, true},
		{"1-", idRange{}, true},
		{"-3", idRange{}, true},
		{"0-3", idRange{}, true},
		{"10-2", idRange{}, true},
		{"1-2-3", idRange{}, true},
		{"x", idRange{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseIDRange(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseIDRange(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errUsage) {
				t.Errorf("parseIDRange(%q) error %v does not wrap errUsage", tt.in, err)
			}
		})
	}
}

func TestIDRangeCycles(t *testing.T) {
	r := idRange{lo: 3, hi: 5}
	want := []int{3, 4, 5, 3, 4, 5, 3}
	for i, w := range want {
		if got := r.at(i); got != w {
			t.Errorf("at(%d) = %d, want %d", i, got, w)
		}
	}
	if got := (idRange{lo: 7, hi: 7}).at(12345); got != 7 {
		t.Errorf("fixed user at(12345) = %d, want 7", got)
	}
}

func TestPlanSchedule(t *testing.T) {
	tests := []struct {
		name            string
		p               plan
		total, measured int
		offset3         time.Duration
	}{
		{"100/s for 1s+10s", plan{rate: 100, warmup: time.Second, duration: 10 * time.Second}, 1100, 1000, 30 * time.Millisecond},
		{"200/s for 1s+15s", plan{rate: 200, warmup: time.Second, duration: 15 * time.Second}, 3200, 3000, 15 * time.Millisecond},
		{"3/s for 0+1s", plan{rate: 3, duration: time.Second}, 3, 3, time.Second},
		{"2.5/s for 0+1s", plan{rate: 2.5, duration: time.Second}, 3, 3, 1200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.total(); got != tt.total {
				t.Errorf("total() = %d, want %d", got, tt.total)
			}
			measured := 0
			for i := range tt.p.total() {
				if tt.p.measured(i) {
					measured++
				}
			}
			if measured != tt.measured {
				t.Errorf("measured %d requests, want %d", measured, tt.measured)
			}
			if got := tt.p.offset(3); got != tt.offset3 {
				t.Errorf("offset(3) = %v, want %v", got, tt.offset3)
			}
		})
	}
}

func TestFormatTable(t *testing.T) {
	calls := 11.5
	got := formatTable([]result{
		{Scenario: "owp-batch", Sent: 100, OK: 99, Errors: 1, Throughput: 9.9, P50: 1.5, P95: 2, P99: 3, Max: 4},
		{Scenario: "owp-naive", Sent: 100, OK: 100, Throughput: 10, P50: 10.25, P95: 20, P99: 30, Max: 40, CallsPerRequest: &calls},
	})
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want 3:\n%s", len(lines), got)
	}
	for _, l := range lines[1:] {
		if len(l) != len(lines[0]) {
			t.Errorf("row %q is %d wide, header %d: not aligned\n%s", l, len(l), len(lines[0]), got)
		}
	}
	for _, want := range []string{"p99 ms", "calls/req", "10.25", "11.50"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if f := strings.Fields(lines[1]); f[len(f)-1] != "-" {
		t.Errorf("owp-batch calls/req = %q, want -", f[len(f)-1])
	}
}

// runJSON runs the command with args plus -json and returns its exit
// status and decoded results.
func runJSON(t *testing.T, ctx context.Context, args ...string) (int, []result, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append(args, "-json"), &stdout, &stderr)
	var results []result
	dec := json.NewDecoder(&stdout)
	for {
		var r result
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode output: %v\nstdout: %s", err, stdout.String())
		}
		results = append(results, r)
	}
	return code, results, stderr.String()
}

func TestRunRefusesNonLoopbackTargets(t *testing.T) {
	for _, target := range []string{"-gateway=http://10.0.0.1:8080", "-products-url=http://example.com", "-users-url=http://8.8.8.8"} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), []string{target, "-duration=1s"}, &stdout, &stderr); code != 2 {
			t.Errorf("run(%s) = %d, want 2", target, code)
		}
		if !strings.Contains(stderr.String(), "not a loopback address") || stdout.Len() != 0 {
			t.Errorf("run(%s): stdout %q, stderr %q; want only a refusal on stderr", target, stdout.String(), stderr.String())
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope"}, {"-rate", "0"}, {"-duration", "0s"}, {"-users", "9-1"},
		{"-concurrency", "0"}, {"-user", "0"}, {"-timeout", "-1s"}, {"extra"},
	} {
		if code := run(t.Context(), args, io.Discard, io.Discard); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}

// fakeDemo stands in for the five demo services and the gateway, one
// httptest server each, and counts the requests every route pattern receives.
type fakeDemo struct {
	urls map[string]string // service name → base URL

	mu   sync.Mutex     // guards hits
	hits map[string]int // route pattern → requests served
}

// itemsPerUser is how many line items the fake orders service returns for
// any user: two orders of 3 and 2 items.
const itemsPerUser = 5

// newFakeDemo starts the servers; they are closed at test cleanup.
// fail makes every route answer 500 when true.
func newFakeDemo(t *testing.T, fail bool) *fakeDemo {
	t.Helper()
	d := &fakeDemo{urls: map[string]string{}, hits: map[string]int{}}
	routes := map[string]map[string]func(r *http.Request) any{
		"users": {"GET /users/{id}": func(r *http.Request) any {
			return map[string]any{"id": r.PathValue("id")}
		}},
		"orders": {"GET /users/{id}/orders": func(*http.Request) any {
			return []map[string]any{
				{"id": 1, "items": []map[string]int{{"product_id": 11}, {"product_id": 12}, {"product_id": 13}}},
				{"id": 2, "items": []map[string]int{{"product_id": 12}, {"product_id": 14}}},
			}
		}},
		"products":        {"GET /products/{id}": func(r *http.Request) any { return map[string]any{"id": r.PathValue("id")} }},
		"notifications":   {"GET /users/{id}/notifications": func(*http.Request) any { return []any{} }},
		"recommendations": {"GET /users/{id}/recommendations": func(*http.Request) any { return []any{} }},
		"gateway": {
			"GET /api/users/{id}/dashboard":            func(*http.Request) any { return map[string]any{} },
			"GET /api/users/{id}/orders-with-products": func(*http.Request) any { return map[string]any{} },
		},
	}
	for name, rs := range routes {
		mux := http.NewServeMux()
		for pattern, h := range rs {
			mux.HandleFunc(pattern, d.handle(pattern, h, fail))
		}
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		d.urls[name] = srv.URL
	}
	return d
}

// handle counts a request to pattern and answers with h's value as JSON.
func (d *fakeDemo) handle(pattern string, h func(*http.Request) any, fail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.hits[pattern+"?"+r.URL.RawQuery]++
		d.mu.Unlock()
		if _, err := strconv.Atoi(r.PathValue("id")); err != nil || fail {
			http.Error(w, `{"error":"fake failure"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h(r))
	}
}

// count returns the requests served for pattern with the raw query.
func (d *fakeDemo) count(patternAndQuery string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hits[patternAndQuery]
}

// args returns the target flags pointing at d.
func (d *fakeDemo) args() []string {
	return []string{
		"-gateway", d.urls["gateway"],
		"-users-url", d.urls["users"], "-orders-url", d.urls["orders"], "-products-url", d.urls["products"],
		"-notifications-url", d.urls["notifications"], "-recommendations-url", d.urls["recommendations"],
	}
}

func TestRunNaiveScenariosCountCalls(t *testing.T) {
	// 50/s for 400ms with no warm-up schedules exactly 20 requests.
	const want = 20
	tests := []struct {
		scenario  string
		callsEach float64
		perRoute  map[string]int // route?query → calls per request
	}{
		{"dashboard-naive", 4, map[string]int{
			"GET /users/{id}?":                          1,
			"GET /users/{id}/orders?limit=5":            1,
			"GET /users/{id}/notifications?unread=true": 1,
			"GET /users/{id}/recommendations?limit=5":   1,
			"GET /users/{id}/orders?":                   0,
			"GET /products/{id}?":                       0,
		}},
		{"owp-naive", 1 + itemsPerUser, map[string]int{
			"GET /users/{id}/orders?":        1,
			"GET /products/{id}?":            itemsPerUser,
			"GET /users/{id}?":               0,
			"GET /users/{id}/orders?limit=5": 0,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			d := newFakeDemo(t, false)
			args := append(d.args(), "-scenario", tt.scenario, "-rate", "50", "-duration", "400ms", "-warmup", "0s", "-users", "1-3")
			code, results, stderr := runJSON(t, t.Context(), args...)
			if code != 0 || len(results) != 1 {
				t.Fatalf("run = %d with %d results, want 0 with 1; stderr:\n%s", code, len(results), stderr)
			}
			r := results[0]
			if r.Scenario != tt.scenario || r.Sent != want || r.OK != want || r.Errors != 0 || r.Dropped != 0 {
				t.Errorf("result %+v, want %d sent and ok", r, want)
			}
			if r.CallsPerRequest == nil || *r.CallsPerRequest != tt.callsEach {
				t.Errorf("upstream calls per request = %v, want %v", r.CallsPerRequest, tt.callsEach)
			}
			for route, each := range tt.perRoute {
				if got := d.count(route); got != each*want {
					t.Errorf("%s served %d requests, want %d × %d", route, got, each, want)
				}
			}
			if !(r.P50 > 0 && r.P50 <= r.P95 && r.P95 <= r.P99 && r.P99 <= r.Max) {
				t.Errorf("percentiles not ordered: %+v", r)
			}
		})
	}
}

func TestRunWarmupIsNotRecorded(t *testing.T) {
	d := newFakeDemo(t, false)
	// 50/s: 10 requests in the 200ms warm-up, 10 in the 200ms window.
	args := append(d.args(), "-scenario", "owp-naive", "-rate", "50", "-warmup", "200ms", "-duration", "200ms", "-user", "7")
	code, results, stderr := runJSON(t, t.Context(), args...)
	if code != 0 || len(results) != 1 {
		t.Fatalf("run = %d with %d results; stderr:\n%s", code, len(results), stderr)
	}
	if got := d.count("GET /users/{id}/orders?"); got != 20 {
		t.Errorf("orders served %d requests, want 20 (warm-up included)", got)
	}
	if results[0].Sent != 10 {
		t.Errorf("recorded %d requests, want the 10 of the measured window", results[0].Sent)
	}
}

func TestRunFailsOnErrors(t *testing.T) {
	d := newFakeDemo(t, true)
	args := append(d.args(), "-scenario", "dashboard-naive", "-rate", "50", "-duration", "200ms", "-warmup", "0s")
	code, results, stderr := runJSON(t, t.Context(), args...)
	if code != 1 {
		t.Errorf("run with every request failing = %d, want 1", code)
	}
	if len(results) != 1 || results[0].Errors != 10 || results[0].ErrorKinds["HTTP 500"] == nil {
		t.Fatalf("results %+v, want 10 HTTP 500 errors", results)
	}
	if st := results[0].ErrorKinds["HTTP 500"]; st.Count != 10 || st.First == "" {
		t.Errorf("HTTP 500 errors: %+v, want a count of 10 and the first error", st)
	}
	if !strings.Contains(stderr, "10 × HTTP 500, first: GET http://127.0.0.1") {
		t.Errorf("stderr does not print the first error:\n%s", stderr)
	}
}

func TestRunDropsOverConcurrency(t *testing.T) {
	// One server that never answers, until the client gives up.
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	args := []string{"-gateway", srv.URL, "-scenario", "dashboard", "-rate", "50", "-duration", "300ms",
		"-warmup", "0s", "-concurrency", "1", "-timeout", "100ms"}
	code, results, stderr := runJSON(t, t.Context(), args...)
	if code != 1 || len(results) != 1 {
		t.Fatalf("run = %d with %d results, want 1 with 1; stderr:\n%s", code, len(results), stderr)
	}
	r := results[0]
	if r.Dropped == 0 || r.Sent+r.Dropped != 15 || r.Errors != r.Sent || r.ErrorKinds["timeout"] == nil {
		t.Errorf("result %+v, want 15 requests all dropped or timed out, some dropped", r)
	}
}

func TestRunStopsOnCancelAndReports(t *testing.T) {
	d := newFakeDemo(t, false)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	args := append(d.args(), "-scenario", "all", "-rate", "50", "-duration", "1h", "-warmup", "0s")
	code, results, stderr := runJSON(t, ctx, args...)
	if code != 0 || len(results) != 1 {
		t.Fatalf("run = %d with %d results, want 0 with the interrupted scenario; stderr:\n%s", code, len(results), stderr)
	}
	r := results[0]
	if r.Scenario != "dashboard" || r.OK == 0 || r.Errors != 0 || r.WindowSec <= 0 || r.WindowSec >= 3600 {
		t.Errorf("result %+v, want the partial dashboard run over the elapsed window", r)
	}
	if got := d.count("GET /api/users/{id}/dashboard?"); got < r.OK {
		t.Errorf("gateway served %d dashboards, fewer than the %d ok", got, r.OK)
	}
}
