package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/braidgw/braid/breaker"
)

// dialTimeout bounds a connection attempt to Redis, which goes on in the
// background after the operation that wanted it gave up (Timeout).
const dialTimeout = time.Second

// l2Breaker trips after three Redis failures in a row and probes again
// after about a second, so that a dead Redis costs each request nothing.
var l2Breaker = breaker.Config{
	ConsecutiveFailures: 3,
	OpenDuration:        time.Second,
	MaxOpenDuration:     5 * time.Second,
	HalfOpenProbes:      1,
}

// storeScript stores an entry only if none of the versions it depends on
// moved since its fetch started: KEYS[1] is the entry's key, KEYS[2..] its
// version keys; ARGV[1] the encoded entry, ARGV[2] its TTL in ms, ARGV[3..]
// the versions read before the fetch, in the order of KEYS[2..]. It
// returns 1 if it stored the entry, 0 if not.
const storeScript = `
for i = 2, #KEYS do
  if (redis.call('GET', KEYS[i]) or '0') ~= ARGV[i + 1] then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`

// startL2 creates the Redis client (no retries of its own: the breaker and
// the caller's fall-through to fetch are the retry policy) and L2's breaker.
func (c *Cache) startL2() error {
	o, err := redis.ParseURL(c.cfg.Redis.URL)
	if err != nil {
		return fmt.Errorf("cache.redis.url: %w", err)
	}
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.ContextTimeoutEnabled = true
	if o.DialTimeout == 0 {
		o.DialTimeout = dialTimeout
	}
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	c.br, err = breaker.New(l2Breaker, breaker.Options{OnStateChange: c.breakerChanged})
	if err != nil {
		return err
	}
	c.rdb = redis.NewClient(o)
	c.store = redis.NewScript(storeScript)
	c.channel = c.cfg.Redis.Prefix + "invalidate"
	return nil
}

// breakerChanged logs L2 going away and coming back.
func (c *Cache) breakerChanged(from, to breaker.State) {
	switch to {
	case breaker.Open:
		c.log.Warn("cache: redis is failing; L2 is skipped until it answers again", "from", from.String())
	case breaker.Closed:
		c.log.Info("cache: redis answers again; L2 is back")
	}
}

// l2 runs op under L2's breaker, each operation bounded by Timeout. It
// reports false, with an "error" event, when L2 is off, the breaker refused
// op, or op failed; the caller then goes on without L2.
func (c *Cache) l2(ctx context.Context, op func(ctx context.Context) error) bool {
	if c.rdb == nil {
		return false
	}
	tk, err := c.br.Allow()
	if err != nil {
		c.event(LayerL2, EventError)
		return false
	}
	opCtx, cancel := context.WithTimeout(ctx, c.cfg.Redis.Timeout)
	start := time.Now()
	err = op(opCtx)
	took := time.Since(start)
	cancel()
	switch {
	case err == nil:
		c.br.Record(tk, breaker.Success, took)
		return true
	case ctx.Err() != nil: // our caller went away: no verdict on Redis
		c.br.Record(tk, breaker.Ignored, took)
	default:
		c.br.Record(tk, breaker.Failure, took)
	}
	c.event(LayerL2, EventError)
	c.log.Debug("cache: redis operation failed", "err", err)
	return false
}

// entryKey is the Redis key of an entry.
func (c *Cache) entryKey(key string) string { return c.cfg.Redis.Prefix + "e:" + key }

// nsKey and tagKey are the Redis keys of a namespace's and a tag's version,
// also the keys of the version map.
func (c *Cache) nsKey(name string) string  { return c.cfg.Redis.Prefix + "v:ns:" + name }
func (c *Cache) tagKey(name string) string { return c.cfg.Redis.Prefix + "v:tag:" + name }

// depsOf returns what e depends on: its namespace, then its tags sorted
// without duplicates or empty names, each at its version in the version map.
func (c *Cache) depsOf(e Entry) []dep {
	n := len(e.Tags)
	if e.Namespace != "" {
		n++
	}
	if n == 0 {
		return nil
	}
	ds := make([]dep, 0, n)
	if e.Namespace != "" {
		ds = append(ds, dep{key: c.nsKey(e.Namespace)})
	}
	tags := slices.Compact(slices.Sorted(slices.Values(e.Tags)))
	for _, t := range tags {
		if t != "" {
			ds = append(ds, dep{key: c.tagKey(t)})
		}
	}
	for i := range ds {
		ds[i].ver = c.vers.get(ds[i].key)
	}
	return ds
}

// readL2 reads in ONE MGET the L2 entries of keys and the current versions
// of deps[i], the dependencies of keys[i]. It sets each dep's version to the
// one read (raising the version map) and returns, for each key, its entry
// if it exists and was stored at exactly those versions, else nil; the
// caller sets keep and epoch. It reports false if L2 could not be read.
func (c *Cache) readL2(ctx context.Context, keys []string, deps [][]dep) ([]*entry, bool) {
	args := make([]string, 0, len(keys)+len(keys)*2)
	for _, k := range keys {
		args = append(args, c.entryKey(k))
	}
	at := make(map[string]int) // version key -> its index in args
	for _, ds := range deps {
		for _, d := range ds {
			if _, ok := at[d.key]; !ok {
				at[d.key] = len(args)
				args = append(args, d.key)
			}
		}
	}
	var res []any
	if !c.l2(ctx, func(ctx context.Context) (err error) {
		res, err = c.rdb.MGet(ctx, args...).Result()
		return err
	}) {
		return nil, false
	}
	cur := make(map[string]uint64, len(at))
	for k, i := range at {
		v, err := parseVersion(res[i])
		if err != nil {
			c.log.Warn("cache: bad version in redis; L2 skipped", "key", k, "err", err)
			return nil, false
		}
		cur[k] = v
		c.vers.raise(k, v)
	}
	ents := make([]*entry, len(keys))
	for i, ds := range deps {
		for j := range ds {
			ds[j].ver = cur[ds[j].key]
		}
		if s, ok := res[i].(string); ok {
			ents[i] = decode(s, ds)
		}
	}
	return ents, true
}

// parseVersion reads a version key's value from an MGET: absent is 0.
func parseVersion(v any) (uint64, error) {
	switch v := v.(type) {
	case nil:
		return 0, nil
	case string:
		return strconv.ParseUint(v, 10, 64)
	}
	return 0, fmt.Errorf("unexpected %T", v)
}

// The L2 encoding of an entry: format (1 byte), fresh (Unix ns, int64), n
// (uint32), n versions (uint64, in the order of the entry's deps), value.
const (
	format1    = 1
	headerSize = 1 + 8 + 4
)

// encode returns ent in the L2 encoding.
func encode(ent *entry) []byte {
	b := make([]byte, 0, headerSize+8*len(ent.deps)+len(ent.val))
	b = append(b, format1)
	b = binary.BigEndian.AppendUint64(b, uint64(ent.fresh))
	b = binary.BigEndian.AppendUint32(b, uint32(len(ent.deps)))
	for _, d := range ent.deps {
		b = binary.BigEndian.AppendUint64(b, d.ver)
	}
	return append(b, ent.val...)
}

// decode returns the entry encoded in s if it was stored at exactly the
// versions of deps, else nil. The entry shares deps.
func decode(s string, deps []dep) *entry {
	b := []byte(s)
	if len(b) < headerSize || b[0] != format1 {
		return nil
	}
	fresh := int64(binary.BigEndian.Uint64(b[1:]))
	n := binary.BigEndian.Uint32(b[9:])
	if int(n) != len(deps) || len(b) < headerSize+8*len(deps) {
		return nil
	}
	b = b[headerSize:]
	for _, d := range deps {
		if binary.BigEndian.Uint64(b) != d.ver {
			return nil
		}
		b = b[8:]
	}
	return &entry{val: b, fresh: fresh, deps: deps}
}

// writeL2 stores ents[i] under keys[i], each with storeScript, in one
// pipeline. stored[i] reports whether the script stored it (false: a
// version moved since its fetch started); ok is false if L2 could not be
// written, when stored says nothing.
func (c *Cache) writeL2(ctx context.Context, keys []string, ents []*entry) (stored []bool, ok bool) {
	stored = make([]bool, len(keys))
	now := c.nowNano()
	ok = c.l2(ctx, func(ctx context.Context) error {
		cmds, err := c.runStores(ctx, keys, ents, now)
		if isNoScript(err) { // Redis restarted or its script cache was flushed
			if err := c.store.Load(ctx, c.rdb).Err(); err != nil {
				return err
			}
			cmds, err = c.runStores(ctx, keys, ents, now)
		}
		if err != nil {
			return err
		}
		for i, cmd := range cmds {
			if cmd != nil {
				n, _ := cmd.Int()
				stored[i] = n == 1
			}
		}
		return nil
	})
	return stored, ok
}

// runStores sends storeScript for each entry still worth keeping at now.
func (c *Cache) runStores(ctx context.Context, keys []string, ents []*entry, now int64) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(keys))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ent := range ents {
			if ent.keep <= now {
				continue
			}
			ks := make([]string, 1, 1+len(ent.deps))
			ks[0] = c.entryKey(keys[i])
			args := make([]any, 2, 2+len(ent.deps))
			args[0], args[1] = encode(ent), max((ent.keep-now)/int64(time.Millisecond), 1)
			for _, d := range ent.deps {
				ks = append(ks, d.key)
				args = append(args, strconv.FormatUint(d.ver, 10))
			}
			cmds[i] = c.store.EvalSha(ctx, p, ks, args...)
		}
		return nil
	})
	return cmds, err
}

// isNoScript reports whether err is Redis not knowing storeScript.
func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}
