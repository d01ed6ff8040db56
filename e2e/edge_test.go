package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// demoToken mints a demo token for sub at the demo users service.
func demoToken(t *testing.T, sub string) string {
	t.Helper()
	resp, body := get(t, stack.services["users"]+"/_demo/token?sub="+sub)
	if resp.StatusCode != 200 {
		t.Fatalf("demo token: %d %s", resp.StatusCode, body)
	}
	return strings.TrimSpace(string(body))
}

// getAuth sends GET url with the bearer token (none when empty) and
// returns the status, headers and body.
func getAuth(t *testing.T, url, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// TestMeRoutes: with the real binaries, a demo token for user 7 gets user
// 7's dashboard and orders from /api/me/...; no token or a forged one is a
// 401 JSON error with a challenge; every answer carries a request id.
func TestMeRoutes(t *testing.T) {
	resetDemo(t)
	public, _ := ownGatewayConfig(t, repoConfig, "BRAID_CACHE_PREFIX="+keyPrefix(t))
	tok := demoToken(t, "7")

	status, hdr, body := getAuth(t, public+"/api/me/dashboard?id=3", tok)
	if status != 200 {
		t.Fatalf("dashboard: %d %s", status, body)
	}
	var dash struct {
		User   struct{ ID int } `json:"user"`
		Orders []struct {
			UserID int `json:"user_id"`
		} `json:"orders"`
	}
	if err := json.Unmarshal(body, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.User.ID != 7 || len(dash.Orders) == 0 || dash.Orders[0].UserID != 7 {
		t.Errorf("dashboard is not user 7's (the token's), whatever the query says: %s", body)
	}
	if hdr.Get("X-Request-Id") == "" || !strings.Contains(hdr.Get("RateLimit-Policy"), "q=100") {
		t.Errorf("headers: X-Request-Id %q, RateLimit-Policy %q", hdr.Get("X-Request-Id"), hdr.Get("RateLimit-Policy"))
	}
	status, _, body = getAuth(t, public+"/api/me/orders-with-products", tok)
	if status != 200 || !strings.Contains(string(body), `"product":{`) {
		t.Errorf("orders-with-products: %d %.200s", status, body)
	}

	forged := tok[:len(tok)-4] + "AAAA"
	for _, bad := range []string{"", forged} {
		status, hdr, body := getAuth(t, public+"/api/me/dashboard", bad)
		var e struct{ Error, Message string }
		if status != 401 || json.Unmarshal(body, &e) != nil || e.Error != "unauthorized" {
			t.Errorf("token %q: %d %s, want a 401 unauthorized JSON error", bad, status, body)
		}
		if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), `Bearer realm="braid"`) {
			t.Errorf("WWW-Authenticate = %q", hdr.Get("WWW-Authenticate"))
		}
	}
}

// lowLimitConfig is the repo's gateway.yaml with the /api/me/... limit
// cut to a burst of 10 and one more a minute, so that counts are exact.
func lowLimitConfig(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(repoConfig)
	if err != nil {
		t.Fatal(err)
	}
	const shipped = "rate_limit: &per_user {rate: 50, burst: 100}"
	if !strings.Contains(string(src), shipped) {
		t.Fatalf("gateway.yaml no longer has %q", shipped)
	}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	out := strings.Replace(string(src), shipped, "rate_limit: &per_user {rate: 1, period: 1m, burst: 10}", 1)
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRateLimitAcrossReplicas: two gateways sharing Redis enforce one
// limit together (10 allowed in all, not 10 each); over it the answer is
// 429 JSON with Retry-After and RateLimit headers. With Redis unreachable
// each gateway still limits on its own, and nothing answers 5xx.
func TestRateLimitAcrossReplicas(t *testing.T) {
	resetDemo(t)
	cfg := lowLimitConfig(t)
	prefix := keyPrefix(t)
	a, _ := ownGatewayConfig(t, cfg, "REDIS_URL="+redisURL(), "BRAID_CACHE_PREFIX="+prefix)
	b, _ := ownGatewayConfig(t, cfg, "REDIS_URL="+redisURL(), "BRAID_CACHE_PREFIX="+prefix)
	tok := demoToken(t, "11")
	count := func(tok string, gws ...string) map[int]int {
		got := map[int]int{}
		for i := range 30 {
			status, hdr, body := getAuth(t, gws[i%len(gws)]+"/api/me/dashboard", tok)
			got[status]++
			if status == 429 && (hdr.Get("Retry-After") == "" || hdr.Get("RateLimit") == "" || !strings.Contains(string(body), `"error":"rate_limited"`)) {
				t.Errorf("429 without Retry-After/RateLimit or JSON: %v %s", hdr, body)
			}
		}
		return got
	}
	got := count(tok, a, b)
	if got[200] < 10 || got[200] > 11 || got[429] != 30-got[200] {
		t.Errorf("two replicas sharing Redis: %v, want 10 (11 if a minute passed) x 200 in all, the rest 429", got)
	}

	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	c, cAdmin := ownGatewayConfig(t, cfg, "REDIS_URL=redis://"+dead.Addr().String()+"/0", "BRAID_CACHE_PREFIX="+prefix)
	d, _ := ownGatewayConfig(t, cfg, "REDIS_URL=redis://"+dead.Addr().String()+"/0", "BRAID_CACHE_PREFIX="+prefix)
	got = count(demoToken(t, "12"), c, d)
	if got[200] < 20 || got[200] > 22 || got[429] != 30-got[200] {
		t.Errorf("Redis down: %v, want each replica's own 10 (20 in all) x 200, the rest 429, no 5xx", got)
	}
	_, metrics := get(t, cAdmin+"/metrics")
	const want = `braid_ratelimit_local_fallbacks_total{http_route="GET /api/me/dashboard"} 15`
	if !strings.Contains(string(metrics), want) {
		t.Errorf("metrics lack %q (each of the replica's 15 decisions was local)", want)
	}
}
