package aggregate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/upstream"
)

// batch is the compiled form of a BatchConfig.
type batch struct {
	cfg      BatchConfig
	call     string    // the batch call's name
	source   int       // the call holding the keys, and the stitch target
	from     string    // the source call's name
	upstream string    // the source call's upstream
	parent   []segment // where stitched objects live: a prefix of the key path
	rest     []segment // from a parent object to its key(s)
	member   string    // the member set on each parent object
	many     bool      // rest walks an array: the member is set to an array
	items    []segment // from the batch response to each fetched object
	keyField []segment // from a fetched object to its key
}

// batchResult is what a batch call produced: one raw object per key.
type batchResult struct {
	objects map[string][]byte
	missing []string // keys asked for and not returned, in key order
	keys    int      // distinct keys asked for
	chunks  int      // requests made for them
	cached  bool     // the call is cached per key
	hits    int      // keys answered from the cache
	stale   bool     // the fetch failed and stale values were served
}

func (c *compiler) compileBatch(cl *call) {
	b := cl.Batch.withDefaults()
	bt := &batch{cfg: b, call: cl.Name}
	field := func(name string) string { return c.field(cl, "batch."+name) }
	if b.MaxBatch < 1 {
		c.errf(field("max_batch"), "must be at least 1")
	}
	if b.MaxKeys < 1 {
		c.errf(field("max_keys"), "must be at least 1")
	}
	if b.Concurrency < 1 {
		c.errf(field("concurrency"), "must be at least 1")
	}
	if !validName(b.Param) {
		c.errf(field("param"), "%q is not a valid query parameter name", b.Param)
	}
	keys, err := parseKeyPath(b.Keys)
	if err != nil {
		c.errf(field("keys"), "%v", err)
		return
	}
	stitch, err := parseKeyPath(b.Stitch)
	if err != nil {
		c.errf(field("stitch"), "%v", err)
		return
	}
	bt.source = c.dependOn(cl, "batch.keys", keys.call)
	if bt.source < 0 {
		return
	}
	bt.from, bt.upstream = c.plan.calls[bt.source].Name, c.plan.calls[bt.source].Upstream
	if !c.stitchFits(field("stitch"), keys, stitch, bt) {
		return
	}
	if b.Items != "" {
		items, err := parseKeyPath("items." + b.Items)
		if err != nil {
			c.errf(field("items"), "%v", err)
			return
		}
		bt.items = items.segs
	}
	bt.items = append(slices.Clip(bt.items), segment{iter: true})
	kf, err := parseKeyPath("item." + b.KeyField)
	if err != nil || iterates(kf.segs) {
		c.errf(field("key_field"), "%q must be a member path without []", b.KeyField)
		return
	}
	bt.keyField = kf.segs
	cl.batch = bt
	c.plan.stitchs[bt.source] = append(c.plan.stitchs[bt.source], cl.idx)
}

// stitchFits checks that the stitch path ends in a member set beside the
// keys: its parent must be a prefix of the key path.
func (c *compiler) stitchFits(field string, keys, stitch keyPath, bt *batch) bool {
	if stitch.call != keys.call {
		c.errf(field, "%q must start with the call holding the keys, %q", stitch, keys.call)
		return false
	}
	n := len(stitch.segs)
	if n == 0 || stitch.segs[n-1].iter {
		c.errf(field, "%q must end with a member name", stitch)
		return false
	}
	bt.parent, bt.member = stitch.segs[:n-1], stitch.segs[n-1].name
	if len(bt.parent) >= len(keys.segs) || !slices.Equal(bt.parent, keys.segs[:len(bt.parent)]) {
		c.errf(field, "%q must sit beside the keys %q: everything before its last member must be a prefix of the key path", stitch, keys)
		return false
	}
	bt.rest = keys.segs[len(bt.parent):]
	if bt.rest[0].iter {
		c.errf(field, "%q must end with a member of an object on the key path %q, not of an array", stitch, keys)
		return false
	}
	bt.many = iterates(bt.rest)
	return true
}

// keysError is a batch call that cannot fetch the keys it was given: more
// than batch.max_keys distinct keys, an empty key, a key holding the
// separator, or a key that is not a string or number. Its message names the
// batch call; it wraps a *DataError blaming the call whose answer held the
// keys, and so matches ErrBadData.
type keysError struct {
	call   string
	detail string
	data   *DataError
}

func (e *keysError) Error() string { return fmt.Sprintf("call %q: %s", e.call, e.detail) }

func (e *keysError) Unwrap() error { return e.data }

// keysError returns a *keysError; pred says what is wrong with the keys
// as a predicate of the key path ("holds an empty key"), detail as a
// phrase naming the source call ("an empty key in orders' answer").
func (b *batch) keysError(pred, detail string) error {
	return &keysError{call: b.call, detail: detail, data: &DataError{Call: b.from, Upstream: b.upstream, Ref: b.cfg.Keys, Msg: pred}}
}

// collectKeys returns the distinct keys in the source result, in the order
// first seen, or a *keysError when they cannot be fetched.
func (b *batch) collectKeys(source []byte) ([]string, error) {
	var keys []string
	seen := getKeySet() // key -> its index in keys
	defer putKeySet(seen)
	err := collect(source, b.parent, func(obj []byte) error {
		return collect(obj, b.rest, func(leaf []byte) error {
			if kind(leaf) == 0 { // a number seen before needs no copy of its text
				if _, dup := seen[string(leaf)]; dup {
					return nil
				}
			}
			k, err := scalarText(leaf)
			if err != nil {
				return err
			}
			if _, dup := seen[k]; !dup {
				seen[k] = len(keys)
				keys = append(keys, k)
			}
			return nil
		})
	})
	if err != nil {
		return nil, b.keysError("cannot be read: "+err.Error(), fmt.Sprintf("batch keys in %s' answer: %v", b.from, err))
	}
	if n, limit := len(keys), b.cfg.MaxKeys; n > limit {
		return nil, b.keysError(fmt.Sprintf("holds %d distinct keys, over batch.max_keys %d", n, limit),
			fmt.Sprintf("%d distinct keys in %s' answer, over batch.max_keys %d", n, b.from, limit))
	}
	for _, k := range keys {
		switch {
		case k == "":
			return nil, b.keysError("holds an empty key", fmt.Sprintf("an empty key in %s' answer", b.from))
		case strings.Contains(k, b.cfg.Separator):
			return nil, b.keysError(fmt.Sprintf("holds key %.100q, which contains the separator %q", k, b.cfg.Separator),
				fmt.Sprintf("key %.100q in %s' answer contains the separator %q", k, b.from, b.cfg.Separator))
		}
	}
	return keys, nil
}

// run fetches keys in chunks of MaxBatch, Concurrency chunks at a time.
// With a cache, each key is its own entry: the keys found (L1, then one
// Redis round trip) are not fetched, and what is fetched is stored per key;
// if the fetch fails and every key it wanted still has a stale value within
// its stale windows, those are served.
func (b *batch) run(ctx context.Context, c *cache.Cache, cl *call, base *upstream.Request, v values, keys []string) (*batchResult, error) {
	res := &batchResult{keys: len(keys)}
	fetch := keys
	var bc *batchCache
	var hits map[string][]byte
	if c != nil && cl.cache != nil {
		var err error
		if bc, hits, fetch, err = b.lookup(ctx, c, cl, base, v, keys); err != nil {
			return nil, err
		}
		res.cached, res.hits = true, len(hits)
	}
	objects, chunks, err := b.fetch(ctx, cl, base, fetch)
	switch {
	case err != nil && bc == nil:
		return nil, err
	case err != nil:
		stale, ok := bc.stale(fetch)
		if !ok {
			return nil, err
		}
		objects, res.stale = stale, true
	case bc != nil:
		bc.fill(ctx, fetch, objects)
	}
	res.chunks = chunks
	res.objects = objects
	for k, o := range hits {
		objects[k] = o
	}
	for _, k := range keys {
		if _, ok := objects[k]; !ok {
			res.missing = append(res.missing, k)
		}
	}
	return res, nil
}

// fetch requests keys in chunks of MaxBatch, Concurrency chunks at a time,
// and returns the fetched objects by key and the number of chunks.
func (b *batch) fetch(ctx context.Context, cl *call, base *upstream.Request, keys []string) (map[string][]byte, int, error) {
	if len(keys) == 0 {
		return map[string][]byte{}, 0, nil
	}
	chunks := slices.Collect(slices.Chunk(keys, b.cfg.MaxBatch))
	bodies := make([][]byte, len(chunks))
	if len(chunks) == 1 { // nothing to run beside it: no goroutine
		var err error
		if bodies[0], err = b.fetchChunk(ctx, cl, base, chunks[0]); err != nil {
			return nil, 1, err
		}
	} else {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(b.cfg.Concurrency)
		for i, chunk := range chunks {
			g.Go(func() error {
				var err error
				bodies[i], err = b.fetchChunk(gctx, cl, base, chunk)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, len(chunks), err
		}
	}
	objects, err := b.index(chunks, bodies)
	return objects, len(chunks), err
}

// fetchChunk requests one chunk of keys and returns the answer's body.
func (b *batch) fetchChunk(ctx context.Context, cl *call, base *upstream.Request, chunk []string) ([]byte, error) {
	q := withParam(base.Query, b.cfg.Param, strings.Join(chunk, b.cfg.Separator))
	resp, err := cl.fetch(ctx, &upstream.Request{Method: base.Method, Path: base.Path, Query: q})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// index maps each key to the object fetched for it: the first object for
// it in the answer to the request that asked for it. Objects for keys not
// asked for in that request, and later duplicates, are ignored.
func (b *batch) index(chunks [][]string, bodies [][]byte) (map[string][]byte, error) {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	asked := getKeySet() // key -> the chunk asking for it
	defer putKeySet(asked)
	for i, c := range chunks {
		for _, k := range c {
			asked[k] = i
		}
	}
	objects := make(map[string][]byte, n)
	for i, body := range bodies {
		err := collect(body, b.items, func(obj []byte) error {
			var key []byte
			if err := collect(obj, b.keyField, func(leaf []byte) error { key = leaf; return nil }); err != nil {
				return err
			}
			if key == nil {
				return fmt.Errorf("object without key field %q", b.cfg.KeyField)
			}
			k, err := scalarText(key)
			if err != nil {
				return err
			}
			if c, ok := asked[k]; ok && c == i {
				if _, dup := objects[k]; !dup {
					objects[k] = obj
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%w: batch response: %v", ErrBadData, err)
		}
	}
	return objects, nil
}

// keySets holds cleared key sets for reuse: collectKeys and index each
// need one only while they run, and a fresh map per batch call costs an
// allocation each time it grows.
var keySets = sync.Pool{New: func() any { return map[string]int{} }}

// maxPooledKeys bounds the key sets kept for reuse: a clear map keeps its
// room, and a set grown past the default batch.max_keys is left to the
// collector.
const maxPooledKeys = 1024

func getKeySet() map[string]int { return keySets.Get().(map[string]int) }

// putKeySet clears m and keeps it for reuse, unless it grew large.
func putKeySet(m map[string]int) {
	if len(m) > maxPooledKeys {
		return
	}
	clear(m)
	keySets.Put(m)
}

// stitch sets the fetched object(s) beside their keys in source. With no
// result (the batch call failed), every place gets null.
func (b *batch) stitch(source []byte, res *batchResult) ([]byte, error) {
	var val []byte // reused: setMember copies it into dst
	return rewrite(make([]byte, 0, len(source)*2), source, b.parent, func(dst, obj []byte) ([]byte, error) {
		val = val[:0]
		if b.many {
			val = append(val, '[')
		}
		n := 0
		err := collect(obj, b.rest, func(leaf []byte) error {
			if n > 0 {
				val = append(val, ',')
			}
			n++
			val = b.appendObject(val, leaf, res)
			return nil
		})
		if err != nil {
			return nil, err
		}
		switch {
		case b.many:
			val = append(val, ']')
		case n == 0:
			val = append(val, "null"...)
		}
		return setMember(dst, obj, b.member, val)
	})
}

func (b *batch) appendObject(dst, leaf []byte, res *batchResult) []byte {
	if res != nil && kind(leaf) == 0 { // a number: its text is the key, no copy needed
		if o, ok := res.objects[string(leaf)]; ok {
			return append(dst, o...)
		}
	} else if res != nil {
		if k, err := scalarText(leaf); err == nil {
			if o, ok := res.objects[k]; ok {
				return append(dst, o...)
			}
		}
	}
	return append(dst, "null"...)
}
