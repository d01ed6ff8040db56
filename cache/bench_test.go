package cache

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// benchCache returns a Cache holding e, filled once.
func benchCache(b *testing.B, cfg Config, e Entry, p Policy) *Cache {
	b.Helper()
	c, err := New(context.Background(), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	val := []byte(`{"id":87,"name":"Teapot","price":1999}`)
	if _, _, err := c.Get(context.Background(), e, p, func(context.Context) ([]byte, error) { return val, nil }); err != nil {
		b.Fatal(err)
	}
	return c
}

// noFetch fails the benchmark if a hit was expected.
func noFetch(b *testing.B) Fetcher {
	return func(context.Context) ([]byte, error) {
		b.Error("fetched on the hit path")
		return nil, nil
	}
}

// BenchmarkGetL1Hit is the hot path: a fresh L1 entry, with 0, 1 and 4
// namespace/tag versions to check.
func BenchmarkGetL1Hit(b *testing.B) {
	for _, deps := range []int{0, 1, 4} {
		e := Entry{Key: "products GET /products/87"}
		if deps > 0 {
			e.Namespace = "products"
		}
		for i := 1; i < deps; i++ {
			e.Tags = append(e.Tags, fmt.Sprint("tag", i))
		}
		b.Run(fmt.Sprint("deps=", deps), func(b *testing.B) {
			p := Policy{TTL: time.Hour}
			c := benchCache(b, Config{}, e, p)
			ctx, fetch := context.Background(), noFetch(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, st, _ := c.Get(ctx, e, p, fetch); st != HitL1 {
					b.Fatal(st)
				}
			}
		})
	}
}

// BenchmarkGetL1HitParallel is BenchmarkGetL1Hit from GOMAXPROCS goroutines.
func BenchmarkGetL1HitParallel(b *testing.B) {
	e := Entry{Key: "products GET /products/87", Namespace: "products", Tags: []string{"product:87"}}
	p := Policy{TTL: time.Hour}
	c := benchCache(b, Config{}, e, p)
	ctx, fetch := context.Background(), noFetch(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, st, _ := c.Get(ctx, e, p, fetch); st != HitL1 {
				b.Error(st)
				return
			}
		}
	})
}

// BenchmarkGetL2Hit is an L1 miss answered by the shared Redis: one MGET
// round trip, then an L1 fill.
func BenchmarkGetL2Hit(b *testing.B) {
	prefix := fmt.Sprintf("braidbench:%d:", time.Now().UnixNano())
	cfg := Config{Redis: RedisConfig{URL: "redis://" + sharedRedis + "/0", Prefix: prefix, Timeout: time.Second}}
	e := Entry{Key: "products GET /products/87", Namespace: "products", Tags: []string{"product:87"}}
	p := Policy{TTL: time.Hour}
	c := benchCache(b, cfg, e, p)
	b.Cleanup(func() {
		_, _ = c.Invalidate(context.Background(), Invalidation{Keys: []string{e.Key}})
		c.rdb.Del(context.Background(), c.nsKey("products"), c.tagKey("product:87"))
	})
	ctx, fetch := context.Background(), noFetch(b)
	b.ReportAllocs()
	for b.Loop() {
		c.l1.Invalidate(e.Key)
		if _, st, _ := c.Get(ctx, e, p, fetch); st != HitL2 {
			b.Fatal(st)
		}
	}
}

// BenchmarkLookupL1 is a batch join's lookup of n keys all in L1.
func BenchmarkLookupL1(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprint("keys=", n), func(b *testing.B) {
			c, err := New(context.Background(), Config{}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			es := batch(n)
			p := Policy{TTL: time.Hour}
			ctx := context.Background()
			_, _, snap := c.Lookup(ctx, es, p)
			vals := make([][]byte, n)
			for i := range vals {
				vals[i] = []byte(fmt.Sprint(i))
			}
			c.Fill(ctx, es, vals, p, snap)
			b.ReportAllocs()
			for b.Loop() {
				if _, st, _ := c.Lookup(ctx, es, p); st[n-1] != HitL1 {
					b.Fatal(st[n-1])
				}
			}
		})
	}
}
