package breaker

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// State is the state of a Breaker.
type State int

// The states of a Breaker.
const (
	Closed   State = iota // healthy: every call is admitted
	Open                  // tripped: every call is rejected until the open period ends
	HalfOpen              // probing: a few calls are admitted to test the upstream
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Outcome is what became of an admitted call, as reported to Record.
type Outcome int

// The outcomes of a call. Any other value counts as Failure.
const (
	Success Outcome = iota // the upstream did its job
	Failure                // the upstream failed: an error, a 5xx, a timeout
	Ignored                // the call was cancelled on our side: counts as neither, frees a half-open permit
)

// String returns "success", "failure" or "ignored".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Ignored:
		return "ignored"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Ticket is the admission Allow grants to one call; pass it to Record once.
// It records the breaker generation it was issued in. The zero Ticket is
// never current, so recording it does nothing.
type Ticket struct {
	gen   uint64
	state State // Closed or HalfOpen
}

// Options are the run-time dependencies of a Breaker; the zero value is
// ready to use.
type Options struct {
	// Now is the clock. Default time.Now; tests inject a fake.
	Now func() time.Time

	// Rand is the jitter source, returning values in [0, 1); values
	// outside are clamped. Default math/rand/v2's Float64.
	Rand func() float64

	// OnStateChange, if not nil, is called on every transition, in
	// transition order and never concurrently. It is called after the
	// breaker's lock is released, so it may call the Breaker's methods; a
	// transition it causes is reported after it returns. It runs on the
	// goroutine of an Allow or Record call and delays it, so it must not
	// block for long. Default nil: none.
	OnStateChange func(from, to State)
}

// transition is one state change waiting to be delivered to OnStateChange.
type transition struct{ from, to State }

// Breaker is a circuit breaker for one upstream. It is safe for concurrent
// use. Create one with New.
type Breaker struct {
	cfg      Config // with defaults applied
	now      func() time.Time
	rand     func() float64
	onChange func(from, to State)

	mu          sync.Mutex // guards the fields below
	state       State
	gen         uint64       // incremented on every transition; starts at 1
	win         window       // Closed: the calls of the last Window
	consecutive int          // Closed: failures in a row
	trips       int          // trips since the breaker last closed
	openUntil   time.Time    // Open: when the open period ends
	inFlight    int          // HalfOpen: probes admitted and not yet recorded
	successes   int          // HalfOpen: probes that succeeded
	pending     []transition // not yet delivered to onChange
	delivering  bool         // a goroutine is draining pending
}

// New returns a Closed Breaker for cfg, with its zero fields defaulted (see
// Config), or Validate's error.
func New(cfg Config, opts Options) (*Breaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Breaker{
		cfg:      cfg.WithDefaults(),
		now:      opts.Now,
		rand:     opts.Rand,
		onChange: opts.OnStateChange,
		gen:      1,
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.rand == nil {
		b.rand = rand.Float64
	}
	b.win.width = b.cfg.Window / numBuckets
	b.win.reset(b.now())
	return b, nil
}

// Allow asks to make one call. On admission it returns a Ticket that must be
// passed to Record exactly once, whatever becomes of the call. Otherwise the
// error is an *OpenError and the upstream must not be called. An expired
// open period turns the breaker HalfOpen here.
func (b *Breaker) Allow() (Ticket, error) {
	b.mu.Lock()
	if b.state == Closed {
		t := Ticket{gen: b.gen, state: Closed}
		b.mu.Unlock()
		return t, nil
	}
	t, retryAfter, ok, deliver := b.allowSlow()
	b.mu.Unlock()
	if deliver {
		b.deliver()
	}
	if !ok {
		return Ticket{}, &OpenError{RetryAfter: retryAfter}
	}
	return t, nil
}

// allowSlow is Allow when the breaker is not Closed; b.mu is held. It
// reports whether the call is admitted and whether the caller must deliver
// state changes.
func (b *Breaker) allowSlow() (t Ticket, retryAfter time.Duration, ok, deliver bool) {
	if b.state == Open {
		now := b.now()
		if now.Before(b.openUntil) {
			return Ticket{}, b.openUntil.Sub(now), false, false
		}
		deliver = b.setState(HalfOpen, now)
	}
	if b.inFlight+b.successes >= b.cfg.HalfOpenProbes {
		return Ticket{}, 0, false, deliver
	}
	b.inFlight++
	return Ticket{gen: b.gen, state: HalfOpen}, 0, true, deliver
}

// Record reports the outcome of the call t admitted and how long it took. A
// call that took at least SlowCallDuration is slow, whatever its outcome.
// Records whose ticket is from an older generation (the breaker changed
// state since Allow) are ignored.
func (b *Breaker) Record(t Ticket, o Outcome, took time.Duration) {
	b.mu.Lock()
	if t.gen != b.gen {
		b.mu.Unlock()
		return
	}
	var deliver bool
	switch t.state {
	case Closed:
		deliver = b.recordClosed(o, took)
	case HalfOpen:
		deliver = b.recordHalfOpen(o, took)
	}
	b.mu.Unlock()
	if deliver {
		b.deliver()
	}
}

// recordClosed counts a call made while Closed and trips if it must; b.mu
// is held.
func (b *Breaker) recordClosed(o Outcome, took time.Duration) (deliver bool) {
	if o == Ignored {
		return false
	}
	now := b.now()
	failed := o != Success
	b.win.add(now, failed, took >= b.cfg.SlowCallDuration)
	if failed {
		b.consecutive++
	} else {
		b.consecutive = 0
	}
	if b.consecutive >= b.cfg.ConsecutiveFailures ||
		b.win.tripped(b.cfg.MinCalls, b.cfg.FailureRate, b.cfg.SlowCallRate) {
		return b.trip(now)
	}
	return false
}

// recordHalfOpen judges a probe: a failed or slow one re-opens the breaker,
// the last needed success closes it; b.mu is held.
func (b *Breaker) recordHalfOpen(o Outcome, took time.Duration) (deliver bool) {
	if b.inFlight > 0 {
		b.inFlight--
	}
	if o == Ignored {
		return false
	}
	now := b.now()
	if o != Success || took >= b.cfg.SlowCallDuration {
		return b.trip(now)
	}
	b.successes++
	if b.successes < b.cfg.HalfOpenProbes {
		return false
	}
	b.trips = 0
	return b.setState(Closed, now)
}

// State returns the breaker's current state. An open period that has ended
// reads as HalfOpen, although the transition (and its OnStateChange) waits
// for the next Allow.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Open && !b.now().Before(b.openUntil) {
		return HalfOpen
	}
	return b.state
}

// trip opens the breaker for the next open period; b.mu is held.
func (b *Breaker) trip(now time.Time) (deliver bool) {
	b.trips++
	b.openUntil = now.Add(b.openPeriod())
	return b.setState(Open, now)
}

// openPeriod returns min(OpenDuration * 2^(trips-1), MaxOpenDuration) times
// a jitter factor in (0.8, 1]; b.mu is held.
func (b *Breaker) openPeriod() time.Duration {
	d, limit := b.cfg.OpenDuration, b.cfg.MaxOpenDuration
	for i := 1; i < b.trips && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	r := min(max(b.rand(), 0), 1) // also maps NaN to 1
	return time.Duration(float64(d) * (1 - 0.2*r))
}

// setState moves the breaker to state to, starting a new generation, and
// queues the transition for OnStateChange. It reports whether the caller
// must call deliver once it has released b.mu; b.mu is held.
func (b *Breaker) setState(to State, now time.Time) (deliver bool) {
	from := b.state
	b.state = to
	b.gen++
	b.inFlight, b.successes = 0, 0
	if to == Closed {
		b.consecutive = 0
		b.win.reset(now)
	}
	if b.onChange == nil {
		return false
	}
	b.pending = append(b.pending, transition{from, to})
	if b.delivering {
		return false
	}
	b.delivering = true
	return true
}

// deliver calls OnStateChange for each pending transition, in order, until
// none is left. Only one goroutine delivers at a time; b.mu must not be
// held.
func (b *Breaker) deliver() {
	done := false
	defer func() {
		if !done { // OnStateChange panicked: let the next transition deliver
			b.mu.Lock()
			b.delivering = false
			b.mu.Unlock()
		}
	}()
	for {
		b.mu.Lock()
		batch := b.pending
		b.pending = nil
		if len(batch) == 0 {
			b.delivering = false
			b.mu.Unlock()
			done = true
			return
		}
		b.mu.Unlock()
		for _, tr := range batch {
			b.onChange(tr.from, tr.to)
		}
	}
}
