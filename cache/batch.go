package cache

import "context"

// Snapshot is what Lookup saw of the entries it missed, for Fill: the
// versions their namespaces and tags had before the caller's fetch, so that
// Fill refuses values an invalidation overtook, and their expired values,
// to serve if that fetch fails. The zero Snapshot fills nothing.
type Snapshot struct {
	epoch    uint64
	versions map[string]uint64 // version key -> its version when Lookup ran
	stale    [][]byte          // by Lookup's index: an expired value still within its stale windows
}

// Stale returns the expired value Lookup found for its i-th entry, if that
// value was still within the longer of its policy's stale windows
// (stale_while_revalidate, stale_if_error), else nil: what to serve, with
// status Stale, when the fetch of that entry fails.
func (s *Snapshot) Stale(i int) []byte {
	if s == nil || i < 0 || i >= len(s.stale) {
		return nil
	}
	return s.stale[i]
}

// Lookup looks up a batch of entries, each its own key: L1 for every entry,
// then ONE Redis MGET for all the L1 misses together with the version keys
// they need (an L2 hit fills L1). vals[i] is es[i]'s fresh value (HitL1 or
// HitL2), or nil; st[i] is NegativeHit for a remembered "not found", Miss
// for an entry to fetch. Pass snap to Fill with what was fetched.
//
// Batches are not refreshed in the background: an expired value is a
// miss, fetched again with the others in the one batched call the caller
// makes anyway, and snap.Stale gives it back if that call fails.
func (c *Cache) Lookup(ctx context.Context, es []Entry, p Policy) (vals [][]byte, st []Status, snap *Snapshot) {
	vals, st = make([][]byte, len(es)), make([]Status, len(es))
	snap = &Snapshot{epoch: c.epoch.Load(), versions: make(map[string]uint64)}
	if p.TTL <= 0 {
		return vals, st, snap
	}
	stale := make([]*entry, len(es))
	var miss []int
	now := c.nowNano()
	for i, e := range es {
		ent := c.l1Get(e.Key)
		switch {
		case ent != nil && now < ent.fresh && ent.err != nil:
			st[i] = NegativeHit
		case ent != nil && now < ent.fresh:
			vals[i], st[i] = ent.val, HitL1
		default:
			if ent != nil && ent.err == nil {
				stale[i] = ent
			}
			c.event(LayerL1, EventMiss)
			miss = append(miss, i)
			continue
		}
		c.event(LayerL1, EventHit)
	}
	if len(miss) > 0 {
		c.lookupL2(ctx, es, p, miss, vals, st, stale, snap)
	}
	for i, ent := range stale {
		if ent != nil && vals[i] == nil && now < ent.fresh+int64(p.keep()) {
			if snap.stale == nil {
				snap.stale = make([][]byte, len(es))
			}
			snap.stale[i] = ent.val
		}
	}
	return vals, st, snap
}

// lookupL2 is Lookup's MGET for the entries es[miss[...]]: it records their
// versions in snap and sets vals and st for those found fresh, stale for
// those found expired.
func (c *Cache) lookupL2(ctx context.Context, es []Entry, p Policy, miss []int, vals [][]byte, st []Status, stale []*entry, snap *Snapshot) {
	keys := make([]string, len(miss))
	deps := make([][]dep, len(miss))
	for j, i := range miss {
		keys[j], deps[j] = es[i].Key, c.depsOf(es[i])
	}
	ents, ok := c.readL2(ctx, keys, deps) // on failure deps keep the version map's
	now := c.nowNano()
	for j, i := range miss {
		for _, d := range deps[j] {
			snap.versions[d.key] = d.ver
		}
		if !ok {
			continue
		}
		switch found := ents[j]; {
		case found == nil:
			c.event(LayerL2, EventMiss)
		case now < found.fresh:
			c.event(LayerL2, EventHit)
			vals[i], st[i] = found.val, HitL2
			c.storeL1(keys[j], c.fromL2(found, p, snap.epoch))
		default:
			c.event(LayerL2, EventMiss)
			if stale[i] == nil || found.fresh > stale[i].fresh {
				stale[i] = found
			}
		}
	}
}

// Fill stores the values fetched for entries Lookup missed: vals[i] for
// es[i], nil for nothing to store. A value whose namespace or tag version
// moved since snap was taken is refused, in L2 (atomically, see
// storeScript) and in L1, as is one for an entry snap did not see. The
// Redis writes are one pipeline, detached from ctx's cancellation and
// bounded by Timeout.
func (c *Cache) Fill(ctx context.Context, es []Entry, vals [][]byte, p Policy, snap *Snapshot) {
	if p.TTL <= 0 || snap == nil || snap.versions == nil {
		return
	}
	var (
		keys []string
		ents []*entry
	)
	for i, e := range es {
		if i >= len(vals) || vals[i] == nil {
			continue
		}
		deps := c.depsOf(e)
		if !snap.at(deps) {
			c.event(LayerL1, EventSkipStaleWrite)
			continue
		}
		ent := c.newEntry(vals[i], deps, snap.epoch, p)
		if !c.valid(ent) {
			c.event(LayerL1, EventSkipStaleWrite)
			continue
		}
		keys, ents = append(keys, e.Key), append(ents, ent)
	}
	if len(keys) == 0 {
		return
	}
	var (
		stored []bool
		ok     bool
	)
	if c.rdb != nil {
		stored, ok = c.writeL2(context.WithoutCancel(ctx), keys, ents)
	}
	for j, key := range keys {
		switch {
		case ok && !stored[j]:
			c.event(LayerL2, EventSkipStaleWrite)
			continue
		case ok:
			c.event(LayerL2, EventFill)
		}
		c.storeL1(key, ents[j])
	}
}

// at sets each dep's version to the one s saw, reporting false if s did
// not see one of them.
func (s *Snapshot) at(deps []dep) bool {
	for i := range deps {
		v, ok := s.versions[deps[i].key]
		if !ok {
			return false
		}
		deps[i].ver = v
	}
	return true
}
