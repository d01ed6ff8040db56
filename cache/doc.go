// Package cache is Braid's two-tier cache of upstream JSON answers: L1 in
// the process (otter, bounded by bytes), then L2 in Redis shared by the
// replicas, then the fetch. It stores the raw bytes a call returned, which
// the caller splices into its answer as they are.
//
// The cache layer of each call's stack holds one *Cache and the call's
// Policy, and asks it for each request:
//
//	c, err := cache.New(ctx, cfg.Cache, cache.Options{Logger: log, Negative: isNotFound})
//	if err != nil {
//		return err // a bad config names its field
//	}
//	defer c.Close()
//
//	e := cache.Entry{Key: "products GET /products/87", Namespace: "products", Tags: []string{"product:87"}}
//	body, status, err := c.Get(ctx, e, cache.Policy{TTL: time.Minute, StaleIfError: 5 * time.Minute},
//		func(ctx context.Context) ([]byte, error) { return fetchProduct(ctx, 87) })
//	w.Header().Add("Cache-Status", "braid; "+status.CacheStatus())
//
// A batch join asks for its keys at once with Lookup (one Redis round trip
// for all its L1 misses), fetches the misses in one call, and gives the
// values to Fill.
//
// # Invalidation
//
// Namespaces and tags have versions in Redis (prefix+"v:ns:"+name,
// prefix+"v:tag:"+name; absent is 0). Every entry carries the versions its
// namespace and tags had before its fetch started, and is valid only while
// they are current. Invalidate bumps them (INCR) and publishes the change;
// each replica's subscriber moves its own view of the versions up, so its
// L1 entries fall out at their next read, with no scan of keys anywhere. A
// fill whose versions moved during its fetch is not stored: in Redis a Lua
// script compares and sets atomically. A replica whose subscription drops
// may have missed messages, so it flushes its L1.
//
// # Redis is not a point of failure
//
// Each Redis operation is bounded by RedisConfig.Timeout and guarded by a
// circuit breaker; go-redis does not retry. A Redis error is never
// returned: Get falls through to L1 only and the fetch, and a dead Redis
// costs a request nothing once the breaker is open.
package cache
