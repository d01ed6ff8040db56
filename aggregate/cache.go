package aggregate

import (
	"context"
	"net/url"

	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/upstream"
)

// callCache is a call's compiled CacheConfig.
type callCache struct {
	policy cache.Policy
	ns     *template   // nil: no namespace
	tags   []*template // in declared order
}

// compileCache checks a call's cache section: a policy with a TTL, and
// namespace and tag templates over the route's parameters (and {key} in a
// batch call).
func (c *compiler) compileCache(cl *call) {
	cc := cl.Cache
	if cc == nil {
		return
	}
	out := &callCache{policy: cache.Policy{TTL: cc.TTL, StaleWhileRevalidate: cc.StaleWhileRevalidate,
		StaleIfError: cc.StaleIfError, NegativeTTL: cc.NegativeTTL}}
	for _, err := range out.policy.Validate() {
		c.errf(c.field(cl, "cache"), "%v", err)
	}
	if cc.TTL <= 0 {
		c.errf(c.field(cl, "cache.ttl"), "is required: how long an answer stays fresh, e.g. 30s")
	}
	if cc.Namespace != "" {
		out.ns = c.cacheTemplate(cl, "cache.namespace", cc.Namespace)
	}
	for i, t := range cc.Tags {
		if t == "" {
			c.errf(c.field(cl, "cache.tags"), "tags[%d] is empty", i)
			continue
		}
		if tt := c.cacheTemplate(cl, "cache.tags", t); tt != nil {
			out.tags = append(out.tags, tt)
		}
	}
	cl.cache = out
}

func (c *compiler) cacheTemplate(cl *call, field, text string) *template {
	t, err := parseTemplate(text)
	if err != nil {
		c.errf(c.field(cl, field), "%v", err)
		return nil
	}
	for _, r := range t.refs {
		switch {
		case r.param == "key" && cl.Batch != nil:
		case r.param == "":
			c.errf(c.field(cl, field), "{%s}: a cache template may name route parameters (and {key} in a batch call), not call results", r)
		default:
			c.checkRefs(cl, field, &template{refs: []ref{r}})
		}
	}
	return t
}

// render fills req's cache namespace and tags from v.
func (cc *callCache) render(req *upstream.Request, v values) error {
	if cc.ns != nil {
		s, ok, err := cc.ns.renderValue(v)
		if err != nil {
			return err
		}
		if ok {
			req.CacheNamespace = s
		}
	}
	req.CacheTags = nil
	for _, t := range cc.tags {
		s, ok, err := t.renderValue(v)
		if err != nil {
			return err
		}
		if ok && s != "" {
			req.CacheTags = append(req.CacheTags, s)
		}
	}
	return nil
}

// keyValues resolves {key} to one batch key and everything else as vals.
type keyValues struct {
	values
	key string
}

func (v keyValues) value(r ref) (string, bool, error) {
	if r.param == "key" {
		return v.key, true, nil
	}
	return v.values.value(r)
}

// batchCache is the per-key cache work of one batch call.
type batchCache struct {
	c       *cache.Cache
	cc      *callCache
	keys    []string      // the keys looked up, in order
	entries []cache.Entry // by key index
	snap    *cache.Snapshot
}

// lookup finds the keys cached, and returns them by key with the keys
// still to fetch. A remembered "not found" is neither: it stays missing.
func (b *batch) lookup(ctx context.Context, c *cache.Cache, cl *call, base *upstream.Request, v values, keys []string) (*batchCache, map[string][]byte, []string, error) {
	bc := &batchCache{c: c, cc: cl.cache, keys: keys, entries: make([]cache.Entry, len(keys))}
	for i, k := range keys {
		req := &upstream.Request{Method: base.Method, Path: base.Path, Query: withParam(base.Query, b.cfg.Param, k)}
		if err := cl.cache.render(req, keyValues{v, k}); err != nil {
			return nil, nil, nil, err
		}
		bc.entries[i] = cache.Entry{Key: upstream.EntryKey(cl.Upstream, req), Namespace: req.CacheNamespace, Tags: req.CacheTags}
	}
	vals, st, snap := c.Lookup(ctx, bc.entries, cl.cache.policy)
	bc.snap = snap
	hits := make(map[string][]byte, len(keys))
	var misses []string
	for i, k := range keys {
		switch {
		case vals[i] != nil:
			hits[k] = vals[i]
		case st[i] != cache.NegativeHit:
			misses = append(misses, k)
		}
	}
	return bc, hits, misses, nil
}

// fill stores what was fetched for the misses, per key.
func (bc *batchCache) fill(ctx context.Context, misses []string, objects map[string][]byte) {
	idx := make(map[string]int, len(bc.keys))
	for i, k := range bc.keys {
		idx[k] = i
	}
	es := make([]cache.Entry, len(misses))
	vals := make([][]byte, len(misses))
	for j, k := range misses {
		es[j] = bc.entries[idx[k]]
		vals[j] = objects[k]
	}
	bc.c.Fill(ctx, es, vals, bc.cc.policy, bc.snap)
}

// stale returns, when every miss still has an expired value within its
// stale windows, those values by key: what a failed batch call serves.
func (bc *batchCache) stale(misses []string) (map[string][]byte, bool) {
	idx := make(map[string]int, len(bc.keys))
	for i, k := range bc.keys {
		idx[k] = i
	}
	out := make(map[string][]byte, len(misses))
	for _, k := range misses {
		v := bc.snap.Stale(idx[k])
		if v == nil {
			return nil, false
		}
		out[k] = v
	}
	return out, true
}

// withParam returns a copy of q with name set to value.
func withParam(q url.Values, name, value string) url.Values {
	out := make(url.Values, len(q)+1)
	for k, v := range q {
		out[k] = v
	}
	out.Set(name, value)
	return out
}
