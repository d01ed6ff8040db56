package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The resilience tests drive the retries, retry budgets and circuit
// breakers that every upstream has by default through the real binaries,
// with the demo's fault switches. Breaker state lives in a gateway process,
// so each test starts its own gateway (ownGateway) and the shared one never
// sees a tripped breaker. They prove what they claim by counting the
// requests the demo services served and checking statuses and headers; the
// latencies they log are never asserted.

const (
	dashboardPath = "/api/users/1/dashboard"
	batchPath     = "/api/users/7/orders-with-products" // one chunk: 50 products, max_batch 100
)

// answer is what the resilience tests keep of one gateway response.
type answer struct {
	status     int
	degraded   string // Braid-Degraded header
	retryAfter string // Retry-After header
	cache      string // Cache-Status header
	code       string // "error" field of a JSON error body
	body       []byte
	took       time.Duration
}

// ask GETs path from the gateway at base.
func ask(t *testing.T, base, path string) answer {
	t.Helper()
	start := time.Now()
	resp, body := get(t, base+path)
	a := answer{
		status:     resp.StatusCode,
		degraded:   resp.Header.Get("Braid-Degraded"),
		retryAfter: resp.Header.Get("Retry-After"),
		cache:      resp.Header.Get("Cache-Status"),
		body:       body,
		took:       time.Since(start),
	}
	if a.status != 200 {
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("GET %s: status %d with a body that is not a JSON error: %s", path, a.status, body)
		}
		a.code = e.Error
	}
	return a
}

func (a answer) String() string {
	return fmt.Sprintf("%d Braid-Degraded=%q Retry-After=%q Cache-Status=%q %.300s", a.status, a.degraded, a.retryAfter, a.cache, a.body)
}

// wantDegraded fails unless a is a 200 whose only degraded part is call,
// present in the body as null.
func wantDegraded(t *testing.T, i int, a answer, call string) {
	t.Helper()
	if a.status != 200 || a.degraded != call || !strings.Contains(string(a.body), `"`+call+`":null`) {
		t.Fatalf("request %d: %v; want 200 with %s degraded to null", i, a, call)
	}
}

// median returns the median of ds, which it sorts.
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// TestOptionalServiceFailingIsCutOff: recommendations (optional) answers
// 500 to everything. Every dashboard is still 200 with recommendations
// degraded, and after 5 consecutive failures the breaker stops calling it:
// it sees a handful of the 300 calls, not 300.
func TestOptionalServiceFailingIsCutOff(t *testing.T) {
	resetDemo(t)
	gw := ownGateway(t)
	setFaults(t, "recommendations", `{"error_rate":1}`)
	const n = 300
	for i := range n {
		wantDegraded(t, i, ask(t, gw, dashboardPath), "recommendations")
	}
	recs := served(t, "recommendations")
	t.Logf("recommendations served %d of %d dashboards (500 is not retried; the breaker trips after 5 in a row)", recs, n)
	if recs >= n*30/100 {
		t.Errorf("recommendations served %d calls for %d dashboards, want < 30%%: the breaker did not cut it off", recs, n)
	}
	if u := served(t, "users"); u != n {
		t.Errorf("users served %d, want %d: the required calls must all be made", u, n)
	}
}

// TestOptionalServiceHangingIsCutOff: notifications (optional) takes 10s,
// longer than the dashboard's 2s deadline. Each of the first 5 dashboards
// waits out the deadline and answers 200 without notifications; those 5
// timed-out calls trip the breaker, and after that notifications receives
// nothing more.
func TestOptionalServiceHangingIsCutOff(t *testing.T) {
	resetDemo(t)
	gw := ownGateway(t)
	var healthy []time.Duration
	for i := range 20 {
		a := ask(t, gw, dashboardPath)
		if a.status != 200 || a.degraded != "" {
			t.Fatalf("healthy request %d: %v", i, a)
		}
		healthy = append(healthy, a.took)
	}
	usersBefore, notifsBefore := served(t, "users"), served(t, "notifications")
	setFaults(t, "notifications", `{"latency":"10s"}`)

	// 5 timed-out calls trip the breaker (consecutive_failures 5); the
	// other 25 requests are enough to see that nothing more reaches it.
	const n = 30
	var cut []time.Duration
	for i := range n {
		a := ask(t, gw, dashboardPath)
		wantDegraded(t, i, a, "notifications")
		if i >= n-20 {
			cut = append(cut, a.took)
		}
	}
	if got := served(t, "notifications") - notifsBefore; got != 5 {
		t.Errorf("notifications served %d calls for %d dashboards, want 5: the 5 that timed out and tripped the breaker", got, n)
	}
	if u := served(t, "users") - usersBefore; u != n {
		t.Errorf("users served %d, want %d", u, n)
	}
	t.Logf("median dashboard latency: %v healthy, %v for the last 20 with notifications cut off (not asserted)",
		median(healthy), median(cut))
}

// TestRequiredServiceFlakyIsRetried: users (required) answers 503 to 10%
// of calls. Retries hide nearly all of it: at least 98% of dashboards are
// 200, for at most 1.2 calls to users per dashboard.
func TestRequiredServiceFlakyIsRetried(t *testing.T) {
	resetDemo(t)
	gw := ownGateway(t)
	setFaults(t, "users", `{"error_rate":0.1,"error_status":503}`)
	const n = 300
	statuses := map[int]int{}
	for range n {
		statuses[ask(t, gw, dashboardPath).status]++
	}
	users := served(t, "users")
	t.Logf("statuses %v; users served %d calls for %d dashboards (%.3f per dashboard)", statuses, users, n, float64(users)/n)
	if ok := statuses[200]; ok*100 < n*98 {
		t.Errorf("%d of %d dashboards were 200, want at least 98%%: %v", ok, n, statuses)
	}
	if users*10 > n*12 {
		t.Errorf("users served %d calls for %d dashboards, want at most 1.2 per dashboard", users, n)
	}
}

// TestRequiredServiceResettingFailsFastAndComesBack: users (required)
// resets every connection. Dashboards fail with 502 while the breaker
// learns, then fail fast with 503 circuit_open and a Retry-After, users
// seeing a handful of connections, not one per try. Once users is healthy
// again, the first dashboard after the open period is a probe that
// succeeds, and the dashboards after it are 200.
func TestRequiredServiceResettingFailsFastAndComesBack(t *testing.T) {
	resetDemo(t)
	gw := ownGateway(t)
	setFaults(t, "users", `{"reset":true}`)
	const n = 300
	statuses, codes := map[int]int{}, map[string]int{}
	var last answer
	for i := range n {
		last = ask(t, gw, dashboardPath)
		statuses[last.status]++
		codes[last.code]++
		if last.status != 502 && last.status != 503 {
			t.Fatalf("request %d: %v; want 502 or 503", i, last)
		}
	}
	outage := served(t, "users")
	t.Logf("statuses %v, errors %v; users served %d connections for %d dashboards", statuses, codes, outage, n)
	wantCircuitOpen(t, last)
	if outage > n/2 {
		t.Errorf("users served %d for %d dashboards, want at most %d (0.5 per dashboard)", outage, n, n/2)
	}

	// Recovery. The open period is 4-5s after a first trip (up to 20s
	// after failed probes), so poll gently: one dashboard per 500ms.
	setFaults(t, "users", `{"reset":false}`)
	cleared := time.Now()
	polls := 0
	for {
		a := ask(t, gw, dashboardPath)
		polls++
		if a.status == 200 {
			break
		}
		wantCircuitOpen(t, a)
		if time.Since(cleared) > 30*time.Second {
			t.Fatalf("no dashboard was 200 within 30s of users recovering; last %v", a)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("first 200 %v after users recovered, at poll %d", time.Since(cleared).Round(time.Millisecond), polls)
	if got := served(t, "users") - outage; got != 1 {
		t.Errorf("users served %d calls while the breaker was open and probing, want 1: the successful probe", got)
	}
	for i := range 10 {
		if a := ask(t, gw, dashboardPath); a.status != 200 || a.degraded != "" {
			t.Fatalf("request %d after recovery: %v; want 200", i, a)
		}
	}
	if got := served(t, "users") - outage; got != 11 {
		t.Errorf("users served %d calls since recovery, want 11", got)
	}
}

// wantCircuitOpen fails unless a is 503 circuit_open with a Retry-After of
// 1 to 20 seconds (the longest open period).
func wantCircuitOpen(t *testing.T, a answer) {
	t.Helper()
	secs, err := strconv.Atoi(a.retryAfter)
	if a.status != 503 || a.code != "circuit_open" || err != nil || secs < 1 || secs > 20 {
		t.Fatalf("%v; want 503 circuit_open with Retry-After 1-20", a)
	}
}

// TestBatchChunkRetried: products resets every connection. The batch of
// user 7's 50 products is one chunk, so one orders-with-products request
// makes exactly 3 calls to products (3 attempts of that one chunk, never
// one per product) before it fails with 502; once products is healthy the
// next request makes one call and stitches every product. (A chunk that
// fails and then succeeds on retry needs a random fault; routes'
// TestBatchChunkRetriedAlone covers it deterministically.)
func TestBatchChunkRetried(t *testing.T) {
	resetDemo(t)
	gw := ownGateway(t)
	setFaults(t, "products", `{"reset":true}`)
	if a := ask(t, gw, batchPath); a.status != 502 || a.code != "upstream_error" {
		t.Fatalf("%v; want 502 upstream_error", a)
	}
	if p, o := served(t, "products"), served(t, "orders"); p != 3 || o != 1 {
		t.Fatalf("products served %d, orders %d; want 3 tries of the one chunk, and 1", p, o)
	}

	setFaults(t, "products", `{"reset":false}`)
	a := ask(t, gw, batchPath)
	if a.status != 200 || a.degraded != "" {
		t.Fatalf("after recovery: %v", a)
	}
	var doc struct {
		Orders []struct {
			Items []struct {
				Product *struct{ ID int } `json:"product"`
			} `json:"items"`
		} `json:"orders"`
	}
	if err := json.Unmarshal(a.body, &doc); err != nil {
		t.Fatal(err)
	}
	products := map[int]bool{}
	for _, o := range doc.Orders {
		for _, it := range o.Items {
			if it.Product == nil {
				t.Fatalf("an item has no product: %.300s", a.body)
			}
			products[it.Product.ID] = true
		}
	}
	if len(doc.Orders) != 20 || len(products) != 50 {
		t.Errorf("%d orders over %d products, want 20 over 50", len(doc.Orders), len(products))
	}
	if p := served(t, "products"); p != 4 {
		t.Errorf("products served %d in all, want 4: the 3 failed tries and one batch", p)
	}
}
