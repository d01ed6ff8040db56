package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, Proxy: nil}, Timeout: 20 * time.Second}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, body
}

func send(t *testing.T, method, url, body string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: status %d: %s", method, url, resp.StatusCode, b)
	}
}

// resetDemo zeroes every demo service's counters and clears its faults,
// now and when the test ends.
func resetDemo(t *testing.T) {
	t.Helper()
	reset := func() {
		for _, u := range stack.services {
			send(t, "POST", u+"/_demo/reset", "")
		}
	}
	reset()
	t.Cleanup(reset)
}

func setFaults(t *testing.T, service, faults string) {
	t.Helper()
	send(t, "PUT", stack.services[service]+"/_demo/faults", faults)
}

// served returns how many requests a demo service has served since reset.
func served(t *testing.T, service string) int {
	t.Helper()
	_, body := get(t, stack.services[service]+"/_demo/stats")
	var s struct{ Requests int }
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("stats of %s: %v: %s", service, err, body)
	}
	return s.Requests
}

func TestDashboard(t *testing.T) {
	resetDemo(t)
	resp, body := get(t, stack.gatewayURL+"/api/users/1/dashboard")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	order := []string{`{"user":`, `,"orders":`, `,"notifications":`, `,"recommendations":`}
	at := 0
	for _, k := range order {
		i := strings.Index(string(body[at:]), k)
		if i < 0 {
			t.Fatalf("body lacks %s after offset %d (parts out of declared order?): %.300s", k, at, body)
		}
		at += i
	}
	var user struct{ ID int }
	var orders, notifs, recs []json.RawMessage
	for k, v := range map[string]any{"user": &user, "orders": &orders, "notifications": &notifs, "recommendations": &recs} {
		if err := json.Unmarshal(doc[k], v); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if user.ID != 1 || len(orders) == 0 || len(orders) > 5 || len(notifs) == 0 || len(recs) != 5 {
		t.Errorf("user %d, %d orders (limit 5), %d unread notifications, %d recommendations (want 5)", user.ID, len(orders), len(notifs), len(recs))
	}
	for _, svc := range []string{"users", "orders", "notifications", "recommendations", "products"} {
		want := 1
		if svc == "products" {
			want = 0
		}
		if n := served(t, svc); n != want {
			t.Errorf("%s served %d requests for one dashboard, want %d", svc, n, want)
		}
	}
	if st := resp.Header.Get("Server-Timing"); !strings.Contains(st, "recommendations;dur=") {
		t.Errorf("Server-Timing = %q", st)
	}
}

// TestOrdersWithProductsBatches: user 7 has 20 orders over 50 distinct
// products; the gateway makes exactly two calls, one of them the batch.
func TestOrdersWithProductsBatches(t *testing.T) {
	resetDemo(t)
	resp, body := get(t, stack.gatewayURL+"/api/users/7/orders-with-products")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var doc struct {
		Orders []struct {
			Items []struct {
				ProductID int `json:"product_id"`
				Product   *struct {
					ID    int    `json:"id"`
					Name  string `json:"name"`
					Price int    `json:"price_cents"`
				} `json:"product"`
			} `json:"items"`
		} `json:"orders"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	distinct := map[int]bool{}
	for _, o := range doc.Orders {
		for _, it := range o.Items {
			distinct[it.ProductID] = true
			if it.Product == nil || it.Product.ID != it.ProductID || it.Product.Name == "" {
				t.Errorf("item %d has product %+v", it.ProductID, it.Product)
			}
		}
	}
	if len(doc.Orders) != 20 || len(distinct) != 50 {
		t.Errorf("%d orders over %d products, want the fixture's 20 over 50", len(doc.Orders), len(distinct))
	}
	calls := served(t, "orders") + served(t, "products")
	if calls != 2 || served(t, "products") != 1 {
		t.Errorf("upstream calls = %d (products %d), want exactly 2: orders + one batch", calls, served(t, "products"))
	}
}

func TestErrorResponses(t *testing.T) {
	tests := []struct {
		name       string
		faults     map[string]string
		path       string
		wantStatus int
		wantMsg    string
		wantHeader string // Braid-Degraded
	}{
		{name: "unknown route", path: "/api/nope", wantStatus: 404, wantMsg: "no route for GET /api/nope"},
		{name: "bad id", path: "/api/users/abc/dashboard", wantStatus: 400, wantMsg: `path parameter \"id\" must be an integer`},
		{name: "traversal", path: "/api/users/..%2F..%2Fadmin/dashboard", wantStatus: 400, wantMsg: `must be an integer`},
		{name: "bad query param", path: "/api/users/1/dashboard?recs=500", wantStatus: 400, wantMsg: `query parameter \"recs\" must be at most 50`},
		{name: "unknown user", path: "/api/users/99999/dashboard", wantStatus: 404, wantMsg: `answered 404 not found`}, // users and orders both 404; either may be reported
		{name: "optional down", faults: map[string]string{"notifications": `{"down":true}`}, path: "/api/users/1/dashboard", wantStatus: 200, wantMsg: `"notifications":null`, wantHeader: "notifications"},
		{name: "required failing", faults: map[string]string{"users": `{"error_rate":1}`}, path: "/api/users/1/dashboard", wantStatus: 502, wantMsg: `call \"user\" failed: upstream users answered status 500`},
		{name: "batch upstream down", faults: map[string]string{"products": `{"down":true}`}, path: "/api/users/7/orders-with-products", wantStatus: 503, wantMsg: `call \"products\" failed: upstream products is refusing calls`},
		{name: "deadline", faults: map[string]string{"users": `{"latency":"5s"}`}, path: "/api/users/1/dashboard", wantStatus: 504, wantMsg: `upstream users did not answer within the deadline`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resetDemo(t)
			for svc, f := range tt.faults {
				setFaults(t, svc, f)
			}
			resp, body := get(t, stack.gatewayURL+tt.path)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantMsg) {
				t.Errorf("status %d body %s\nwant status %d and %s", resp.StatusCode, body, tt.wantStatus, tt.wantMsg)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if !json.Valid(body) {
				t.Errorf("body is not JSON: %s", body)
			}
			if h := resp.Header.Get("Braid-Degraded"); h != tt.wantHeader {
				t.Errorf("Braid-Degraded = %q, want %q", h, tt.wantHeader)
			}
		})
	}
}

func TestBodyOverLimit(t *testing.T) {
	req, _ := http.NewRequest("GET", stack.gatewayURL+"/api/users/1/dashboard", strings.NewReader(strings.Repeat("x", 2<<20)))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || !strings.Contains(string(body), "request body is over the limit") {
		t.Errorf("status %d body %s, want 413 naming the limit", resp.StatusCode, body)
	}
}

func TestAdminListener(t *testing.T) {
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, body := get(t, stack.adminURL+path)
		if resp.StatusCode != 200 {
			t.Errorf("admin %s: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, _ := get(t, stack.gatewayURL+"/readyz"); resp.StatusCode != 404 {
		t.Errorf("public /readyz answered %d: admin endpoints must not be on the public port", resp.StatusCode)
	}
	if stack.adminURL == stack.gatewayURL {
		t.Error("admin and public listeners share an address")
	}
}
