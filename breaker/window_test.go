package breaker

import (
	"testing"
	"time"
)

// add is one call at the window's start + at; want is the window's total
// after it.
type add struct {
	at     time.Duration
	failed bool
	slow   bool
	want   counts
}

var windowTests = []struct {
	name string
	adds []add
}{
	{
		name: "calls add up within the window",
		adds: []add{
			{at: 0, failed: true, want: counts{1, 1, 0}},
			{at: 4 * time.Second, slow: true, want: counts{2, 1, 1}},
			{at: 9999 * time.Millisecond, failed: true, slow: true, want: counts{3, 2, 2}},
		},
	},
	{
		name: "buckets leave one at a time",
		adds: []add{
			{at: 0, failed: true, want: counts{1, 1, 0}},
			{at: 1 * time.Second, failed: true, want: counts{2, 2, 0}},
			{at: 10 * time.Second, want: counts{2, 1, 0}},
			{at: 11 * time.Second, want: counts{2, 0, 0}},
		},
	},
	{
		name: "a long gap empties it",
		adds: []add{
			{at: 0, failed: true, slow: true, want: counts{1, 1, 1}},
			{at: time.Hour, want: counts{1, 0, 0}},
		},
	},
	{
		name: "a clock going backwards counts into the newest bucket",
		adds: []add{
			{at: 5 * time.Second, failed: true, want: counts{1, 1, 0}},
			{at: -time.Minute, failed: true, want: counts{2, 2, 0}},
			{at: 14 * time.Second, want: counts{3, 2, 0}},
			{at: 15 * time.Second, want: counts{2, 0, 0}}, // both were in bucket 5
		},
	},
}

func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range windowTests {
		t.Run(tt.name, func(t *testing.T) {
			w := window{width: time.Second}
			w.reset(t0)
			for i, a := range tt.adds {
				w.add(t0.Add(a.at), a.failed, a.slow)
				if w.total != a.want {
					t.Fatalf("after add %d: total %+v, want %+v", i+1, w.total, a.want)
				}
				var sum counts
				for _, b := range w.buckets {
					sum.calls, sum.failures, sum.slow = sum.calls+b.calls, sum.failures+b.failures, sum.slow+b.slow
				}
				if sum != w.total {
					t.Fatalf("after add %d: buckets sum to %+v, total is %+v", i+1, sum, w.total)
				}
			}
		})
	}
}

func TestWindowTripped(t *testing.T) {
	tests := []struct {
		name  string
		total counts
		want  bool
	}{
		{"empty", counts{}, false},
		{"under min calls", counts{calls: 9, failures: 9, slow: 9}, false},
		{"failure rate reached", counts{calls: 10, failures: 5}, true},
		{"failure rate not reached", counts{calls: 10, failures: 4, slow: 7}, false},
		{"slow-call rate reached", counts{calls: 10, slow: 8}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := window{total: tt.total}
			if got := w.tripped(10, 0.5, 0.8); got != tt.want {
				t.Errorf("tripped(10, 0.5, 0.8) with %+v = %v, want %v", tt.total, got, tt.want)
			}
		})
	}
}
