package cache

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// roundTrips is a go-redis hook recording each round trip to Redis as the
// names of the commands it carried.
type roundTrips struct {
	mu    sync.Mutex
	trips [][]string
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.record(cmd)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.record(cmds...)
		return next(ctx, cmds)
	}
}

func (h *roundTrips) record(cmds ...redis.Cmder) {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.Name()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trips = append(h.trips, names)
}

func (h *roundTrips) take() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.trips
	h.trips = nil
	return t
}

// batch returns n entries of products, each with its own tag.
func batch(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Key: fmt.Sprint("products GET /products/", i), Namespace: "products", Tags: []string{fmt.Sprint("product:", i)}}
	}
	return es
}

// TestLookup: of 10 entries, 4 are in L1, 4 only in L2 and 2 nowhere:
// Lookup returns the 8 in ONE MGET and exactly the 2 misses, and Fill
// stores those.
func TestLookup(t *testing.T) {
	cfg, _ := sharedSetup(t)
	c := newCache(t, cfg, Options{})
	other := newCache(t, cfg, Options{})
	var trips roundTrips
	c.rdb.AddHook(&trips)
	ctx := context.Background()
	p := Policy{TTL: time.Minute}
	es := batch(10)
	for i, e := range es[:8] {
		in := c
		if i >= 4 {
			in = other
		}
		wantGet(t, in, e, p, func(context.Context) ([]byte, error) { return []byte(fmt.Sprint(i)), nil }, fmt.Sprint(i), Miss)
	}

	trips.take()
	vals, st, snap := c.Lookup(ctx, es, p)
	if got := trips.take(); !reflect.DeepEqual(got, [][]string{{"mget"}}) {
		t.Errorf("round trips = %v, want one MGET", got)
	}
	wantSt := []Status{HitL1, HitL1, HitL1, HitL1, HitL2, HitL2, HitL2, HitL2, Miss, Miss}
	if !reflect.DeepEqual(st, wantSt) {
		t.Errorf("statuses = %v, want %v", st, wantSt)
	}
	for i := range es {
		if want := fmt.Sprint(i); (i < 8 && string(vals[i]) != want) || (i >= 8 && vals[i] != nil) {
			t.Errorf("vals[%d] = %q", i, vals[i])
		}
	}

	fetched := [][]byte{[]byte("8"), []byte("9")}
	c.Fill(ctx, es[8:], fetched, p, snap)
	if got := trips.take(); len(got) != 1 {
		t.Errorf("Fill made %d round trips, want 1: %v", len(got), got)
	}
	_, st, _ = c.Lookup(ctx, es, p)
	if want := []Status{HitL1, HitL1, HitL1, HitL1, HitL1, HitL1, HitL1, HitL1, HitL1, HitL1}; !reflect.DeepEqual(st, want) {
		t.Errorf("statuses after Fill = %v, want all L1 hits", st)
	}
	if got := trips.take(); len(got) != 0 {
		t.Errorf("an all-L1 Lookup made round trips: %v", got)
	}
	_, st, _ = other.Lookup(ctx, es[8:], p)
	if want := []Status{HitL2, HitL2}; !reflect.DeepEqual(st, want) {
		t.Errorf("other replica after Fill = %v, want %v", st, want)
	}
}

// TestFillRefusesMovedVersions: an invalidation between Lookup and Fill
// keeps the invalidated entry out of both tiers, and only it.
func TestFillRefusesMovedVersions(t *testing.T) {
	cfg, rdb := sharedSetup(t)
	for _, from := range []string{"same replica", "other replica"} {
		t.Run(from, func(t *testing.T) {
			c := newCache(t, cfg, Options{})
			invalidator := c
			if from == "other replica" {
				invalidator = newCache(t, cfg, Options{})
			}
			ctx := context.Background()
			p := Policy{TTL: time.Minute}
			es := batch(2)
			for i := range es {
				es[i].Key += " " + from
			}
			_, _, snap := c.Lookup(ctx, es, p)
			if _, err := invalidator.Invalidate(ctx, Invalidation{Tags: []string{"product:0"}}); err != nil {
				t.Fatal(err)
			}
			c.Fill(ctx, es, [][]byte{[]byte("0"), []byte("1")}, p, snap)
			if n := rdb.Exists(ctx, cfg.Redis.Prefix+"e:"+es[0].Key).Val(); n != 0 {
				t.Error("invalidated entry written to L2")
			}
			if n := rdb.Exists(ctx, cfg.Redis.Prefix+"e:"+es[1].Key).Val(); n != 1 {
				t.Error("other entry not written to L2")
			}
			_, st, _ := c.Lookup(ctx, es, p)
			if want := []Status{Miss, HitL1}; !reflect.DeepEqual(st, want) {
				t.Errorf("statuses = %v, want %v", st, want)
			}
		})
	}
}

func TestFillNeedsSnapshot(t *testing.T) {
	c := newCache(t, Config{}, Options{})
	ctx := context.Background()
	p := Policy{TTL: time.Minute}
	es := batch(2)
	_, _, snap := c.Lookup(ctx, es[:1], p)
	c.Fill(ctx, es, [][]byte{[]byte("0"), []byte("1")}, p, snap) // es[1] was not looked up
	c.Fill(ctx, es, [][]byte{[]byte("0"), []byte("1")}, p, nil)
	_, st, _ := c.Lookup(ctx, es, p)
	if want := []Status{HitL1, Miss}; !reflect.DeepEqual(st, want) {
		t.Errorf("statuses = %v, want %v", st, want)
	}
}

func TestLookupStaleAndNegative(t *testing.T) {
	cfg, _ := sharedSetup(t)
	clk := newClock()
	c := newCache(t, cfg, Options{Now: clk.Now, Rand: noJitter, Negative: isNotFound})
	ctx := context.Background()
	p := Policy{TTL: 10 * time.Second, StaleIfError: time.Minute, NegativeTTL: time.Minute}
	es := batch(3)
	get(t, c, es[0], p, func(context.Context) ([]byte, error) { return []byte("old"), nil })
	c.Get(ctx, es[1], p, func(context.Context) ([]byte, error) { return nil, errNotFound })
	clk.Advance(20 * time.Second)

	vals, st, snap := c.Lookup(ctx, es, p)
	if want := []Status{Miss, NegativeHit, Miss}; !reflect.DeepEqual(st, want) {
		t.Errorf("statuses = %v, want %v", st, want)
	}
	if vals[0] != nil {
		t.Errorf("expired value returned as fresh: %q", vals[0])
	}
	if got := string(snap.Stale(0)); got != "old" {
		t.Errorf("Stale(0) = %q, want the expired value", got)
	}
	if snap.Stale(2) != nil || snap.Stale(5) != nil {
		t.Error("Stale of an entry never cached is not nil")
	}
	clk.Advance(time.Minute)
	if _, _, snap := c.Lookup(ctx, es, p); snap.Stale(0) != nil {
		t.Error("Stale past the stale window is not nil")
	}
}
