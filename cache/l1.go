package cache

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// entryOverhead approximates the memory of an L1 entry beyond its key,
// value and versions: the entry struct, otter's node and the slice and
// string headers.
const entryOverhead = 160

// entry is one cached value, or one remembered "not found", with what
// makes it valid. It is never modified once stored.
type entry struct {
	val   []byte // the value; nil in a negative entry
	err   error  // a negative entry's error
	fresh int64  // Unix ns (Options.Now): fresh until then
	keep  int64  // Unix ns: worth keeping, to be served stale, until then
	epoch uint64 // the Cache's epoch when its L2 read or fetch started
	deps  []dep  // its namespace and tags, with their versions before its fetch
}

// dep is one namespace or tag an entry depends on, with the version it had
// when the entry's fetch started.
type dep struct {
	key string // the version's Redis key: prefix+"v:ns:"+name or prefix+"v:tag:"+name
	ver uint64
}

// weigh is the L1 Weigher: what an entry costs in bytes, roughly.
func weigh(key string, e *entry) uint32 {
	w := entryOverhead + len(key) + len(e.val)
	for _, d := range e.deps {
		w += 24 + len(d.key)
	}
	return uint32(min(w, math.MaxUint32))
}

// newL1 builds the otter cache of L1, bounded by bytes. Entries expire when
// they are no longer worth keeping; freshness is judged by Get. otter reads
// the Cache's clock; with an injected one it does without its periodic
// clean-up goroutine.
func newL1(c *Cache) (*otter.Cache[string, *entry], error) {
	o := &otter.Options[string, *entry]{
		MaximumWeight: uint64(c.cfg.L1.MaxBytes),
		Weigher:       weigh,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *entry]) time.Duration {
			return max(time.Duration(e.Value.keep-c.nowNano()), 1)
		}),
		Logger: otterLogger{c.log},
	}
	if c.coarse != nil {
		o.Clock = c.coarse
	} else {
		o.Clock = clock{c.now}
	}
	return otter.New(o)
}

// clock is Options.Now as an otter.Clock, with no ticks.
type clock struct{ now func() int64 }

func (k clock) NowNano() int64                      { return k.now() }
func (k clock) Tick(time.Duration) <-chan time.Time { return nil }

// otterLogger sends otter's complaints to the Cache's logger.
type otterLogger struct{ log *slog.Logger }

func (l otterLogger) Warn(ctx context.Context, msg string, err error) {
	l.log.WarnContext(ctx, "cache: l1: "+msg, "err", err)
}

func (l otterLogger) Error(ctx context.Context, msg string, err error) {
	l.log.ErrorContext(ctx, "cache: l1: "+msg, "err", err)
}

// l1Get returns key's L1 entry if it is valid (see valid), fresh or not,
// and nil otherwise. An invalid entry is dropped.
func (c *Cache) l1Get(key string) *entry {
	ent, ok := c.l1.GetIfPresent(key)
	if !ok {
		return nil
	}
	if c.valid(ent) {
		return ent
	}
	c.l1.ComputeIfPresent(key, func(old *entry) (*entry, otter.ComputeOp) {
		if old == ent { // not replaced meanwhile
			return nil, otter.InvalidateOp
		}
		return old, otter.CancelOp
	})
	return nil
}

// valid reports whether ent was filled in the current epoch and every
// namespace and tag it depends on is still at the version it had before
// the entry's fetch.
func (c *Cache) valid(ent *entry) bool {
	if ent.epoch != c.epoch.Load() {
		return false
	}
	for i := range ent.deps {
		if c.vers.get(ent.deps[i].key) != ent.deps[i].ver {
			return false
		}
	}
	return true
}

// storeL1 stores ent under key unless it is already invalid (a version
// moved during its fetch) or not worth keeping. An invalidation that lands
// after the check invalidates it lazily, at its next read.
func (c *Cache) storeL1(key string, ent *entry) {
	if !c.valid(ent) {
		c.event(LayerL1, EventSkipStaleWrite)
		return
	}
	if ent.keep <= c.nowNano() {
		return
	}
	c.l1.Set(key, ent)
	c.event(LayerL1, EventFill)
}

// flush empties L1 after this replica may have missed invalidations. The
// new epoch invalidates at once every entry, and every fill whose fetch
// began before it; the version map is emptied too, as Redis may have come
// back without them (it is filled again from Redis reads and messages).
func (c *Cache) flush(reason string) {
	c.epoch.Add(1)
	c.vers.clear()
	c.l1.InvalidateAll()
	c.event(LayerL1, EventFlush)
	c.log.Warn("cache: l1 flushed: invalidations may have been missed", "reason", reason)
}

// versions are the current versions of namespaces and tags as this replica
// knows them, by version key; an absent key is version 0. Apart from a
// flush, they only move up.
type versions struct {
	m sync.Map // version key -> *atomic.Uint64
}

// get returns k's version.
func (v *versions) get(k string) uint64 {
	if n, ok := v.m.Load(k); ok {
		return n.(*atomic.Uint64).Load()
	}
	return 0
}

// raise sets k's version to n unless it is already higher.
func (v *versions) raise(k string, n uint64) {
	if n == 0 {
		return
	}
	p, ok := v.m.Load(k)
	if !ok {
		p, _ = v.m.LoadOrStore(k, new(atomic.Uint64))
	}
	a := p.(*atomic.Uint64)
	for {
		cur := a.Load()
		if cur >= n || a.CompareAndSwap(cur, n) {
			return
		}
	}
}

// bump adds 1 to k's version and returns it: an invalidation without Redis.
func (v *versions) bump(k string) uint64 {
	p, ok := v.m.Load(k)
	if !ok {
		p, _ = v.m.LoadOrStore(k, new(atomic.Uint64))
	}
	return p.(*atomic.Uint64).Add(1)
}

// clear forgets every version.
func (v *versions) clear() { v.m.Clear() }
