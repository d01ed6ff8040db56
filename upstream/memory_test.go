package upstream

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/braidgw/braid/breaker"
)

func TestNewMemoryBudget(t *testing.T) {
	for _, tt := range []struct {
		option int64
		want   int64 // 0: off
	}{
		{0, 256 << 20},
		{1 << 20, 1 << 20},
		{-1, 0},
	} {
		set, err := NewSet(map[string]Config{"a": {URL: "http://127.0.0.1:1"}}, SetOptions{MemoryBudget: tt.option})
		if err != nil {
			t.Fatal(err)
		}
		set.Close()
		if got := set.Memory().Budget; got != tt.want {
			t.Errorf("MemoryBudget %d: budget %d, want %d", tt.option, got, tt.want)
		}
	}
}

// TestMemoryReservations drives one budget of 100 bytes through a table of
// steps, each on one of three reservations, checking what each step was
// granted and what the budget holds after it.
func TestMemoryReservations(t *testing.T) {
	type step struct {
		r      int    // which reservation
		op     string // cover n, shrink n, release
		n      int64
		ok     bool  // for cover: granted
		used   int64 // budget in use after the step
		peak   int64
		reject int64 // refusals so far
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"grow within the budget, then give back", []step{
			{0, "cover", 40, true, 40, 40, 0},
			{0, "cover", 30, true, 40, 40, 0}, // already covered: nothing more taken
			{0, "cover", 70, true, 70, 70, 0}, // only the difference
			{1, "cover", 30, true, 100, 100, 0},
			{1, "release", 0, true, 70, 100, 0},
			{0, "release", 0, true, 0, 100, 0},
		}},
		{"a refusal takes nothing and leaves the rest held", []step{
			{0, "cover", 60, true, 60, 60, 0},
			{1, "cover", 30, true, 90, 90, 0},
			{1, "cover", 50, false, 90, 90, 1}, // 60+50 > 100: its 30 stay held
			{2, "cover", 11, false, 90, 90, 2},
			{2, "cover", 10, true, 100, 100, 2}, // exactly full is allowed
			{1, "release", 0, true, 70, 100, 2},
			{2, "cover", 40, true, 100, 100, 2},
		}},
		{"shrink to the body's capacity", []step{
			{0, "cover", 80, true, 80, 80, 0},
			{0, "shrink", 20, true, 20, 80, 0},
			{0, "shrink", 50, true, 20, 80, 0}, // never grows
			{1, "cover", 80, true, 100, 100, 0},
			{0, "release", 0, true, 80, 100, 0},
			{0, "release", 0, true, 80, 100, 0}, // twice: nothing more
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newMemoryBudget(100)
			rs := []*reservation{{budget: b}, {budget: b}, {budget: b}}
			for i, s := range tt.steps {
				r := rs[s.r]
				ok := true
				switch s.op {
				case "cover":
					ok = r.cover(s.n)
				case "shrink":
					r.shrink(s.n)
				case "release":
					r.release()
				}
				if st := b.stats(); ok != s.ok || st.InUse != s.used || st.Peak != s.peak || st.Rejected != s.reject {
					t.Fatalf("step %d, %s %d on reservation %d: granted %v, in use %d, peak %d, rejected %d; want %v, %d, %d, %d",
						i, s.op, s.n, s.r, ok, st.InUse, st.Peak, st.Rejected, s.ok, s.used, s.peak, s.reject)
				}
				if !ok && !r.rejected {
					t.Fatalf("step %d: a refused reservation is not marked rejected", i)
				}
			}
		})
	}
}

func TestMemoryHoldRelease(t *testing.T) {
	b := newMemoryBudget(100)
	ctx, release := HoldMemory(context.Background())
	h := ctx.Value(holdKey{}).(*memoryHold)
	r1, r2 := &reservation{budget: b}, &reservation{budget: b}
	r1.cover(30)
	r2.cover(20)
	if !h.keep(r1) || !h.keep(r2) {
		t.Fatal("an open hold refused a reservation")
	}
	release()
	release()
	if got := b.stats().InUse; got != 0 {
		t.Fatalf("in use %d after release, want 0", got)
	}
	if h.keep(&reservation{budget: b}) {
		t.Error("a released hold kept a reservation: it would never be given back")
	}
}

// gatedUpstream answers every request 200 with a JSON body of size bytes,
// with a Content-Length unless chunked. It sends the headers and the first
// gateAt bytes at once, then waits for open to be closed before the rest.
func gatedUpstream(t *testing.T, size, gateAt int, chunked bool, open <-chan struct{}) (string, *counts) {
	t.Helper()
	body := jsonOf(size)
	s, n := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_, _ = w.Write(body[:gateAt])
		_ = rc.Flush()
		select {
		case <-open:
		case <-r.Context().Done():
			return
		}
		for rest := body[gateAt:]; len(rest) > 0; {
			k := min(len(rest), 64<<10)
			if _, err := w.Write(rest[:k]); err != nil {
				return
			}
			_ = rc.Flush()
			rest = rest[k:]
		}
	})
	return s.URL, n
}

// jsonOf returns a JSON string literal of exactly size bytes (size >= 2).
func jsonOf(size int) []byte {
	b := bytes.Repeat([]byte("x"), size)
	b[0], b[size-1] = '"', '"'
	return b
}

// wantMemoryRejection fails unless err is a memory budget rejection that
// also reads as the upstream refusing calls.
func wantMemoryRejection(t *testing.T, err error) {
	t.Helper()
	var rej *RejectedError
	if !errors.Is(err, ErrMemoryBudget) || !errors.As(err, &rej) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want a *RejectedError for ErrMemoryBudget", err)
	}
	if outcome(err) != breaker.Ignored {
		t.Fatalf("breaker outcome of %v = %v, want ignored", err, outcome(err))
	}
}

// TestMemoryBudgetUnderConcurrency: 32 concurrent calls for 1 MiB bodies
// (with a Content-Length) under a 4.5 MiB budget. Every upstream sends its
// headers and then holds the body back, so the calls all meet the budget
// at once: exactly 4 fit (4 × (1 MiB + 1), with room for the others' first
// 4 KiB; a fifth does not), the 28 others fail fast with ErrMemoryBudget as
// their headers arrive, without waiting for the 4. The upstream was called
// for those 28 (their size was unknown until then) but never again: the
// rejections are not retried, and they do not count against its breaker.
// At no time are more bytes reserved than the budget; once the 4 have their
// bodies, nothing is.
func TestMemoryBudgetUnderConcurrency(t *testing.T) {
	const (
		n      = 32
		size   = 1 << 20
		budget = 4<<20 + 512<<10
		fit    = 4
	)
	open := make(chan struct{})
	url, hits := gatedUpstream(t, size, 0, false, open)
	fetch, set := memorySet(t, url, budget)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	results := make(chan error, n)
	for range n {
		go func() {
			resp, err := fetch(ctx, &Request{Path: "/big"})
			if err == nil && len(resp.Body) != size {
				err = errors.New("short body: " + strconv.Itoa(len(resp.Body)))
			}
			results <- err
		}()
	}
	for i := range n - fit {
		select {
		case err := <-results:
			wantMemoryRejection(t, err)
		case <-ctx.Done():
			t.Fatalf("only %d calls were rejected while %d held the budget, want %d", i, fit, n-fit)
		}
	}
	if st := set.Memory(); st.InUse != fit*(size+1) || st.Rejected != n-fit {
		t.Errorf("while %d bodies are pending: %+v, want %d bytes in use and %d rejected", fit, st, fit*(size+1), n-fit)
	}
	close(open)
	for range fit {
		if err := <-results; err != nil {
			t.Errorf("call holding budget: %v", err)
		}
	}
	st := set.Memory()
	t.Logf("%+v", st)
	if st.Peak > budget || st.InUse != 0 {
		t.Errorf("peak %d bytes (budget %d), %d still in use after every call returned, want 0", st.Peak, budget, st.InUse)
	}
	if got := hits.requests.Load(); got != n {
		t.Errorf("upstream saw %d requests for %d calls, want %d: one each, rejections not retried", got, n, n)
	}
	if s, _ := set.BreakerState("svc"); s != breaker.Closed {
		t.Errorf("breaker %s after %d memory rejections, want closed", s, n-fit)
	}
}

// memorySet builds a one-upstream Set on url with the given budget and
// returns the stack of one call.
func memorySet(t *testing.T, url string, budget int64) (Fetch, *Set) {
	t.Helper()
	return stackWith(t, Config{URL: url}, SetOptions{MemoryBudget: budget})
}

// hog starts a call for a 1 MiB body with a Content-Length that holds
// 1 MiB + 1 of the budget until open is closed. The returned channel
// gives its result.
func hog(t *testing.T, budget int64) (Fetch, *Set, chan<- struct{}, <-chan error) {
	t.Helper()
	open := make(chan struct{})
	url, _ := gatedUpstream(t, 1<<20, 0, false, open)
	fetch, set := memorySet(t, url, budget)
	done := make(chan error, 1)
	go func() {
		_, err := fetch(context.Background(), &Request{Path: "/hog"})
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for set.Memory().InUse < 1<<20 {
		if time.Now().After(deadline) {
			close(open)
			t.Fatalf("the hog never reserved its body: %+v", set.Memory())
		}
		time.Sleep(time.Millisecond)
	}
	return fetch, set, open, done
}

// TestMemoryBudgetChunkedBody: a body without a Content-Length reserves
// as the client's buffer grows. With a hog holding 1 MiB + 1 of a 2 MiB
// budget, a 1 MiB chunked body cannot fit (its buffer needs 1 MiB + 1 to
// see the end): it is refused part-way, as a memory rejection rather than
// a truncated body. Alone, it fits.
func TestMemoryBudgetChunkedBody(t *testing.T) {
	const budget = 2 << 20
	_, set, open, hogDone := hog(t, budget)
	// Another upstream drawing from the hog's budget, as the members of
	// one Set do.
	url, hits := gatedUpstream(t, 1<<20, 0, true, closed())
	chunked := set.memory.layer("chunked")(clientFor(t, url).Fetch)
	_, err := chunked(context.Background(), &Request{Path: "/chunked"})
	wantMemoryRejection(t, err)
	if hits.requests.Load() != 1 {
		t.Fatalf("chunked upstream saw %d requests, want 1: refused part-way", hits.requests.Load())
	}
	close(open)
	if err := <-hogDone; err != nil {
		t.Fatalf("hog: %v", err)
	}
	resp, err := chunked(context.Background(), &Request{Path: "/chunked"})
	if err != nil || len(resp.Body) != 1<<20 {
		t.Fatalf("chunked body alone: %v", err)
	}
	if st := set.Memory(); st.Peak > budget || st.InUse != 0 {
		t.Errorf("%+v: want a peak within %d and nothing in use", st, budget)
	}
}

// clientFor returns a Client for url whose transport draws from the
// budget of the memory layer around it, as a Set's members do.
func clientFor(t *testing.T, url string) *Client {
	t.Helper()
	c := newClient(t, Config{URL: url})
	c.rt = &memoryTransport{next: c.rt, limit: c.cfg.MaxResponseBytes}
	return c
}

// closed returns a closed channel: a gate that is open.
func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// TestMemoryBudgetFullRejectsBeforeCalling: when less than a first
// reservation is left, a call is rejected before it is sent: the upstream
// receives nothing.
func TestMemoryBudgetFullRejectsBeforeCalling(t *testing.T) {
	const budget = 1<<20 + 1 + 2<<10 // the hog leaves 2 KiB, less than firstReserve
	fetch, set, open, hogDone := hog(t, budget)
	defer close(open)
	s, hits := startServer(t, jsonHandler(200, `{}`))
	other := set.memory.layer("other")(clientFor(t, s.URL).Fetch)
	for range 3 {
		_, err := other(context.Background(), &Request{Path: "/small"})
		wantMemoryRejection(t, err)
		_, err = fetch(context.Background(), &Request{Path: "/hog"})
		wantMemoryRejection(t, err)
	}
	if got := hits.requests.Load(); got != 0 {
		t.Errorf("upstream saw %d requests while the budget was full, want 0", got)
	}
	select {
	case err := <-hogDone:
		t.Fatalf("hog returned early: %v", err)
	default:
	}
}

// sizedHandler answers 200 with body and its Content-Length.
func sizedHandler(status int, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

// TestMemoryBudgetCounts: what draws from the budget and what does not.
// The budget here is 8 KiB, enough for small answers only.
func TestMemoryBudgetCounts(t *testing.T) {
	big := string(jsonOf(64 << 10)) // jsonHandler sends it chunked
	tests := []struct {
		name    string
		handler http.HandlerFunc
		max     int64 // max_response_bytes; 0 default
		method  string
		want    func(error) bool
	}{
		{"a small body fits", jsonHandler(200, `{"id":1}`), 0, "", func(err error) bool { return err == nil }},
		{"a large body does not, refused as it is read", jsonHandler(200, big), 0, "", func(err error) bool { return errors.Is(err, ErrMemoryBudget) }},
		{"nor with a Content-Length, refused unread", sizedHandler(200, []byte(big)), 0, "", func(err error) bool { return errors.Is(err, ErrMemoryBudget) }},
		{"a non-2xx body is not counted (the client reads 4 KiB of it)", jsonHandler(500, big), 0, "", func(err error) bool {
			var se *StatusError
			return errors.As(err, &se) && se.Status == 500 && !errors.Is(err, ErrMemoryBudget)
		}},
		{"a Content-Length over max_response_bytes is too large, not over budget", sizedHandler(200, []byte(big)), 32 << 10, "", func(err error) bool {
			return errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMemoryBudget)
		}},
		{"HEAD has no body to count", jsonHandler(200, big), 0, http.MethodHead, func(err error) bool { return err == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, tt.handler)
			set, err := NewSet(map[string]Config{"svc": {URL: s.URL, MaxResponseBytes: tt.max}}, SetOptions{MemoryBudget: 8 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			fetch, _ := set.Stack(Call{Upstream: "svc"})
			_, err = fetch(context.Background(), &Request{Method: tt.method, Path: "/x"})
			if !tt.want(err) {
				t.Errorf("err = %v", err)
			}
			if st := set.Memory(); st.InUse != 0 || st.Peak > 8<<10 {
				t.Errorf("%+v, want nothing left in use and a peak within the budget", st)
			}
		})
	}
}

// TestHoldMemory: under HoldMemory a successful call's body stays reserved,
// at the body's capacity, until the request releases it, so the calls of
// one request that together exceed the budget are refused; without a hold
// a reservation ends with its call.
func TestHoldMemory(t *testing.T) {
	const size = 100 << 10
	s, _ := startServer(t, sizedHandler(200, jsonOf(size)))
	fetch, set := memorySet(t, s.URL, 1<<20)

	for range 20 {
		if _, err := fetch(context.Background(), &Request{Path: "/x"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := set.Memory().InUse; got != 0 {
		t.Fatalf("%d bytes in use after calls without a hold, want 0", got)
	}

	// Each body's buffer is size+1 bytes: 10 fit in 1 MiB, the 11th does not.
	ctx, release := HoldMemory(context.Background())
	for i := range 10 {
		if _, err := fetch(ctx, &Request{Path: "/x"}); err != nil {
			t.Fatalf("call %d under the hold: %v", i, err)
		}
	}
	if got := set.Memory().InUse; got != 10*(size+1) {
		t.Fatalf("%d bytes in use under the hold, want the 10 bodies' %d", got, 10*(size+1))
	}
	_, err := fetch(ctx, &Request{Path: "/x"})
	wantMemoryRejection(t, err)
	release()
	release()
	if got := set.Memory().InUse; got != 0 {
		t.Fatalf("%d bytes in use after release, want 0", got)
	}
	if _, err := fetch(ctx, &Request{Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	if got := set.Memory().InUse; got != 0 {
		t.Errorf("%d bytes in use after a call under a released hold, want 0", got)
	}
}

// TestMemoryBudgetOff: a negative budget adds no layer: nothing is counted
// and nothing is refused.
func TestMemoryBudgetOff(t *testing.T) {
	s, _ := startServer(t, jsonHandler(200, string(jsonOf(1<<20))))
	fetch, set := memorySet(t, s.URL, -1)
	if _, ok := set.members["svc"].client.rt.(*memoryTransport); ok {
		t.Error("the client's transport is budgeted with the budget off")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := fetch(context.Background(), &Request{Path: "/x"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if st := set.Memory(); st != (MemoryStats{}) {
		t.Errorf("Memory() = %+v with the budget off, want zero", st)
	}
}

// BenchmarkMemoryBudget is one small call through the default stack with
// the memory budget on (the default) and off: the cost of the accounting.
func BenchmarkMemoryBudget(b *testing.B) {
	s := httptest.NewServer(jsonHandler(200, `{"id":1,"name":"Ada"}`))
	defer s.Close()
	for _, bc := range []struct {
		name   string
		budget int64
	}{{"off", -1}, {"on", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			set, err := NewSet(map[string]Config{"svc": {URL: s.URL}}, SetOptions{MemoryBudget: bc.budget})
			if err != nil {
				b.Fatal(err)
			}
			defer set.Close()
			fetch, _ := set.Stack(Call{Upstream: "svc"})
			req := &Request{Path: "/users/1"}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := fetch(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestMemoryBudgetOfOneAnswer: a budget equal to max_response_bytes holds
// an answer of exactly that size, with or without a Content-Length.
func TestMemoryBudgetOfOneAnswer(t *testing.T) {
	const limit = 256 << 10
	body := jsonOf(limit)
	for _, h := range []http.HandlerFunc{sizedHandler(200, body), jsonHandler(200, string(body))} {
		s, _ := startServer(t, h)
		set, err := NewSet(map[string]Config{"svc": {URL: s.URL, MaxResponseBytes: limit}}, SetOptions{MemoryBudget: limit})
		if err != nil {
			t.Fatal(err)
		}
		fetch, _ := set.Stack(Call{Upstream: "svc"})
		if resp, err := fetch(context.Background(), &Request{Path: "/x"}); err != nil || len(resp.Body) != limit {
			t.Errorf("answer of max_response_bytes under a budget of as much: %v", err)
		}
		set.Close()
	}
}
