package aggregate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/braidgw/braid/upstream"
)

// gate is an in-process upstream for counting tests. The calls of a group
// (request paths) each wait until every call of their group is in flight,
// so a plan that did not run them at once would never get past the first.
// On entry every call counts the calls in flight and the goroutines
// carrying the test's profiler label: Execute's caller and every
// goroutine started under it, which inherit the label.
type gate struct {
	label  string
	groups map[string]*barrier // by request path

	mu         sync.Mutex
	inFlight   int
	peak       int // calls in flight at once
	goroutines int // labelled goroutines at once, seen by a call
}

func newGate(label string, groups ...[]string) *gate {
	g := &gate{label: label, groups: map[string]*barrier{}}
	for _, paths := range groups {
		b := newBarrier(len(paths))
		for _, p := range paths {
			g.groups[p] = b
		}
	}
	return g
}

// fetch returns an upstream answering body once the call's group is in
// flight.
func (g *gate) fetch(body string) upstream.Fetch {
	return func(ctx context.Context, req *upstream.Request) (*upstream.Response, error) {
		g.mu.Lock()
		g.inFlight++
		g.peak = max(g.peak, g.inFlight)
		g.goroutines = max(g.goroutines, labelled(g.label))
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			g.inFlight--
			g.mu.Unlock()
		}()
		if b := g.groups[req.Path]; b != nil && !b.wait(ctx) {
			return nil, fmt.Errorf("%s: the rest of its group never came: %w", req.Path, ctx.Err())
		}
		return &upstream.Response{Status: 200, Body: []byte(body)}, nil
	}
}

// counts returns the peaks of calls in flight and of goroutines started
// under the test's label, besides the one calling Execute.
func (g *gate) counts() (calls, started int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peak, g.goroutines - 1
}

// labelled counts the goroutines whose profiler labels hold
// braid_test=label, from the goroutine profile.
func labelled(label string) int {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		panic(err)
	}
	want := fmt.Sprintf("%q:%q", "braid_test", label)
	n, count := 0, 0
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if c, _, ok := strings.Cut(line, " @ "); ok { // "3 @ 0x...": 3 goroutines with this stack
			count, _ = strconv.Atoi(c)
		} else if strings.HasPrefix(line, "# labels: ") && strings.Contains(line, want) {
			n += count
		}
	}
	return n
}

// executeLabelled runs Execute on the test's goroutine under a profiler
// label naming the test, with a deadline that only a plan that never
// runs a group at once would meet.
func executeLabelled(t *testing.T, p *Plan, params map[string]string) (res *Result, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pprof.Do(ctx, pprof.Labels("braid_test", t.Name()), func(ctx context.Context) {
		res, err = p.Execute(ctx, params)
	})
	return res, err
}

func fanOutCalls(width int) ([]CallConfig, []string) {
	calls := make([]CallConfig, width)
	paths := make([]string, width)
	for i := range calls {
		paths[i] = "/c" + strconv.Itoa(i)
		calls[i] = CallConfig{Name: "c" + strconv.Itoa(i), Upstream: "u", Path: paths[i]}
	}
	return calls, paths
}

// TestInlineCallOverlapsGoroutineCalls: one of n independent calls runs
// on Execute's own goroutine, and it is in flight together with the n-1
// others: every call waits for all n.
func TestInlineCallOverlapsGoroutineCalls(t *testing.T) {
	for _, width := range []int{1, 2, 4, 16} {
		t.Run(fmt.Sprintf("fanout=%d", width), func(t *testing.T) {
			calls, paths := fanOutCalls(width)
			g := newGate(t.Name(), paths)
			p := mustCompile(t, calls, nil, map[string]upstream.Fetch{"u": g.fetch(`{"id":1}`)})
			res, err := executeLabelled(t, p, nil)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if peak, _ := g.counts(); peak != width {
				t.Errorf("peak in-flight calls = %d, want %d", peak, width)
			}
			body, _ := res.AppendJSON(nil)
			if n := strings.Count(string(body), `{"id":1}`); n != width {
				t.Errorf("body %s has %d answers, want %d", body, n, width)
			}
		})
	}
}

// TestGoroutinesPerExecute counts the goroutines Execute starts: one per
// call that must run beside another, none for the call it runs itself or
// for a call that can run on the goroutine of the call it waited for.
func TestGoroutinesPerExecute(t *testing.T) {
	type test struct {
		name        string
		calls       []CallConfig
		groups      [][]string        // paths in flight at once
		bodies      map[string]string // by upstream; {"u": `{"id":1}`} when nil
		wantCalls   int               // peak in flight
		wantStarted int
	}
	tests := []test{
		{
			name: "chain",
			calls: []CallConfig{
				{Name: "a", Upstream: "u", Path: "/a"},
				{Name: "b", Upstream: "u", Path: "/b/{a.id}"},
				{Name: "c", Upstream: "u", Path: "/c/{b.id}"},
			},
			wantCalls: 1, wantStarted: 0,
		},
		{
			name: "diamond",
			calls: []CallConfig{
				{Name: "a", Upstream: "u", Path: "/a"},
				{Name: "b", Upstream: "u", Path: "/b/{a.id}"},
				{Name: "c", Upstream: "u", Path: "/c/{a.id}"},
				{Name: "d", Upstream: "u", Path: "/d/{b.id}/{c.id}"},
			},
			groups:    [][]string{{"/b/1", "/c/1"}},
			wantCalls: 2, wantStarted: 1,
		},
		{
			name: "fan-out after a call",
			calls: []CallConfig{
				{Name: "a", Upstream: "u", Path: "/a"},
				{Name: "b", Upstream: "u", Path: "/b/{a.id}"},
				{Name: "c", Upstream: "u", Path: "/c/{a.id}"},
				{Name: "d", Upstream: "u", Path: "/d/{a.id}"},
			},
			groups:    [][]string{{"/b/1", "/c/1", "/d/1"}},
			wantCalls: 3, wantStarted: 2,
		},
		{
			name: "batch of one chunk",
			calls: []CallConfig{
				{Name: "orders", Upstream: "orders", Path: "/orders"},
				{Name: "products", Upstream: "products", Path: "/products", Batch: &BatchConfig{
					Keys: "orders[].product_id", Stitch: "orders[].product"}},
			},
			bodies:    map[string]string{"orders": `[{"id":7,"product_id":1}]`, "products": `[{"id":1}]`},
			wantCalls: 1, wantStarted: 0,
		},
	}
	for _, width := range []int{1, 4, 16} {
		calls, paths := fanOutCalls(width)
		tests = append(tests, test{name: fmt.Sprintf("fanout=%d", width), calls: calls,
			groups: [][]string{paths}, wantCalls: width, wantStarted: width - 1})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate(t.Name(), tt.groups...)
			if tt.bodies == nil {
				tt.bodies = map[string]string{"u": `{"id":1}`}
			}
			ups := map[string]upstream.Fetch{}
			for name, body := range tt.bodies {
				ups[name] = g.fetch(body)
			}
			p := mustCompile(t, tt.calls, nil, ups)
			if _, err := executeLabelled(t, p, nil); err != nil {
				t.Fatalf("Execute: %v", err)
			}
			calls, started := g.counts()
			if calls != tt.wantCalls {
				t.Errorf("peak in-flight calls = %d, want %d", calls, tt.wantCalls)
			}
			if started != tt.wantStarted {
				t.Errorf("goroutines started = %d, want %d", started, tt.wantStarted)
			}
		})
	}
}

// TestPanicIsPerCall: a panic fails only the call that panicked, whether
// it ran on Execute's goroutine (the last independent call does) or on
// one of its own.
func TestPanicIsPerCall(t *testing.T) {
	boom := func(context.Context, *upstream.Request) (*upstream.Response, error) { panic("boom") }
	ok := instant([]byte(`{"ok":true}`))
	for _, tt := range []struct {
		name  string
		calls []CallConfig
	}{
		{name: "inline", calls: []CallConfig{{Name: "ok", Upstream: "ok", Path: "/"}, {Name: "boom", Upstream: "boom", Path: "/", Optional: true}}},
		{name: "goroutine", calls: []CallConfig{{Name: "boom", Upstream: "boom", Path: "/", Optional: true}, {Name: "ok", Upstream: "ok", Path: "/"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.calls, nil, map[string]upstream.Fetch{"ok": ok, "boom": boom})
			res, body, err := execute(t, p, nil)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if !strings.Contains(body, `"ok":{"ok":true}`) || !strings.Contains(body, `"boom":null`) {
				t.Errorf("body = %s, want ok answered and boom null", body)
			}
			if errs := res.Errors(); len(errs) != 1 || !errors.Is(errs[0], ErrPanic) {
				t.Errorf("Errors = %v, want boom's ErrPanic", errs)
			}
		})
	}
	t.Run("required inline cancels the rest", func(t *testing.T) {
		cancelled := make(chan struct{})
		slow := func(ctx context.Context, _ *upstream.Request) (*upstream.Response, error) {
			<-ctx.Done()
			close(cancelled)
			return nil, ctx.Err()
		}
		p := mustCompile(t, []CallConfig{{Name: "slow", Upstream: "slow", Path: "/"}, {Name: "boom", Upstream: "boom", Path: "/"}},
			nil, map[string]upstream.Fetch{"slow": slow, "boom": boom})
		_, _, err := execute(t, p, nil)
		var ce *CallError
		if !errors.As(err, &ce) || ce.Call != "boom" || !errors.Is(err, ErrPanic) {
			t.Fatalf("err = %v, want boom's ErrPanic", err)
		}
		select {
		case <-cancelled:
		default:
			t.Error("Execute returned before the slow call ended") // it waits for every call
		}
	})
}

// TestSkippedCallsEndTheirDependents: a call that cannot run because a
// call it references failed, or because a required call's failure
// cancelled the request, is never made, and neither is anything waiting
// for it.
func TestSkippedCallsEndTheirDependents(t *testing.T) {
	var mu sync.Mutex
	var made []string
	record := func(name string, fail bool) upstream.Fetch {
		return func(ctx context.Context, _ *upstream.Request) (*upstream.Response, error) {
			mu.Lock()
			made = append(made, name)
			mu.Unlock()
			if fail {
				return nil, errors.New(name + " failed")
			}
			return &upstream.Response{Status: 200, Body: []byte(`{"id":1}`)}, nil
		}
	}
	t.Run("dependency failed", func(t *testing.T) {
		made = nil
		p := mustCompile(t, []CallConfig{
			{Name: "a", Upstream: "a", Path: "/a", Optional: true},
			{Name: "b", Upstream: "b", Path: "/b/{a.id}", Optional: true},
			{Name: "c", Upstream: "c", Path: "/c/{b.id}", Optional: true},
			{Name: "d", Upstream: "d", Path: "/d"},
		}, nil, map[string]upstream.Fetch{"a": record("a", true), "b": record("b", false), "c": record("c", false), "d": record("d", false)})
		res, body, err := execute(t, p, nil)
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
		if want := `{"a":null,"b":null,"c":null,"d":{"id":1}}`; body != want {
			t.Errorf("body = %s, want %s", body, want)
		}
		if d := res.Degraded(); !slices.Equal(d, []string{"a", "b", "c"}) {
			t.Errorf("Degraded = %v, want [a b c]", d)
		}
		if errs := res.Errors(); len(errs) != 3 || !errors.Is(errs[2], ErrDependencyFailed) || !errors.Is(errs[2], errs[1]) {
			t.Errorf("Errors = %v, want c's failure to wrap b's", errs)
		}
		mu.Lock()
		defer mu.Unlock()
		if slices.Sort(made); !slices.Equal(made, []string{"a", "d"}) {
			t.Errorf("calls made = %v, want [a d]", made)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		made = nil
		arrived := make(chan struct{})
		slow := func(ctx context.Context, _ *upstream.Request) (*upstream.Response, error) {
			close(arrived)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		failing := func(ctx context.Context, req *upstream.Request) (*upstream.Response, error) {
			<-arrived // fail only once slow is in flight
			return record("user", true)(ctx, req)
		}
		p := mustCompile(t, []CallConfig{
			{Name: "slow", Upstream: "slow", Path: "/slow"},
			{Name: "after", Upstream: "after", Path: "/after/{slow.id}"},
			{Name: "user", Upstream: "user", Path: "/user"},
		}, nil, map[string]upstream.Fetch{"slow": slow, "after": record("after", false), "user": failing})
		_, _, err := execute(t, p, nil)
		var ce *CallError
		if !errors.As(err, &ce) || ce.Call != "user" {
			t.Fatalf("err = %v, want the user call's failure", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(made, []string{"user"}) {
			t.Errorf("calls made = %v, want [user]: after waited for a cancelled call", made)
		}
	})
}
