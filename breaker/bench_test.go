package breaker

import (
	"testing"
	"time"
)

// BenchmarkAllowRecord is the healthy path of one call: a closed breaker on
// the real clock.
func BenchmarkAllowRecord(b *testing.B) {
	br, err := New(Config{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tk, err := br.Allow()
		if err != nil {
			b.Fatal(err)
		}
		br.Record(tk, Success, time.Millisecond)
	}
}

// BenchmarkAllowRecordParallel is BenchmarkAllowRecord from GOMAXPROCS
// goroutines sharing one breaker, as the calls to one upstream do.
func BenchmarkAllowRecordParallel(b *testing.B) {
	br, err := New(Config{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tk, err := br.Allow()
			if err != nil {
				b.Error(err)
				return
			}
			br.Record(tk, Success, time.Millisecond)
		}
	})
}

// BenchmarkAllowOpen is a rejected call: an open breaker on a clock that
// stands still, so it stays open however long the benchmark runs.
func BenchmarkAllowOpen(b *testing.B) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	br, err := New(Config{ConsecutiveFailures: 1}, Options{Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	tk, _ := br.Allow()
	br.Record(tk, Failure, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Allow(); err == nil {
			b.Fatal("Allow admitted a call while open")
		}
	}
}
