package main

import (
	"context"
	"math"
	"sync"
	"time"
)

// plan is the open-loop schedule of one scenario: request i is sent at
// offset(i) from the start, whatever the others are doing.
type plan struct {
	rate        float64       // requests per second
	warmup      time.Duration // requests scheduled before this are not recorded
	duration    time.Duration // measured window after the warm-up
	ids         idRange       // user ids, cycled by request index
	concurrency int           // cap on requests in flight; over it a request is dropped
	timeout     time.Duration // per-request budget, from the scheduled send time
}

// total returns how many requests the plan schedules: every i with
// offset(i) < warmup + duration.
func (p plan) total() int {
	return p.countBefore(p.warmup + p.duration)
}

// countBefore returns how many requests are due before d: the number of i
// with offset(i) < d.
func (p plan) countBefore(d time.Duration) int {
	f := math.Floor(d.Seconds() * p.rate)
	if f > math.MaxInt32 {
		return math.MaxInt32
	}
	n := int(f)
	for p.offset(n) < d {
		n++
	}
	for n > 0 && p.offset(n-1) >= d {
		n--
	}
	return n
}

// offset returns when request i is due, relative to the start: i / rate.
func (p plan) offset(i int) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / p.rate)
}

// measured reports whether request i falls in the measured window.
func (p plan) measured(i int) bool {
	return p.offset(i) >= p.warmup
}

// sample is the outcome of one request.
type sample struct {
	measured bool
	latency  time.Duration // from the scheduled send time to the end
	calls    int           // upstream calls the client made
	err      error
	aborted  bool // cancelled because the run was interrupted
}

// recorder collects the samples of one scenario.
type recorder struct {
	mu        sync.Mutex // guards the fields below
	latencies []time.Duration
	calls     int
	errors    int
	aborted   int
	dropped   int
	kinds     map[string]*errorStat
	order     []string // error kinds in the order first seen
}

// errorStat counts the errors of one kind and keeps the first.
type errorStat struct {
	Count int    `json:"count"`
	First string `json:"first"`
}

// newRecorder returns a recorder with room for the measured requests of p.
func newRecorder(p plan) *recorder {
	n := p.total() - p.countBefore(p.warmup)
	return &recorder{latencies: make([]time.Duration, 0, min(n, 1<<20)), kinds: map[string]*errorStat{}}
}

// add records s if it is measured.
func (r *recorder) add(s sample) {
	if !s.measured {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case s.aborted:
		r.aborted++
	case s.err != nil:
		r.errors++
		k := errorKind(s.err)
		if st, ok := r.kinds[k]; ok {
			st.Count++
		} else {
			r.kinds[k] = &errorStat{Count: 1, First: s.err.Error()}
			r.order = append(r.order, k)
		}
	default:
		r.latencies = append(r.latencies, s.latency)
		r.calls += s.calls
	}
}

// drop records a request that was not sent because the cap was reached.
func (r *recorder) drop(measured bool) {
	if !measured {
		return
	}
	r.mu.Lock()
	r.dropped++
	r.mu.Unlock()
}

// runScenario runs sc on the schedule of p until the schedule ends or ctx
// is done, waits for every request it started, and summarizes. A request
// in flight when ctx is cancelled is counted as aborted, not as an error.
func runScenario(ctx context.Context, p plan, sc *scenario) result {
	rec := newRecorder(p)
	sem := make(chan struct{}, p.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	n := p.total()
	for i := 0; i < n; i++ {
		at := start.Add(p.offset(i))
		if !sleepUntil(ctx, timer, at) {
			break
		}
		measured := p.measured(i)
		select {
		case sem <- struct{}{}:
		default:
			rec.drop(measured)
			continue
		}
		id := p.ids.at(i)
		wg.Go(func() {
			defer func() { <-sem }()
			rec.add(doRequest(ctx, p.timeout, sc, id, at, measured))
		})
	}
	window := p.duration
	if ctx.Err() != nil {
		window = min(max(time.Since(start)-p.warmup, 0), p.duration)
	}
	wg.Wait()
	return summarize(sc, rec, window)
}

// sleepUntil waits on timer until at, and reports false if ctx is done
// first. It returns at once when at has passed.
func sleepUntil(ctx context.Context, timer *time.Timer, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-ctx.Done():
		timer.Stop()
		return false
	case <-timer.C:
		return true
	}
}

// doRequest runs one request of sc for user id, due at at, with a deadline
// of at + timeout, and returns its sample.
func doRequest(ctx context.Context, timeout time.Duration, sc *scenario, id int, at time.Time, measured bool) sample {
	rctx, cancel := context.WithDeadline(ctx, at.Add(timeout))
	defer cancel()
	calls, err := sc.do(rctx, id)
	s := sample{measured: measured, latency: time.Since(at), calls: calls, err: err}
	if err != nil && ctx.Err() != nil {
		s.aborted = true
	}
	return s
}
