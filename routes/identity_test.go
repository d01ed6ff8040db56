package routes

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/auth"
	"github.com/braidgw/braid/ratelimit"
	"github.com/braidgw/braid/upstream"
)

// edgeRig is a /api/me route behind auth and a rate limit, over a real
// JWKS server and a users upstream that records what it receives.
type edgeRig struct {
	h       http.Handler
	issuer  *auth.Issuer
	now     time.Time
	mu      sync.Mutex
	paths   []string
	headers []http.Header
}

func newEdgeRig(t *testing.T, rl *RateLimitConfig, mutate ...func(*Config)) *edgeRig {
	t.Helper()
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	iss, err := auth.NewDemoIssuer(seed, "test-issuer", "braid", "k1")
	if err != nil {
		t.Fatal(err)
	}
	rig := &edgeRig{issuer: iss, now: time.Unix(1_800_000_000, 0)}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(iss.JWKS()) }))
	t.Cleanup(jwks.Close)
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rig.mu.Lock()
		rig.paths = append(rig.paths, r.URL.Path)
		rig.headers = append(rig.headers, r.Header.Clone())
		rig.mu.Unlock()
		w.Header().Set("Content-Language", "fr")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":1}`))
	}))
	t.Cleanup(users.Close)
	set, err := upstream.NewSet(map[string]upstream.Config{"users": {URL: users.URL}}, upstream.SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	cfg := Config{
		Defaults: Defaults{ForwardHeaders: []string{"Accept-Language"}},
		Routes: []RouteConfig{{
			Path:            "/api/me",
			Auth:            &auth.Config{Issuer: "test-issuer", Audiences: []string{"braid"}, JWKSURL: jwks.URL, Scopes: []string{"profile"}},
			RateLimit:       rl,
			ForwardHeaders:  []string{"Authorization", "Accept-Language"},
			ResponseHeaders: []ResponseHeader{{Call: "user", Header: "content-language"}},
			Params:          []ParamConfig{{Name: "id", Type: "int"}},
			Calls: []aggregate.CallConfig{
				{Name: "user", Upstream: "users", Path: "/users/{auth.sub}", Query: map[string]string{"tenant": "{auth.claims.tenant}"}},
			},
		}},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	var verifiers []*auth.Verifier
	var limiters []*ratelimit.Limiter
	h, err := New(cfg, Options{
		Stack: set.Stack,
		Auth: func(c auth.Config) (*auth.Verifier, error) {
			v, err := auth.New(c, auth.WithClock(func() time.Time { return rig.now }))
			verifiers = append(verifiers, v)
			return v, err
		},
		RateLimiter: func(name string, c ratelimit.Config) *ratelimit.Limiter {
			l := ratelimit.New(name, c, ratelimit.WithClock(func() time.Time { return rig.now }))
			limiters = append(limiters, l)
			return l
		},
	})
	t.Cleanup(func() {
		for _, v := range verifiers {
			v.Close()
		}
		for _, l := range limiters {
			l.Close()
		}
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rig.h = h
	return rig
}

func (rig *edgeRig) token(t *testing.T, sub string, claims map[string]any) string {
	t.Helper()
	tok, err := rig.issuer.MintAt(rig.now, sub, time.Hour, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (rig *edgeRig) get(target, token, remote string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if remote != "" {
		req.RemoteAddr = remote
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	rig.h.ServeHTTP(rec, req)
	return rec
}

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("body %q is not a JSON error: %v", rec.Body, err)
	}
	return e.Error
}

// TestAuthRoutes: the user id comes from the verified token only; path
// and query cannot steer it; a missing or bad token is a 401 with a
// challenge and no upstream call, a token without the required scope or a
// claim the route reads is a 403; only allow-listed headers reach the
// upstream; a header is copied from the call's answer.
func TestAuthRoutes(t *testing.T) {
	rig := newEdgeRig(t, nil)
	good := rig.token(t, "7", map[string]any{"scope": "profile", "tenant": "acme"})

	rec := rig.get("/api/me?id=99&sub=3", good, "", "Accept-Language", "fr", "Cookie", "s=1", "X-Other", "x")
	if rec.Code != http.StatusOK {
		t.Fatalf("valid token: %d %s", rec.Code, rec.Body)
	}
	if len(rig.paths) != 1 || rig.paths[0] != "/users/7" {
		t.Fatalf("upstream paths %v, want [/users/7]: the token's sub, not the query's", rig.paths)
	}
	h := rig.headers[0]
	if h.Get("Authorization") != "Bearer "+good || h.Get("Accept-Language") != "fr" {
		t.Errorf("allow-listed headers not forwarded: %v", h)
	}
	if h.Get("Cookie") != "" || h.Get("X-Other") != "" {
		t.Errorf("headers off the allow-list forwarded: %v", h)
	}
	if got := rec.Header().Get("Content-Language"); got != "fr" {
		t.Errorf("Content-Language = %q, want fr from call user", got)
	}

	for _, tt := range []struct {
		name, token string
		status      int
		code        string
		challenge   string
	}{
		{"no token", "", 401, "unauthorized", `Bearer realm="braid"`},
		{"garbage", "abc.def.ghi", 401, "unauthorized", `error="invalid_token"`},
		{"expired", func() string {
			tok, _ := rig.issuer.MintAt(rig.now.Add(-2*time.Hour), "7", time.Hour, map[string]any{"scope": "profile", "tenant": "acme"})
			return tok
		}(), 401, "unauthorized", `error_description="token is expired"`},
		{"no scope", rig.token(t, "7", map[string]any{"tenant": "acme"}), 403, "forbidden", `error="insufficient_scope"`},
		{"no tenant claim", rig.token(t, "7", map[string]any{"scope": "profile"}), 403, "forbidden", ""},
	} {
		before := len(rig.paths)
		rec := rig.get("/api/me", tt.token, "")
		if rec.Code != tt.status || errorCode(t, rec) != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, rec.Code, rec.Body, tt.status, tt.code)
		}
		if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, tt.challenge) {
			t.Errorf("%s: WWW-Authenticate = %q, want it to contain %q", tt.name, got, tt.challenge)
		}
		if len(rig.paths) != before {
			t.Errorf("%s: the upstream was called", tt.name)
		}
	}
}

// TestRateLimitRoutes: the limit counts per token subject on a route with
// auth (two users do not share a bucket), answers 429 with Retry-After and
// RateLimit headers without calling upstreams, and refills with the clock.
func TestRateLimitRoutes(t *testing.T) {
	rig := newEdgeRig(t, &RateLimitConfig{Config: ratelimit.Config{Rate: 1, Period: time.Second, Burst: 3}})
	alice := rig.token(t, "1", map[string]any{"scope": "profile", "tenant": "a"})
	bob := rig.token(t, "2", map[string]any{"scope": "profile", "tenant": "b"})
	codes := func(tok string, n int) []int {
		var out []int
		for range n {
			out = append(out, rig.get("/api/me", tok, "").Code)
		}
		return out
	}
	if got := codes(alice, 4); got[0] != 200 || got[2] != 200 || got[3] != 429 {
		t.Fatalf("alice: %v, want 3 x 200 then 429", got)
	}
	if got := codes(bob, 1); got[0] != 200 {
		t.Errorf("bob shares alice's bucket: %v", got)
	}
	calls := len(rig.paths)
	rec := rig.get("/api/me", alice, "")
	if rec.Code != 429 || errorCode(t, rec) != "rate_limited" || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("over the limit: %d %s Retry-After=%q", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if !strings.Contains(rec.Header().Get("RateLimit-Policy"), "q=3") || !strings.Contains(rec.Header().Get("RateLimit"), "r=0") {
		t.Errorf("RateLimit headers: %q / %q", rec.Header().Get("RateLimit-Policy"), rec.Header().Get("RateLimit"))
	}
	if len(rig.paths) != calls {
		t.Error("a refused request reached the upstream")
	}
	rig.now = rig.now.Add(time.Second)
	if got := codes(alice, 2); got[0] != 200 || got[1] != 429 {
		t.Errorf("after 1 s: %v, want one more 200", got)
	}
}

// TestRateLimitByClientIP: without auth the key is the client IP; the
// X-Forwarded-For of an untrusted peer is ignored, a trusted proxy's is
// read from the right.
func TestRateLimitByClientIP(t *testing.T) {
	rig := newEdgeRig(t, &RateLimitConfig{Config: ratelimit.Config{Rate: 1, Period: time.Hour, Burst: 1}}, func(c *Config) {
		r := &c.Routes[0]
		r.Auth, r.Calls[0].Path, r.Calls[0].Query = nil, "/users/{id}", nil
		r.ForwardHeaders = nil
		c.TrustedProxies = []string{"10.0.0.0/8"}
	})
	get := func(remote, xff string) int {
		if xff == "" {
			return rig.get("/api/me?id=1", "", remote).Code
		}
		return rig.get("/api/me?id=1", "", remote, "X-Forwarded-For", xff).Code
	}
	if get("192.0.2.1:1000", "") != 200 || get("192.0.2.1:2000", "") != 429 {
		t.Fatal("one IP should get exactly its burst of 1")
	}
	if get("192.0.2.1:3000", "198.51.100.9") != 429 {
		t.Error("an untrusted peer's X-Forwarded-For changed its key")
	}
	if get("10.1.1.1:1", "198.51.100.7, 10.2.2.2") != 200 || get("10.1.1.2:1", "203.0.113.5, 198.51.100.7") != 429 {
		t.Error("behind trusted proxies the key is the rightmost untrusted X-Forwarded-For address")
	}
	if get("192.0.2.2:1", "") != 200 {
		t.Error("another IP shares the bucket")
	}
}

// TestClientIP covers the address parsing on its own.
func TestClientIP(t *testing.T) {
	proxies, errs := parseProxies([]string{"10.0.0.0/8", "::1", "192.168.1.1"})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	for _, tt := range []struct{ remote, xff, want string }{
		{"1.2.3.4:5", "", "1.2.3.4"},
		{"1.2.3.4:5", "9.9.9.9", "1.2.3.4"},
		{"10.0.0.1:5", "9.9.9.9", "9.9.9.9"},
		{"10.0.0.1:5", "8.8.8.8, 9.9.9.9, 10.0.0.2", "9.9.9.9"},
		{"[::1]:5", "2001:db8::1", "2001:db8::1"},
		{"10.0.0.1:5", "garbage", "10.0.0.1"},
		{"10.0.0.1:5", "10.0.0.3", "10.0.0.1"},
		{"192.168.1.1:80", "::ffff:7.7.7.7", "7.7.7.7"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := clientIP(r, proxies); got != tt.want {
			t.Errorf("%s via %q: %s, want %s", tt.remote, tt.xff, got, tt.want)
		}
	}
	if _, errs := parseProxies([]string{"10.0.0.0/33", "x"}); len(errs) != 2 || !strings.Contains(errs[0].Error(), "trusted_proxies[0]") {
		t.Errorf("bad proxies: %v", errs)
	}
	_ = netip.Prefix{}
}

// TestEdgeConfigErrors: each mistake in the edge settings is named.
func TestEdgeConfigErrors(t *testing.T) {
	base := func() RouteConfig {
		return RouteConfig{Path: "/x", Calls: []aggregate.CallConfig{{Name: "user", Upstream: "users", Path: "/users/1"}}}
	}
	stack := upstream.Static(map[string]upstream.Fetch{"users": nil})
	for _, tt := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"claim without auth", func(c *Config) { c.Routes[0].Calls[0].Path = "/users/{auth.sub}" }, "routes[0] (/x).calls[0] (user).path: {auth.sub} needs the route's auth section"},
		{"bad claim ref", func(c *Config) { c.Routes[0].Calls[0].Path = "/users/{auth.email}" }, "write {auth.sub} or {auth.claims.NAME}"},
		{"call named auth", func(c *Config) { c.Routes[0].Calls[0].Name = "auth" }, `"auth" is reserved`},
		{"auth without issuer", func(c *Config) { c.Routes[0].Auth = &auth.Config{JWKSURL: "http://x/jwks", Audiences: []string{"a"}} }, "routes[0] (/x).auth: issuer"},
		{"bad rate", func(c *Config) { c.Routes[0].RateLimit = &RateLimitConfig{Config: ratelimit.Config{Rate: -1}} }, "routes[0] (/x).rate_limit: rate_limit.rate"},
		{"bad default rate", func(c *Config) { c.Defaults.RateLimit = &RateLimitConfig{} }, "defaults.rate_limit: rate_limit.rate"},
		{"hop-by-hop forward", func(c *Config) { c.Routes[0].ForwardHeaders = []string{"Connection"} }, "routes[0] (/x).forward_headers[0]: Connection cannot be forwarded"},
		{"default forward", func(c *Config) { c.Defaults.ForwardHeaders = []string{"Te"} }, "defaults.forward_headers[0]: Te cannot be forwarded"},
		{"response header call", func(c *Config) { c.Routes[0].ResponseHeaders = []ResponseHeader{{Call: "nope", Header: "X"}} }, `response_headers[0].call: unknown call "nope"`},
		{"response header name", func(c *Config) { c.Routes[0].ResponseHeaders = []ResponseHeader{{Call: "user", Header: "a b"}} }, `response_headers[0].header: "a b" is not a header name`},
		{"trusted proxy", func(c *Config) { c.TrustedProxies = []string{"nope"} }, `trusted_proxies[0]: "nope" is not an IP address`},
	} {
		cfg := Config{Routes: []RouteConfig{base()}}
		tt.mutate(&cfg)
		_, err := New(cfg, Options{Stack: stack})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestBoundedValue: a copied header is cut at maxHeaderBytes and loses
// control bytes.
func TestBoundedValue(t *testing.T) {
	if got := boundedValue([]string{"fr", "en"}); got != "fr, en" {
		t.Errorf("%q", got)
	}
	if got := boundedValue([]string{"a\r\nb\x00c"}); got != "abc" {
		t.Errorf("%q", got)
	}
	long := boundedValue([]string{strings.Repeat("x", 10*maxHeaderBytes)})
	if len(long) != maxHeaderBytes || !strings.HasSuffix(long, "...") {
		t.Errorf("long value: %d bytes", len(long))
	}
}

// TestCORSOnRoutes: a route with cors answers a preflight OPTIONS itself
// (204, allow headers, no upstream call) and adds the allow-origin header to
// its answers; a route that turns the default off has none.
func TestCORSOnRoutes(t *testing.T) {
	rig := newEdgeRig(t, nil, func(c *Config) {
		c.Defaults.CORS = &CORSConfig{AllowedOrigins: []string{"https://app.example.com"}}
		open := RouteConfig{Path: "/api/open/{id}", Params: []ParamConfig{{Name: "id", Type: "int"}}, CORS: &CORSConfig{Disabled: true},
			Calls: []aggregate.CallConfig{{Name: "user", Upstream: "users", Path: "/users/{id}"}}}
		c.Routes = append(c.Routes, open)
	})
	pre := httptest.NewRequest(http.MethodOptions, "/api/me", nil)
	pre.Header.Set("Origin", "https://app.example.com")
	pre.Header.Set("Access-Control-Request-Method", "GET")
	pre.Header.Set("Access-Control-Request-Headers", "authorization")
	rec := httptest.NewRecorder()
	rig.h.ServeHTTP(rec, pre)
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(strings.ToLower(rec.Header().Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("preflight: %d %v", rec.Code, rec.Header())
	}
	if len(rig.paths) != 0 {
		t.Errorf("a preflight reached the upstream: %v", rig.paths)
	}
	tok := rig.token(t, "7", map[string]any{"scope": "profile", "tenant": "acme"})
	got := rig.get("/api/me", tok, "", "Origin", "https://app.example.com")
	if got.Code != 200 || got.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("GET with Origin: %d, Access-Control-Allow-Origin %q", got.Code, got.Header().Get("Access-Control-Allow-Origin"))
	}
	denied := rig.get("/api/me", "", "", "Origin", "https://app.example.com")
	if denied.Code != 401 || denied.Header().Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("a 401 must carry CORS headers too, so the page can read it: %d %v", denied.Code, denied.Header())
	}
	open := rig.get("/api/open/1", "", "", "Origin", "https://app.example.com")
	if open.Code != 200 || open.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("cors disabled on a route: %d %q", open.Code, open.Header().Get("Access-Control-Allow-Origin"))
	}
	pre2 := httptest.NewRequest(http.MethodOptions, "/api/open/1", nil)
	pre2.Header.Set("Origin", "https://app.example.com")
	pre2.Header.Set("Access-Control-Request-Method", "GET")
	rec2 := httptest.NewRecorder()
	rig.h.ServeHTTP(rec2, pre2)
	if rec2.Code != http.StatusMethodNotAllowed {
		t.Errorf("OPTIONS on a route without cors: %d, want 405", rec2.Code)
	}
}
