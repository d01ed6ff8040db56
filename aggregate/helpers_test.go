package aggregate

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/braidgw/braid/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder counts what upstream test servers see: calls per path, requests
// in flight and their peak.
type recorder struct {
	mu       sync.Mutex
	inFlight int
	peak     int
	calls    map[string]int // "upstream GET /escaped/path?query" -> count
	log      []string       // every request, in arrival order
}

func newRecorder() *recorder { return &recorder{calls: map[string]int{}} }

func (r *recorder) enter(name string, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight++
	r.peak = max(r.peak, r.inFlight)
	line := name + " " + req.Method + " " + req.URL.RequestURI()
	r.calls[line]++
	r.log = append(r.log, line)
}

func (r *recorder) leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
}

func (r *recorder) snapshot() (peak int, calls map[string]int, log []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := make(map[string]int, len(r.calls))
	for k, v := range r.calls {
		c[k] = v
	}
	return r.peak, c, append([]string(nil), r.log...)
}

func (r *recorder) total(upstreamName string) int {
	_, calls, _ := r.snapshot()
	n := 0
	for k, v := range calls {
		if len(k) > len(upstreamName) && k[:len(upstreamName)+1] == upstreamName+" " {
			n += v
		}
	}
	return n
}

// barrier releases waiters once n parties have arrived, or when a waiter's
// context ends. It proves parallelism by counting: with fewer than n calls in
// flight at once, nobody is released before the route deadline.
type barrier struct {
	mu      sync.Mutex
	n       int
	arrived int
	open    chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

func (b *barrier) wait(ctx context.Context) bool {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
		return true
	case <-ctx.Done():
		return false
	}
}

// serve starts an httptest upstream named name whose handler is h, recorded
// by rec, and returns its Fetch.
func serve(t *testing.T, rec *recorder, name string, h http.HandlerFunc) upstream.Fetch {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.enter(name, r)
		defer rec.leave()
		w.Header().Set("Content-Type", "application/json")
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := upstream.New(name, upstream.Config{URL: srv.URL})
	if err != nil {
		t.Fatalf("upstream.New(%s): %v", name, err)
	}
	t.Cleanup(c.Close)
	return c.Fetch
}

// static answers every request with body.
func static(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }
}

func status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

func mustCompile(t *testing.T, calls []CallConfig, params []string, ups map[string]upstream.Fetch) *Plan {
	t.Helper()
	p, err := Compile(calls, Env{Field: "route", Params: params, Stack: upstream.Static(ups)})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func execute(t *testing.T, p *Plan, params map[string]string) (*Result, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.Execute(ctx, params)
	if err != nil {
		return nil, "", err
	}
	body, err := res.AppendJSON(nil)
	if err != nil {
		t.Fatalf("AppendJSON: %v", err)
	}
	return res, string(body), nil
}
