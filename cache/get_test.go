package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var errNotFound = errors.New("404 not found")

func isNotFound(err error) bool { return errors.Is(err, errNotFound) }

func TestGetL1(t *testing.T) {
	c := newCache(t, Config{}, Options{})
	var src source
	e := Entry{Key: "products GET /products/87"}
	p := Policy{TTL: time.Minute}
	wantGet(t, c, e, p, src.fetch, `"v1"`, Miss)
	wantGet(t, c, e, p, src.fetch, `"v1"`, HitL1)
	if n := src.calls.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
}

func TestGetL2FillsL1(t *testing.T) {
	cfg, rdb := sharedSetup(t)
	var evA, evB events
	a := newCache(t, cfg, Options{OnEvent: evA.on})
	b := newCache(t, cfg, Options{OnEvent: evB.on})
	var src source
	e := Entry{Key: "users GET /users/1", Namespace: "users", Tags: []string{"user:1"}}
	p := Policy{TTL: time.Minute}

	wantGet(t, a, e, p, src.fetch, `"v1"`, Miss)
	wantGet(t, b, e, p, src.fetch, `"v1"`, HitL2)
	wantGet(t, b, e, p, src.fetch, `"v1"`, HitL1)
	if n := src.calls.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
	if n := rdb.Exists(context.Background(), cfg.Redis.Prefix+"e:"+e.Key).Val(); n != 1 {
		t.Errorf("L2 entry exists = %d, want 1", n)
	}
	for _, w := range []struct {
		ev          *events
		layer, name string
		want        int
	}{
		{&evA, LayerL1, EventMiss, 1}, {&evA, LayerL2, EventMiss, 1}, {&evA, LayerL2, EventFill, 1}, {&evA, LayerL1, EventFill, 1},
		{&evB, LayerL2, EventHit, 1}, {&evB, LayerL1, EventHit, 1}, {&evB, LayerL1, EventFill, 1},
	} {
		if got := w.ev.count(w.layer, w.name); got != w.want {
			t.Errorf("event %s %s: %d, want %d", w.layer, w.name, got, w.want)
		}
	}
}

func TestTTL(t *testing.T) {
	cfg, _ := sharedSetup(t)
	clk := newClock()
	a := newCache(t, cfg, Options{Now: clk.Now, Rand: noJitter})
	b := newCache(t, cfg, Options{Now: clk.Now, Rand: noJitter})
	var src source
	e := Entry{Key: "k"}
	p := Policy{TTL: 10 * time.Second}

	wantGet(t, a, e, p, src.fetch, `"v1"`, Miss)
	clk.Advance(10*time.Second - 1)
	wantGet(t, a, e, p, src.fetch, `"v1"`, HitL1)
	wantGet(t, b, e, p, src.fetch, `"v1"`, HitL2)
	clk.Advance(1)
	wantGet(t, a, e, p, src.fetch, `"v2"`, Miss) // expired in L1 and in L2
}

func TestTTLJitter(t *testing.T) {
	cfg, rdb := sharedSetup(t)
	clk := newClock()
	c := newCache(t, cfg, Options{Now: clk.Now, Rand: func() float64 { return 0.5 }})
	var src source
	e := Entry{Key: "k"}
	p := Policy{TTL: 10 * time.Second}

	wantGet(t, c, e, p, src.fetch, `"v1"`, Miss)
	pttl := rdb.PTTL(context.Background(), cfg.Redis.Prefix+"e:k").Val()
	if pttl <= 10*time.Second || pttl > 10500*time.Millisecond {
		t.Errorf("L2 PTTL = %s, want in (10s, 10.5s]", pttl)
	}
	clk.Advance(10400 * time.Millisecond)
	wantGet(t, c, e, p, src.fetch, `"v1"`, HitL1) // +5%: still fresh
	clk.Advance(100 * time.Millisecond)
	wantGet(t, c, e, p, src.fetch, `"v2"`, Miss)
}

func TestStaleWhileRevalidate(t *testing.T) {
	cfg, _ := sharedSetup(t)
	clk := newClock()
	c := newCache(t, cfg, Options{Now: clk.Now, Rand: noJitter})
	e := Entry{Key: "k"}
	p := Policy{TTL: 10 * time.Second, StaleWhileRevalidate: 30 * time.Second}
	var src source
	release := make(chan struct{})
	blocked := func(ctx context.Context) ([]byte, error) {
		<-release
		return src.fetch(ctx)
	}

	wantGet(t, c, e, p, src.fetch, `"v1"`, Miss)
	clk.Advance(15 * time.Second)
	for range 10 { // the refresh is blocked: each Get serves stale, none starts another
		wantGet(t, c, e, p, blocked, `"v1"`, Stale)
	}
	close(release)
	waitFor(t, 5*time.Second, "refreshed value in L1", func() bool {
		v, st, _ := c.Get(context.Background(), e, p, blocked)
		return string(v) == `"v2"` && st == HitL1
	})
	if n := src.calls.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (one refresh)", n)
	}

	clk.Advance(10*time.Second + 30*time.Second) // past TTL and SWR: fetched in line
	wantGet(t, c, e, p, src.fetch, `"v3"`, Miss)
}

func TestStaleWhileRevalidateFromL2(t *testing.T) {
	cfg, _ := sharedSetup(t)
	clk := newClock()
	a := newCache(t, cfg, Options{Now: clk.Now, Rand: noJitter})
	b := newCache(t, cfg, Options{Now: clk.Now, Rand: noJitter})
	e := Entry{Key: "k"}
	p := Policy{TTL: 10 * time.Second, StaleWhileRevalidate: 30 * time.Second}
	var src source

	wantGet(t, a, e, p, src.fetch, `"v1"`, Miss)
	clk.Advance(15 * time.Second)
	wantGet(t, b, e, p, src.fetch, `"v1"`, Stale) // from L2, refreshing
	waitFor(t, 5*time.Second, "refreshed value", func() bool {
		v, _, _ := b.Get(context.Background(), e, p, src.fetch)
		return string(v) == `"v2"`
	})
	wantGet(t, a, e, p, src.fetch, `"v1"`, Stale) // a's own L1 copy is still the old one
}

func TestStaleIfError(t *testing.T) {
	cfg, _ := sharedSetup(t)
	clk := newClock()
	var ev events
	c := newCache(t, cfg, Options{Now: clk.Now, Rand: noJitter, OnEvent: ev.on})
	e := Entry{Key: "k"}
	p := Policy{TTL: 10 * time.Second, StaleIfError: time.Minute}
	var src source
	errDown := errors.New("upstream down")

	wantGet(t, c, e, p, src.fetch, `"v1"`, Miss)
	src.fail(errDown)
	clk.Advance(20 * time.Second)
	wantGet(t, c, e, p, src.fetch, `"v1"`, Stale)
	if ev.count(LayerL1, EventStale) != 1 {
		t.Errorf("l1 stale events = %d, want 1", ev.count(LayerL1, EventStale))
	}
	clk.Advance(50 * time.Second) // 70s: past TTL + stale_if_error
	if _, st, err := c.Get(context.Background(), e, p, src.fetch); !errors.Is(err, errDown) || st != Miss {
		t.Fatalf("Get past the window = %s, %v; want miss, %v", st, err, errDown)
	}
}

func TestNegative(t *testing.T) {
	cfg, rdb := sharedSetup(t)
	clk := newClock()
	c := newCache(t, cfg, Options{Now: clk.Now, Rand: noJitter, Negative: isNotFound})
	p := Policy{TTL: time.Minute, NegativeTTL: 5 * time.Second}
	var src source

	src.fail(fmt.Errorf("products: %w", errNotFound))
	e := Entry{Key: "gone"}
	for _, want := range []Status{Miss, NegativeHit, NegativeHit} {
		if _, st, err := c.Get(context.Background(), e, p, src.fetch); !isNotFound(err) || st != want {
			t.Fatalf("Get = %s, %v; want %s, not found", st, err, want)
		}
	}
	if n := src.calls.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
	if n := rdb.Exists(context.Background(), cfg.Redis.Prefix+"e:gone").Val(); n != 0 {
		t.Errorf("negative entry in L2: exists = %d, want 0", n)
	}
	clk.Advance(5 * time.Second)
	c.Get(context.Background(), e, p, src.fetch)
	if n := src.calls.Load(); n != 2 {
		t.Errorf("fetches after NegativeTTL = %d, want 2", n)
	}

	src.fail(errors.New("500"))
	other := Entry{Key: "failing"}
	c.Get(context.Background(), other, p, src.fetch)
	c.Get(context.Background(), other, p, src.fetch)
	if n := src.calls.Load(); n != 4 {
		t.Errorf("fetches = %d, want 4: other errors are not cached", n)
	}
}

func TestCoalescing(t *testing.T) {
	cfg, _ := sharedSetup(t)
	c := newCache(t, cfg, Options{})
	var src source
	release := make(chan struct{})
	fetch := func(ctx context.Context) ([]byte, error) {
		<-release
		return src.fetch(ctx)
	}
	e, p := Entry{Key: "hot"}, Policy{TTL: time.Minute}

	var started, done sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			v, _, err := c.Get(context.Background(), e, p, fetch)
			if err == nil && string(v) != `"v1"` {
				err = fmt.Errorf("got %s", v)
			}
			errs <- err
		}()
	}
	started.Wait()
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := src.calls.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
}

func TestCoalescingCancelledCaller(t *testing.T) {
	c := newCache(t, Config{}, Options{})
	e, p := Entry{Key: "k"}, Policy{TTL: time.Minute}
	entered, release := make(chan struct{}), make(chan struct{})
	deadline := time.Now().Add(time.Minute)
	var fetchErr error
	var fetchDeadline time.Time
	fetch := func(ctx context.Context) ([]byte, error) {
		close(entered)
		<-release
		fetchErr = ctx.Err()
		fetchDeadline, _ = ctx.Deadline()
		return []byte(`"v"`), nil
	}

	// The first caller starts the fetch, then gives up.
	ctx1, cancel1 := context.WithDeadline(context.Background(), deadline)
	first := make(chan error, 1)
	go func() {
		_, _, err := c.Get(ctx1, e, p, fetch)
		first <- err
	}()
	<-entered
	second := make(chan string, 1)
	go func() {
		v, _, err := c.Get(context.Background(), e, p, fetch)
		if err != nil {
			v = []byte(err.Error())
		}
		second <- string(v)
	}()
	cancel1()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: err = %v, want context.Canceled", err)
	}
	close(release)
	if v := <-second; v != `"v"` {
		t.Fatalf("other caller got %s, want \"v\"", v)
	}
	if fetchErr != nil {
		t.Errorf("the fetch's ctx was cancelled with its first caller: %v", fetchErr)
	}
	if !fetchDeadline.Equal(deadline) {
		t.Errorf("fetch deadline = %v, want the first caller's %v", fetchDeadline, deadline)
	}
}

func TestFetchPanic(t *testing.T) {
	c := newCache(t, Config{}, Options{})
	_, _, err := c.Get(context.Background(), Entry{Key: "k"}, Policy{TTL: time.Minute},
		func(context.Context) ([]byte, error) { panic("boom") })
	if !errors.Is(err, ErrFetchPanicked) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want ErrFetchPanicked with the panic value", err)
	}
}

func TestNoPolicyJustFetches(t *testing.T) {
	c := newCache(t, Config{}, Options{})
	var src source
	for range 2 {
		wantGet(t, c, Entry{Key: "k"}, Policy{}, src.fetch, `"v`+fmt.Sprint(src.calls.Load()+1)+`"`, Miss)
	}
}

func TestCloseWaitsForRefresh(t *testing.T) {
	clk := newClock()
	c, err := New(context.Background(), Config{}, Options{Now: clk.Now, Rand: noJitter})
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{Key: "k"}
	p := Policy{TTL: time.Second, StaleWhileRevalidate: time.Minute}
	var src source
	wantGet(t, c, e, p, src.fetch, `"v1"`, Miss)
	clk.Advance(2 * time.Second)

	entered, ended := make(chan struct{}), make(chan struct{})
	wantGet(t, c, e, p, func(ctx context.Context) ([]byte, error) {
		close(entered)
		<-ctx.Done() // a refresh that only ends when cancelled
		close(ended)
		return nil, ctx.Err()
	}, `"v1"`, Stale)
	<-entered
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("Close returned before the refresh ended")
	}
	wantGet(t, c, e, p, src.fetch, `"v1"`, Stale)                // L1 still answers, with no refresh
	wantGet(t, c, Entry{Key: "new"}, p, src.fetch, `"v2"`, Miss) // a miss just fetches
}

func TestL1Bound(t *testing.T) {
	const maxBytes = 64 << 10
	c := newCache(t, Config{L1: L1Config{MaxBytes: maxBytes}}, Options{})
	val := []byte(strings.Repeat("x", 4<<10))
	p := Policy{TTL: time.Minute}
	for i := range 100 {
		get(t, c, Entry{Key: fmt.Sprint("k", i)}, p, func(context.Context) ([]byte, error) { return val, nil })
	}
	c.l1.CleanUp()
	if w := c.l1.WeightedSize(); w > maxBytes || w < maxBytes/2 {
		t.Errorf("L1 weighs %d bytes, want at most %d and not empty", w, maxBytes)
	}
	if n := c.l1.EstimatedSize(); n >= 16 {
		t.Errorf("L1 holds %d entries of 4KiB in 64KiB", n)
	}
}
