package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/braidgw/braid/breaker"
)

// TestRedisOutage kills the cache's Redis: Get keeps answering from L1 or
// the fetch, without error, and the L2 breaker opens; restarted on the same
// port (empty: its versions start again from 0), Redis serves L2 hits again
// to the same Cache, and L1 hits follow.
func TestRedisOutage(t *testing.T) {
	srv := startRedis(t, 0)
	cfg := Config{Redis: RedisConfig{URL: srv.url(), Prefix: testPrefix(t)}} // the default 50ms timeout
	var ev events
	c := newCache(t, cfg, Options{OnEvent: ev.on})
	ctx := context.Background()
	p := Policy{TTL: time.Minute}
	var src source
	cached := Entry{Key: "cached", Namespace: "products"}
	wantGet(t, c, cached, p, src.fetch, `"v1"`, Miss)
	if _, err := c.Invalidate(ctx, Invalidation{Namespaces: []string{"products"}}); err != nil {
		t.Fatal(err)
	}

	srv.kill()
	for i := range 20 {
		if _, st, err := c.Get(ctx, cached, p, src.fetch); err != nil || (st != HitL1 && st != Miss) {
			t.Fatalf("Get(cached) with Redis down = %s, %v; want an L1 hit or a fetch, no error", st, err)
		}
		e := Entry{Key: fmt.Sprint("down-", i), Namespace: "products"}
		if _, st, err := c.Get(ctx, e, p, src.fetch); err != nil || st != Miss {
			t.Fatalf("Get(%s) with Redis down = %s, %v; want a fetch, no error", e.Key, st, err)
		}
	}
	if st := c.br.State(); st != breaker.Open {
		t.Errorf("L2 breaker is %s with Redis down, want open", st)
	}
	if ev.count(LayerL2, EventError) < 20 {
		t.Errorf("l2 error events = %d, want one per Get at least", ev.count(LayerL2, EventError))
	}

	startRedis(t, srv.port)
	waitFor(t, 10*time.Second, "resubscribed", func() bool { return c.subs.Load() >= 2 })
	filler := newCache(t, cfg, Options{}) // a replica that fills L2 once Redis is back
	var e Entry
	i := 0
	waitFor(t, 20*time.Second, "L2 hits after the restart", func() bool {
		i++
		e = Entry{Key: fmt.Sprint("up-", i), Namespace: "products"}
		if _, st, err := filler.Get(ctx, e, p, src.fetch); err != nil || st != Miss {
			t.Fatalf("filler Get = %s, %v", st, err)
		}
		_, st, err := c.Get(ctx, e, p, src.fetch)
		if err != nil {
			t.Fatalf("Get after the restart: %v", err)
		}
		if st != HitL2 {
			time.Sleep(20 * time.Millisecond) // the breaker's open period is ~1s
		}
		return st == HitL2
	})
	if _, st, err := c.Get(ctx, e, p, src.fetch); err != nil || st != HitL1 {
		t.Errorf("Get after an L2 hit = %s, %v; want an L1 hit", st, err)
	}
	if st := c.br.State(); st != breaker.Closed {
		t.Errorf("L2 breaker is %s after L2 hits, want closed", st)
	}
}
