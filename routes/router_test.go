package routes

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstreamServer is a test upstream that counts its requests.
type upstreamServer struct {
	calls atomic.Int64
	fetch upstream.Fetch
}

func newUpstream(t *testing.T, name string, h http.HandlerFunc) *upstreamServer {
	t.Helper()
	u := &upstreamServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := upstream.New(name, upstream.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	u.fetch = c.Fetch
	return u
}

func body(s string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, s) }
}

func int64p(n int64) *int64 { return &n }

// gateway builds the public handler over the given upstream handlers.
func gateway(t *testing.T, handlers map[string]http.HandlerFunc, mutate ...func(*RouteConfig)) (http.Handler, map[string]*upstreamServer) {
	t.Helper()
	servers := map[string]*upstreamServer{}
	fetchers := map[string]upstream.Fetch{}
	for name, h := range handlers {
		servers[name] = newUpstream(t, name, h)
		fetchers[name] = servers[name].fetch
	}
	rc := RouteConfig{
		Path:    "/api/users/{id}/dashboard",
		Timeout: 2 * time.Second,
		Params: []ParamConfig{
			{Name: "id", Type: "int"},
			{Name: "limit", Type: "int", Default: "5", Min: int64p(1), Max: int64p(50)},
		},
		Calls: []aggregate.CallConfig{
			{Name: "user", Upstream: "users", Path: "/users/{id}"},
			{Name: "notifications", Upstream: "notifications", Path: "/users/{id}/notifications", Optional: true},
			{Name: "recommendations", Upstream: "recommendations", Path: "/users/{id}/recommendations", Query: map[string]string{"limit": "{limit}"}, Optional: true},
		},
	}
	for _, m := range mutate {
		m(&rc)
	}
	h, err := New(Config{Routes: []RouteConfig{rc}}, Options{Stack: upstream.Static(fetchers), MaxBodyBytes: 64})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h, servers
}

func okHandlers() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"users":         body(`{"id":1}`),
		"notifications": body(`[]`),
		"recommendations": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"limit":`+r.URL.Query().Get("limit")+`}`)
		},
	}
}

func do(t *testing.T, h http.Handler, req *http.Request) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result(), rec.Body.String()
}

func TestCompositeResponse(t *testing.T) {
	h, servers := gateway(t, okHandlers())
	resp, got := do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard?limit=7", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d, body %s", resp.StatusCode, got)
	}
	if want := `{"user":{"id":1},"notifications":[],"recommendations":{"limit":7}}` + "\n"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if st := resp.Header.Get("Server-Timing"); !strings.Contains(st, "user;dur=") || !strings.Contains(st, "recommendations;dur=") {
		t.Errorf("Server-Timing = %q, want a duration per call", st)
	}
	if d := resp.Header.Get(DegradedHeader); d != "" {
		t.Errorf("%s = %q, want none", DegradedHeader, d)
	}
	_, got = do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil))
	if !strings.Contains(got, `"recommendations":{"limit":5}`) {
		t.Errorf("default limit not applied: %s", got)
	}
	for name, s := range servers {
		if n := s.calls.Load(); n != 2 {
			t.Errorf("%s called %d times for 2 requests, want 2", name, n)
		}
	}
}

// TestErrors checks every error the edge produces: status, JSON shape, and a
// message naming what was wrong.
func TestErrors(t *testing.T) {
	blocked := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	tests := []struct {
		name       string
		users      http.HandlerFunc
		notifs     http.HandlerFunc
		req        *http.Request
		wantStatus int
		wantCode   string
		wantMsg    string // substring
		wantCalls  int64  // upstream users calls
	}{
		{name: "no route", req: httptest.NewRequest("GET", "/api/nope", nil), wantStatus: 404, wantCode: "no_route", wantMsg: "no route for GET /api/nope"},
		{name: "method", req: httptest.NewRequest("POST", "/api/users/1/dashboard", nil), wantStatus: 405, wantCode: "method_not_allowed", wantMsg: "POST"},
		{name: "bad path param", req: httptest.NewRequest("GET", "/api/users/abc/dashboard", nil), wantStatus: 400, wantCode: "invalid_parameter", wantMsg: `path parameter "id" must be an integer, got "abc"`},
		{name: "escaped traversal", req: httptest.NewRequest("GET", "/api/users/..%2Fadmin/dashboard", nil), wantStatus: 400, wantCode: "invalid_parameter", wantMsg: `path parameter "id" must be an integer, got "../admin"`},
		{name: "query injection", req: httptest.NewRequest("GET", "/api/users/1%3Fx=y/dashboard", nil), wantStatus: 400, wantCode: "invalid_parameter", wantMsg: `"1?x=y"`},
		{name: "query over max", req: httptest.NewRequest("GET", "/api/users/1/dashboard?limit=500", nil), wantStatus: 400, wantCode: "invalid_parameter", wantMsg: `query parameter "limit" must be at most 50, got "500"`},
		{name: "query not int", req: httptest.NewRequest("GET", "/api/users/1/dashboard?limit=", nil), wantStatus: 400, wantCode: "invalid_parameter", wantMsg: `query parameter "limit" must be an integer`},
		{name: "malformed query", req: httptest.NewRequest("GET", "/api/users/1/dashboard?limit=%zz", nil), wantStatus: 400, wantCode: "invalid_parameter", wantMsg: `query string is malformed, got "limit=%zz"`},
		{name: "upstream 404", users: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"error":"no user"}`)
		}, wantStatus: 404, wantCode: "not_found", wantMsg: `call "user" failed: upstream users answered 404`, wantCalls: 1},
		{name: "upstream 500", users: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, wantStatus: 502, wantCode: "upstream_error", wantMsg: `upstream users answered status 500`, wantCalls: 1},
		{name: "upstream 503", users: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }, wantStatus: 503, wantCode: "upstream_unavailable", wantMsg: `upstream users is refusing calls`, wantCalls: 1},
		{name: "non-JSON", users: body(`<html>`), wantStatus: 502, wantCode: "invalid_upstream_response", wantMsg: `upstream users sent a body that is not valid JSON`, wantCalls: 1},
		{name: "truncated JSON", users: body(`{"id":1,"na`), wantStatus: 502, wantCode: "invalid_upstream_response", wantMsg: `call "user"`, wantCalls: 1},
		{name: "deadline", users: blocked, wantStatus: 504, wantCode: "deadline_exceeded", wantMsg: `upstream users did not answer within the deadline`, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := okHandlers()
			if tt.users != nil {
				hs["users"] = tt.users
			}
			h, servers := gateway(t, hs, func(rc *RouteConfig) { rc.Timeout = 300 * time.Millisecond })
			req := tt.req
			if req == nil {
				req = httptest.NewRequest("GET", "/api/users/1/dashboard", nil)
			}
			resp, got := do(t, h, req)
			checkError(t, resp, got, tt.wantStatus, tt.wantCode, tt.wantMsg)
			if n := servers["users"].calls.Load(); n != tt.wantCalls {
				t.Errorf("users upstream called %d times, want %d", n, tt.wantCalls)
			}
		})
	}
}

func checkError(t *testing.T, resp *http.Response, got string, status int, code, msg string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, got)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e apiError
	if err := json.Unmarshal([]byte(got), &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, got)
	}
	if e.Status != status || e.Code != code || !strings.Contains(e.Message, msg) {
		t.Errorf("error = %+v, want status %d, code %q, message containing %q", e, status, code, msg)
	}
}

func TestDegradedHeader(t *testing.T) {
	hs := okHandlers()
	hs["notifications"] = func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }
	hs["recommendations"] = body(`not json`)
	h, _ := gateway(t, hs)
	resp, got := do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d, want 200 (optional failures): %s", resp.StatusCode, got)
	}
	if want := `{"user":{"id":1},"notifications":null,"recommendations":null}` + "\n"; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	if d := resp.Header.Get(DegradedHeader); d != "notifications,recommendations" {
		t.Errorf("%s = %q, want notifications,recommendations", DegradedHeader, d)
	}
}

func TestBodyLimit(t *testing.T) {
	h, servers := gateway(t, okHandlers())
	big := strings.Repeat("x", 65)
	t.Run("declared length", func(t *testing.T) {
		resp, got := do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", strings.NewReader(big)))
		checkError(t, resp, got, 413, "body_too_large", "over the limit of 64 bytes")
	})
	t.Run("chunked", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/api/users/1/dashboard", io.MultiReader(strings.NewReader(big)))
		req.ContentLength, req.TransferEncoding = -1, []string{"chunked"}
		resp, got := do(t, h, req)
		checkError(t, resp, got, 400, "bad_framing", "Transfer-Encoding: chunked")
	})
	t.Run("within limit", func(t *testing.T) {
		resp, got := do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", strings.NewReader("{}")))
		if resp.StatusCode != 200 {
			t.Errorf("status = %d: %s", resp.StatusCode, got)
		}
	})
	if n := servers["users"].calls.Load(); n != 1 {
		t.Errorf("users called %d times, want 1 (only the request within the limit)", n)
	}
}

func TestMissingKeysHeader(t *testing.T) {
	hs := map[string]http.HandlerFunc{
		"orders":   body(`[{"id":1,"items":[{"product_id":1},{"product_id":2},{"product_id":3}]}]`),
		"products": body(`[{"id":2}]`),
	}
	h, servers := gateway(t, hs, func(rc *RouteConfig) {
		rc.Path = "/api/users/{id}/orders-with-products"
		rc.Params = rc.Params[:1]
		rc.Calls = []aggregate.CallConfig{
			{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders"},
			{Name: "products", Upstream: "products", Path: "/products", Batch: &aggregate.BatchConfig{Keys: "orders[].items[].product_id", Stitch: "orders[].items[].product"}},
		}
	})
	resp, got := do(t, h, httptest.NewRequest("GET", "/api/users/1/orders-with-products", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d: %s", resp.StatusCode, got)
	}
	if m := resp.Header.Get(MissingKeysHeader); m != "products=1,3" {
		t.Errorf("%s = %q, want products=1,3", MissingKeysHeader, m)
	}
	if n := servers["products"].calls.Load(); n != 1 {
		t.Errorf("products called %d times, want 1", n)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	h := recoverer(discard())(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	resp, got := do(t, h, httptest.NewRequest("GET", "/", nil))
	checkError(t, resp, got, 500, "internal_error", "the gateway failed")
}

func TestHeadRoute(t *testing.T) {
	h, servers := gateway(t, okHandlers(), func(rc *RouteConfig) { rc.Method = "HEAD" })
	resp, got := do(t, h, httptest.NewRequest("HEAD", "/api/users/1/dashboard", nil))
	if resp.StatusCode != 200 || got != "" {
		t.Fatalf("HEAD: status %d, body %q; want 200 and no body", resp.StatusCode, got)
	}
	if resp.Header.Get("Content-Length") == "0" || resp.Header.Get("Content-Length") == "" {
		t.Errorf("Content-Length = %q, want the GET body's length", resp.Header.Get("Content-Length"))
	}
	if n := servers["users"].calls.Load(); n != 1 {
		t.Errorf("users called %d times, want 1", n)
	}
}
