package routes

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/upstream"
)

// BenchmarkFullyCachedDashboard serves a dashboard whose four calls are all
// cached and warm (L1 hits), through the whole handler chain, against a
// bare net/http handler writing the same bytes: the cost of composing from
// the cache.
func BenchmarkFullyCachedDashboard(b *testing.B) {
	c, err := cache.New(context.Background(), cache.Config{}, cache.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	set, err := upstream.NewSet(dashboardUpstreams(b), upstream.SetOptions{Cache: c})
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	cached := &aggregate.CacheConfig{TTL: time.Hour}
	rc := RouteConfig{Path: "/api/users/{id}/dashboard", Calls: []aggregate.CallConfig{
		{Name: "user", Upstream: "users", Path: "/users/{id}", Cache: cached},
		{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders", Cache: cached},
		{Name: "notifications", Upstream: "notifications", Path: "/users/{id}/notifications", Cache: cached, Optional: true},
		{Name: "recommendations", Upstream: "recommendations", Path: "/users/{id}/recommendations", Cache: cached, Optional: true},
	}}
	h, err := New(Config{Routes: []RouteConfig{rc}}, Options{Stack: set.Stack, Cache: c})
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/users/1/dashboard", nil)) // warm
	body := rec.Body.Bytes()
	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"cached-composite", h}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(bc.h)
			defer srv.Close()
			client := srv.Client()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(srv.URL + "/api/users/1/dashboard")
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// dashboardUpstreams starts the four dashboard upstreams, each answering a
// small fixed body, and returns their configs; they stop with b.
func dashboardUpstreams(b *testing.B) map[string]upstream.Config {
	parts := map[string]string{
		"users": `{"id":1,"name":"Ada"}`, "orders": `[{"id":1},{"id":2}]`,
		"notifications": `[{"id":3}]`, "recommendations": `[{"product_id":4}]`,
	}
	cfgs := map[string]upstream.Config{}
	for name, body := range parts {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }))
		b.Cleanup(s.Close)
		cfgs[name] = upstream.Config{URL: s.URL}
	}
	return cfgs
}
