package cache

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestInvalidate(t *testing.T) {
	product := Entry{Key: "products GET /products/87", Namespace: "products", Tags: []string{"product:87", "catalog"}}
	user := Entry{Key: "users GET /users/1", Namespace: "users", Tags: []string{"user:1", "catalog"}}
	tests := []struct {
		name        string
		inv         Invalidation
		gone, kept  []Entry
		versionKeys map[string]string // Redis key (after the prefix) -> value
	}{
		{"namespace", Invalidation{Namespaces: []string{"products"}}, []Entry{product}, []Entry{user},
			map[string]string{"v:ns:products": "1"}},
		{"tag", Invalidation{Tags: []string{"product:87"}}, []Entry{product}, []Entry{user},
			map[string]string{"v:tag:product:87": "1"}},
		{"shared tag", Invalidation{Tags: []string{"catalog"}}, []Entry{product, user}, nil,
			map[string]string{"v:tag:catalog": "1"}},
		{"key", Invalidation{Keys: []string{user.Key}}, []Entry{user}, []Entry{product}, nil},
		{"unrelated", Invalidation{Namespaces: []string{"orders"}, Tags: []string{"user:2"}}, nil, []Entry{product, user},
			map[string]string{"v:ns:orders": "1", "v:tag:user:2": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, rdb := sharedSetup(t)
			c := newCache(t, cfg, Options{})
			other := newCache(t, cfg, Options{}) // reads L2 only
			p := Policy{TTL: time.Minute}
			srcs := map[string]*source{}
			for _, e := range []Entry{product, user} {
				srcs[e.Key] = new(source)
				wantGet(t, c, e, p, srcs[e.Key].fetch, `"v1"`, Miss)
			}
			if _, err := c.Invalidate(context.Background(), tt.inv); err != nil {
				t.Fatal(err)
			}
			for _, e := range tt.gone {
				wantGet(t, c, e, p, srcs[e.Key].fetch, `"v2"`, Miss)
			}
			for _, e := range tt.kept {
				wantGet(t, c, e, p, srcs[e.Key].fetch, `"v1"`, HitL1)
				wantGet(t, other, e, p, srcs[e.Key].fetch, `"v1"`, HitL2)
			}
			for k, want := range tt.versionKeys {
				if got := rdb.Get(context.Background(), cfg.Redis.Prefix+k).Val(); got != want {
					t.Errorf("Redis %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestInvalidateReturns(t *testing.T) {
	cfg, _ := sharedSetup(t)
	c := newCache(t, cfg, Options{})
	ctx := context.Background()
	if _, err := c.Invalidate(ctx, Invalidation{Tags: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Invalidate(ctx, Invalidation{Tags: []string{"b", "a", "a"}, Namespaces: []string{"n"}, Keys: []string{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	want := Invalidation{Namespaces: []string{"n"}, Tags: []string{"a", "b"}, Keys: []string{"k"},
		Versions: map[string]uint64{"ns:n": 1, "tag:a": 2, "tag:b": 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Invalidate = %+v, want %+v", got, want)
	}
}

func TestInvalidateL1Only(t *testing.T) {
	c := newCache(t, Config{}, Options{})
	e := Entry{Key: "k", Tags: []string{"t"}}
	p := Policy{TTL: time.Minute}
	var src source
	wantGet(t, c, e, p, src.fetch, `"v1"`, Miss)
	got, err := c.Invalidate(context.Background(), Invalidation{Tags: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Versions["tag:t"] != 1 {
		t.Errorf("versions = %v, want tag:t 1", got.Versions)
	}
	wantGet(t, c, e, p, src.fetch, `"v2"`, Miss)
	wantGet(t, c, e, p, src.fetch, `"v2"`, HitL1)
}

// TestNoStaleWrite invalidates a tag while a fetch of an entry with that
// tag is blocked: the fetched value is returned but stored nowhere, whether
// the invalidation comes from the same replica or from another.
func TestNoStaleWrite(t *testing.T) {
	for _, from := range []string{"same replica", "other replica"} {
		t.Run(from, func(t *testing.T) {
			cfg, rdb := sharedSetup(t)
			var ev events
			c := newCache(t, cfg, Options{OnEvent: ev.on})
			invalidator := c
			if from == "other replica" {
				invalidator = newCache(t, cfg, Options{})
			}
			e := Entry{Key: "products GET /products/87", Tags: []string{"product:87"}}
			p := Policy{TTL: time.Minute}
			var src source
			entered, release := make(chan struct{}), make(chan struct{})
			got := make(chan string, 1)
			go func() {
				v, st, err := c.Get(context.Background(), e, p, func(ctx context.Context) ([]byte, error) {
					close(entered)
					<-release
					return src.fetch(ctx)
				})
				got <- string(v) + " " + st.String() + " " + errString(err)
			}()
			<-entered
			if _, err := invalidator.Invalidate(context.Background(), Invalidation{Tags: []string{"product:87"}}); err != nil {
				t.Fatal(err)
			}
			close(release)
			if g := <-got; g != `"v1" miss <nil>` {
				t.Fatalf("Get = %s, want the fetched value", g)
			}
			if n := rdb.Exists(context.Background(), cfg.Redis.Prefix+"e:"+e.Key).Val(); n != 0 {
				t.Error("the stale value was written to L2")
			}
			if ev.count(LayerL1, EventFill) != 0 {
				t.Error("the stale value was written to L1")
			}
			wantGet(t, c, e, p, src.fetch, `"v2"`, Miss)
			wantGet(t, c, e, p, src.fetch, `"v2"`, HitL1)
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestInvalidateReachesReplicas: an invalidation on A is applied by B within
// 100ms (polled), and B's next Get fetches again.
func TestInvalidateReachesReplicas(t *testing.T) {
	cfg, _ := sharedSetup(t)
	a := newCache(t, cfg, Options{})
	b := newCache(t, cfg, Options{})
	e := Entry{Key: "k", Namespace: "products"}
	p := Policy{TTL: time.Minute}
	var src source
	wantGet(t, a, e, p, src.fetch, `"v1"`, Miss)
	wantGet(t, b, e, p, src.fetch, `"v1"`, HitL2)
	wantGet(t, b, e, p, src.fetch, `"v1"`, HitL1)

	start := time.Now()
	inv, err := a.Invalidate(context.Background(), Invalidation{Namespaces: []string{"products"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 100*time.Millisecond, "B applying the invalidation", func() bool {
		return b.vers.get(b.nsKey("products")) == inv.Versions["ns:products"]
	})
	t.Logf("B applied the invalidation %s after A's Invalidate was called", time.Since(start))
	wantGet(t, b, e, p, src.fetch, `"v2"`, Miss)
	wantGet(t, a, e, p, src.fetch, `"v2"`, HitL2)
}

// TestSubscriptionLoss kills the replicas' pub/sub connections from the
// server: B flushes its L1 (its next Get is an L2 hit) and, once
// resubscribed, still gets invalidations.
func TestSubscriptionLoss(t *testing.T) {
	srv := startRedis(t, 0)
	prefix := testPrefix(t)
	cfg := Config{Redis: RedisConfig{URL: srv.url(), Prefix: prefix, Timeout: time.Second}}
	rdb := redisClient(t, srv.addr(), prefix)
	var ev events
	a := newCache(t, cfg, Options{})
	b := newCache(t, cfg, Options{OnEvent: ev.on})
	e := Entry{Key: "k", Tags: []string{"t"}}
	p := Policy{TTL: time.Minute}
	var src source
	wantGet(t, a, e, p, src.fetch, `"v1"`, Miss)
	wantGet(t, b, e, p, src.fetch, `"v1"`, HitL2)
	wantGet(t, b, e, p, src.fetch, `"v1"`, HitL1)

	ctx := context.Background()
	if err := rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "B resubscribed", func() bool { return b.subs.Load() >= 2 })
	waitFor(t, 5*time.Second, "A resubscribed", func() bool { return a.subs.Load() >= 2 })
	if n := ev.count(LayerL1, EventFlush); n < 1 {
		t.Errorf("flush events = %d, want at least 1", n)
	}
	wantGet(t, b, e, p, src.fetch, `"v1"`, HitL2) // flushed from L1, still in L2

	inv, err := a.Invalidate(ctx, Invalidation{Tags: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "B applying the invalidation", func() bool {
		return b.vers.get(b.tagKey("t")) == inv.Versions["tag:t"]
	})
	wantGet(t, b, e, p, src.fetch, `"v2"`, Miss)
}

// TestPingKeepsSubscription: a quiet subscription is pinged, and the pongs
// keep it, with no flush.
func TestPingKeepsSubscription(t *testing.T) {
	srv := startRedis(t, 0)
	var ev events
	c := newCache(t, Config{Redis: RedisConfig{URL: srv.url(), Timeout: time.Second}},
		Options{OnEvent: ev.on, pingEvery: 20 * time.Millisecond})
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer rdb.Close()
	waitFor(t, 10*time.Second, "5 pings", func() bool {
		return pingCalls(t, rdb) >= 5
	})
	if n := ev.count(LayerL1, EventFlush); n != 0 {
		t.Errorf("flushes = %d, want 0", n)
	}
	if n := c.subs.Load(); n != 1 {
		t.Errorf("subscriptions = %d, want 1", n)
	}
}

// pingCalls returns how many PINGs the server has answered.
func pingCalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info := rdb.InfoMap(context.Background(), "commandstats").Val()
	stat := info["Commandstats"]["cmdstat_ping"] // calls=N,usec=...
	var n int
	for _, kv := range strings.Split(stat, ",") {
		if v, ok := strings.CutPrefix(kv, "calls="); ok {
			n, _ = strconv.Atoi(v)
		}
	}
	return n
}
