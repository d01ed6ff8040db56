package ratelimit

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// gcra is the Generic Cell Rate Algorithm over one key's state, its
// theoretical arrival time (TAT): the time at which the key's quota will be
// whole again, in nanoseconds on the Limiter's clock. A key whose TAT has
// passed (or that has none) has its whole quota. This is the algorithm of
// redis_rate's Lua script, in integer nanoseconds.
type gcra struct {
	interval int64 // ns: the emission interval, Period/Rate
	window   int64 // ns: Burst × interval, the delay variation tolerance
}

// allow decides one request at now against the TAT in tat, and moves tat
// on when it allows. Concurrent calls on one tat are linearised by
// compare-and-swap.
func (g gcra) allow(tat *atomic.Int64, now int64) (allowed bool, remaining int, retryAfter, reset time.Duration) {
	for {
		old := tat.Load()
		t := max(old, now)
		next := t + g.interval
		allowAt := next - g.window
		if now < allowAt {
			return false, 0, time.Duration(allowAt - now), time.Duration(t - now)
		}
		if tat.CompareAndSwap(old, next) {
			return true, int((now - allowAt) / g.interval), 0, time.Duration(next - now)
		}
	}
}

// store is the local state of a Limiter: one TAT per key, in an otter cache
// bounded to maxKeys entries. An entry expires once it has not been read
// for the window: its TAT has then passed, and a missing entry means the
// same, so expiry loses nothing. When the store is full, otter's W-TinyLFU
// policy decides which key to drop; its admission filter keeps a key that
// is used often against a stream of keys used once, so a spray of client
// keys evicts mostly its own entries. A dropped key starts again with a
// whole quota.
type store struct {
	c      *otter.Cache[string, *atomic.Int64]
	coarse *otter.CoarseClock // otter's clock; nil with an injected one
}

// coarseResolution is how often the store's clock reads the time. It lags
// behind the time by up to that, so entries expire late, never early; and
// a read of it costs next to nothing, where the real clock costs a third
// of a local decision.
const coarseResolution = 10 * time.Millisecond

// newStore returns a store of at most maxKeys keys, expiring each window
// after its last use. With an injected clock (now not nil) otter reads it
// and runs no goroutine; otherwise otter reads a CoarseClock and cleans up
// periodically, in goroutines that close stops.
func newStore(maxKeys int, window time.Duration, now func() int64, log *slog.Logger) *store {
	s := &store{}
	o := &otter.Options[string, *atomic.Int64]{
		MaximumSize:      maxKeys,
		ExpiryCalculator: otter.ExpiryAccessing[string, *atomic.Int64](window),
		Logger:           otterLogger{log},
	}
	if now != nil {
		o.Clock = clock{now}
	} else {
		s.coarse = otter.NewCoarseClock(coarseResolution)
		o.Clock = s.coarse
	}
	s.c = otter.Must(o)
	return s
}

// tat returns key's TAT, adding a key with a whole quota if it is missing.
// An allocation happens only for a new key.
func (s *store) tat(key string) *atomic.Int64 {
	if p, ok := s.c.GetIfPresent(key); ok {
		return p
	}
	p, _ := s.c.SetIfAbsent(key, new(atomic.Int64))
	return p
}

// len returns the number of keys held, after any pending evictions.
func (s *store) len() int {
	s.c.CleanUp()
	return s.c.EstimatedSize()
}

// close stops the goroutines of otter and its clock, if they run.
func (s *store) close() {
	s.c.StopAllGoroutines()
	if s.coarse != nil {
		s.coarse.Stop()
	}
}

// clock is an injected clock as an otter.Clock, without ticks.
type clock struct{ now func() int64 }

func (k clock) NowNano() int64                      { return k.now() }
func (k clock) Tick(time.Duration) <-chan time.Time { return nil }

// otterLogger sends otter's complaints to the Limiter's logger.
type otterLogger struct{ log *slog.Logger }

func (l otterLogger) Warn(ctx context.Context, msg string, err error) {
	l.log.WarnContext(ctx, "ratelimit: store: "+msg, "err", err)
}

func (l otterLogger) Error(ctx context.Context, msg string, err error) {
	l.log.ErrorContext(ctx, "ratelimit: store: "+msg, "err", err)
}
