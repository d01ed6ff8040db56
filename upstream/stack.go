package upstream

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/braidgw/braid/breaker"
	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/observability"
)

// Call identifies one call of one route: what a stack is built for. Layers
// that label, trace or cache by call read it when the stack is built.
type Call struct {
	Route    string // the route's method and pattern, "GET /api/users/{id}/dashboard"
	Name     string // the call's name in the route, "user"
	Upstream string // the upstream it calls, "users"
	// Cache, when set, caches the call's answers (see the cache layer);
	// for a batch call the caller caches per key and the stack has none.
	Cache *cache.Policy
	Batch bool // the call is a batch join
	// Forward lists the client request headers the call forwards (see
	// WithClientHeader), unless its upstream's Config.ForwardHeaders is
	// set: the upstream's list is what it receives on every route.
	Forward []string
}

// Factory builds the Fetch of one call. It is called once per call when
// routes are compiled, never per request. For an upstream that is not
// configured it returns an error matching ErrUnknownUpstream.
type Factory func(Call) (Fetch, error)

// Static returns a Factory giving every call its upstream's Fetch from m
// as it is, with no layers: for tests and for embedders who compose their
// own.
func Static(m map[string]Fetch) Factory {
	return func(c Call) (Fetch, error) {
		f, ok := m[c.Upstream]
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownUpstream, c.Upstream)
		}
		return f, nil
	}
}

// SetOptions are what a Set is built with. The zero value is usable.
type SetOptions struct {
	// OnBreakerChange is told of every circuit breaker transition, after
	// the breaker's lock is released; it must not block. Nil ignores them.
	OnBreakerChange func(upstream string, from, to breaker.State)
	// Now is the clock of the breakers and retry budgets. Default time.Now.
	Now func() time.Time
	// Rand returns jitter in [0, 1) for retry backoff and breaker open
	// periods. Default math/rand/v2's Float64.
	Rand func() float64
	// Telemetry records each upstream's call metrics and gives every try a
	// client span. Nil records nothing.
	Telemetry *observability.Telemetry
	// Cache is the two-tier cache of the calls that declare a policy. Nil
	// caches nothing.
	Cache *cache.Cache
	// MemoryBudget bounds the bytes of upstream response bodies held at
	// once, by every upstream of the Set together: a call whose body does
	// not fit fails fast with a *RejectedError wrapping ErrMemoryBudget
	// (503, or a degraded optional part) instead of growing the heap. A
	// body counts from its headers until its call returns, or until the
	// request is finished under HoldMemory. Default 0 means 256 MiB;
	// negative turns the budget off. See memory.go for what is counted.
	MemoryBudget int64
}

// Set is every configured upstream with the state that all calls to it
// share, whatever route they serve: its pooled client, circuit breaker,
// bulkhead, retry budget and hedging latencies. It is built once at
// start-up; its Stack method is the Factory of the routes' calls.
type Set struct {
	members map[string]*member
	cache   *cache.Cache  // nil: no call is cached
	memory  *memoryBudget // nil: response bytes are not budgeted
}

// member is one upstream's shared state.
type member struct {
	name     string
	rec      *observability.Upstream // nil when metrics are off
	client   *Client
	breaker  *breaker.Breaker // nil when disabled
	bulkhead *bulkhead        // nil when disabled
	tries    *tries           // retry, hedging and try timeout
}

// NewSet validates every upstream's Config and builds its client and
// shared state. Errors name the upstream and the field.
func NewSet(cfgs map[string]Config, opts SetOptions) (*Set, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	s := &Set{members: make(map[string]*member, len(cfgs)), cache: opts.Cache, memory: newMemoryBudget(opts.MemoryBudget)}
	names := make([]string, 0, len(cfgs))
	for name := range cfgs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m, err := newMember(name, cfgs[name], opts, s.memory != nil)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.members[name] = m
	}
	return s, nil
}

func newMember(name string, cfg Config, opts SetOptions, budgeted bool) (*member, error) {
	c, err := New(name, cfg) // validates cfg
	if err != nil {
		return nil, err
	}
	if budgeted {
		c.rt = &memoryTransport{next: c.rt, limit: c.cfg.MaxResponseBytes}
	}
	c.rt = opts.Telemetry.Transport(name, c.rt)
	m := &member{name: name, client: c, rec: opts.Telemetry.Upstream(name)}
	if !cfg.Breaker.Disabled {
		onChange := func(from, to breaker.State) {
			m.rec.Breaker(from.String(), to.String())
			if f := opts.OnBreakerChange; f != nil {
				f(name, from, to)
			}
		}
		m.breaker, err = breaker.New(cfg.Breaker.Config, breaker.Options{Now: opts.Now, Rand: opts.Rand, OnStateChange: onChange})
		if err != nil { // unreachable: New validated it
			c.Close()
			return nil, fmt.Errorf("upstream %q: breaker: %w", name, err)
		}
	}
	if !cfg.Bulkhead.Disabled {
		m.bulkhead = newBulkhead(cfg.Bulkhead)
	}
	m.tries = &tries{
		name:       name,
		cfg:        cfg.Retry.withDefaults(),
		tryTimeout: cfg.TryTimeout,
		budget:     newBudget(cfg.RetryBudget, opts.Now),
		hedge:      newHedger(cfg.Hedge),
		rand:       opts.Rand,
		rec:        m.rec,
	}
	return m, nil
}

// Stack builds call c's Fetch. It is the one place where a call's layers
// are composed, outermost first:
//
//	forward   sets the call's allow-list of client headers to forward
//	cache     L1, L2, then the layers below, coalesced per key (calls with a
//	          cache policy; a hit never reaches the breaker)
//	observe   the call's duration and outcome, per upstream (metrics and
//	          the live /stats window)
//	tries     retries and hedges (idempotent calls only, jittered backoff,
//	          the upstream's retry budget), each try under try_timeout
//	breaker   the upstream's circuit breaker: open fails fast, no call made
//	bulkhead  the upstream's cap on tries in flight
//	memory    the Set's budget of response bytes in flight: a try that
//	          cannot get it fails fast (see memory.go)
//	client    the upstream's pooled transport (lean or net/http, see
//	          Config.Transport), each try in a client span
//	          carrying traceparent when tracing is on; the body draws
//	          from the memory budget as it is read
//
// The breaker sees every try, so a retry storm trips it; a rejected try
// (breaker, bulkhead or memory) is not retried and is not a failure. Every
// layer is shared state (one breaker, bulkhead and retry budget per
// upstream, one memory budget for all); c names the call for the layers
// that label by it.
func (s *Set) Stack(c Call) (Fetch, error) {
	m, ok := s.members[c.Upstream]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownUpstream, c.Upstream)
	}
	fetch := m.client.Fetch
	if s.memory != nil {
		fetch = s.memory.layer(m.name)(fetch)
	}
	if m.bulkhead != nil {
		fetch = m.bulkhead.middleware(m.name)(fetch)
	}
	if m.breaker != nil {
		fetch = breakerMiddleware(m.name, m.breaker)(fetch)
	}
	if m.tries.active() {
		fetch = m.tries.middleware(fetch)
	}
	if m.rec != nil {
		fetch = observe(m.rec)(fetch)
	}
	if c.Cache != nil && !c.Batch && s.cache != nil {
		fetch = cacheLayer(s.cache, m.name, *c.Cache)(fetch)
	}
	forward := c.Forward
	if m.client.cfg.ForwardHeaders != nil {
		forward = m.client.cfg.ForwardHeaders
	}
	if forward = canonicalHeaders(forward); forward != nil {
		fetch = forwardLayer(forward)(fetch)
	}
	return fetch, nil
}

// BreakerState returns the state of the named upstream's breaker, and
// false if the upstream is unknown or has no breaker.
func (s *Set) BreakerState(name string) (breaker.State, bool) {
	m, ok := s.members[name]
	if !ok || m.breaker == nil {
		return breaker.Closed, false
	}
	return m.breaker.State(), true
}

// Memory returns a snapshot of the Set's memory budget: the zero
// MemoryStats when it is off.
func (s *Set) Memory() MemoryStats { return s.memory.stats() }

// Close closes every client's idle connections.
func (s *Set) Close() {
	for _, m := range s.members {
		m.client.Close()
	}
}
