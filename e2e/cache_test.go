package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The cache tests run gateways of their own with caching on (the shared
// gateway runs without: most tests count upstream calls), each test under
// a Redis key prefix of its own, deleted when it ends. They prove what the
// cache saves by counting the requests the demo services served, and read
// how each call was answered from the Cache-Status header (RFC 9211) and
// the admin /metrics. The durations they log are not asserted, except the
// invalidation test's bound on pub/sub delivery (see there).

// adminToken is the admin API token of the gateways that have one.
const adminToken = "e2e-cache-admin-token"

// The Cache-Status of a call of the repo's gateway.yaml, as the gateway
// writes it.
const (
	userMiss   = `braid; fwd=miss; key="user"`
	userHitL1  = `braid; hit; detail=l1; key="user"`
	userHitL2  = `braid; hit; detail=l2; key="user"`
	userStale  = `braid; fwd=stale; key="user"`
	batchFresh = `braid; fwd=miss; detail="0 of 50 keys cached"; key="products"`
	batchHit   = `braid; hit; detail="50 of 50 keys cached"; key="products"`
	batchOneIn = `braid; fwd=miss; detail="49 of 50 keys cached"; key="products"`
)

func redisURL() string {
	if v := os.Getenv("BRAID_TEST_REDIS_URL"); v != "" {
		return v
	}
	return "redis://127.0.0.1:6379/0"
}

// keyPrefix returns a Redis key prefix for the test alone: a new one on
// every call, so that a test run again (go test -count=2) does not find
// the keys of its last run (rate-limit buckets outlive the test).
func keyPrefix(t *testing.T) string {
	return fmt.Sprintf("e2e-%d-%d-%s:", os.Getpid(), prefixSeq.Add(1), t.Name())
}

var prefixSeq atomic.Int64

// sharedRedis returns a client of the suite's Redis and a key prefix for
// the test alone. When the test ends, after the gateways it starts later
// have stopped, the prefix's keys are deleted.
func sharedRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(redisURL())
	if err != nil {
		t.Fatalf("BRAID_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		t.Fatalf("Redis is not reachable at %s (%v).\nStart it with: redis-server --daemonize yes --save ''\n"+
			"or set BRAID_TEST_REDIS_URL; scripts/test.sh does this for you", redisURL(), err)
	}
	prefix := keyPrefix(t)
	t.Cleanup(func() {
		defer rdb.Close()
		n, err := deleteKeys(rdb, prefix)
		if err != nil {
			t.Errorf("deleting the keys under %q: %v", prefix, err)
		}
		t.Logf("deleted %d Redis keys under %q", n, prefix)
	})
	return rdb, prefix
}

// deleteKeys deletes every key starting with prefix (SCAN and DEL: fine
// in a test, never in the gateway) and returns how many there were.
func deleteKeys(rdb *redis.Client, prefix string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pattern := regexp.MustCompile(`[*?\[\]\\]`).ReplaceAllString(prefix, `\$0`) + "*"
	n := 0
	it := rdb.Scan(ctx, 0, pattern, 500).Iterator()
	for it.Next(ctx) {
		if err := rdb.Del(ctx, it.Val()).Err(); err != nil {
			return n, err
		}
		n++
	}
	return n, it.Err()
}

// cachingGateway starts a gateway of the test's own on the config file at
// path, with caching on, its L2 in the Redis at redisURL under prefix, and
// no admin token; env is added after, so it may set one. It returns the
// public and admin base URLs.
func cachingGateway(t *testing.T, path, redisURL, prefix string, env ...string) (public, admin string) {
	t.Helper()
	base := []string{"BRAID_CACHE_DISABLED=false", "REDIS_URL=" + redisURL, "BRAID_CACHE_PREFIX=" + prefix, "BRAID_ADMIN_TOKEN="}
	return ownGatewayConfig(t, path, append(base, env...)...)
}

// wantAnswer fails unless a is a 200 that nothing degraded, with
// Cache-Status cache.
func wantAnswer(t *testing.T, what string, a answer, cache string) {
	t.Helper()
	if a.status != 200 || a.degraded != "" || a.cache != cache {
		t.Fatalf("%s: %v\nwant 200, nothing degraded, Cache-Status %q", what, a, cache)
	}
}

// productIDs returns the distinct product ids of an orders-with-products
// answer, in order of appearance, failing if an item has no product.
func productIDs(t *testing.T, body []byte) []int {
	t.Helper()
	var doc struct {
		Orders []struct {
			Items []struct {
				ProductID int `json:"product_id"`
				Product   *struct {
					ID int `json:"id"`
				} `json:"product"`
			} `json:"items"`
		} `json:"orders"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("orders-with-products is not JSON: %v", err)
	}
	var ids []int
	seen := map[int]bool{}
	for _, o := range doc.Orders {
		for _, it := range o.Items {
			if it.Product == nil || it.Product.ID != it.ProductID {
				t.Fatalf("item of product %d has product %+v", it.ProductID, it.Product)
			}
			if !seen[it.ProductID] {
				seen[it.ProductID] = true
				ids = append(ids, it.ProductID)
			}
		}
	}
	return ids
}

// userPart returns the raw "user" member of a dashboard answer.
func userPart(t *testing.T, body []byte) string {
	t.Helper()
	var doc struct{ User json.RawMessage }
	if err := json.Unmarshal(body, &doc); err != nil || doc.User == nil {
		t.Fatalf("dashboard has no user (%v): %.300s", err, body)
	}
	return string(doc.User)
}

// invalidate posts body to the admin cache API at admin, with token as a
// bearer token unless it is "", and returns the status and body.
func invalidate(t *testing.T, admin, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", admin+"/cache/invalidate", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST /cache/invalidate: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST /cache/invalidate: reading body: %v", err)
	}
	return resp.StatusCode, b
}

// cacheEvents returns braid_cache_events_total{layer,event} from the admin
// /metrics at admin; 0 when it was never counted.
func cacheEvents(t *testing.T, admin, layer, event string) float64 {
	t.Helper()
	_, body := get(t, admin+"/metrics")
	want := []string{`layer="` + layer + `"`, `event="` + event + `"`}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "braid_cache_events_total{") || !strings.Contains(line, want[0]) || !strings.Contains(line, want[1]) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		return v
	}
	return 0
}

// idRecorder stands in front of the demo products service and records the
// ids query of each GET /products it passes on: which keys a batch fetched.
type idRecorder struct {
	URL string
	mu  sync.Mutex
	ids []string // guarded by mu
}

func recordProducts(t *testing.T) *idRecorder {
	t.Helper()
	target, err := url.Parse(stack.services["products"])
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }, Transport: tr}
	rec := &idRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/products" {
			rec.mu.Lock()
			rec.ids = append(rec.ids, r.URL.Query().Get("ids"))
			rec.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	rec.URL = srv.URL
	return rec
}

// requests returns the ids query of each batch request so far.
func (r *idRecorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// TestCacheBatchRepeat: user 7's orders-with-products twice within the
// products' TTL. The first fetches the 50 products in one batch; the second
// finds all 50 keys cached, reaches no products service, and answers the
// same bytes. With no admin token configured the cache API answers 404.
func TestCacheBatchRepeat(t *testing.T) {
	resetDemo(t)
	_, prefix := sharedRedis(t)
	gw, admin := cachingGateway(t, repoConfig, redisURL(), prefix)

	first := ask(t, gw, batchPath)
	wantAnswer(t, "first request", first, batchFresh)
	if p := served(t, "products"); p != 1 {
		t.Fatalf("products served %d for the first request, want 1 batch", p)
	}
	second := ask(t, gw, batchPath)
	wantAnswer(t, "second request", second, batchHit)
	if p, o := served(t, "products"), served(t, "orders"); p != 1 || o != 2 {
		t.Errorf("products served %d, orders %d after two requests; want 1 (the second from the cache) and 2 (orders are not cached)", p, o)
	}
	if !bytes.Equal(first.body, second.body) {
		t.Errorf("the cached answer differs from the fetched one:\n%.300s\n%.300s", first.body, second.body)
	}
	t.Logf("orders-with-products: %v fetching 50 products, %v with all 50 cached (not asserted)", first.took, second.took)

	if status, body := invalidate(t, admin, adminToken, `{"tags":["product:1"]}`); status != 404 {
		t.Errorf("POST /cache/invalidate without an admin token configured: %d %s; want 404", status, body)
	}
}

// TestCacheSharedBetweenReplicas: two gateways share one Redis under one
// prefix. Once A has answered user 7's orders-with-products and user 1's
// dashboard, B's first identical requests reach neither products nor
// users: B finds them in L2, and then in its own L1.
func TestCacheSharedBetweenReplicas(t *testing.T) {
	resetDemo(t)
	_, prefix := sharedRedis(t)
	a, _ := cachingGateway(t, repoConfig, redisURL(), prefix)
	b, _ := cachingGateway(t, repoConfig, redisURL(), prefix)

	aBatch := ask(t, a, batchPath)
	wantAnswer(t, "A's orders-with-products", aBatch, batchFresh)
	aDash := ask(t, a, dashboardPath)
	wantAnswer(t, "A's dashboard", aDash, userMiss)
	if u, p := served(t, "users"), served(t, "products"); u != 1 || p != 1 {
		t.Fatalf("users served %d, products %d for A; want 1 and 1", u, p)
	}

	bBatch := ask(t, b, batchPath)
	wantAnswer(t, "B's first orders-with-products", bBatch, batchHit)
	bDash := ask(t, b, dashboardPath)
	wantAnswer(t, "B's first dashboard", bDash, userHitL2)
	if u, p := served(t, "users"), served(t, "products"); u != 1 || p != 1 {
		t.Errorf("users served %d, products %d after B's requests; want still 1 and 1: B's answers come from L2", u, p)
	}
	if !bytes.Equal(aBatch.body, bBatch.body) {
		t.Errorf("B's orders-with-products differs from A's:\n%.300s\n%.300s", aBatch.body, bBatch.body)
	}
	if ua, ub := userPart(t, aDash.body), userPart(t, bDash.body); ua != ub {
		t.Errorf("B's user %s, A's %s", ub, ua)
	}
	wantAnswer(t, "B's second dashboard", ask(t, b, dashboardPath), userHitL1)
	if u := served(t, "users"); u != 1 {
		t.Errorf("users served %d, want 1", u)
	}
}

// TestCacheInvalidationReachesReplicas: A and B share user 7's 50 cached
// products. Invalidating the tag of one of them on A's admin API (the
// wrong token, or none, is refused first) makes B's next orders-with-
// products fetch that product again and only it, in one request asking for
// just its id; A then finds B's new copy in L2. The invalidation travels to
// B by Redis pub/sub: B is polled from A's answer on, and must refetch on a
// request sent within 100ms of it. That is the one wall-clock bound of the
// suite, deliberately (it is the promise of the broadcast), and generous:
// A publishes before it answers, and the message is local.
func TestCacheInvalidationReachesReplicas(t *testing.T) {
	resetDemo(t)
	_, prefix := sharedRedis(t)
	rec := recordProducts(t)
	token := "BRAID_ADMIN_TOKEN=" + adminToken
	a, admin := cachingGateway(t, repoConfig, redisURL(), prefix, token)
	b, _ := cachingGateway(t, repoConfig, redisURL(), prefix, token, "PRODUCTS_URL="+rec.URL)

	warm := ask(t, a, batchPath)
	wantAnswer(t, "A's orders-with-products", warm, batchFresh)
	wantAnswer(t, "B's orders-with-products", ask(t, b, batchPath), batchHit)
	ids := productIDs(t, warm.body)
	if len(ids) != 50 || len(rec.requests()) != 0 {
		t.Fatalf("%d products; B asked products for %q; want 50 and nothing", len(ids), rec.requests())
	}
	id := ids[len(ids)/2]
	inv := fmt.Sprintf(`{"tags":["product:%d"]}`, id)

	for _, tok := range []string{"", "wrong-" + adminToken} {
		if status, body := invalidate(t, admin, tok, inv); status != 401 || !strings.Contains(string(body), `"unauthorized"`) {
			t.Errorf("POST /cache/invalidate with token %q: %d %s; want 401 unauthorized", tok, status, body)
		}
	}
	wantAnswer(t, "B after refused invalidations", ask(t, b, batchPath), batchHit)
	before := served(t, "products")

	status, body := invalidate(t, admin, adminToken, inv)
	answered := time.Now()
	if status != 200 {
		t.Fatalf("POST /cache/invalidate %s: %d %s", inv, status, body)
	}
	var out struct {
		Invalidated struct {
			Tags     []string
			Versions map[string]uint64
		}
	}
	tag := fmt.Sprintf("product:%d", id)
	if err := json.Unmarshal(body, &out); err != nil || len(out.Invalidated.Tags) != 1 || out.Invalidated.Tags[0] != tag ||
		out.Invalidated.Versions["tag:"+tag] < 1 {
		t.Errorf("invalidation answered %s (%v); want tag %s at a version >= 1", body, err, tag)
	}

	var (
		refetch answer
		sentAt  time.Duration // since the invalidation's answer, of the request that refetched
		polls   int
	)
	for len(rec.requests()) == 0 {
		if polls > 0 && time.Since(answered) > 5*time.Second {
			t.Fatalf("B made no products request within 5s of the invalidation (%d polls); last %v", polls, refetch)
		}
		sentAt = time.Since(answered)
		refetch = ask(t, b, batchPath)
		polls++
		if len(rec.requests()) == 0 {
			wantAnswer(t, "B before the invalidation reached it", refetch, batchHit)
		}
	}
	t.Logf("B refetched product %d at poll %d, sent %v after the invalidation's answer (answered in %v)", id, polls, sentAt, refetch.took)
	wantAnswer(t, "B's refetch", refetch, batchOneIn)
	if got := rec.requests(); len(got) != 1 || got[0] != strconv.Itoa(id) {
		t.Errorf("B asked products for ids %q, want exactly [%d]", got, id)
	}
	if p := served(t, "products") - before; p != 1 {
		t.Errorf("products served %d requests after the invalidation, want 1", p)
	}
	if sentAt > 100*time.Millisecond {
		t.Errorf("B refetched on a request sent %v after the invalidation's answer, want within 100ms", sentAt)
	}
	if got := productIDs(t, refetch.body); len(got) != 50 {
		t.Errorf("B's refetch has %d products, want 50", len(got))
	}

	wantAnswer(t, "A after the invalidation", ask(t, a, batchPath), batchHit)
	if p := served(t, "products") - before; p != 1 {
		t.Errorf("products served %d requests after A's request, want still 1: A finds B's refetched copy in L2", p)
	}
}

// ownRedis is a redis-server of the test's own, without persistence.
type ownRedis struct {
	t    *testing.T
	port int
	p    *process
}

// startOwnRedis starts a redis-server on port (0: a free one) and waits
// until it accepts connections. It is killed when the test ends.
func startOwnRedis(t *testing.T, port int) *ownRedis {
	t.Helper()
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	p, err := start("redis-server", "redis-server", nil, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	if _, err := p.await(10*time.Second, regexp.MustCompile(`(Ready) to accept connections`)); err != nil {
		t.Fatal(err)
	}
	return &ownRedis{t: t, port: port, p: p}
}

func (r *ownRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// loadStats counts the answers of a load, split at the Redis kill.
type loadStats struct {
	killed   atomic.Bool
	sent     [2]atomic.Int64 // before and after the kill
	failed   atomic.Int64    // not 200, or no answer
	degraded atomic.Int64    // 200 with Braid-Degraded
	mu       sync.Mutex
	failures []string // the first few, guarded by mu
}

// run sends requests to base from workers goroutines, each one at a time,
// until d has passed, mixing dashboards and orders-with-products over a
// few users.
func (s *loadStats) run(base string, workers int, d time.Duration) {
	lc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	defer lc.CloseIdleConnections()
	users := []int{1, 2, 3, 4, 5, 7}
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				path := fmt.Sprintf("/api/users/%d/dashboard", users[(w+i)%len(users)])
				if i%2 == 1 {
					path = fmt.Sprintf("/api/users/%d/orders-with-products", users[(w+i)%len(users)])
				}
				phase := 0
				if s.killed.Load() {
					phase = 1
				}
				s.sent[phase].Add(1)
				s.one(lc, base+path)
			}
		})
	}
	wg.Wait()
}

func (s *loadStats) one(lc *http.Client, u string) {
	resp, err := lc.Get(u)
	var problem string
	switch {
	case err != nil:
		problem = err.Error()
	default:
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
			problem = "reading body: " + rerr.Error()
		case resp.StatusCode != 200:
			problem = fmt.Sprintf("status %d: %.200s", resp.StatusCode, b)
		case resp.Header.Get("Braid-Degraded") != "":
			s.degraded.Add(1)
		}
	}
	if problem == "" {
		return
	}
	s.failed.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) < 5 {
		s.failures = append(s.failures, u+": "+problem)
	}
}

// TestCacheSurvivesRedisOutage: a gateway's Redis is killed in the middle
// of a load of 20 concurrent clients; not one request fails. Restarted on
// the same port, the Redis is used again by the same gateway, without a
// restart: it fills L2 with what it fetches, and a second gateway's first
// request for that finds it in L2.
func TestCacheSurvivesRedisOutage(t *testing.T) {
	resetDemo(t)
	srv := startOwnRedis(t, 0)
	prefix := keyPrefix(t)
	gw, admin := cachingGateway(t, repoConfig, srv.url(), prefix)

	const workers, loadFor, killAfter = 20, 3 * time.Second, time.Second
	var s loadStats
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(gw, workers, loadFor)
	}()
	time.Sleep(killAfter)
	srv.p.kill()
	s.killed.Store(true)
	<-done
	before, after := s.sent[0].Load(), s.sent[1].Load()
	l2Errors := cacheEvents(t, admin, "l2", "error")
	t.Logf("%d requests with Redis up, %d after it was killed (%d workers, %v), %d failed, %d degraded; %.0f L2 errors counted",
		before, after, workers, loadFor, s.failed.Load(), s.degraded.Load(), l2Errors)
	if n := s.failed.Load(); n > 0 {
		t.Errorf("%d requests failed while Redis died, want 0; first: %q", n, s.failures)
	}
	if n := s.degraded.Load(); n > 0 {
		t.Errorf("%d answers were degraded while Redis died, want 0", n)
	}
	if before == 0 || after == 0 || l2Errors == 0 {
		t.Fatalf("the load did not span the outage: %d requests before the kill, %d after, %.0f L2 errors", before, after, l2Errors)
	}

	startOwnRedis(t, srv.port)
	restarted := time.Now()
	fills := cacheEvents(t, admin, "l2", "fill")
	user := 100
	for {
		user++
		wantAnswer(t, "a dashboard after the restart", ask(t, gw, fmt.Sprintf("/api/users/%d/dashboard", user)), userMiss)
		if cacheEvents(t, admin, "l2", "fill") > fills {
			break
		}
		if time.Since(restarted) > 15*time.Second {
			t.Fatalf("the gateway stored nothing in the restarted Redis within 15s (%d dashboards)", user-100)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("L2 filled again %v after the restart, at dashboard %d", time.Since(restarted).Round(time.Millisecond), user-100)

	users := served(t, "users")
	b, _ := cachingGateway(t, repoConfig, srv.url(), prefix)
	wantAnswer(t, "a second gateway's dashboard", ask(t, b, fmt.Sprintf("/api/users/%d/dashboard", user)), userHitL2)
	if u := served(t, "users") - users; u != 0 {
		t.Errorf("users served %d for the second gateway's dashboard, want 0: an L2 hit", u)
	}
}

// staleConfig is a gateway.yaml whose cached call expires quickly: a user
// fresh for 200ms, then served for 1s more if fetching it fails.
const staleConfig = `
cache:
  disabled: ${BRAID_CACHE_DISABLED:-false}
  redis:
    url: ${REDIS_URL}
    prefix: "${BRAID_CACHE_PREFIX}"
upstreams:
  users:
    url: ${USERS_URL}
routes:
  - path: /api/users/{id}/profile
    timeout: 2s
    params:
      - name: id
        type: int
        min: 1
    calls:
      - name: user
        upstream: users
        path: /users/{id}
        cache: {ttl: 200ms, stale_if_error: 1s}
`

// TestCacheStaleIfError: the repo's user entry lives 30s, too long to
// wait for, so this gateway runs a config of its own with the same kind of
// entry fresh for 200ms and stale_if_error 1s. Once users resets every
// connection, the entry is served from L1 while fresh, then stale (the
// same bytes, 200) while fetching it fails within the window, and the
// request fails only after that.
func TestCacheStaleIfError(t *testing.T) {
	resetDemo(t)
	_, prefix := sharedRedis(t)
	config := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(config, []byte(staleConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	gw, _ := cachingGateway(t, config, redisURL(), prefix)
	const path = "/api/users/3/profile"
	fresh := ask(t, gw, path)
	filled := time.Now()
	wantAnswer(t, "first profile", fresh, userMiss)
	setFaults(t, "users", `{"reset":true}`)

	var a answer
	hits, stale := 0, 0
	for a = ask(t, gw, path); a.cache == userHitL1; a = ask(t, gw, path) {
		hits++
		if time.Since(filled) > 5*time.Second {
			t.Fatalf("the user entry was still fresh 5s after its 200ms TTL began")
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantAnswer(t, "the first profile past the TTL", a, userStale)
	if !bytes.Equal(a.body, fresh.body) {
		t.Errorf("stale answer %.300s, want the cached %.300s", a.body, fresh.body)
	}
	if u := served(t, "users"); u < 2 {
		t.Errorf("users served %d, want the first fetch and at least one failed try before serving stale", u)
	}
	staleFrom := time.Since(filled)
	for ; a.cache == userStale; a = ask(t, gw, path) {
		stale++
		if !bytes.Equal(a.body, fresh.body) {
			t.Fatalf("stale answer %.300s, want the cached %.300s", a.body, fresh.body)
		}
		if time.Since(filled) > 10*time.Second {
			t.Fatalf("stale answers went on for 10s, want about 1s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a.status != 502 && a.status != 503 {
		t.Errorf("after the stale_if_error window: %v; want 502 (users failing) or 503 (its breaker open)", a)
	}
	t.Logf("%d L1 hits, then %d stale answers from %v to %v after the fill, then %d %s (not asserted)",
		hits, stale, staleFrom.Round(time.Millisecond), time.Since(filled).Round(time.Millisecond), a.status, a.code)
}
