package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// minInvalidateTimeout bounds an invalidation's Redis work from below: it
// is rare and must not fail for want of the few milliseconds a read gets.
const minInvalidateTimeout = time.Second

// Invalidation names what to invalidate: every entry in a namespace, every
// entry with a tag, and single entries by key.
type Invalidation struct {
	Namespaces []string `json:"namespaces,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Keys       []string `json:"keys,omitempty"`

	// Versions, set in what Invalidate returns, are the new versions of
	// the namespaces ("ns:<name>") and tags ("tag:<name>"). Ignored on input.
	Versions map[string]uint64 `json:"versions,omitempty"`
}

// empty reports whether inv names nothing.
func (inv Invalidation) empty() bool {
	return len(inv.Namespaces) == 0 && len(inv.Tags) == 0 && len(inv.Keys) == 0
}

// Invalidate bumps each namespace's and tag's version in Redis (INCR) and
// deletes the keys' L2 entries, in one MULTI, then publishes the change on
// the channel for the other replicas and applies it to this replica's L1 at
// once. It returns what was invalidated, names sorted without duplicates,
// with the new versions. Without Redis it bumps this replica's versions
// only.
//
// Redis work is bounded by Timeout, but at least a second, and not by the
// L2 breaker: an invalidation is rare and should be tried. If Redis fails,
// nothing is invalidated and the error says so; if only the publication
// fails, Redis and this replica are invalidated and the error says the
// other replicas were not told (their entries then live until their TTL or
// their next L2 read).
//
// Keys are dropped, not versioned: a fetch of the same key that is in
// flight during the invalidation may store its value afterwards. Use a tag
// where that matters.
func (c *Cache) Invalidate(ctx context.Context, inv Invalidation) (Invalidation, error) {
	out := Invalidation{Namespaces: uniq(inv.Namespaces), Tags: uniq(inv.Tags), Keys: uniq(inv.Keys)}
	if out.empty() {
		return out, nil
	}
	m := message{Keys: out.Keys}
	if c.rdb == nil {
		m.Namespaces, m.Tags = c.bumpLocal(out.Namespaces, c.nsKey), c.bumpLocal(out.Tags, c.tagKey)
	} else {
		var err error
		if m, err = c.bumpRedis(ctx, out); err != nil {
			return Invalidation{}, fmt.Errorf("cache: invalidate in redis: %w", err)
		}
		c.event(LayerL2, EventInvalidate)
	}
	c.apply(m)
	out.Versions = make(map[string]uint64, len(m.Namespaces)+len(m.Tags))
	for name, v := range m.Namespaces {
		out.Versions["ns:"+name] = v
	}
	for name, v := range m.Tags {
		out.Versions["tag:"+name] = v
	}
	if c.rdb == nil {
		return out, nil
	}
	payload, _ := json.Marshal(m) // maps of strings and a slice always marshal
	ctx, cancel := context.WithTimeout(ctx, max(c.cfg.Redis.Timeout, minInvalidateTimeout))
	defer cancel()
	if err := c.rdb.Publish(ctx, c.channel, payload).Err(); err != nil {
		return out, fmt.Errorf("cache: invalidated in redis and here, but not published to the other replicas: %w", err)
	}
	return out, nil
}

// bumpLocal bumps each name's version in the version map, for a cache
// without Redis, and returns the new versions.
func (c *Cache) bumpLocal(names []string, key func(string) string) map[string]uint64 {
	if len(names) == 0 {
		return nil
	}
	vs := make(map[string]uint64, len(names))
	for _, n := range names {
		vs[n] = c.vers.bump(key(n))
	}
	return vs
}

// bumpRedis INCRs the versions and DELs the keys of inv in one MULTI and
// returns the message announcing it.
func (c *Cache) bumpRedis(ctx context.Context, inv Invalidation) (message, error) {
	ctx, cancel := context.WithTimeout(ctx, max(c.cfg.Redis.Timeout, minInvalidateTimeout))
	defer cancel()
	ns := make([]*redis.IntCmd, len(inv.Namespaces))
	tags := make([]*redis.IntCmd, len(inv.Tags))
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range inv.Namespaces {
			ns[i] = p.Incr(ctx, c.nsKey(n))
		}
		for i, t := range inv.Tags {
			tags[i] = p.Incr(ctx, c.tagKey(t))
		}
		if len(inv.Keys) > 0 {
			keys := make([]string, len(inv.Keys))
			for i, k := range inv.Keys {
				keys[i] = c.entryKey(k)
			}
			p.Del(ctx, keys...)
		}
		return nil
	})
	if err != nil {
		return message{}, err
	}
	m := message{Keys: inv.Keys}
	m.Namespaces = versionsOf(inv.Namespaces, ns)
	m.Tags = versionsOf(inv.Tags, tags)
	return m, nil
}

// versionsOf maps names[i] to the result of cmds[i].
func versionsOf(names []string, cmds []*redis.IntCmd) map[string]uint64 {
	if len(names) == 0 {
		return nil
	}
	vs := make(map[string]uint64, len(names))
	for i, n := range names {
		vs[n] = uint64(cmds[i].Val())
	}
	return vs
}

// uniq returns names sorted without duplicates, or nil for none.
func uniq(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(names)))
}
