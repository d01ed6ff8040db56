package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkStack compares one call through the bare client with the same
// call through the default stack (retry layer, breaker, bulkhead), against
// a healthy loopback upstream: the cost of resilience when all is well, on
// each transport.
func BenchmarkStack(b *testing.B) {
	s := httptest.NewServer(jsonHandler(200, `{"id":1,"name":"Ada"}`))
	defer s.Close()
	off := Config{
		Retry:    RetryConfig{Disabled: true},
		Breaker:  BreakerConfig{Disabled: true},
		Bulkhead: BulkheadConfig{Disabled: true},
	}
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"all-off", off},
		{"defaults", Config{}},
	} {
		for _, tr := range benchTransports {
			b.Run(bc.name+"/"+tr.name, func(b *testing.B) {
				cfg := bc.cfg
				cfg.Transport = tr.transport
				benchmarkFetch(b, s.URL, cfg)
			})
		}
	}
}

// benchmarkFetch runs one small call through the stack built on cfg, from
// parallel goroutines.
func benchmarkFetch(b *testing.B, url string, cfg Config) {
	fetch, _ := stackFor(b, url, cfg, nil)
	req := &Request{Path: "/users/1"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := fetch(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHedge: an upstream whose every tenth answer takes 20ms. Hedging
// after a fixed delay or an observed percentile below the slow tail brings
// the p99 near the fast path (the p95 is itself in the slow tail here, so
// it does not help); the extra calls stay within the retry budget. It
// reports the p99 of the calls and the upstream requests per call.
func BenchmarkHedge(b *testing.B) {
	const slow = 20 * time.Millisecond
	for _, bc := range []struct {
		name  string
		hedge HedgeConfig
	}{
		{"off", HedgeConfig{}},
		{"p95", HedgeConfig{Enabled: true}},
		{"p80", HedgeConfig{Enabled: true, Percentile: 80}},
		{"fixed-2ms", HedgeConfig{Enabled: true, Delay: 2 * time.Millisecond}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n atomic.Int64
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1)%10 == 0 {
					select {
					case <-time.After(slow):
					case <-r.Context().Done():
						return
					}
				}
				jsonHandler(200, `{}`)(w, r)
			}))
			defer s.Close()
			fetch, _ := stackFor(b, s.URL, Config{Hedge: bc.hedge}, nil)
			req := &Request{Path: "/x"}
			lat := make([]time.Duration, 0, 1024)
			for b.Loop() {
				start := time.Now()
				if _, err := fetch(context.Background(), req); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(n.Load())/float64(len(lat)), "upstream-calls/op")
		})
	}
}
