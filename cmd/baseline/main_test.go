package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// upstream is a fake service: it answers every path from answers (status
// 200 unless the answer is a number) and counts calls and peak in-flight.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	paths    []string
	inflight atomic.Int64
	peak     atomic.Int64
	// wait, when set, holds every call until it returns.
	wait func(r *http.Request)
}

func newUpstream(t *testing.T, answer func(r *http.Request) (int, string)) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := u.inflight.Add(1)
		defer u.inflight.Add(-1)
		for p := u.peak.Load(); n > p && !u.peak.CompareAndSwap(p, n); p = u.peak.Load() {
		}
		u.mu.Lock()
		u.paths = append(u.paths, r.URL.RequestURI())
		u.mu.Unlock()
		if u.wait != nil {
			u.wait(r)
		}
		status, body := answer(r)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(u.Close)
	return u
}

func static(body string) func(*http.Request) (int, string) {
	return func(*http.Request) (int, string) { return http.StatusOK, body }
}

func status(code int) func(*http.Request) (int, string) {
	return func(*http.Request) (int, string) { return code, `{"error":"x"}` }
}

// newTestAggregator returns the aggregator of the flags plus the four
// dashboard upstreams' URLs, serving on a test server.
func newTestAggregator(t *testing.T, ups map[string]*upstream, extra ...string) *httptest.Server {
	t.Helper()
	var args []string
	for name, u := range ups {
		args = append(args, "-"+name, u.URL)
	}
	a, _, err := parseFlags(append(args, extra...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler())
	t.Cleanup(func() { srv.Close(); a.client.CloseIdleConnections() })
	return srv
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func dashboardUpstreams(t *testing.T) map[string]*upstream {
	return map[string]*upstream{
		"users":           newUpstream(t, static(`{"id":7}`)),
		"orders":          newUpstream(t, static(`[{"id":1}]`)),
		"notifications":   newUpstream(t, static(`[]`)),
		"recommendations": newUpstream(t, static(`[{"product_id":2}]`)),
	}
}

func TestDashboardSplicesTheFourAnswers(t *testing.T) {
	ups := dashboardUpstreams(t)
	srv := newTestAggregator(t, ups)
	code, body := getBody(t, srv.URL+"/api/users/7/dashboard")
	want := `{"user":{"id":7},"orders":[{"id":1}],"notifications":[],"recommendations":[{"product_id":2}]}`
	if code != http.StatusOK || body != want {
		t.Fatalf("got %d %s, want 200 %s", code, body, want)
	}
	for name, path := range map[string]string{"users": "/users/7", "orders": "/users/7/orders?limit=5",
		"notifications": "/users/7/notifications?unread=true", "recommendations": "/users/7/recommendations?limit=5"} {
		if got := ups[name].paths; len(got) != 1 || got[0] != path {
			t.Errorf("%s got calls %q, want [%s]", name, got, path)
		}
	}
	defer http.DefaultClient.CloseIdleConnections()
}

func TestDashboardCallsRunInParallel(t *testing.T) {
	const fanout = 6
	ups := dashboardUpstreams(t)
	// Every call waits until all six have arrived: sequential calls would
	// never get there and the request would miss its deadline.
	var arrived atomic.Int64
	allIn := make(chan struct{})
	for _, u := range ups {
		u.wait = func(r *http.Request) {
			if arrived.Add(1) == fanout {
				close(allIn)
			}
			select {
			case <-allIn:
			case <-r.Context().Done():
			}
		}
	}
	srv := newTestAggregator(t, ups, "-fanout", strconv.Itoa(fanout))
	code, body := getBody(t, srv.URL+"/api/users/3/dashboard")
	defer http.DefaultClient.CloseIdleConnections()
	if code != http.StatusOK {
		t.Fatalf("got %d %s", code, body)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"user", "orders", "notifications", "recommendations", "user_2", "orders_2"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("answer has no %q: %s", k, body)
		}
	}
	if got := ups["users"].peak.Load() + ups["orders"].peak.Load(); got != 4 {
		t.Errorf("peak in-flight at users+orders = %d, want 4 (all at once)", got)
	}
}

func TestDashboardFailures(t *testing.T) {
	tests := []struct {
		name     string
		service  string
		answer   func(*http.Request) (int, string)
		path     string
		wantCode int
		wantBody string // substring
	}{
		{"optional call fails", "notifications", status(500), "/api/users/7/dashboard", 200, `"notifications":null,`},
		{"optional call answers garbage", "recommendations", static(`{`), "/api/users/7/dashboard", 200, `"recommendations":null}`},
		{"required call 404", "users", status(404), "/api/users/7/dashboard", 404, `call user: upstream answered 404`},
		{"required call 500", "orders", status(500), "/api/users/7/dashboard", 502, `call orders`},
		{"required call garbage", "orders", static(`[1,`), "/api/users/7/dashboard", 502, `not JSON`},
		{"bad id", "users", static(`{}`), "/api/users/x/dashboard", 400, `positive integer`},
		{"zero id", "users", static(`{}`), "/api/users/0/dashboard", 400, `positive integer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ups := dashboardUpstreams(t)
			ups[tt.service] = newUpstream(t, tt.answer)
			srv := newTestAggregator(t, ups)
			code, body := getBody(t, srv.URL+tt.path)
			defer http.DefaultClient.CloseIdleConnections()
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %s", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestDashboardDeadline(t *testing.T) {
	ups := dashboardUpstreams(t)
	ups["orders"].wait = func(r *http.Request) { <-r.Context().Done() } // never answers in time
	srv := newTestAggregator(t, ups, "-timeout", "50ms")
	code, body := getBody(t, srv.URL+"/api/users/7/dashboard")
	defer http.DefaultClient.CloseIdleConnections()
	if code != http.StatusGatewayTimeout {
		t.Errorf("got %d %s, want 504", code, body)
	}
}

func TestOrdersWithProductsBatchesDistinctIDs(t *testing.T) {
	// 3 orders × 60 items over 150 distinct products: 2 batches (100 + 50).
	var orders []string
	for o := range 3 {
		var items []string
		for i := range 60 {
			items = append(items, fmt.Sprintf(`{"product_id":%d,"quantity":1,"unit_price_cents":5}`, (o*50+i)%150+1))
		}
		orders = append(orders, fmt.Sprintf(`{"id":%d,"user_id":7,"status":"new","created_at":"t","total_cents":5,"items":[%s]}`, o, strings.Join(items, ",")))
	}
	ordersUp := newUpstream(t, static("["+strings.Join(orders, ",")+"]"))
	products := newUpstream(t, func(r *http.Request) (int, string) {
		var out []string
		for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
			if id != "150" { // product 150 is missing: null
				out = append(out, `{"id":`+id+`,"name":"p`+id+`"}`)
			}
		}
		return 200, "[" + strings.Join(out, ",") + "]"
	})
	srv := newTestAggregator(t, map[string]*upstream{"orders": ordersUp, "products": products})
	code, body := getBody(t, srv.URL+"/api/users/7/orders-with-products")
	defer http.DefaultClient.CloseIdleConnections()
	if code != http.StatusOK {
		t.Fatalf("got %d %s", code, body)
	}
	if got := len(products.paths); got != 2 {
		t.Errorf("%d product calls, want 2: %q", got, products.paths)
	}
	seen := map[string]bool{}
	for _, p := range products.paths {
		ids := strings.Split(strings.TrimPrefix(p, "/products?ids="), ",")
		if len(ids) > maxBatch {
			t.Errorf("a batch of %d ids", len(ids))
		}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("product %s fetched twice", id)
			}
			seen[id] = true
		}
	}
	var doc struct {
		Orders []struct {
			Items []struct {
				ProductID int64 `json:"product_id"`
				Product   *struct {
					ID int64 `json:"id"`
				} `json:"product"`
			} `json:"items"`
		} `json:"orders"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	items := 0
	for _, o := range doc.Orders {
		for _, it := range o.Items {
			items++
			switch {
			case it.ProductID == 150 && it.Product != nil:
				t.Errorf("missing product 150 stitched as %+v", it.Product)
			case it.ProductID != 150 && (it.Product == nil || it.Product.ID != it.ProductID):
				t.Errorf("item with product %d got %+v", it.ProductID, it.Product)
			}
		}
	}
	if len(seen) != 150 || items != 180 {
		t.Errorf("%d distinct ids fetched, %d items answered; want 150 and 180", len(seen), items)
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	users := newUpstream(t, static(`{"id":1}`))
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"-listen", "127.0.0.1:0", "-fanout", "1", "-users", users.URL}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	url := strings.TrimSpace(strings.TrimPrefix(line, "baseline: serving on "))
	got, body := getBody(t, url+"/api/users/1/dashboard")
	http.DefaultClient.CloseIdleConnections()
	cancel()
	if got != http.StatusOK || body != `{"user":{"id":1}}` {
		t.Errorf("got %d %s", got, body)
	}
	if c := <-code; c != 0 {
		t.Errorf("run returned %d, want 0", c)
	}
	if c := run(context.Background(), []string{"-fanout", "0"}, io.Discard, io.Discard); c != 2 {
		t.Errorf("run with -fanout 0 returned %d, want 2", c)
	}
}
