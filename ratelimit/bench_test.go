package ratelimit

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// benchKeys are client keys for the benchmarks, built before the timer.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "198.51." + strconv.Itoa(i/256%256) + "." + strconv.Itoa(i%256)
	}
	return keys
}

// generous allows nearly every request of the benchmarks: a million a
// second per key.
var generous = Config{Rate: 1e6}

// BenchmarkAllowLocal is a decision for one of 1024 known keys on the real
// clock, without Redis.
func BenchmarkAllowLocal(b *testing.B) {
	l := newLimiter(b, "bench", generous)
	keys := benchKeys(1024)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(ctx, keys[i&1023])
		i++
	}
}

// BenchmarkAllowLocalParallel is BenchmarkAllowLocal from GOMAXPROCS
// goroutines sharing the Limiter, as the requests of one route do.
func BenchmarkAllowLocalParallel(b *testing.B) {
	l := newLimiter(b, "bench", generous)
	keys := benchKeys(1024)
	ctx := context.Background()
	var seed atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			l.Allow(ctx, keys[i&1023])
			i++
		}
	})
}

// BenchmarkAllowLocalHotKey has GOMAXPROCS goroutines spend one key: the
// compare-and-swap under contention.
func BenchmarkAllowLocalHotKey(b *testing.B) {
	l := newLimiter(b, "bench", generous)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow(ctx, "203.0.113.7")
		}
	})
}

// BenchmarkAllowLocalNewKeys is a spray: every request from a key the
// store does not hold, in a store full at its bound of 1024.
func BenchmarkAllowLocalNewKeys(b *testing.B) {
	l := newLimiter(b, "bench", generous, WithMaxKeys(1024))
	keys := benchKeys(1 << 16)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(ctx, keys[i&(1<<16-1)])
		i++
	}
}

// BenchmarkAllowRedis is a decision by the shared Redis on 127.0.0.1: one
// EVALSHA round trip.
func BenchmarkAllowRedis(b *testing.B) {
	prefix := testPrefix(b)
	l := newLimiter(b, "bench", generous, WithRedis(sharedClient(b, prefix), prefix))
	keys := benchKeys(1024)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if d := l.Allow(ctx, keys[i&1023]); !d.Allowed {
			b.Fatalf("denied: %+v", d)
		}
		i++
	}
	if n := l.Fallbacks(); n != 0 {
		b.Fatalf("%d fallbacks", n)
	}
}

// BenchmarkAllowRedisParallel is BenchmarkAllowRedis from GOMAXPROCS
// goroutines, round trips overlapping on the client's pool.
func BenchmarkAllowRedisParallel(b *testing.B) {
	prefix := testPrefix(b)
	l := newLimiter(b, "bench", generous, WithRedis(sharedClient(b, prefix), prefix))
	keys := benchKeys(1024)
	ctx := context.Background()
	var seed atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			l.Allow(ctx, keys[i&1023])
			i++
		}
	})
	if n := l.Fallbacks(); n != 0 {
		b.Fatalf("%d fallbacks", n)
	}
}

// BenchmarkAllowRedisDown is a decision while a dead Redis is backed off
// from: what an outage costs each request.
func BenchmarkAllowRedisDown(b *testing.B) {
	clk := newClock() // stands still: the backoff never ends
	l := newLimiter(b, "bench", generous, WithRedis(redisClient(b, closedAddr(b)), ""), WithClock(clk.Now))
	keys := benchKeys(1024)
	ctx := context.Background()
	l.Allow(ctx, keys[0]) // fails, and starts the backoff
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(ctx, keys[i&1023])
		i++
	}
}

// BenchmarkHeaders writes the fields of a denial.
func BenchmarkHeaders(b *testing.B) {
	d := Decision{Limit: 50, RetryAfter: 300 * time.Millisecond, Reset: time.Second, Window: time.Second, Policy: "orders"}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		d.Headers(h)
	}
}
