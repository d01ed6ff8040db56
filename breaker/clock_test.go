package breaker

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now returns the fake time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the fake time forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// halfRand is the deterministic jitter source of the tests: a factor of 0.9.
func halfRand() float64 { return 0.5 }

// newTestBreaker returns a Breaker for cfg on a fake clock with halfRand
// jitter and opts' OnStateChange.
func newTestBreaker(t *testing.T, cfg Config, opts Options) (*Breaker, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	opts.Now = clk.Now
	if opts.Rand == nil {
		opts.Rand = halfRand
	}
	b, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b, clk
}

// call makes n calls through b that end with o after took; every call must
// be admitted.
func call(t *testing.T, b *Breaker, n int, o Outcome, took time.Duration) {
	t.Helper()
	for i := range n {
		tk, err := b.Allow()
		if err != nil {
			t.Fatalf("call %d of %d: Allow: %v", i+1, n, err)
		}
		b.Record(tk, o, took)
	}
}

// allow calls b.Allow and fails the test if it rejects.
func allow(t *testing.T, b *Breaker) Ticket {
	t.Helper()
	tk, err := b.Allow()
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	return tk
}

// retryAfter calls b.Allow, which must reject with an *OpenError, and
// returns its RetryAfter.
func retryAfter(t *testing.T, b *Breaker) time.Duration {
	t.Helper()
	_, err := b.Allow()
	var oe *OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("Allow: got %v, want an *OpenError", err)
	}
	return oe.RetryAfter
}

// wantState fails the test unless b is in state want.
func wantState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("State() = %s, want %s", got, want)
	}
}

// tripAndExpire trips a Breaker with default ConsecutiveFailures, waits out
// the open period and returns the period's length.
func tripAndExpire(t *testing.T, b *Breaker, clk *fakeClock) time.Duration {
	t.Helper()
	call(t, b, b.cfg.ConsecutiveFailures, Failure, 0)
	wantState(t, b, Open)
	d := retryAfter(t, b)
	clk.Advance(d)
	wantState(t, b, HalfOpen)
	return d
}
