package cache

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// ErrFetchPanicked is wrapped by the error Get returns when the fetch
// panicked: the panic is recovered in the coalesced fetch, which runs on a
// goroutine of its own, and returned to every caller waiting for it.
var ErrFetchPanicked = errors.New("cache: fetch panicked")

// refreshKey prefixes the flight key of a background refresh, so that a
// refresh and a miss's flight are told apart.
const refreshKey = "\x00refresh\x00"

// Entry identifies one cached value and what invalidates it.
type Entry struct {
	// Key is the value's identity, built by the caller from everything the
	// value depends on ("products GET /products/87").
	Key string
	// Namespace is the rendered namespace, "" for none.
	Namespace string
	// Tags are the rendered tags; order and duplicates do not matter.
	Tags []string
}

// Fetcher fetches a value on a miss. Its ctx is the coalesced fetch's own:
// detached from any one caller, bounded by the first caller's deadline.
type Fetcher func(ctx context.Context) ([]byte, error)

// result is what one flight gives every caller waiting for it.
type result struct {
	val    []byte
	status Status
	err    error
}

// Get returns e's value: from L1, else from L2 (filling L1), else from
// fetch (filling both). The returned slice is shared: callers must not
// modify it.
//
// A value past its TTL is served (Stale) within p.StaleWhileRevalidate
// while one background fetch per key refreshes it, and within
// p.StaleIfError when the fetch fails. An error for which Options.Negative
// reports true is cached for p.NegativeTTL and returned again
// (NegativeHit). Redis errors never reach the caller: L2 is skipped.
//
// Concurrent misses of one key are coalesced into one fetch, which runs
// detached from its callers and bounded by the first caller's deadline
// (Config.RefreshTimeout without one), so that one cancelled caller cannot
// fail the others; each caller still returns ctx.Err() when its own ctx
// ends. A Policy with no TTL, or a Cache after Close, just fetches.
func (c *Cache) Get(ctx context.Context, e Entry, p Policy, fetch Fetcher) ([]byte, Status, error) {
	if p.TTL <= 0 {
		v, err := fetch(ctx)
		return v, Miss, err
	}
	stale := c.l1Get(e.Key)
	if stale != nil {
		now := c.nowNano()
		switch {
		case now < stale.fresh && stale.err != nil:
			c.event(LayerL1, EventHit)
			return nil, NegativeHit, stale.err
		case now < stale.fresh:
			c.event(LayerL1, EventHit)
			return stale.val, HitL1, nil
		case stale.err == nil && now < stale.fresh+int64(p.StaleWhileRevalidate):
			c.event(LayerL1, EventStale)
			c.refresh(e, p, fetch)
			return stale.val, Stale, nil
		case stale.err != nil:
			stale = nil // an expired "not found" is never served stale
		}
	}
	c.event(LayerL1, EventMiss)
	return c.miss(ctx, e, p, fetch, stale)
}

// miss is Get without a usable L1 entry: it joins or starts the flight of
// e's key and waits for it or for ctx. stale is an expired L1 entry, or nil.
func (c *Cache) miss(ctx context.Context, e Entry, p Policy, fetch Fetcher, stale *entry) ([]byte, Status, error) {
	if c.isClosed() {
		v, err := fetch(ctx)
		return v, Miss, err
	}
	ch := c.flights.DoChan(e.Key, func() (any, error) {
		if !c.enter() { // closed meanwhile
			return result{err: context.Canceled}, nil
		}
		defer c.wg.Done()
		fctx, cancel := c.flightContext(ctx)
		defer cancel()
		return c.load(fctx, e, p, fetch, stale, false), nil
	})
	select {
	case r := <-ch:
		res := r.Val.(result)
		return res.val, res.status, res.err
	case <-ctx.Done():
		return nil, Miss, ctx.Err()
	}
}

// flightContext returns the context of a coalesced fetch started by a
// caller with ctx: ctx's values without its cancellation, bounded by its
// deadline (or RefreshTimeout), and cancelled by Close.
func (c *Cache) flightContext(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(c.cfg.RefreshTimeout)
	}
	fctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), dl)
	stop := context.AfterFunc(c.ctx, cancel)
	return fctx, func() {
		stop()
		cancel()
	}
}

// refresh starts, unless one is running for e's key, a background fetch of
// e that replaces its value, under a context of its own bounded by
// RefreshTimeout and cancelled by Close.
func (c *Cache) refresh(e Entry, p Policy, fetch Fetcher) {
	c.flights.DoChan(refreshKey+e.Key, func() (any, error) {
		if !c.enter() {
			return nil, nil
		}
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RefreshTimeout)
		defer cancel()
		if r := c.load(ctx, e, p, fetch, nil, true); r.err != nil {
			c.log.Debug("cache: background refresh failed", "key", e.Key, "err", r.err)
		}
		return nil, nil
	})
}

// load is one flight for e: L2, then fetch, then fill. stale is an expired
// L1 entry the caller found, or nil; refreshing is true for a background
// refresh, which must not serve stale nor start another refresh.
func (c *Cache) load(ctx context.Context, e Entry, p Policy, fetch Fetcher, stale *entry, refreshing bool) result {
	epoch := c.epoch.Load()
	deps := c.depsOf(e)
	staleFrom := LayerL1
	if ents, ok := c.readL2(ctx, []string{e.Key}, [][]dep{deps}); ok {
		found, now := ents[0], c.nowNano()
		switch {
		case found == nil:
			c.event(LayerL2, EventMiss)
		case now < found.fresh:
			c.event(LayerL2, EventHit)
			c.storeL1(e.Key, c.fromL2(found, p, epoch))
			return result{val: found.val, status: HitL2}
		case !refreshing && now < found.fresh+int64(p.StaleWhileRevalidate):
			c.event(LayerL2, EventStale)
			c.storeL1(e.Key, c.fromL2(found, p, epoch))
			c.refresh(e, p, fetch)
			return result{val: found.val, status: Stale}
		default: // expired beyond stale_while_revalidate: a candidate for stale_if_error
			c.event(LayerL2, EventMiss)
			if stale == nil || found.fresh > stale.fresh {
				stale, staleFrom = found, LayerL2
			}
		}
	}
	val, err := callFetch(ctx, fetch)
	if err == nil {
		c.fill(ctx, e.Key, c.newEntry(val, deps, epoch, p))
		return result{val: val, status: Miss}
	}
	if p.NegativeTTL > 0 && c.negative != nil && c.negative(err) {
		now := c.nowNano()
		neg := &entry{err: err, fresh: now + int64(p.NegativeTTL), keep: now + int64(p.NegativeTTL), epoch: epoch, deps: deps}
		c.storeL1(e.Key, neg)
		return result{status: Miss, err: err}
	}
	if !refreshing && stale != nil && c.nowNano() < stale.fresh+int64(p.StaleIfError) {
		c.event(staleFrom, EventStale)
		return result{val: stale.val, status: Stale}
	}
	return result{status: Miss, err: err}
}

// callFetch calls fetch, turning a panic into an error wrapping
// ErrFetchPanicked: on a flight's goroutine a panic would crash the process.
func callFetch(ctx context.Context, fetch Fetcher) (val []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			val, err = nil, fmt.Errorf("%w: %v\n%s", ErrFetchPanicked, r, debug.Stack())
		}
	}()
	return fetch(ctx)
}

// newEntry returns the entry of a value fetched now, at the versions deps
// had before its fetch, fresh for p's jittered TTL.
func (c *Cache) newEntry(val []byte, deps []dep, epoch uint64, p Policy) *entry {
	fresh := c.nowNano() + int64(c.freshFor(p))
	return &entry{val: val, fresh: fresh, keep: fresh + int64(p.keep()), epoch: epoch, deps: deps}
}

// fromL2 completes an entry read from L2 for storing in L1 under p.
func (c *Cache) fromL2(ent *entry, p Policy, epoch uint64) *entry {
	ent.keep = ent.fresh + int64(p.keep())
	ent.epoch = epoch
	return ent
}

// fill stores a fetched entry in L2 (if its versions did not move: see
// storeScript), then in L1. A version that already moved here skips both.
// The write is detached from ctx's cancellation and bounded by Timeout.
func (c *Cache) fill(ctx context.Context, key string, ent *entry) {
	if !c.valid(ent) {
		c.event(LayerL1, EventSkipStaleWrite)
		return
	}
	if c.rdb != nil {
		stored, ok := c.writeL2(context.WithoutCancel(ctx), []string{key}, []*entry{ent})
		switch {
		case ok && !stored[0]:
			c.event(LayerL2, EventSkipStaleWrite)
			return
		case ok:
			c.event(LayerL2, EventFill)
		}
	}
	c.storeL1(key, ent)
}
