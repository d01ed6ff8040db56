package ratelimit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/braidgw/braid/breaker"
)

// Defaults of the Redis options.
const (
	defaultPrefix  = "braid:ratelimit:"
	defaultTimeout = 50 * time.Millisecond
	defaultBackoff = time.Second
)

// remote is the shared state of a Limiter in Redis: redis_rate's GCRA
// script, run on Redis's clock, so replicas agree whatever their clocks.
// A breaker trips on the first failure and keeps Redis out of the way for
// the backoff, then lets one probe through.
type remote struct {
	rl      *redis_rate.Limiter
	limit   redis_rate.Limit
	prefix  string        // prefix + name + ":", before each client key
	timeout time.Duration // bounds each call
	br      *breaker.Breaker
	lastErr atomic.Pointer[error] // the latest failure, for the outage log
}

// newRemote returns the Redis side of l for the given client and options.
// redis_rate takes a limit of Rate events per Period; Rate 1 per one
// emission interval is the same limit for any fractional Rate.
func newRemote(l *Limiter, o *options) *remote {
	r := &remote{
		rl:      redis_rate.NewLimiter(o.rdb),
		limit:   redis_rate.Limit{Rate: 1, Period: time.Duration(l.gcra.interval), Burst: l.cfg.Burst},
		prefix:  o.prefix + l.name + ":",
		timeout: o.timeout,
	}
	br, err := breaker.New(breaker.Config{
		ConsecutiveFailures: 1,
		OpenDuration:        o.backoff,
		MaxOpenDuration:     o.backoff,
		HalfOpenProbes:      1,
	}, breaker.Options{Now: o.now, Rand: o.rand, OnStateChange: func(from, to breaker.State) { r.changed(l, from, to) }})
	if err != nil {
		panic("ratelimit: backoff breaker: " + err.Error()) // a negative backoff, refused by WithBackoff
	}
	r.br = br
	if !contextTimeouts(o.rdb) {
		l.log.Warn("ratelimit: the redis client ignores context deadlines (ContextTimeoutEnabled is false); a slow redis may hold requests for its read timeout",
			"limiter", l.name)
	}
	return r
}

// allow asks Redis. It reports false when Redis was not asked (backing
// off), failed or took longer than the timeout; the caller then decides
// locally.
func (r *remote) allow(ctx context.Context, key string) (redis_rate.Result, bool) {
	tk, err := r.br.Allow()
	if err != nil {
		return redis_rate.Result{}, false
	}
	callCtx, cancel := context.WithTimeout(ctx, r.timeout)
	res, err := r.rl.Allow(callCtx, r.prefix+key, r.limit)
	cancel()
	switch {
	case err == nil:
		r.br.Record(tk, breaker.Success, 0)
		return *res, true
	case ctx.Err() != nil:
		r.br.Record(tk, breaker.Ignored, 0) // our caller went away or ran out of time: no verdict on Redis
	default:
		r.lastErr.Store(&err)
		r.br.Record(tk, breaker.Failure, 0)
	}
	return redis_rate.Result{}, false
}

// changed logs Redis going away and coming back, once each: a probe that
// fails (half-open to open) is the same outage.
func (r *remote) changed(l *Limiter, from, to breaker.State) {
	switch {
	case to == breaker.Open && from == breaker.Closed:
		var err error
		if p := r.lastErr.Load(); p != nil {
			err = *p
		}
		l.log.Warn("ratelimit: redis is failing; limits are enforced per replica until it answers again",
			"limiter", l.name, "err", err)
	case to == breaker.Closed:
		l.log.Info("ratelimit: redis answers again; limits are shared again", "limiter", l.name)
	}
}

// contextTimeouts reports whether rdb applies context deadlines to its
// reads and writes, which the timeout relies on. A client of a type it
// does not know is taken to.
func contextTimeouts(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}
