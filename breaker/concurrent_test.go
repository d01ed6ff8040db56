package breaker

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrent runs many goroutines making calls with random outcomes
// and durations through one breaker while the clock moves; run it with
// -race.
func TestConcurrent(t *testing.T) {
	var (
		b          *Breaker
		inCallback atomic.Int32
		mu         sync.Mutex // guards changes
		changes    []transition
	)
	cfg := Config{Window: time.Second, OpenDuration: 20 * time.Millisecond, MaxOpenDuration: 80 * time.Millisecond}
	b, clk := newTestBreaker(t, cfg, Options{OnStateChange: func(from, to State) {
		if inCallback.Add(1) != 1 {
			t.Error("OnStateChange called concurrently")
		}
		_ = b.State()
		mu.Lock()
		changes = append(changes, transition{from, to})
		mu.Unlock()
		inCallback.Add(-1)
	}})

	stop := make(chan struct{})
	var ticker sync.WaitGroup
	ticker.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				clk.Advance(time.Millisecond)
			}
		}
	})
	load(t, b, 16, 2000)
	close(stop)
	ticker.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d transitions", len(changes))
	checkQuiet(t, b, changes)
}

// load makes calls calls through b from each of workers goroutines, with
// random outcomes and durations up to 1.2s, and returns when all are done.
func load(t *testing.T, b *Breaker, workers, calls int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(1, uint64(w)))
			for range calls {
				tk, err := b.Allow()
				if err != nil {
					if !errors.Is(err, ErrOpen) {
						t.Errorf("Allow: %v, want ErrOpen", err)
					}
					continue
				}
				b.Record(tk, Outcome(rng.IntN(3)), time.Duration(rng.IntN(1200))*time.Millisecond)
			}
		})
	}
	wg.Wait()
}

// checkQuiet checks b once no call is in flight: a valid state, no permit
// leaked, every transition delivered, and changes, the transitions
// OnStateChange saw, forming one chain from Closed to the current state.
func checkQuiet(t *testing.T, b *Breaker, changes []transition) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.state; s != Closed && s != Open && s != HalfOpen {
		t.Errorf("state %d is not a State", s)
	}
	if b.inFlight != 0 || b.successes >= b.cfg.HalfOpenProbes {
		t.Errorf("half-open permits: %d in flight, %d successes, %d probes", b.inFlight, b.successes, b.cfg.HalfOpenProbes)
	}
	if b.delivering || len(b.pending) > 0 {
		t.Errorf("undelivered transitions: delivering %v, pending %v", b.delivering, b.pending)
	}
	if len(changes) < 3 {
		t.Errorf("only %d transitions; the load did not exercise the breaker", len(changes))
	}
	prev := Closed
	for i, c := range changes {
		if c.from != prev || c.from == c.to {
			t.Fatalf("transition %d: %s -> %s after reaching %s", i, c.from, c.to, prev)
		}
		prev = c.to
	}
	if prev != b.state {
		t.Errorf("last transition reached %s, breaker is %s", prev, b.state)
	}
}
