package ratelimit

import (
	"context"
	"testing"
	"time"
)

// perMinute is 10 requests a minute in bursts of 10: one comes back every
// 6s, far longer than the tests take, so Redis's clock moving between
// calls changes no count.
var perMinute = Config{Rate: 10, Period: time.Minute}

const sixSeconds = 6 * time.Second

// TestRedisSharedLimit has two Limiters, each with a client of its own as
// two replicas would, spend one key: together they allow the burst of 10
// and then both deny.
func TestRedisSharedLimit(t *testing.T) {
	prefix := testPrefix(t)
	a := newLimiter(t, "orders", perMinute, WithRedis(sharedClient(t, prefix), prefix))
	b := newLimiter(t, "orders", perMinute, WithRedis(redisClient(t, sharedRedis), prefix))
	ctx := context.Background()
	for i := range 10 {
		l := []*Limiter{a, b}[i%2]
		d := l.Allow(ctx, "203.0.113.7")
		full := time.Duration(i+1) * sixSeconds
		if !d.Allowed || d.Remaining != 9-i || d.RetryAfter != 0 || d.Reset > full || d.Reset <= full-sixSeconds {
			t.Fatalf("request %d: %+v; want allowed, %d remaining, reset just under %s", i+1, d, 9-i, full)
		}
		if d.Limit != 10 || d.Window != time.Minute || d.Policy != "orders" {
			t.Fatalf("request %d: Limit %d, Window %s, Policy %q; want 10, 1m, orders", i+1, d.Limit, d.Window, d.Policy)
		}
	}
	for name, l := range map[string]*Limiter{"a": a, "b": b} {
		d := l.Allow(ctx, "203.0.113.7")
		if d.Allowed || d.Remaining != 0 || d.RetryAfter <= 0 || d.RetryAfter > sixSeconds || d.Reset <= time.Minute-sixSeconds || d.Reset > time.Minute {
			t.Errorf("11th request on %s: %+v; want denied, retry within 6s, reset just under 1m", name, d)
		}
	}
	if d := b.Allow(ctx, "203.0.113.8"); !d.Allowed || d.Remaining != 9 {
		t.Errorf("another key: %+v, want allowed with 9 remaining", d)
	}
	if a.Fallbacks() != 0 || b.Fallbacks() != 0 {
		t.Errorf("fallbacks %d and %d, want none", a.Fallbacks(), b.Fallbacks())
	}
}

// TestRedisNamesIndependent has two policies share a prefix and a client
// key: each counts its own.
func TestRedisNamesIndependent(t *testing.T) {
	prefix := testPrefix(t)
	rdb := sharedClient(t, prefix)
	orders := newLimiter(t, "orders", Config{Rate: 1, Period: time.Minute}, WithRedis(rdb, prefix))
	users := newLimiter(t, "users", Config{Rate: 1, Period: time.Minute}, WithRedis(rdb, prefix))
	ctx := context.Background()
	if d := orders.Allow(ctx, "k"); !d.Allowed {
		t.Fatalf("orders: %+v, want allowed", d)
	}
	if d := orders.Allow(ctx, "k"); d.Allowed {
		t.Fatalf("orders again: %+v, want denied", d)
	}
	if d := users.Allow(ctx, "k"); !d.Allowed {
		t.Fatalf("users: %+v, want allowed", d)
	}
}

// TestRedisKey checks where a key's state lives and that it expires when
// its quota is whole again.
func TestRedisKey(t *testing.T) {
	prefix := testPrefix(t)
	rdb := sharedClient(t, prefix)
	l := newLimiter(t, "orders", perMinute, WithRedis(rdb, prefix))
	ctx := context.Background()
	l.Allow(ctx, "2001:db8::1")
	ttl, err := rdb.TTL(ctx, redisKey(prefix, "orders:2001:db8::1")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > sixSeconds {
		t.Fatalf("TTL = %s, want the 6s until the quota is whole", ttl)
	}
}

// TestRedisFractionalRate checks that a Rate below one per Period means
// the same in Redis as locally: 0.5 per second is one every 2s.
func TestRedisFractionalRate(t *testing.T) {
	prefix := testPrefix(t)
	l := newLimiter(t, "slow", Config{Rate: 0.5}, WithRedis(sharedClient(t, prefix), prefix))
	ctx := context.Background()
	if d := l.Allow(ctx, "k"); !d.Allowed || d.Limit != 1 || d.Remaining != 0 || d.Window != 2*time.Second {
		t.Fatalf("first request: %+v; want allowed, limit 1, none remaining, window 2s", d)
	}
	if d := l.Allow(ctx, "k"); d.Allowed || d.RetryAfter <= time.Second || d.RetryAfter > 2*time.Second {
		t.Fatalf("second request: %+v; want denied, retry in just under 2s", d)
	}
}

// TestRedisCallerGone asks with a cancelled context: the request is decided
// locally, and Redis is not blamed for it.
func TestRedisCallerGone(t *testing.T) {
	prefix := testPrefix(t)
	var cmds commands
	clk := newClock()
	l := newLimiter(t, "orders", perMinute, WithRedis(sharedClient(t, prefix, &cmds), prefix), WithClock(clk.Now))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d := l.Allow(ctx, "k"); !d.Allowed || d.Remaining != 9 || d.Reset != sixSeconds {
		t.Fatalf("cancelled: %+v; want a local decision: allowed, 9 remaining, reset 6s", d)
	}
	if l.Fallbacks() != 1 {
		t.Fatalf("fallbacks = %d, want 1", l.Fallbacks())
	}
	before := cmds.n.Load()
	if d := l.Allow(context.Background(), "k"); !d.Allowed || d.Remaining != 9 {
		t.Fatalf("next: %+v; want Redis's decision: allowed, 9 remaining", d)
	}
	if cmds.n.Load() == before || l.Fallbacks() != 1 {
		t.Fatalf("after a cancelled call Redis was not asked (%d commands, %d fallbacks)", cmds.n.Load()-before, l.Fallbacks())
	}
}
