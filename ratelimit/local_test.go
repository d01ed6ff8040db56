package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const ms = time.Millisecond

// TestBurstThenDeny spends a whole burst at one instant: each request is
// allowed with one less remaining, then the next is denied until exactly
// one interval has passed.
func TestBurstThenDeny(t *testing.T) {
	l, _ := newLocal(t, Config{Rate: 10, Burst: 10}) // one request per 100ms
	for i := range 10 {
		d := wantDecision(t, l, "k", want{allowed: true, remaining: 9 - i, reset: time.Duration(i+1) * 100 * ms})
		if d.Limit != 10 || d.Window != time.Second || d.Policy != "default" {
			t.Fatalf("decision %d: Limit %d, Window %s, Policy %q; want 10, 1s, default", i, d.Limit, d.Window, d.Policy)
		}
	}
	wantDecision(t, l, "k", want{retryAfter: 100 * ms, reset: time.Second})
	wantDecision(t, l, "k", want{retryAfter: 100 * ms, reset: time.Second}) // a denial consumes nothing
}

// TestRefill follows the quota of one key as time passes: it comes back
// one request per interval, never more than the burst.
func TestRefill(t *testing.T) {
	l, clk := newLocal(t, Config{Rate: 10, Burst: 10})
	for range 10 {
		l.Allow(context.Background(), "k")
	}
	clk.Advance(99 * ms)
	wantDecision(t, l, "k", want{retryAfter: 1 * ms, reset: 901 * ms})
	clk.Advance(1 * ms) // exactly one interval
	wantDecision(t, l, "k", want{allowed: true, remaining: 0, reset: time.Second})
	wantDecision(t, l, "k", want{retryAfter: 100 * ms, reset: time.Second})

	clk.Advance(250 * ms) // two and a half intervals
	wantDecision(t, l, "k", want{allowed: true, remaining: 1, reset: 850 * ms})
	wantDecision(t, l, "k", want{allowed: true, remaining: 0, reset: 950 * ms})
	wantDecision(t, l, "k", want{retryAfter: 50 * ms, reset: 950 * ms})

	clk.Advance(time.Hour) // long idle: the whole burst, no more
	wantDecision(t, l, "k", want{allowed: true, remaining: 9, reset: 100 * ms})
}

// TestRates checks configurations whose interval is not a round number:
// after exactly one Period a spent quota of Rate requests is whole again.
func TestRates(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		interval time.Duration // Period/Rate
	}{
		{"3 per second", Config{Rate: 3}, 333333333},
		{"one every 2s", Config{Rate: 0.5}, 2 * time.Second},
		{"100 per minute", Config{Rate: 100, Period: time.Minute}, 600 * ms},
		{"7 per 10s, burst 2", Config{Rate: 7, Period: 10 * time.Second, Burst: 2}, 1428571429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clk := newLocal(t, tt.cfg)
			burst := l.cfg.Burst
			for i := range burst {
				wantDecision(t, l, "k", want{allowed: true, remaining: burst - 1 - i, reset: time.Duration(i+1) * tt.interval})
			}
			window := time.Duration(burst) * tt.interval
			wantDecision(t, l, "k", want{retryAfter: tt.interval, reset: window})

			clk.Advance(tt.interval - 1)
			wantDecision(t, l, "k", want{retryAfter: 1, reset: window - tt.interval + 1})
			clk.Advance(1)
			wantDecision(t, l, "k", want{allowed: true, remaining: 0, reset: window})

			clk.Advance(window) // whole again
			for i := range burst {
				wantDecision(t, l, "k", want{allowed: true, remaining: burst - 1 - i, reset: time.Duration(i+1) * tt.interval})
			}
			wantDecision(t, l, "k", want{retryAfter: tt.interval, reset: window})
		})
	}
}

// TestPeriodRefill is the brief's case: a spent quota of Rate requests per
// Period comes back in full exactly one Period later.
func TestPeriodRefill(t *testing.T) {
	l, clk := newLocal(t, Config{Rate: 3})
	for range 3 {
		l.Allow(context.Background(), "k")
	}
	wantDecision(t, l, "k", want{retryAfter: 333333333, reset: 999999999})
	clk.Advance(time.Second)
	for i := range 3 {
		if d := l.Allow(context.Background(), "k"); !d.Allowed || d.Remaining != 2-i {
			t.Fatalf("request %d one period later: %+v, want allowed with %d remaining", i+1, d, 2-i)
		}
	}
	if d := l.Allow(context.Background(), "k"); d.Allowed {
		t.Fatalf("4th request one period later allowed: %+v", d)
	}
}

// TestKeysIndependent spends one key's quota: the others keep theirs.
func TestKeysIndependent(t *testing.T) {
	l, _ := newLocal(t, Config{Rate: 2})
	for range 2 {
		l.Allow(context.Background(), "203.0.113.7")
	}
	wantDecision(t, l, "203.0.113.7", want{retryAfter: 500 * ms, reset: time.Second})
	wantDecision(t, l, "203.0.113.8", want{allowed: true, remaining: 1, reset: 500 * ms})
	wantDecision(t, l, "user:42", want{allowed: true, remaining: 1, reset: 500 * ms})
	wantDecision(t, l, "", want{allowed: true, remaining: 1, reset: 500 * ms})
}

// TestConcurrentAllow has many goroutines spend one key at one instant:
// exactly the burst is allowed, however they interleave.
func TestConcurrentAllow(t *testing.T) {
	l, _ := newLocal(t, Config{Rate: 100})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if l.Allow(context.Background(), "k").Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 100 {
		t.Fatalf("allowed %d of 400 requests at one instant, want the burst of 100", n)
	}
}

// TestStoreBound sprays 50 times more keys than the store may hold: it
// never holds more than its bound, and a key in steady use keeps its state
// throughout (TinyLFU admits one-off keys only in place of each other).
func TestStoreBound(t *testing.T) {
	const maxKeys = 1000
	l, clk := newLocal(t, Config{Rate: 1, Period: time.Minute}, WithMaxKeys(maxKeys))
	wantDecision(t, l, "hot", want{allowed: true, remaining: 0, reset: time.Minute})
	for i := range 50 * maxKeys {
		l.Allow(context.Background(), fmt.Sprint("198.51.100.", i))
		if i%20 == 0 {
			clk.Advance(ms)
			if d := l.Allow(context.Background(), "hot"); d.Allowed {
				t.Fatalf("after %d spray keys the hot key was forgotten: %+v", i+1, d)
			}
		}
		if i%1000 == 999 {
			if n := l.local.len(); n > maxKeys {
				t.Fatalf("after %d keys the store holds %d, bound %d", i+1, n, maxKeys)
			}
		}
	}
	if n := l.local.len(); n > maxKeys || n < maxKeys/2 {
		t.Fatalf("store holds %d keys, want at most %d (and not empty)", n, maxKeys)
	}
}

// TestStoreExpiry leaves keys idle: some time after their quota is whole
// again (otter's timer wheel turns in steps of about a second) the store
// has forgotten them, and they have a whole quota as before.
func TestStoreExpiry(t *testing.T) {
	l, clk := newLocal(t, Config{Rate: 10})
	for i := range 50 {
		l.Allow(context.Background(), fmt.Sprint("k", i))
	}
	wantDecision(t, l, "k0", want{allowed: true, remaining: 8, reset: 200 * ms})
	if n := l.local.len(); n != 50 {
		t.Fatalf("store holds %d keys, want 50", n)
	}
	clk.Advance(5 * time.Second)
	if n := l.local.len(); n != 0 {
		t.Fatalf("store holds %d keys 5s after they were whole, want 0", n)
	}
	wantDecision(t, l, "k0", want{allowed: true, remaining: 9, reset: 100 * ms})
	wantDecision(t, l, "k1", want{allowed: true, remaining: 9, reset: 100 * ms})
}
