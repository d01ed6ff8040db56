package routes

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braidgw/braid/aggregate"
)

const (
	appOrigin   = "https://app.example.com"
	otherOrigin = "https://evil.example.net"
)

func TestCORSValidate(t *testing.T) {
	origins := func(o ...string) CORSConfig { return CORSConfig{AllowedOrigins: o} }
	with := func(mod func(*CORSConfig)) CORSConfig {
		c := origins(appOrigin)
		mod(&c)
		return c
	}
	tests := []struct {
		name  string
		cfg   CORSConfig
		wants []string // the fields named, in order; none when valid
	}{
		{name: "exact origins", cfg: origins(appOrigin, "http://localhost:3000", "https://*.example.org", "http://[::1]:8080", "http://127.0.0.1:5173")},
		{name: "any origin", cfg: origins("*")},
		{name: "everything set", cfg: CORSConfig{
			AllowedOrigins: []string{appOrigin}, AllowedMethods: []string{"GET", "HEAD", "OPTIONS"},
			AllowedHeaders: []string{"Authorization", "X-Tenant"}, ExposedHeaders: []string{"X-Request-Id", "ETag"},
			AllowCredentials: true, MaxAge: 2 * time.Hour,
		}},
		{name: "any header", cfg: with(func(c *CORSConfig) { c.AllowedHeaders = []string{"*"} })},
		{name: "disabled needs nothing", cfg: CORSConfig{Disabled: true, MaxAge: -1}},

		{name: "no origins", cfg: CORSConfig{AllowCredentials: true}, wants: []string{"cors.allowed_origins"}},
		{name: "star among others", cfg: origins("*", appOrigin), wants: []string{"cors.allowed_origins"}},
		{name: "no scheme", cfg: origins("app.example.com"), wants: []string{"cors.allowed_origins[0]"}},
		{name: "bad scheme", cfg: origins("ftp://app.example.com"), wants: []string{"cors.allowed_origins[0]"}},
		{name: "trailing slash", cfg: origins(appOrigin + "/"), wants: []string{"cors.allowed_origins[0]"}},
		{name: "path", cfg: origins(appOrigin, appOrigin+"/app"), wants: []string{"cors.allowed_origins[1]"}},
		{name: "query", cfg: origins(appOrigin + "?x=1"), wants: []string{"cors.allowed_origins[0]"}},
		{name: "fragment", cfg: origins(appOrigin + "#top"), wants: []string{"cors.allowed_origins[0]"}},
		{name: "user", cfg: origins("https://me@app.example.com"), wants: []string{"cors.allowed_origins[0]"}},
		{name: "default port", cfg: origins("https://app.example.com:443"), wants: []string{"cors.allowed_origins[0]"}},
		{name: "bad port", cfg: origins("http://localhost:99999", "http://localhost:"), wants: []string{"cors.allowed_origins[0]", "cors.allowed_origins[1]"}},
		{name: "bad host", cfg: origins("https://app_1.example.com"), wants: []string{"cors.allowed_origins[0]"}},
		{name: "wildcard not first", cfg: origins("https://app.*.example.com"), wants: []string{"cors.allowed_origins[0]"}},
		{name: "bare wildcard host", cfg: origins("https://*"), wants: []string{"cors.allowed_origins[0]"}},
		{name: "uncanonical ipv6", cfg: origins("http://[0:0::1]:8080"), wants: []string{"cors.allowed_origins[0]"}},
		{name: "duplicate origin", cfg: origins(appOrigin, "HTTPS://App.Example.com"), wants: []string{"cors.allowed_origins[1]"}},
		{name: "lower-case method", cfg: with(func(c *CORSConfig) { c.AllowedMethods = []string{"GET", "head"} }), wants: []string{"cors.allowed_methods[1]"}},
		{name: "invalid method", cfg: with(func(c *CORSConfig) { c.AllowedMethods = []string{"GE T", "*"} }), wants: []string{"cors.allowed_methods[0]", "cors.allowed_methods[1]"}},
		{name: "duplicate method", cfg: with(func(c *CORSConfig) { c.AllowedMethods = []string{"GET", "GET"} }), wants: []string{"cors.allowed_methods[1]"}},
		{name: "invalid header", cfg: with(func(c *CORSConfig) { c.AllowedHeaders = []string{"X Tenant", ""} }), wants: []string{"cors.allowed_headers[0]", "cors.allowed_headers[1]"}},
		{name: "duplicate header", cfg: with(func(c *CORSConfig) { c.AllowedHeaders = []string{"Authorization", "authorization"} }), wants: []string{"cors.allowed_headers[1]"}},
		{name: "star among headers", cfg: with(func(c *CORSConfig) { c.AllowedHeaders = []string{"Authorization", "*"} }), wants: []string{"cors.allowed_headers[1]"}},
		{name: "invalid exposed header", cfg: with(func(c *CORSConfig) { c.ExposedHeaders = []string{"Cache-Status:"} }), wants: []string{"cors.exposed_headers[0]"}},
		{name: "any origin with credentials", cfg: CORSConfig{AllowedOrigins: []string{"*"}, AllowCredentials: true}, wants: []string{"cors.allow_credentials"}},
		{name: "exposing all with credentials", cfg: with(func(c *CORSConfig) { c.AllowCredentials, c.ExposedHeaders = true, []string{"*"} }), wants: []string{"cors.exposed_headers"}},
		{name: "negative max age", cfg: with(func(c *CORSConfig) { c.MaxAge = -time.Second }), wants: []string{"cors.max_age"}},
		{name: "max age over a day", cfg: with(func(c *CORSConfig) { c.MaxAge = 25 * time.Hour }), wants: []string{"cors.max_age"}},
		{name: "max age not whole seconds", cfg: with(func(c *CORSConfig) { c.MaxAge = 1500 * time.Millisecond }), wants: []string{"cors.max_age"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.validate("cors")
			var got []string
			for _, err := range errs {
				var ce *aggregate.ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("error %v is a %T, want *aggregate.ConfigError", err, err)
				}
				got = append(got, ce.Field)
			}
			if !slices.Equal(got, tt.wants) {
				t.Errorf("fields = %q, want %q; errors: %v", got, tt.wants, errors.Join(errs...))
			}
		})
	}
}

func TestCORSValidateNamesRouteField(t *testing.T) {
	var nilCfg *CORSConfig
	if errs := nilCfg.validate("cors"); errs != nil {
		t.Errorf("nil config: %v", errs)
	}
	errs := (&CORSConfig{AllowedOrigins: []string{"https://a.example.com/"}}).validate("routes[2].cors")
	var ce *aggregate.ConfigError
	if len(errs) != 1 || !errors.As(errs[0], &ce) || ce.Field != "routes[2].cors.allowed_origins[0]" {
		t.Fatalf("errors = %v, want one naming routes[2].cors.allowed_origins[0]", errs)
	}
	if !strings.Contains(ce.Msg, "trailing /") {
		t.Errorf("message %q does not say what is wrong", ce.Msg)
	}
}

func TestCORSMiddlewareOff(t *testing.T) {
	var nilCfg *CORSConfig
	for name, c := range map[string]*CORSConfig{"nil": nilCfg, "disabled": {AllowedOrigins: []string{"*"}, Disabled: true}} {
		if wrap, pre := c.middleware(); wrap != nil || pre != nil {
			t.Errorf("%s: middleware() = non-nil, want nils", name)
		}
	}
}

// corsRoute is a route handler that counts its calls.
type corsRoute struct{ calls atomic.Int64 }

func (h *corsRoute) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.calls.Add(1)
	w.Header().Set("X-Request-Id", "req-1")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// corsServe builds c's middleware, which must validate, and serves req
// through wrap (around a counting route handler) or, for OPTIONS, through
// preflight. It returns the response and how often the route ran.
func corsServe(t *testing.T, c CORSConfig, req *http.Request) (*http.Response, int64) {
	t.Helper()
	if errs := c.validate("cors"); errs != nil {
		t.Fatalf("validate: %v", errors.Join(errs...))
	}
	wrap, preflight := c.middleware()
	route := &corsRoute{}
	h := wrap(route)
	if req.Method == http.MethodOptions {
		h = preflight
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result(), route.calls.Load()
}

func corsRequest(method, origin string, header ...string) *http.Request {
	req := httptest.NewRequest(method, "http://gw.example.com/api/users/1/dashboard", nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// listHas reports whether the comma-separated values of h's key include
// want, ignoring case.
func listHas(h http.Header, key, want string) bool {
	for _, v := range h.Values(key) {
		for item := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(item), want) {
				return true
			}
		}
	}
	return false
}

var corsHeaders = []string{
	"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
	"Access-Control-Allow-Credentials", "Access-Control-Expose-Headers", "Access-Control-Max-Age",
}

// noCORS fails t if h holds any CORS response header.
func noCORS(t *testing.T, h http.Header) {
	t.Helper()
	for _, k := range corsHeaders {
		if v, ok := h[k]; ok {
			t.Errorf("%s: %q, want none", k, v)
		}
	}
}

func TestCORSActualRequest(t *testing.T) {
	cfg := CORSConfig{AllowedOrigins: []string{appOrigin, "https://*.example.org"}}
	for _, origin := range []string{appOrigin, "https://APP.example.com", "https://shop.example.org", "https://a.b.example.org"} {
		t.Run("allowed "+origin, func(t *testing.T) {
			resp, calls := corsServe(t, cfg, corsRequest(http.MethodGet, origin))
			if calls != 1 || resp.StatusCode != http.StatusOK {
				t.Fatalf("route ran %d times, status %d; want once, 200", calls, resp.StatusCode)
			}
			h := resp.Header
			if got := h.Get("Access-Control-Allow-Origin"); got != origin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, origin)
			}
			for _, want := range []string{"X-Request-Id", DegradedHeader, MissingKeysHeader, CacheStatusHeader, "Server-Timing", "RateLimit", "RateLimit-Policy", "Retry-After"} {
				if !listHas(h, "Access-Control-Expose-Headers", want) {
					t.Errorf("Access-Control-Expose-Headers %q lacks %s", h.Values("Access-Control-Expose-Headers"), want)
				}
			}
			if !listHas(h, "Vary", "Origin") {
				t.Errorf("Vary = %q, want Origin", h.Values("Vary"))
			}
			if got := h.Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("Access-Control-Allow-Credentials = %q without allow_credentials", got)
			}
		})
	}
	for _, origin := range []string{"", otherOrigin, "http://app.example.com", "https://example.org", "https://app.example.com:8443", "null"} {
		t.Run("refused "+origin, func(t *testing.T) {
			resp, calls := corsServe(t, cfg, corsRequest(http.MethodGet, origin))
			body, _ := io.ReadAll(resp.Body)
			if calls != 1 || resp.StatusCode != http.StatusOK || string(body) != `{"ok":true}` {
				t.Fatalf("route ran %d times, status %d, body %q; want it served as usual", calls, resp.StatusCode, body)
			}
			noCORS(t, resp.Header)
			if !listHas(resp.Header, "Vary", "Origin") {
				t.Errorf("Vary = %q, want Origin: the response depends on it", resp.Header.Values("Vary"))
			}
		})
	}
	t.Run("method not allowed", func(t *testing.T) {
		c := CORSConfig{AllowedOrigins: []string{appOrigin}, AllowedMethods: []string{"GET"}}
		resp, calls := corsServe(t, c, corsRequest(http.MethodHead, appOrigin))
		if calls != 1 {
			t.Errorf("route ran %d times, want 1", calls)
		}
		noCORS(t, resp.Header)
	})
}

func TestCORSPreflight(t *testing.T) {
	preflight := func(origin, method, headers string) *http.Request {
		return corsRequest(http.MethodOptions, origin, "Access-Control-Request-Method", method, "Access-Control-Request-Headers", headers)
	}
	t.Run("allowed", func(t *testing.T) {
		resp, calls := corsServe(t, CORSConfig{AllowedOrigins: []string{appOrigin}}, preflight(appOrigin, "GET", "authorization,x-request-id"))
		if calls != 0 {
			t.Errorf("route ran %d times, want 0", calls)
		}
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("status %d, want 204", resp.StatusCode)
		}
		h := resp.Header
		for k, want := range map[string]string{
			"Access-Control-Allow-Origin":  appOrigin,
			"Access-Control-Allow-Methods": "GET",
			"Access-Control-Allow-Headers": "authorization,x-request-id",
			"Access-Control-Max-Age":       "600",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if got := h.Get("Access-Control-Allow-Credentials"); got != "" {
			t.Errorf("Access-Control-Allow-Credentials = %q without allow_credentials", got)
		}
		if !listHas(h, "Vary", "Origin") || !listHas(h, "Vary", "Access-Control-Request-Method") {
			t.Errorf("Vary = %q", h.Values("Vary"))
		}
	})
	t.Run("credentials and max age", func(t *testing.T) {
		c := CORSConfig{AllowedOrigins: []string{appOrigin}, AllowCredentials: true, MaxAge: time.Hour}
		resp, calls := corsServe(t, c, preflight(appOrigin, "HEAD", ""))
		h := resp.Header
		if calls != 0 || h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Max-Age") != "3600" || h.Get("Access-Control-Allow-Methods") != "HEAD" {
			t.Errorf("route ran %d times; headers %v", calls, h)
		}
	})
	t.Run("through wrap", func(t *testing.T) {
		wrap, _ := (&CORSConfig{AllowedOrigins: []string{appOrigin}}).middleware()
		route := &corsRoute{}
		rec := httptest.NewRecorder()
		wrap(route).ServeHTTP(rec, preflight(appOrigin, "GET", ""))
		if route.calls.Load() != 0 || rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != appOrigin {
			t.Errorf("route ran %d times, status %d, headers %v", route.calls.Load(), rec.Code, rec.Header())
		}
	})
	refused := []struct{ name, origin, method, headers string }{
		{"origin", otherOrigin, "GET", ""},
		{"no origin", "", "GET", ""},
		{"method", appOrigin, "POST", ""},
		{"lower-case method", appOrigin, "get", ""},
		{"header", appOrigin, "GET", "x-tenant"},
	}
	for _, tt := range refused {
		t.Run("refused "+tt.name, func(t *testing.T) {
			resp, calls := corsServe(t, CORSConfig{AllowedOrigins: []string{appOrigin}}, preflight(tt.origin, tt.method, tt.headers))
			if calls != 0 || resp.StatusCode != http.StatusNoContent {
				t.Errorf("route ran %d times, status %d; want 0, 204", calls, resp.StatusCode)
			}
			noCORS(t, resp.Header)
		})
	}
	t.Run("plain OPTIONS", func(t *testing.T) {
		resp, calls := corsServe(t, CORSConfig{AllowedOrigins: []string{appOrigin}}, corsRequest(http.MethodOptions, ""))
		if calls != 0 || resp.StatusCode != http.StatusNoContent {
			t.Errorf("route ran %d times, status %d; want 0, 204", calls, resp.StatusCode)
		}
		noCORS(t, resp.Header)
	})
}

func TestCORSAnyOrigin(t *testing.T) {
	cfg := CORSConfig{AllowedOrigins: []string{"*"}}
	resp, calls := corsServe(t, cfg, corsRequest(http.MethodGet, otherOrigin))
	if got := resp.Header.Get("Access-Control-Allow-Origin"); calls != 1 || got != "*" {
		t.Errorf("actual: route ran %d times, Access-Control-Allow-Origin %q; want 1, *", calls, got)
	}
	resp, calls = corsServe(t, cfg, corsRequest(http.MethodOptions, otherOrigin, "Access-Control-Request-Method", "GET"))
	if got := resp.Header.Get("Access-Control-Allow-Origin"); calls != 0 || got != "*" {
		t.Errorf("preflight: route ran %d times, Access-Control-Allow-Origin %q; want 0, *", calls, got)
	}
}

func TestCORSCredentialsEchoOrigin(t *testing.T) {
	cfg := CORSConfig{AllowedOrigins: []string{"https://*.example.com"}, AllowCredentials: true}
	for _, req := range []*http.Request{
		corsRequest(http.MethodGet, appOrigin),
		corsRequest(http.MethodOptions, appOrigin, "Access-Control-Request-Method", "GET"),
	} {
		resp, _ := corsServe(t, cfg, req)
		h := resp.Header
		if got := h.Values("Access-Control-Allow-Origin"); !slices.Equal(got, []string{appOrigin}) {
			t.Errorf("%s: Access-Control-Allow-Origin = %q, want only %q, never *", req.Method, got, appOrigin)
		}
		if got := h.Get("Access-Control-Allow-Credentials"); got != "true" {
			t.Errorf("%s: Access-Control-Allow-Credentials = %q, want true", req.Method, got)
		}
	}
}

// corsBenchWriter is a ResponseWriter whose header map is reused.
type corsBenchWriter struct{ h http.Header }

func (w *corsBenchWriter) Header() http.Header         { return w.h }
func (w *corsBenchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *corsBenchWriter) WriteHeader(int)             {}

// BenchmarkCORSActual measures what wrap adds to an actual request, against
// the bare route handler.
func BenchmarkCORSActual(b *testing.B) {
	wrap, _ := (&CORSConfig{AllowedOrigins: []string{"https://a.example.com", appOrigin, "https://*.example.org"}, AllowCredentials: true}).middleware()
	route := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	cases := []struct {
		name   string
		h      http.Handler
		origin string
	}{
		{"bare", route, appOrigin},
		{"allowed", wrap(route), appOrigin},
		{"allowed-wildcard", wrap(route), "https://shop.example.org"},
		{"refused", wrap(route), otherOrigin},
		{"no-origin", wrap(route), ""},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			req := corsRequest(http.MethodGet, bc.origin)
			w := &corsBenchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}
