package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHeaders(t *testing.T) {
	tests := []struct {
		name                      string
		d                         Decision
		policy, limit, retryAfter string // "" retryAfter: absent
	}{
		{
			name:   "allowed",
			d:      Decision{Allowed: true, Limit: 100, Remaining: 42, Reset: 580 * ms, Window: time.Second, Policy: "default"},
			policy: `"default";q=100;w=1`, limit: `"default";r=42;t=1`,
		},
		{
			name:   "allowed, quota whole in 2.5s",
			d:      Decision{Allowed: true, Limit: 5, Remaining: 0, Reset: 2500 * ms, Window: 3 * time.Second, Policy: "orders"},
			policy: `"orders";q=5;w=3`, limit: `"orders";r=0;t=3`,
		},
		{
			name:   "allowed, window rounded up",
			d:      Decision{Allowed: true, Limit: 2, Remaining: 1, Reset: 1428571429, Window: 2857142858, Policy: "p"},
			policy: `"p";q=2;w=3`, limit: `"p";r=1;t=2`,
		},
		{
			name:   "denied: t is the wait, not the reset",
			d:      Decision{Limit: 10, RetryAfter: 100 * ms, Reset: time.Second, Window: time.Second, Policy: "default"},
			policy: `"default";q=10;w=1`, limit: `"default";r=0;t=1`, retryAfter: "1",
		},
		{
			name:   "denied, wait rounded up",
			d:      Decision{Limit: 1, RetryAfter: 2*time.Second + 1, Reset: 2*time.Second + 1, Window: 60 * time.Second, Policy: "slow"},
			policy: `"slow";q=1;w=60`, limit: `"slow";r=0;t=3`, retryAfter: "3",
		},
		{
			name:   "denied, no wait left",
			d:      Decision{Limit: 1, Window: time.Millisecond, Policy: "x"},
			policy: `"x";q=1;w=1`, limit: `"x";r=0;t=1`, retryAfter: "1",
		},
		{
			name:   "allowed, nothing to reset",
			d:      Decision{Allowed: true, Limit: 3, Remaining: 3, Window: time.Second, Policy: "x"},
			policy: `"x";q=3;w=1`, limit: `"x";r=3;t=0`,
		},
		{
			name:   "name escaped",
			d:      Decision{Allowed: true, Limit: 1, Remaining: 0, Reset: time.Second, Window: time.Second, Policy: "a\"b\\c\td\u00e9"},
			policy: `"a\"b\\c?d??";q=1;w=1`, limit: `"a\"b\\c?d??";r=0;t=1`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("Retry-After", "99") // stale: must be replaced or removed
			tt.d.Headers(h)
			if got := h.Values("RateLimit-Policy"); len(got) != 1 || got[0] != tt.policy {
				t.Errorf("RateLimit-Policy = %q, want %q", got, tt.policy)
			}
			if got := h.Values("RateLimit"); len(got) != 1 || got[0] != tt.limit {
				t.Errorf("RateLimit = %q, want %q", got, tt.limit)
			}
			got, ok := h["Retry-After"]
			switch {
			case tt.retryAfter == "" && ok:
				t.Errorf("Retry-After = %q, want none", got)
			case tt.retryAfter != "" && (len(got) != 1 || got[0] != tt.retryAfter):
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

// TestHeadersOfLimiter follows the fields of one key through a burst, a
// denial and a refill, as a client would read them.
func TestHeadersOfLimiter(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, "orders", Config{Rate: 50}, WithClock(clk.Now)) // 20ms apart, burst 50
	fields := func() (string, string, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		l.Allow(context.Background(), "203.0.113.7").Headers(rec.Header())
		h := rec.Header()
		return h.Get("RateLimit-Policy"), h.Get("RateLimit"), h.Get("Retry-After")
	}
	steps := []struct {
		advance                   time.Duration
		n                         int // requests; the fields of the last are checked
		policy, limit, retryAfter string
	}{
		{0, 1, `"orders";q=50;w=1`, `"orders";r=49;t=1`, ""},
		{0, 49, `"orders";q=50;w=1`, `"orders";r=0;t=1`, ""},
		{0, 1, `"orders";q=50;w=1`, `"orders";r=0;t=1`, "1"},
		{20 * ms, 1, `"orders";q=50;w=1`, `"orders";r=0;t=1`, ""},
		{2 * time.Second, 1, `"orders";q=50;w=1`, `"orders";r=49;t=1`, ""},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		var p, r, ra string
		for range s.n {
			p, r, ra = fields()
		}
		if p != s.policy || r != s.limit || ra != s.retryAfter {
			t.Fatalf("step %d: fields %q, %q, Retry-After %q; want %q, %q, %q", i, p, r, ra, s.policy, s.limit, s.retryAfter)
		}
	}
}
