package main

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/braidgw/braid/auth"
	"github.com/braidgw/braid/observability"
	"github.com/braidgw/braid/ratelimit"
)

// edge builds the routes' token verifiers and rate limiters and closes
// them on shutdown. Routes with the same auth section share one verifier,
// so a JWKS is fetched and cached once. Rate limits are kept in Redis when
// cache.redis.url is set (whether or not the cache is on), so that they
// hold across replicas; each limiter falls back to its local counts while
// Redis is down.
type edge struct {
	log    *slog.Logger
	tel    *observability.Telemetry // counts local fallbacks; nil counts nothing
	rdb    *redis.Client            // nil: limits are local to this replica
	prefix string

	mu        sync.Mutex
	verifiers map[string]*auth.Verifier // by the auth section's text
	limiters  []*ratelimit.Limiter
}

func newEdge(cfg *fileConfig, log *slog.Logger, tel *observability.Telemetry) (*edge, error) {
	e := &edge{log: log, tel: tel, verifiers: map[string]*auth.Verifier{}}
	if url := cfg.Cache.Redis.URL; url != "" {
		o, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("cache.redis.url: %w", err)
		}
		o.MaxRetries = -1              // a failed decision falls back to the local limiter at once
		o.ContextTimeoutEnabled = true // the limiter's 50 ms bound cuts slow reads short
		if o.DialTimeout == 0 {
			o.DialTimeout = 500 * time.Millisecond
		}
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		e.rdb = redis.NewClient(o)
		e.prefix = cfg.Cache.Redis.Prefix
		if e.prefix == "" {
			e.prefix = "braid:"
		}
	}
	return e, nil
}

// verifier is the routes' AuthFactory.
func (e *edge) verifier(c auth.Config) (*auth.Verifier, error) {
	key := fmt.Sprintf("%#v", c)
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.verifiers[key]; ok {
		return v, nil
	}
	v, err := auth.New(c, auth.WithLogger(e.log.With("component", "auth")))
	if err != nil {
		return nil, err
	}
	e.verifiers[key] = v
	return v, nil
}

// limiter is the routes' LimiterFactory.
func (e *edge) limiter(name string, c ratelimit.Config) *ratelimit.Limiter {
	opts := []ratelimit.Option{ratelimit.WithLogger(e.log.With("component", "ratelimit")),
		ratelimit.WithOnFallback(func() { e.tel.RateLimitFallback(name) })}
	if e.rdb != nil {
		opts = append(opts, ratelimit.WithRedis(e.rdb, e.prefix+"ratelimit:"))
	}
	l := ratelimit.New(name, c, opts...)
	e.mu.Lock()
	e.limiters = append(e.limiters, l)
	e.mu.Unlock()
	return l
}

// close stops every verifier and limiter and closes the Redis client.
func (e *edge) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range e.verifiers {
		v.Close()
	}
	for _, l := range e.limiters {
		l.Close()
	}
	if e.rdb != nil {
		_ = e.rdb.Close()
	}
}
