package breaker

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// step makes n calls with outcome o taking took, after advancing the clock
// by advance, and then wants the breaker in state want.
type step struct {
	advance time.Duration
	n       int
	o       Outcome
	took    time.Duration
	want    State
}

const fast, slow = 10 * time.Millisecond, time.Second

// noConsecutive is a Config that trips on rates only.
var noConsecutive = Config{ConsecutiveFailures: 1000}

var tripTests = []struct {
	name  string
	cfg   Config
	steps []step
}{
	{
		name: "failure rate waits for min calls",
		cfg:  noConsecutive,
		steps: []step{
			{n: 9, o: Failure, want: Closed},
			{n: 1, o: Failure, want: Open},
		},
	},
	{
		name: "failure rate below threshold stays closed",
		cfg:  noConsecutive,
		steps: []step{
			{n: 6, o: Success, want: Closed},
			{n: 5, o: Failure, want: Closed}, // 5/11
			{n: 1, o: Failure, want: Open},   // 6/12
		},
	},
	{
		name: "slow-call rate with all successes",
		cfg:  noConsecutive,
		steps: []step{
			{n: 2, o: Success, took: fast, want: Closed},
			{n: 7, o: Success, took: slow, want: Closed}, // 9 calls, under min_calls
			{n: 1, o: Success, took: slow, want: Open},   // 8/10 slow
		},
	},
	{
		name: "slow-call rate below threshold stays closed",
		cfg:  noConsecutive,
		steps: []step{
			{n: 3, o: Success, took: fast, want: Closed},
			{n: 7, o: Success, took: slow - 1, want: Closed},
			{n: 7, o: Success, took: slow, want: Closed}, // 7/17
		},
	},
	{
		name: "consecutive failures before min calls",
		cfg:  Config{ConsecutiveFailures: 3, MinCalls: 100},
		steps: []step{
			{n: 2, o: Failure, want: Closed},
			{n: 1, o: Success, want: Closed}, // resets the run
			{n: 2, o: Failure, want: Closed},
			{n: 1, o: Failure, want: Open},
		},
	},
	{
		name: "ignored counts for nothing",
		cfg:  Config{ConsecutiveFailures: 2, MinCalls: 1000},
		steps: []step{
			{n: 1, o: Failure, want: Closed},
			{n: 10, o: Ignored, took: slow, want: Closed}, // does not reset the run either
			{n: 1, o: Failure, want: Open},
		},
	},
	{
		name: "failures 11s ago do not count",
		cfg:  noConsecutive,
		steps: []step{
			{n: 9, o: Failure, want: Closed},
			{advance: 11 * time.Second, n: 9, o: Failure, want: Closed},
			{n: 1, o: Failure, want: Open},
		},
	},
	{
		name: "failures 9.5s ago still count",
		cfg:  noConsecutive,
		steps: []step{
			{n: 5, o: Failure, want: Closed},
			{advance: 9500 * time.Millisecond, n: 5, o: Failure, want: Open},
		},
	},
	{
		name: "oldest bucket leaves at 10s",
		cfg:  noConsecutive,
		steps: []step{
			{n: 5, o: Failure, want: Closed},
			{advance: 3 * time.Second, n: 4, o: Failure, want: Closed},
			{advance: 7 * time.Second, n: 1, o: Failure, want: Closed}, // the first 5 left
			{n: 1, o: Failure, want: Closed},
		},
	},
}

func TestTrip(t *testing.T) {
	for _, tt := range tripTests {
		t.Run(tt.name, func(t *testing.T) {
			b, clk := newTestBreaker(t, tt.cfg, Options{})
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				call(t, b, s.n, s.o, s.took)
				if got := b.State(); got != s.want {
					t.Fatalf("after step %d: State() = %s, want %s", i+1, got, s.want)
				}
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	b, clk := newTestBreaker(t, Config{}, Options{})
	call(t, b, 5, Failure, 0) // open for 5s * 0.9
	clk.Advance(time.Second)

	tk, err := b.Allow()
	if !errors.Is(err, ErrOpen) {
		t.Fatalf("Allow: got %v, want ErrOpen", err)
	}
	if tk != (Ticket{}) {
		t.Errorf("Allow: got ticket %+v with the error, want the zero Ticket", tk)
	}
	var oe *OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("Allow: got %T, want *OpenError", err)
	}
	if oe.RetryAfter != 3500*time.Millisecond {
		t.Errorf("RetryAfter = %s, want 3.5s", oe.RetryAfter)
	}
	if got, want := err.Error(), "circuit breaker is open (retry after 3.5s)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}

	clk.Advance(3500*time.Millisecond - 1)
	if got := retryAfter(t, b); got != 1 {
		t.Errorf("1ns before the end: RetryAfter = %s, want 1ns", got)
	}
	wantState(t, b, Open)
	clk.Advance(1)
	wantState(t, b, HalfOpen)
	allow(t, b)
}

func TestOpenDuration(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name    string
		cfg     Config
		rand    float64
		factor  float64
		nominal []time.Duration // by trip, before jitter
	}{
		{"no jitter", Config{}, 0, 1, []time.Duration{5 * s, 10 * s, 20 * s, 20 * s, 20 * s}},
		{"middle jitter", Config{}, 0.5, 0.9, []time.Duration{5 * s, 10 * s, 20 * s, 20 * s}},
		{"three-quarter jitter", Config{}, 0.75, 0.85, []time.Duration{5 * s, 10 * s, 20 * s, 20 * s}},
		{"rand above range is clamped", Config{}, 5, 0.8, []time.Duration{5 * s, 10 * s, 20 * s, 20 * s}},
		{"rand below range is clamped", Config{}, -1, 1, []time.Duration{5 * s, 10 * s, 20 * s, 20 * s}},
		{"cap between doublings", Config{OpenDuration: 3 * s, MaxOpenDuration: 10 * s}, 0, 1, []time.Duration{3 * s, 6 * s, 10 * s, 10 * s}},
		{"no growth", Config{OpenDuration: 3 * s, MaxOpenDuration: 3 * s}, 0.5, 0.9, []time.Duration{3 * s, 3 * s, 3 * s}},
		{"many trips stay at the cap", Config{OpenDuration: time.Millisecond, MaxOpenDuration: 8 * time.Millisecond}, 0, 1,
			append([]time.Duration{1e6, 2e6, 4e6}, slices.Repeat([]time.Duration{8e6}, 100)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clk := newTestBreaker(t, tt.cfg, Options{Rand: func() float64 { return tt.rand }})
			check := func(trip int, got time.Duration) {
				t.Helper()
				want := time.Duration(float64(tt.nominal[trip]) * tt.factor)
				if diff := got - want; diff < -time.Microsecond || diff > time.Microsecond || got > b.cfg.MaxOpenDuration {
					t.Errorf("trip %d: open for %s, want %s (%s * %g, at most %s)", trip+1, got, want, tt.nominal[trip], tt.factor, b.cfg.MaxOpenDuration)
				}
			}
			check(0, tripAndExpire(t, b, clk))
			for trip := 1; trip < len(tt.nominal); trip++ {
				call(t, b, 1, Failure, 0) // the probe fails
				d := retryAfter(t, b)
				check(trip, d)
				clk.Advance(d)
			}
			call(t, b, b.cfg.HalfOpenProbes, Success, 0)
			wantState(t, b, Closed)
			check(0, tripAndExpire(t, b, clk)) // closing reset the growth
		})
	}
}

// halfOpenTests run against a breaker that has just turned half-open.
var halfOpenTests = []struct {
	name string
	run  func(t *testing.T, b *Breaker)
	want State
}{
	{
		name: "admits exactly half_open_probes and closes on their success",
		run: func(t *testing.T, b *Breaker) {
			tks := []Ticket{allow(t, b), allow(t, b), allow(t, b)}
			if got := retryAfter(t, b); got != 0 {
				t.Errorf("all permits taken: RetryAfter = %s, want 0", got)
			}
			for i, tk := range tks {
				wantState(t, b, HalfOpen)
				b.Record(tk, Success, time.Millisecond)
				if i < len(tks)-1 {
					retryAfter(t, b) // a success does not free a permit
				}
			}
		},
		want: Closed,
	},
	{
		name: "a failed probe re-opens for longer",
		run: func(t *testing.T, b *Breaker) {
			call(t, b, 2, Success, 0)
			call(t, b, 1, Failure, 0)
			if got := retryAfter(t, b); got != 9*time.Second {
				t.Errorf("RetryAfter = %s, want 9s (10s * 0.9)", got)
			}
		},
		want: Open,
	},
	{
		name: "a slow successful probe re-opens",
		run: func(t *testing.T, b *Breaker) {
			call(t, b, 1, Success, time.Second)
		},
		want: Open,
	},
	{
		name: "ignored releases a permit",
		run: func(t *testing.T, b *Breaker) {
			first := allow(t, b)
			allow(t, b)
			allow(t, b)
			retryAfter(t, b)
			b.Record(first, Ignored, time.Hour) // neither slow nor failed
			call(t, b, 1, Success, 0)
			retryAfter(t, b)
		},
		want: HalfOpen,
	},
	{
		name: "closing starts a fresh window",
		run: func(t *testing.T, b *Breaker) {
			call(t, b, 3, Success, 0)
			wantState(t, b, Closed)
			call(t, b, 1, Success, 0)
			call(t, b, 4, Failure, 0) // 9 of 10 if the 5 before the trip counted
		},
		want: Closed,
	},
}

func TestHalfOpen(t *testing.T) {
	for _, tt := range halfOpenTests {
		t.Run(tt.name, func(t *testing.T) {
			b, clk := newTestBreaker(t, Config{}, Options{})
			tripAndExpire(t, b, clk)
			tt.run(t, b)
			wantState(t, b, tt.want)
		})
	}
}

// staleTicketTests run against a new closed breaker.
var staleTicketTests = []struct {
	name string
	run  func(t *testing.T, b *Breaker, clk *fakeClock)
	want State
}{
	{
		name: "a closed call ending after the trip",
		run: func(t *testing.T, b *Breaker, clk *fakeClock) {
			late := allow(t, b)
			tripAndExpire(t, b, clk)
			b.Record(late, Failure, time.Minute) // would re-open if it counted
			call(t, b, 3, Success, 0)
		},
		want: Closed,
	},
	{
		name: "a probe ending after another probe re-opened",
		run: func(t *testing.T, b *Breaker, clk *fakeClock) {
			tripAndExpire(t, b, clk)
			late := allow(t, b)
			call(t, b, 1, Failure, 0)
			clk.Advance(retryAfter(t, b))
			b.Record(late, Success, 0) // would count towards closing
			call(t, b, 2, Success, 0)
		},
		want: HalfOpen,
	},
	{
		name: "a probe ending after the breaker closed",
		run: func(t *testing.T, b *Breaker, clk *fakeClock) {
			tripAndExpire(t, b, clk)
			tks := []Ticket{allow(t, b), allow(t, b)}
			b.Record(allow(t, b), Ignored, 0)
			call(t, b, 1, Success, 0)
			for _, tk := range tks {
				b.Record(tk, Success, 0)
			}
			wantState(t, b, Closed)
			call(t, b, 4, Failure, 0)
			b.Record(tks[0], Failure, 0) // would be the 5th failure in a row
		},
		want: Closed,
	},
	{
		name: "the zero ticket",
		run: func(t *testing.T, b *Breaker, clk *fakeClock) {
			for range 20 {
				b.Record(Ticket{}, Failure, time.Minute)
			}
		},
		want: Closed,
	},
}

func TestStaleTicket(t *testing.T) {
	for _, tt := range staleTicketTests {
		t.Run(tt.name, func(t *testing.T) {
			b, clk := newTestBreaker(t, Config{}, Options{})
			tt.run(t, b, clk)
			wantState(t, b, tt.want)
		})
	}
}

func TestOnStateChange(t *testing.T) {
	type change struct {
		from, to, seen State // seen: b.State() inside the callback
	}
	tests := []struct {
		name string
		// onHalfOpen runs inside the callback when the breaker turns half-open.
		onHalfOpen func(t *testing.T, b *Breaker)
		// then runs after the breaker turned half-open and its first probe
		// succeeded.
		then func(t *testing.T, b *Breaker)
		want []change
	}{
		{
			name: "trip, probe, close",
			then: func(t *testing.T, b *Breaker) { call(t, b, 2, Success, 0) },
			want: []change{{Closed, Open, Open}, {Open, HalfOpen, HalfOpen}, {HalfOpen, Closed, Closed}},
		},
		{
			name: "a callback that makes a transition of its own",
			onHalfOpen: func(t *testing.T, b *Breaker) {
				call(t, b, 1, Failure, 0) // re-opens from within the callback
			},
			want: []change{{Closed, Open, Open}, {Open, HalfOpen, HalfOpen}, {HalfOpen, Open, Open}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				b   *Breaker
				got []change
			)
			b, clk := newTestBreaker(t, Config{}, Options{OnStateChange: func(from, to State) {
				got = append(got, change{from, to, b.State()}) // deadlocks if the lock is held
				if to == HalfOpen && tt.onHalfOpen != nil {
					tt.onHalfOpen(t, b)
				}
			}})
			tripAndExpire(t, b, clk)
			if len(got) != 1 {
				t.Fatalf("an expired open period reported %v before Allow, want only the trip", got)
			}
			tk := allow(t, b)        // turns half-open
			b.Record(tk, Success, 0) // stale if the callback re-opened

			if tt.then != nil {
				tt.then(t, b)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("transitions (from, to, State() in callback):\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestStateStrings(t *testing.T) {
	for _, tt := range []struct {
		v    interface{ String() string }
		want string
	}{
		{Closed, "closed"}, {Open, "open"}, {HalfOpen, "half-open"}, {State(7), "State(7)"},
		{Success, "success"}, {Failure, "failure"}, {Ignored, "ignored"}, {Outcome(9), "Outcome(9)"},
	} {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestAllowRecordAllocs(t *testing.T) {
	b, err := New(Config{}, Options{}) // the real clock and jitter
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		tk, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		b.Record(tk, Success, time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("Allow+Record on a closed breaker: %v allocs, want 0", allocs)
	}
}
