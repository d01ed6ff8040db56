package cache

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/braidgw/braid/breaker"
)

// The layers and events reported to Options.OnEvent.
const (
	LayerL1 = "l1"
	LayerL2 = "l2"

	EventHit            = "hit"              // a fresh value was found
	EventMiss           = "miss"             // nothing usable was found
	EventStale          = "stale"            // an expired value was served
	EventError          = "error"            // an L2 operation failed (or the L2 breaker refused it)
	EventFill           = "fill"             // a value was stored
	EventSkipStaleWrite = "skip_stale_write" // a fill was refused: its versions moved during the fetch
	EventInvalidate     = "invalidate"       // an invalidation was applied
	EventFlush          = "flush"            // all of L1 was dropped (a lost subscription)
)

// startWait bounds how long New waits for the first subscription.
const startWait = time.Second

// coarseResolution is how often the default clock reads the time: reading
// the precise time would be most of an L1 hit's cost, and TTLs do not need
// it.
const coarseResolution = 10 * time.Millisecond

// defaultPingEvery is how long the subscriber waits for a message before it
// pings Redis to check its connection.
const defaultPingEvery = 15 * time.Second

// Options are the run-time dependencies of a Cache; the zero value is ready
// to use.
type Options struct {
	// Now is the clock of TTLs, in L1 and in the timestamps stored in L2.
	// Default: the time, read every 10ms by a goroutine of the Cache (an
	// otter.CoarseClock), which makes an L1 hit cheaper; tests inject a fake.
	Now func() time.Time

	// Rand returns TTL jitter in [0, 1): a value lives TTL * (1 + 0.1*Rand()).
	// Default math/rand/v2's Float64.
	Rand func() float64

	// Logger receives Redis outages and recoveries. Nil discards.
	Logger *slog.Logger

	// Negative reports whether a fetch error means "not found" and may be
	// cached for Policy.NegativeTTL. Nil: no error is.
	Negative func(error) bool

	// OnEvent, if not nil, is told of each cache event: layer is "l1" or
	// "l2", event one of the Event constants. It is called on the request's
	// goroutine, so it must be fast and must not block. Nil: none.
	OnEvent func(layer, event string)

	// pingEvery overrides defaultPingEvery, for tests.
	pingEvery time.Duration
}

// Cache is a two-tier cache of upstream JSON answers: L1 in this process,
// then L2 in Redis shared by the replicas, then the fetch. It is safe for
// concurrent use. Create one with New and Close it when done.
type Cache struct {
	cfg      Config             // with defaults applied
	now      func() int64       // the clock, Unix ns
	coarse   *otter.CoarseClock // the default clock; nil with Options.Now
	rand     func() float64
	log      *slog.Logger
	negative func(error) bool
	onEvent  func(layer, event string)

	l1    *otter.Cache[string, *entry]
	vers  versions      // current namespace and tag versions as this replica knows them
	epoch atomic.Uint64 // bumped by each flush: entries of an older epoch are invalid

	rdb       *redis.Client    // nil: L1 only
	br        *breaker.Breaker // guards every L2 operation
	store     *redis.Script    // the check-and-set of a fill
	channel   string           // the pub/sub channel of invalidations
	pingEvery time.Duration

	flights singleflight.Group // coalesced misses, keyed by Entry.Key; refreshes, by refreshKey

	ctx       context.Context // cancelled by Close: ends the subscriber, flights and refreshes
	cancel    context.CancelFunc
	ready     chan struct{} // closed when the subscriber's first attempt succeeded or failed
	readyOnce sync.Once
	subs      atomic.Int64 // subscription confirmations received

	mu     sync.Mutex     // guards the fields below, and wg.Add against Close's Wait
	closed bool           // Close was called
	ps     *redis.PubSub  // the subscriber's subscription
	wg     sync.WaitGroup // the subscriber, flights and refreshes
}

// New returns a Cache for cfg, with its zero fields defaulted (see Config),
// or Validate's error. With a Redis URL it starts the Cache's pub/sub
// subscriber and waits for its first attempt to subscribe, up to a second
// or until ctx ends; Redis being down is not an error: L2 is skipped until
// it is back.
// The subscriber runs until Close, whatever becomes of ctx.
func New(ctx context.Context, cfg Config, opts Options) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cache{
		cfg: cfg.withDefaults(), rand: opts.Rand, log: opts.Logger,
		negative: opts.Negative, onEvent: opts.OnEvent, pingEvery: opts.pingEvery,
		ready: make(chan struct{}),
	}
	if opts.Now != nil {
		c.now = func() int64 { return opts.Now().UnixNano() }
	} else {
		c.coarse = otter.NewCoarseClock(coarseResolution)
		c.now = c.coarse.NowNano
	}
	if c.rand == nil {
		c.rand = rand.Float64
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.pingEvery <= 0 {
		c.pingEvery = defaultPingEvery
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var err error
	if c.l1, err = newL1(c); err != nil {
		c.stop()
		return nil, err
	}
	if c.cfg.Redis.URL == "" {
		return c, nil
	}
	if err := c.startL2(); err != nil {
		c.stop()
		return nil, err
	}
	c.ps = c.rdb.Subscribe(ctx, c.channel)
	c.wg.Add(1)
	go c.subscribe(c.ps)
	t := time.NewTimer(startWait)
	defer t.Stop()
	select {
	case <-c.ready:
	case <-t.C:
		c.log.Warn("cache: no answer from redis yet; invalidations from other replicas wait for the subscription",
			"channel", c.channel)
	case <-ctx.Done():
	}
	return c, nil
}

// Close stops the subscriber and the background refreshes, cancels the
// fetches coalesced under the Cache's own context, waits for all of them,
// and closes the Redis client. A Get after Close just fetches; Close is
// idempotent.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ps := c.ps
	c.mu.Unlock()

	c.cancel()
	if ps != nil {
		_ = ps.Close() // unblocks the subscriber's Receive
	}
	c.wg.Wait()
	c.stop()
	if c.rdb != nil {
		return c.rdb.Close()
	}
	return nil
}

// stop stops the goroutines of the Cache's context, L1 and clock.
func (c *Cache) stop() {
	c.cancel()
	if c.l1 != nil {
		c.l1.StopAllGoroutines()
	}
	if c.coarse != nil {
		c.coarse.Stop()
	}
}

// enter registers a goroutine the Cache owns, which must call c.wg.Done
// when it returns. It reports false, registering nothing, once Close was
// called.
func (c *Cache) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// isClosed reports whether Close was called.
func (c *Cache) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// event reports one event to Options.OnEvent.
func (c *Cache) event(layer, ev string) {
	if c.onEvent != nil {
		c.onEvent(layer, ev)
	}
}

// nowNano is the clock in Unix nanoseconds, the unit of entry times.
func (c *Cache) nowNano() int64 { return c.now() }

// freshFor returns p's TTL with its jitter: TTL * (1 + 0.1*Rand()).
func (c *Cache) freshFor(p Policy) time.Duration {
	r := c.rand()
	switch {
	case !(r >= 0): // also NaN
		r = 0
	case r > 1:
		r = 1
	}
	return p.TTL + time.Duration(float64(p.TTL)*0.1*r)
}
