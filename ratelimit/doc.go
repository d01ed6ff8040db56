// Package ratelimit limits the rate of requests per client key (a token's
// subject, a client IP) under a route's rate_limit policy, and says so in
// the RateLimit header fields.
//
// A Limiter enforces one Config: Rate requests per Period per key, in
// bursts of up to Burst. Each request asks Allow and is served or answered
// 429 as the Decision says:
//
//	lim := ratelimit.New("orders", ratelimit.Config{Rate: 50}, ratelimit.WithRedis(rdb, ""))
//	defer lim.Close()
//	...
//	d := lim.Allow(r.Context(), clientKey)
//	d.Headers(w.Header())
//	if !d.Allowed {
//		w.WriteHeader(http.StatusTooManyRequests)
//		return
//	}
//
// # Algorithm
//
// Both the local and the Redis limiter run GCRA, the Generic Cell Rate
// Algorithm: a token bucket kept as one timestamp per key, the time at
// which the key's quota will be whole again. Locally that is one int64
// moved by compare-and-swap, in integer nanoseconds on an injectable clock,
// so tests count exactly and Allow makes no allocation for a known key.
// golang.org/x/time/rate would cost a mutex and float64 tokens per key, and
// a different algorithm from Redis's; with GCRA on both sides a decision
// made locally during a Redis outage reads the same as one made by Redis.
//
// # Local store and its bound
//
// Without Redis, or when Redis fails, keys are counted in an in-process
// otter cache of at most WithMaxKeys keys (default 100,000, about 150
// bytes plus the key each). A key expires once its quota is whole again,
// when forgetting it changes nothing. When the cache is full otter's
// W-TinyLFU policy evicts, and its admission filter favours keys that are
// used often, so a client spraying fresh keys (one request per IP) mostly
// evicts its own entries; an evicted key starts again with a whole quota.
//
// # Redis
//
// WithRedis shares the limit between the replicas of the gateway: each
// decision is redis_rate's GCRA Lua script (github.com/go-redis/redis_rate,
// built on go-redis v9), run atomically on Redis's clock. Each call is
// bounded by WithTimeout (default 50ms). When Redis fails or is too slow
// the request is decided by the local limiter instead, which enforces the
// limit on this replica alone, so a fleet of N replicas admits up to N
// times the limit while Redis is away; Allow never returns an error and
// never lets a request through unlimited. After a failure Redis is left
// alone for WithBackoff (default 1s), so a dead Redis adds no latency to
// the requests in between, and then one probe tries it again. Fallback
// decisions are counted (Limiter.Fallbacks, WithOnFallback); outages and
// recoveries are logged once each.
//
// # Header fields
//
// Decision.Headers writes RateLimit-Policy and RateLimit as defined by
// draft-ietf-httpapi-ratelimit-headers-11 (23 May 2026), both Lists of
// Items named after the Limiter, and Retry-After on a denial:
//
//	RateLimit-Policy: "orders";q=50;w=1
//	RateLimit: "orders";r=42;t=1
package ratelimit
