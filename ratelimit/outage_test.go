package ratelimit

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// burst3 is 3 requests in a burst, then one every 6s.
var burst3 = Config{Rate: 10, Period: time.Minute, Burst: 3}

// outage is a Limiter whose Redis a test breaks, with what it observes.
type outage struct {
	l         *Limiter
	clk       *fakeClock
	cmds      *commands // commands the Limiter's client tried to send
	fallbacks *atomic.Int64
	logs      *logs
}

// newOutage returns a Limiter of burst3 using a Redis client of addr, on a
// fake clock, with a 1s backoff without jitter and a 50ms timeout.
func newOutage(t *testing.T, addr, prefix string) *outage {
	t.Helper()
	o := &outage{clk: newClock(), cmds: &commands{}, fallbacks: &atomic.Int64{}, logs: &logs{}}
	rdb := redisClient(t, addr, o.cmds)
	o.l = newLimiter(t, "orders", burst3,
		WithRedis(rdb, prefix), WithClock(o.clk.Now), noJitter,
		WithTimeout(50*time.Millisecond), WithBackoff(time.Second),
		WithOnFallback(func() { o.fallbacks.Add(1) }), WithLogger(slog.New(o.logs)))
	return o
}

// allow decides one request of key and wants w, made locally (a fallback)
// or not, and Redis asked or not.
func (o *outage) allow(t *testing.T, key string, w want, local, asked bool) {
	t.Helper()
	fb, cmds := o.l.Fallbacks(), o.cmds.n.Load()
	wantDecision(t, o.l, key, w)
	if gotLocal := o.l.Fallbacks() == fb+1; gotLocal != local {
		t.Fatalf("decided locally: %t, want %t", gotLocal, local)
	}
	if gotAsked := o.cmds.n.Load() > cmds; gotAsked != asked {
		t.Fatalf("Redis asked: %t, want %t", gotAsked, asked)
	}
	if o.fallbacks.Load() != int64(o.l.Fallbacks()) {
		t.Fatalf("OnFallback called %d times, Fallbacks() = %d", o.fallbacks.Load(), o.l.Fallbacks())
	}
}

// TestRedisRefused points a Limiter at a port nobody listens on: every
// request is decided by the local limiter, exactly, without error; Redis
// is tried once per backoff, not on every request.
func TestRedisRefused(t *testing.T) {
	o := newOutage(t, closedAddr(t), testPrefix(t))
	o.allow(t, "k", want{allowed: true, remaining: 2, reset: sixSeconds}, true, true)
	o.allow(t, "k", want{allowed: true, remaining: 1, reset: 2 * sixSeconds}, true, false)
	o.allow(t, "k", want{allowed: true, remaining: 0, reset: 3 * sixSeconds}, true, false)
	o.allow(t, "k", want{retryAfter: sixSeconds, reset: 3 * sixSeconds}, true, false)

	o.clk.Advance(time.Second - 1) // still backing off
	o.allow(t, "k", want{retryAfter: sixSeconds - time.Second + 1, reset: 3*sixSeconds - time.Second + 1}, true, false)
	o.clk.Advance(1) // the backoff is over: one probe
	o.allow(t, "k", want{retryAfter: 5 * time.Second, reset: 17 * time.Second}, true, true)
	o.allow(t, "other", want{allowed: true, remaining: 2, reset: sixSeconds}, true, false)

	if got := o.l.Fallbacks(); got != 7 {
		t.Errorf("Fallbacks() = %d, want 7", got)
	}
	if n := o.logs.count(slog.LevelWarn, "redis is failing"); n != 1 {
		t.Errorf("%d outage warnings, want 1 for the whole outage: %q", n, o.logs.recs)
	}
}

// TestRedisHangs puts a proxy that accepts connections and never answers
// in front of the Limiter: each call gives up after the timeout and the
// request is decided locally; the backoff spares the next requests the
// wait.
func TestRedisHangs(t *testing.T) {
	p := startProxy(t, sharedRedis)
	p.setHang(true)
	o := newOutage(t, p.addr, testPrefix(t))
	o.allow(t, "k", want{allowed: true, remaining: 2, reset: sixSeconds}, true, true)
	o.allow(t, "k", want{allowed: true, remaining: 1, reset: 2 * sixSeconds}, true, false)
	o.clk.Advance(time.Second)
	o.allow(t, "k", want{allowed: true, remaining: 0, reset: 2*sixSeconds + 5*time.Second}, true, true)
	o.allow(t, "k", want{retryAfter: 5 * time.Second, reset: 2*sixSeconds + 5*time.Second}, true, false)
}

// TestRedisOutageAndRecovery runs a Limiter through a proxy to the shared
// Redis, stops the proxy and starts it again: Redis decides while it is
// reachable, keeping its counts through the outage; the local limiter
// decides in between; the outage is logged once and so is the recovery.
func TestRedisOutageAndRecovery(t *testing.T) {
	prefix := testPrefix(t)
	sharedClient(t, prefix) // for the clean-up
	p := startProxy(t, sharedRedis)
	o := newOutage(t, p.addr, prefix)
	ctx := context.Background()

	for i := range 2 {
		d := o.l.Allow(ctx, "k")
		if !d.Allowed || d.Remaining != 2-i || o.l.Fallbacks() != 0 {
			t.Fatalf("request %d through Redis: %+v, %d fallbacks; want allowed, %d remaining, none", i+1, d, o.l.Fallbacks(), 2-i)
		}
	}

	p.stop()
	o.allow(t, "k", want{allowed: true, remaining: 2, reset: sixSeconds}, true, true) // the local bucket is its own
	o.allow(t, "k", want{allowed: true, remaining: 1, reset: 2 * sixSeconds}, true, false)

	p.restart()
	o.clk.Advance(time.Second)
	d := o.l.Allow(ctx, "k")
	if !d.Allowed || d.Remaining != 0 || o.l.Fallbacks() != 2 {
		t.Fatalf("after the restart: %+v, %d fallbacks; want Redis's third request: allowed, 0 remaining, still 2", d, o.l.Fallbacks())
	}
	if d := o.l.Allow(ctx, "k"); d.Allowed || o.l.Fallbacks() != 2 {
		t.Fatalf("fourth through Redis: %+v, %d fallbacks; want denied by Redis", d, o.l.Fallbacks())
	}
	if w, i := o.logs.count(slog.LevelWarn, "redis is failing"), o.logs.count(slog.LevelInfo, "redis answers again"); w != 1 || i != 1 {
		t.Errorf("%d outage warnings and %d recoveries logged, want 1 each: %q", w, i, o.logs.recs)
	}
}
