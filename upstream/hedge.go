package upstream

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Hedging needs this many observed tries before it uses their percentile.
const (
	hedgeMinSamples = 20
	hedgeSamples    = 256 // the most recent successful tries kept
	hedgeRecompute  = 16  // p95 is recomputed after this many new samples
)

// HedgeConfig sends a second try of an idempotent call when the first is
// slow; the first success wins and the other try is cancelled. Hedges draw
// from the same retry budget as retries. Off by default.
type HedgeConfig struct {
	// Enabled turns hedging on for the upstream. Default false.
	Enabled bool `yaml:"enabled"`
	// Delay is how long the first try runs before the hedge is sent.
	// Default 0: the Percentile of the upstream's recent successful tries
	// (no hedge until 20 have been seen).
	Delay time.Duration `yaml:"delay"`
	// Percentile of the recent tries used as the delay when Delay is 0,
	// above 0 and below 100. Default 95. It should sit below the slow
	// tail: with 10% of tries slow, the p95 is itself slow, so hedging
	// needs a lower percentile (or a fixed Delay) to help.
	Percentile float64 `yaml:"percentile"`
}

// Validate reports every bad field, named as in YAML.
func (c HedgeConfig) Validate() []error {
	var errs []error
	if c.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay: must not be negative, got %s", c.Delay))
	}
	if c.Percentile < 0 || c.Percentile >= 100 || c.Percentile != c.Percentile {
		errs = append(errs, fmt.Errorf("percentile: must be above 0 and below 100, got %v", c.Percentile))
	}
	return errs
}

// defaultHedgePercentile is HedgeConfig.Percentile's default.
const defaultHedgePercentile = 95

// hedger decides when to hedge and keeps the latencies it needs.
type hedger struct {
	fixed      time.Duration // Delay; 0 means the observed percentile
	percentile float64       // of the observed tries, in (0, 100)
	observed   atomic.Int64  // the percentile, in nanoseconds; 0 until enough samples

	mu    sync.Mutex // guards the fields below
	ring  [hedgeSamples]time.Duration
	n     int // samples held, at most hedgeSamples
	next  int // where the next sample goes
	fresh int // samples since p95 was computed
}

func newHedger(c HedgeConfig) *hedger {
	if !c.Enabled {
		return nil
	}
	if c.Percentile == 0 {
		c.Percentile = defaultHedgePercentile
	}
	return &hedger{fixed: c.Delay, percentile: c.Percentile}
}

// delay returns how long to wait before hedging, and false when there is
// not yet enough data to choose.
func (h *hedger) delay() (time.Duration, bool) {
	if h.fixed > 0 {
		return h.fixed, true
	}
	d := time.Duration(h.observed.Load())
	return d, d > 0
}

// observe records a successful try's duration.
func (h *hedger) observe(d time.Duration) {
	if h.fixed > 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.next] = d
	h.next = (h.next + 1) % hedgeSamples
	h.n = min(h.n+1, hedgeSamples)
	if h.fresh++; h.fresh < hedgeRecompute || h.n < hedgeMinSamples {
		return
	}
	h.fresh = 0
	sorted := h.ring
	s := sorted[:h.n]
	slices.Sort(s)
	rank := int(math.Ceil(float64(len(s))*h.percentile/100)) - 1 // nearest rank
	h.observed.Store(int64(max(s[max(rank, 0)], time.Millisecond/10)))
}

// result is one try's outcome.
type result struct {
	resp *Response
	err  error
}

// once makes one attempt of a call: a try, plus a hedge if the try is still
// running after the hedge delay and the budget allows one. It returns the
// first success, or the last failure once every try has ended; a losing
// try is cancelled and waited for, so no goroutine outlives the call.
func (t *tries) once(ctx context.Context, next Fetch, req *Request, attempt int) (*Response, error) {
	if t.hedge == nil {
		return t.try(ctx, next, req, attempt, false)
	}
	delay, ok := t.hedge.delay()
	if !ok {
		return t.try(ctx, next, req, attempt, false)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, 2) // buffered for every sender
	start := func(hedge bool) {
		go func() {
			resp, err := t.try(ctx, next, req, attempt, hedge)
			results <- result{resp, err}
		}()
	}
	start(false)
	running, hedged := 1, false
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			if !hedged && ctx.Err() == nil && t.budget.withdraw() {
				hedged = true
				running++
				start(true)
			}
		case r := <-results:
			running--
			if r.err == nil || running == 0 {
				cancel()
				for range running {
					<-results // the loser, cancelled: it returns promptly
				}
				return r.resp, r.err
			}
		}
	}
}
