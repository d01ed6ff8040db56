package routes

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/auth"
	"github.com/braidgw/braid/ratelimit"
	"github.com/braidgw/braid/upstream"
)

// BenchmarkEdgeDashboard serves the dashboard's four calls against real
// loopback upstreams, open (/api/users/1/dashboard) and behind a JWT check
// (EdDSA, cached key) and a local per-user rate limit that never refuses
// (/api/me/dashboard): what who-is-calling costs per request.
func BenchmarkEdgeDashboard(b *testing.B) {
	set, err := upstream.NewSet(dashboardUpstreams(b), upstream.SetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	iss, err := auth.NewDemoIssuer(seed, "bench", "braid", "k1")
	if err != nil {
		b.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(iss.JWKS()) }))
	defer jwks.Close()
	calls := func(id string) []aggregate.CallConfig {
		return []aggregate.CallConfig{
			{Name: "user", Upstream: "users", Path: "/users/" + id},
			{Name: "orders", Upstream: "orders", Path: "/users/" + id + "/orders"},
			{Name: "notifications", Upstream: "notifications", Path: "/users/" + id + "/notifications", Optional: true},
			{Name: "recommendations", Upstream: "recommendations", Path: "/users/" + id + "/recommendations", Optional: true},
		}
	}
	v, err := auth.New(auth.Config{Issuer: "bench", Audiences: []string{"braid"}, JWKSURL: jwks.URL})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	lim := ratelimit.New("bench", ratelimit.Config{Rate: 1e5, Burst: 1 << 30})
	defer lim.Close()
	h, err := New(Config{Routes: []RouteConfig{
		{Path: "/api/users/{id}/dashboard", Params: []ParamConfig{{Name: "id", Type: "int"}}, Calls: calls("{id}")},
		{Path: "/api/me/dashboard", Auth: &auth.Config{Issuer: "bench", Audiences: []string{"braid"}, JWKSURL: jwks.URL}, RateLimit: &RateLimitConfig{Config: ratelimit.Config{Rate: 1e5}},
			ForwardHeaders: []string{"Authorization"}, Calls: calls("{auth.sub}")},
	}}, Options{Stack: set.Stack,
		Auth:        func(auth.Config) (*auth.Verifier, error) { return v, nil },
		RateLimiter: func(string, ratelimit.Config) *ratelimit.Limiter { return lim }})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := iss.Mint("1", time.Hour, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, path, token string }{
		{"open", "/api/users/1/dashboard", ""},
		{"auth+ratelimit", "/api/me/dashboard", tok},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			client := srv.Client()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, srv.URL+bc.path, nil)
					if bc.token != "" {
						req.Header.Set("Authorization", "Bearer "+bc.token)
					}
					resp, err := client.Do(req)
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
