package routes

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/upstream"
)

// These tests pin what a user sees of the cache through the whole stack:
// real httptest upstreams, real Redis (the one scripts/test.sh ensures), a
// prefix of the test's own.

// idsLog records the ids each products request asked for.
type idsLog struct {
	mu   sync.Mutex
	asks [][]string
}

func (l *idsLog) all() [][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.asks)
}

// catalog serves orders (per user, from ordersOf) and products (any id).
func catalog(t *testing.T, ordersOf map[string][]int) (map[string]string, *idsLog, *counted, *counted) {
	t.Helper()
	log := &idsLog{}
	orders := serveCounted(t, func(w http.ResponseWriter, r *http.Request) {
		user := strings.Split(r.URL.Path, "/")[2]
		var b strings.Builder
		b.WriteString("[")
		for i, p := range ordersOf[user] {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"product_id":%d}`, p)
		}
		b.WriteString("]")
		_, _ = w.Write([]byte(b.String()))
	})
	products := serveCounted(t, func(w http.ResponseWriter, r *http.Request) {
		ids := strings.Split(r.URL.Query().Get("ids"), ",")
		log.mu.Lock()
		log.asks = append(log.asks, ids)
		log.mu.Unlock()
		var b strings.Builder
		b.WriteString("[")
		for i, id := range ids {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id":%s,"name":"p%s"}`, id, id)
		}
		b.WriteString("]")
		_, _ = w.Write([]byte(b.String()))
	})
	return map[string]string{"orders": orders.url, "products": products.url}, log, orders, products
}

// redisPrefix is a Redis key prefix of the test's own; its keys are
// deleted when the test ends.
func redisPrefix(t *testing.T) string {
	t.Helper()
	prefix := fmt.Sprintf("braid-test:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
		defer rdb.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return prefix
}

// cachedGateway builds the public handler with a cache on Redis under
// prefix (clock drives TTLs; nil is the real time), over urls.
func cachedGateway(t *testing.T, prefix string, clock *testClock, urls map[string]string, rc RouteConfig) (http.Handler, *cache.Cache) {
	t.Helper()
	opts := cache.Options{Negative: func(error) bool { return false }}
	if clock != nil {
		opts.Now = clock.Now
	}
	c, err := cache.New(context.Background(), cache.Config{Redis: cache.RedisConfig{URL: "redis://127.0.0.1:6379/0", Prefix: prefix}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	cfgs := map[string]upstream.Config{}
	for name, u := range urls {
		cfgs[name] = upstream.Config{URL: u, Retry: RetryFast}
	}
	set, err := upstream.NewSet(cfgs, upstream.SetOptions{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	h, err := New(Config{Routes: []RouteConfig{rc}}, Options{Stack: set.Stack, Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	return h, c
}

func owpRoute() RouteConfig {
	return RouteConfig{Path: "/api/users/{id}/orders-with-products", Calls: []aggregate.CallConfig{
		{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders"},
		{Name: "products", Upstream: "products", Path: "/products",
			Batch: &aggregate.BatchConfig{Keys: "orders[].product_id", Stitch: "orders[].product"},
			Cache: &aggregate.CacheConfig{TTL: time.Minute, Tags: []string{"product:{key}"}}},
	}}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestBatchCachePerKey(t *testing.T) {
	urls, ids, _, products := catalog(t, map[string][]int{"1": seq(1, 10), "2": seq(3, 12)}) // 80% shared
	h, _ := cachedGateway(t, redisPrefix(t), nil, urls, owpRoute())

	resp, body := do(t, h, httptest.NewRequest("GET", "/api/users/1/orders-with-products", nil))
	if resp.StatusCode != 200 || !strings.Contains(body, `"product":{"id":10,"name":"p10"}`) {
		t.Fatalf("first: %d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get(CacheStatusHeader); got != `braid; fwd=miss; detail="0 of 10 keys cached"; key="products"` {
		t.Errorf("first Cache-Status = %q", got)
	}
	resp, body = do(t, h, httptest.NewRequest("GET", "/api/users/1/orders-with-products", nil))
	if resp.StatusCode != 200 || products.calls.Load() != 1 {
		t.Fatalf("again within the TTL: %d, products called %d times, want 1 in all", resp.StatusCode, products.calls.Load())
	}
	if got := resp.Header.Get(CacheStatusHeader); got != `braid; hit; detail="10 of 10 keys cached"; key="products"` {
		t.Errorf("second Cache-Status = %q", got)
	}
	resp, body = do(t, h, httptest.NewRequest("GET", "/api/users/2/orders-with-products", nil))
	if resp.StatusCode != 200 || !strings.Contains(body, `"product":{"id":12,"name":"p12"}`) || !strings.Contains(body, `"product":{"id":3,"name":"p3"}`) {
		t.Fatalf("user 2: %d %s", resp.StatusCode, body)
	}
	asks := ids.all()
	if len(asks) != 2 || !slices.Equal(asks[1], []string{"11", "12"}) {
		t.Errorf("products asked for %v, want the 10 ids and then only 11,12", asks)
	}
}

func TestCacheSharedByReplicas(t *testing.T) {
	prefix := redisPrefix(t)
	urls, ids, _, products := catalog(t, map[string][]int{"7": {86, 87, 88}})
	a, cacheA := cachedGateway(t, prefix, nil, urls, owpRoute())
	b, _ := cachedGateway(t, prefix, nil, urls, owpRoute())

	if resp, body := do(t, a, httptest.NewRequest("GET", "/api/users/7/orders-with-products", nil)); resp.StatusCode != 200 {
		t.Fatalf("A: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, b, httptest.NewRequest("GET", "/api/users/7/orders-with-products", nil)); resp.StatusCode != 200 || products.calls.Load() != 1 {
		t.Fatalf("B's first request: %d, products called %d times, want 1 (A's): an L2 hit", resp.StatusCode, products.calls.Load())
	}
	if _, err := cacheA.Invalidate(context.Background(), cache.Invalidation{Tags: []string{"product:87"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for products.calls.Load() == 1 && time.Now().Before(deadline) { // the message travels by pub/sub
		do(t, b, httptest.NewRequest("GET", "/api/users/7/orders-with-products", nil))
	}
	asks := ids.all()
	if len(asks) != 2 || !slices.Equal(asks[1], []string{"87"}) {
		t.Errorf("products asked for %v, want all three, then only 87 after its invalidation", asks)
	}
}

func TestCachedCallStatusAndStaleIfError(t *testing.T) {
	clock := &testClock{now: time.Now()}
	var down sync.Map // "users" -> true while failing
	users := serveCounted(t, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := down.Load("users"); ok {
			http.Error(w, `{}`, 500)
			return
		}
		_, _ = w.Write([]byte(`{"id":1,"v":1}`))
	})
	notifs := serveCounted(t, body(`[]`))
	rc := dashboardRoute()
	rc.Calls[0].Cache = &aggregate.CacheConfig{TTL: 30 * time.Second, Namespace: "user:{id}", StaleIfError: 5 * time.Minute}
	h, _ := cachedGateway(t, redisPrefix(t), clock, map[string]string{"users": users.url, "notifications": notifs.url}, rc)

	steps := []struct {
		name    string
		advance time.Duration
		fail    bool
		want    string
	}{
		{"miss", 0, false, `braid; fwd=miss; key="user"`},
		{"hit", time.Second, false, `braid; hit; detail=l1; key="user"`},
		{"expired and the upstream fails: stale", time.Minute, true, `braid; fwd=stale; key="user"`},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if s.fail {
			down.Store("users", true)
		}
		resp, got := do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil))
		if resp.StatusCode != 200 || !strings.Contains(got, `"user":{"id":1,"v":1}`) {
			t.Fatalf("%s: %d %s", s.name, resp.StatusCode, got)
		}
		if cs := resp.Header.Get(CacheStatusHeader); cs != s.want {
			t.Errorf("%s: Cache-Status = %q, want %q", s.name, cs, s.want)
		}
		if st := resp.Header.Get("Server-Timing"); !strings.HasPrefix(st, `user;desc="cache `) {
			t.Errorf("%s: Server-Timing = %q, want the user entry to say how the cache answered", s.name, st)
		}
	}
	if n := users.calls.Load(); n != 2 {
		t.Errorf("users served %d requests, want 2: the miss and the failed refresh", n)
	}
}

func TestCacheConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cc   *aggregate.CacheConfig
		rc   func(*RouteConfig)
		want string
	}{
		{"no ttl", &aggregate.CacheConfig{Namespace: "user:{id}"}, nil, "calls[0] (user).cache.ttl: is required"},
		{"unknown parameter", &aggregate.CacheConfig{TTL: time.Second, Namespace: "user:{nope}"}, nil, "cache.namespace: unknown parameter {nope}"},
		{"{key} outside a batch", &aggregate.CacheConfig{TTL: time.Second, Tags: []string{"product:{key}"}}, nil, "cache.tags: unknown parameter {key}"},
		{"call result", &aggregate.CacheConfig{TTL: time.Second, Tags: []string{"team:{user.team}"}}, nil, "a cache template may name route parameters"},
		{"negative stale window", &aggregate.CacheConfig{TTL: time.Second, StaleIfError: -time.Second}, nil, "stale_if_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := dashboardRoute()
			rc.Calls[0].Cache = tt.cc
			_, err := New(Config{Routes: []RouteConfig{rc}}, Options{Stack: upstream.Static(map[string]upstream.Fetch{"users": nil, "notifications": nil})})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
