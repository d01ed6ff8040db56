package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// defaultMaxKeys is the default bound of a Limiter's local store.
const defaultMaxKeys = 100_000

// Limiter limits the rate of requests per client key under one policy (a
// route's rate_limit). It is safe for concurrent use. Create one with New
// and Close it when done.
type Limiter struct {
	name       string
	cfg        Config // with defaults applied
	gcra       gcra
	now        func() int64 // ns since start, on the injected clock or the monotonic one
	log        *slog.Logger
	onFallback func()

	local     *store
	remote    *remote       // nil without Redis
	fallbacks atomic.Uint64 // decisions made locally although Redis is configured
}

// options are what the Options of New set.
type options struct {
	rdb        redis.UniversalClient
	prefix     string
	timeout    time.Duration
	backoff    time.Duration
	now        func() time.Time
	rand       func() float64 // the backoff's jitter; tests fix it
	log        *slog.Logger
	maxKeys    int
	onFallback func()
}

// Option configures a Limiter; pass them to New.
type Option func(*options)

// WithRedis makes the Limiter share its state with every Limiter of the
// same name and prefix through rdb, so that the limit holds across the
// replicas of the gateway. Each client key is stored at
// "rate:" + prefix + name + ":" + key (redis_rate adds "rate:") and
// expires when its quota is whole again. Default prefix
// "braid:ratelimit:". The client stays the caller's: Close does not close
// it. It should have ContextTimeoutEnabled set, or the timeout of
// WithTimeout cannot cut a slow read short; New logs a warning if not.
func WithRedis(rdb redis.UniversalClient, prefix string) Option {
	return func(o *options) {
		o.rdb = rdb
		if prefix != "" {
			o.prefix = prefix
		}
	}
}

// WithTimeout bounds each Redis call; a call that takes longer counts as a
// failure and the request is decided locally. Default 50ms. Values <= 0
// keep the default.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithBackoff sets how long Redis is left alone after a failure, during
// which every request is decided locally at no cost in latency; the first
// request after it tries Redis again, alone. The backoff is shortened by a
// random 0-20% so that replicas do not probe in lock-step. Default 1s.
// Values <= 0 keep the default.
func WithBackoff(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.backoff = d
		}
	}
}

// WithClock sets the clock of the local limiter and of the Redis backoff.
// Default time.Now. Redis decides on its own clock.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithLogger sets where Redis outages and recoveries are logged, once per
// change. Default: nowhere.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithMaxKeys bounds the client keys the local limiter remembers. Each
// costs about 150 bytes plus the key's length, so the default of 100,000
// keys holds the local state of a Limiter under 20MB for keys of up to 50
// bytes (an IPv6 address is at most 39). Values <= 0 keep the default.
func WithMaxKeys(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxKeys = n
		}
	}
}

// WithOnFallback sets a function called for every decision made locally
// although Redis is configured: because a Redis call failed or timed out,
// or because Redis is being left alone after a failure. It runs on the
// goroutine of Allow and must be quick: a counter's Inc. See also
// Limiter.Fallbacks.
func WithOnFallback(f func()) Option {
	return func(o *options) { o.onFallback = f }
}

// New returns a Limiter named name (the policy name of its headers, and
// part of its Redis keys) enforcing cfg, with its zero fields defaulted.
// cfg must be valid: New panics with Validate's error otherwise, so
// validate configuration when it is loaded.
func New(name string, cfg Config, opts ...Option) *Limiter {
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("ratelimit: New(%q): %v", name, err))
	}
	o := options{
		prefix:  defaultPrefix,
		timeout: defaultTimeout,
		backoff: defaultBackoff,
		maxKeys: defaultMaxKeys,
	}
	for _, opt := range opts {
		opt(&o)
	}
	l := &Limiter{name: name, cfg: cfg.withDefaults(), log: o.log, onFallback: o.onFallback}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	iv := interval(l.cfg)
	l.gcra = gcra{interval: int64(iv), window: int64(iv) * int64(l.cfg.Burst)}
	var storeNow func() int64
	if o.now != nil {
		start, now := o.now(), o.now
		l.now = func() int64 { return int64(now().Sub(start)) }
		storeNow = l.now
	} else {
		start := time.Now()
		l.now = func() int64 { return int64(time.Since(start)) }
	}
	l.local = newStore(o.maxKeys, time.Duration(l.gcra.window), storeNow, l.log)
	if o.rdb != nil {
		l.remote = newRemote(l, &o)
	}
	return l
}

// Allow decides one request of the client key. With Redis it asks Redis,
// bounded by the timeout; when Redis is backing off, fails or is too slow,
// it decides with the local limiter instead, which enforces the limit on
// this replica alone. It never fails: a limit always holds.
func (l *Limiter) Allow(ctx context.Context, key string) Decision {
	d := Decision{Limit: l.cfg.Burst, Window: time.Duration(l.gcra.window), Policy: l.name}
	if l.remote != nil {
		if res, ok := l.remote.allow(ctx, key); ok {
			d.Allowed = res.Allowed > 0
			d.Remaining = max(res.Remaining, 0)
			d.RetryAfter = max(res.RetryAfter, 0)
			d.Reset = max(res.ResetAfter, 0)
			return d
		}
		l.fallbacks.Add(1)
		if l.onFallback != nil {
			l.onFallback()
		}
	}
	d.Allowed, d.Remaining, d.RetryAfter, d.Reset = l.gcra.allow(l.local.tat(key), l.now())
	return d
}

// Fallbacks returns the number of decisions made locally although Redis is
// configured (see WithOnFallback).
func (l *Limiter) Fallbacks() uint64 { return l.fallbacks.Load() }

// Close stops the goroutines of the local store (its clock and periodic
// clean-up; none with WithClock). It does not close the Redis client.
// Allow still works after Close, on a clock that no longer moves for the
// store's expiry, so Close a Limiter only once it is no longer used.
func (l *Limiter) Close() { l.local.close() }
