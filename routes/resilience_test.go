package routes

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/upstream"
)

// These tests pin what a user sees of the default resilience layers (no
// resilience settings at all), against real httptest upstreams, by
// counting the calls each upstream receives.

// testClock is the breakers' and budgets' clock, moved by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// counted serves h and counts its requests.
type counted struct {
	url   string
	calls atomic.Int64
}

func serveCounted(t *testing.T, h http.HandlerFunc) *counted {
	t.Helper()
	c := &counted{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.calls.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	c.url = s.URL
	return c
}

// resetting accepts connections and resets them at once, counting them: a
// service that is down, whose connection attempts can still be counted.
func resetting(t *testing.T) *counted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &counted{url: "http://" + ln.Addr().String()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.calls.Add(1)
			_ = conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return c
}

// resilient builds the public handler over real upstream clients with the
// default resilience layers (tweak may change an upstream's Config), the
// dashboard route of the other tests, and clock driving the breakers.
func resilient(t *testing.T, clock *testClock, urls map[string]string, tweak func(string, *upstream.Config), rc RouteConfig) http.Handler {
	t.Helper()
	cfgs := map[string]upstream.Config{}
	for name, u := range urls {
		cfg := upstream.Config{URL: u}
		if tweak != nil {
			tweak(name, &cfg)
		}
		cfgs[name] = cfg
	}
	set, err := upstream.NewSet(cfgs, upstream.SetOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	h, err := New(Config{Routes: []RouteConfig{rc}}, Options{Stack: set.Stack})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func dashboardRoute() RouteConfig {
	return RouteConfig{
		Path:    "/api/users/{id}/dashboard",
		Timeout: 2 * time.Second,
		Calls: []aggregate.CallConfig{
			{Name: "user", Upstream: "users", Path: "/users/{id}"},
			{Name: "notifications", Upstream: "notifications", Path: "/users/{id}/notifications", Optional: true},
		},
	}
}

func TestOptionalServiceFailingIsCutOff(t *testing.T) {
	clock := &testClock{now: time.Unix(1e9, 0)}
	users := serveCounted(t, body(`{"id":1}`))
	notifs := serveCounted(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, `{"error":"boom"}`, 500) })
	h := resilient(t, clock, map[string]string{"users": users.url, "notifications": notifs.url}, nil, dashboardRoute())
	const requests = 300
	for i := range requests {
		resp, got := do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil))
		if resp.StatusCode != 200 || resp.Header.Get(DegradedHeader) != "notifications" {
			t.Fatalf("request %d: %d %s=%q %s, want 200 with notifications degraded", i, resp.StatusCode, DegradedHeader, resp.Header.Get(DegradedHeader), got)
		}
		clock.Advance(100 * time.Millisecond) // 10 requests a second: 30s in all
	}
	// Tripped after 5 consecutive failures; then only half-open probes,
	// as the open period grows 5s, 10s, 20s.
	if n := notifs.calls.Load(); n*10 >= requests*3 {
		t.Errorf("failing service received %d calls for %d requests, want fewer than 30%%", n, requests)
	} else {
		t.Logf("failing optional service received %d calls for %d requests", n, requests)
	}
	if n := users.calls.Load(); n != requests {
		t.Errorf("healthy users received %d calls, want %d", n, requests)
	}
}

func TestOptionalServiceHangingIsCutOff(t *testing.T) {
	clock := &testClock{now: time.Unix(1e9, 0)}
	users := serveCounted(t, body(`{"id":1}`))
	notifs := serveCounted(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	rc := dashboardRoute()
	rc.Timeout = 200 * time.Millisecond
	h := resilient(t, clock, map[string]string{"users": users.url, "notifications": notifs.url}, nil, rc)
	const requests = 100
	for i := range requests {
		resp, _ := do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil))
		if resp.StatusCode != 200 || resp.Header.Get(DegradedHeader) != "notifications" {
			t.Fatalf("request %d: %d, want 200 with notifications degraded", i, resp.StatusCode)
		}
	}
	// Every hanging call is cut by the deadline (a failure and a slow
	// call); after 5 the breaker opens and no request waits for it again.
	if n := notifs.calls.Load(); n != 5 {
		t.Errorf("hanging service received %d calls for %d requests, want 5 (then the breaker is open)", n, requests)
	}
}

func TestRequiredServiceFlakyIsRetried(t *testing.T) {
	clock := &testClock{now: time.Unix(1e9, 0)}
	var n atomic.Int64
	users := serveCounted(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 { // 10% of calls
			http.Error(w, `{"error":"busy"}`, 503)
			return
		}
		_, _ = w.Write([]byte(`{"id":1}`))
	})
	notifs := serveCounted(t, body(`[]`))
	h := resilient(t, clock, map[string]string{"users": users.url, "notifications": notifs.url}, nil, dashboardRoute())
	const requests = 300
	ok := 0
	for range requests {
		if resp, _ := do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil)); resp.StatusCode == 200 {
			ok++
		}
		clock.Advance(10 * time.Millisecond)
	}
	if ok*100 < requests*98 {
		t.Errorf("%d of %d requests succeeded, want at least 98%%", ok, requests)
	}
	if calls := users.calls.Load(); calls*10 > requests*12 {
		t.Errorf("flaky service received %d calls for %d requests, want at most 1.2×", calls, requests)
	} else {
		t.Logf("%d/%d requests succeeded; flaky service received %d calls", ok, requests, calls)
	}
}

func TestRequiredServiceDownFailsFast(t *testing.T) {
	clock := &testClock{now: time.Unix(1e9, 0)}
	users := resetting(t)
	notifs := serveCounted(t, body(`[]`))
	h := resilient(t, clock, map[string]string{"users": users.url, "notifications": notifs.url}, nil, dashboardRoute())
	const requests = 300
	var last *http.Response
	var lastBody string
	for range requests {
		last, lastBody = do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil))
		if last.StatusCode != 503 && last.StatusCode != 502 {
			t.Fatalf("status %d %s, want 502 then 503", last.StatusCode, lastBody)
		}
		clock.Advance(50 * time.Millisecond)
	}
	var e apiError
	if err := json.Unmarshal([]byte(lastBody), &e); err != nil {
		t.Fatal(err)
	}
	if last.StatusCode != 503 || e.Code != "circuit_open" || e.Upstream != "users" || !strings.Contains(e.Message, "circuit breaker open") {
		t.Errorf("once open: %d %s, want 503 circuit_open naming users", last.StatusCode, lastBody)
	}
	if ra := last.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q, want whole seconds until the next probe", ra)
	}
	if n := users.calls.Load(); n*2 > requests {
		t.Errorf("down service received %d connection attempts for %d requests, want at most 0.5 per request", n, requests)
	} else {
		t.Logf("down service received %d connection attempts for %d requests", n, requests)
	}
}

func TestServiceComesBack(t *testing.T) {
	clock := &testClock{now: time.Unix(1e9, 0)}
	var down atomic.Bool
	down.Store(true)
	users := serveCounted(t, func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, `{"error":"down"}`, 500)
			return
		}
		_, _ = w.Write([]byte(`{"id":1}`))
	})
	notifs := serveCounted(t, body(`[]`))
	h := resilient(t, clock, map[string]string{"users": users.url, "notifications": notifs.url}, nil, dashboardRoute())
	for range 50 { // trips, then probes fail and the open period grows
		do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil))
		clock.Advance(time.Second)
	}
	down.Store(false)
	recovered := -1
	for s := range 30 { // one request a second for 30s, no restart
		resp, _ := do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil))
		if resp.StatusCode == 200 {
			recovered = s
			break
		}
		clock.Advance(time.Second)
	}
	if recovered < 0 {
		t.Fatal("no full answer within 30s of the service coming back")
	}
	for i := range 20 {
		if resp, got := do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil)); resp.StatusCode != 200 {
			t.Fatalf("request %d after recovery: %d %s", i, resp.StatusCode, got)
		}
	}
	t.Logf("full answers again %ds after the service came back", recovered)
}

func TestBatchChunkRetriedAlone(t *testing.T) {
	clock := &testClock{now: time.Unix(1e9, 0)}
	var mu sync.Mutex
	seen := map[string]int{} // ids query -> requests
	orders := serveCounted(t, func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString(`[`)
		for i := 1; i <= 100; i++ {
			if i > 1 {
				b.WriteString(`,`)
			}
			b.WriteString(`{"product_id":` + itoa(i) + `}`)
		}
		b.WriteString(`]`)
		_, _ = w.Write([]byte(b.String()))
	})
	products := serveCounted(t, func(w http.ResponseWriter, r *http.Request) {
		ids := r.URL.Query().Get("ids")
		mu.Lock()
		seen[ids]++
		first := seen[ids] == 1
		mu.Unlock()
		if first && strings.HasPrefix(ids, "31,") { // one chunk in ten fails once
			http.Error(w, `{"error":"busy"}`, 503)
			return
		}
		var b strings.Builder
		b.WriteString(`[`)
		for i, id := range strings.Split(ids, ",") {
			if i > 0 {
				b.WriteString(`,`)
			}
			b.WriteString(`{"id":` + id + `}`)
		}
		b.WriteString(`]`)
		_, _ = w.Write([]byte(b.String()))
	})
	rc := RouteConfig{Path: "/api/users/{id}/orders-with-products", Calls: []aggregate.CallConfig{
		{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders"},
		{Name: "products", Upstream: "products", Path: "/products",
			Batch: &aggregate.BatchConfig{Keys: "orders[].product_id", Stitch: "orders[].product", MaxBatch: 10}},
	}}
	h := resilient(t, clock, map[string]string{"orders": orders.url, "products": products.url}, nil, rc)
	resp, got := do(t, h, httptest.NewRequest("GET", "/api/users/1/orders-with-products", nil))
	if resp.StatusCode != 200 || strings.Contains(got, `"product":null`) {
		t.Fatalf("status %d, body %.200s: want every product stitched", resp.StatusCode, got)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := products.calls.Load(); n != 11 {
		t.Errorf("products received %d calls, want 11: 10 chunks and one retry", n)
	}
	for ids, n := range seen {
		want := 1
		if strings.HasPrefix(ids, "31,") {
			want = 2
		}
		if n != want {
			t.Errorf("chunk %s requested %d times, want %d", ids, n, want)
		}
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
