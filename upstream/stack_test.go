package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braidgw/braid/breaker"
)

// fakeClock is a manual clock for breakers and retry budgets.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// stackFor builds a one-upstream Set on cfg (URL filled in) and returns the
// stack of one call to it. Jitter is fixed at 0.5.
func stackFor(t testing.TB, url string, cfg Config, clock *fakeClock) (Fetch, *Set) {
	t.Helper()
	cfg.URL = url
	opts := SetOptions{Rand: func() float64 { return 0.5 }}
	if clock != nil {
		opts.Now = clock.Now
	}
	return stackWith(t, cfg, opts)
}

// stackWith builds a Set of one upstream, "svc", on cfg and opts, and
// returns the stack of one call to it; the Set is closed when the test
// ends.
func stackWith(t testing.TB, cfg Config, opts SetOptions) (Fetch, *Set) {
	t.Helper()
	set, err := NewSet(map[string]Config{"svc": cfg}, opts)
	if err != nil {
		t.Fatalf("NewSet() = %v", err)
	}
	t.Cleanup(set.Close)
	f, err := set.Stack(Call{Route: "GET /r", Name: "c", Upstream: "svc"})
	if err != nil {
		t.Fatalf("Stack() = %v", err)
	}
	return f, set
}

// fast retries: tiny backoff so that tests do not wait.
var fastRetry = RetryConfig{Backoff: time.Microsecond, MaxBackoff: time.Microsecond}

// sequence answers the n-th request (from 1) with statuses[n-1], and 200
// once the list is exhausted.
func sequence(statuses ...int) http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(statuses) && statuses[i] != 200 {
			jsonHandler(statuses[i], `{"error":"x"}`)(w, r)
			return
		}
		jsonHandler(200, `{"ok":true}`)(w, r)
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name      string
		retry     RetryConfig
		method    string
		statuses  []int
		wantCalls int64
		wantErr   int // status of the final StatusError; 0 for success
	}{
		{name: "503 then success", statuses: []int{503, 200}, wantCalls: 2},
		{name: "502 504 then success", statuses: []int{502, 504, 200}, wantCalls: 3},
		{name: "429 retried", statuses: []int{429, 200}, wantCalls: 2},
		{name: "gives up after attempts", statuses: []int{503, 503, 503, 503}, wantCalls: 3, wantErr: 503},
		{name: "500 is not retried by default", statuses: []int{500, 200}, wantCalls: 1, wantErr: 500},
		{name: "404 is not retried", statuses: []int{404, 200}, wantCalls: 1, wantErr: 404},
		{name: "status list is configurable", retry: RetryConfig{Statuses: []int{500}}, statuses: []int{500, 200}, wantCalls: 2},
		{name: "configured list replaces the default", retry: RetryConfig{Statuses: []int{500}}, statuses: []int{503, 200}, wantCalls: 1, wantErr: 503},
		{name: "attempts configurable", retry: RetryConfig{Attempts: 5}, statuses: []int{503, 503, 503, 503, 200}, wantCalls: 5},
		{name: "disabled", retry: RetryConfig{Disabled: true}, statuses: []int{503, 200}, wantCalls: 1, wantErr: 503},
		{name: "not idempotent: POST is tried once", method: "POST", statuses: []int{503, 200}, wantCalls: 1, wantErr: 503},
		{name: "HEAD is retried", method: "HEAD", statuses: []int{503, 200}, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, n := startServer(t, sequence(tt.statuses...))
			r := tt.retry
			r.Backoff, r.MaxBackoff = time.Microsecond, time.Microsecond
			fetch, _ := stackFor(t, s.URL, Config{Retry: r, Breaker: BreakerConfig{Disabled: true}}, nil)
			_, err := fetch(context.Background(), &Request{Method: tt.method, Path: "/x"})
			if got := n.requests.Load(); got != tt.wantCalls {
				t.Errorf("upstream saw %d requests, want %d", got, tt.wantCalls)
			}
			var se *StatusError
			switch {
			case tt.wantErr == 0 && err != nil:
				t.Errorf("fetch() = %v, want success", err)
			case tt.wantErr != 0 && (!errors.As(err, &se) || se.Status != tt.wantErr):
				t.Errorf("fetch() = %v, want status %d", err, tt.wantErr)
			}
		})
	}
}

// resetServer accepts connections and resets each at once, counting them:
// an upstream that is "down" but whose tries can be counted.
func resetServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "http://" + ln.Addr().String(), &n
}

func TestRetryTransportErrors(t *testing.T) {
	t.Run("connection reset is retried", func(t *testing.T) {
		url, n := resetServer(t)
		fetch, _ := stackFor(t, url, Config{Retry: fastRetry, Breaker: BreakerConfig{Disabled: true}}, nil)
		_, err := fetch(context.Background(), &Request{Path: "/x"})
		if err == nil {
			t.Fatal("fetch() succeeded against a resetting server")
		}
		if got := n.Load(); got != 3 {
			t.Errorf("server saw %d connections, want 3 (the first try and 2 retries)", got)
		}
	})
	t.Run("connection refused is retried, then fails", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		fetch, _ := stackFor(t, "http://"+addr, Config{Retry: fastRetry, Breaker: BreakerConfig{Disabled: true}}, nil)
		_, err := fetch(context.Background(), &Request{Path: "/x"})
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" {
			t.Errorf("fetch() = %v, want the dial error", err)
		}
	})
	t.Run("invalid JSON is not retried", func(t *testing.T) {
		s, n := startServer(t, jsonHandler(200, `{"a":`))
		fetch, _ := stackFor(t, s.URL, Config{Retry: fastRetry}, nil)
		if _, err := fetch(context.Background(), &Request{Path: "/x"}); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("fetch() = %v, want ErrInvalidJSON", err)
		}
		if got := n.requests.Load(); got != 1 {
			t.Errorf("upstream saw %d requests, want 1", got)
		}
	})
}

func TestTryTimeoutIsRetried(t *testing.T) {
	var n atomic.Int64
	s, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			<-r.Context().Done() // the first try hangs until the client gives up on it
			return
		}
		jsonHandler(200, `{"ok":true}`)(w, r)
	})
	fetch, _ := stackFor(t, s.URL, Config{TryTimeout: 50 * time.Millisecond, Retry: fastRetry}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := fetch(ctx, &Request{Path: "/x"})
	if err != nil || string(resp.Body) != `{"ok":true}` {
		t.Fatalf("fetch() = %v, want the second try's answer", err)
	}
	if got := n.Load(); got != 2 {
		t.Errorf("upstream saw %d requests, want 2", got)
	}
}

func TestRetryNeverPastTheDeadline(t *testing.T) {
	t.Run("Retry-After that does not fit is not waited for", func(t *testing.T) {
		s, n := startServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			jsonHandler(503, `{}`)(w, r)
		})
		fetch, _ := stackFor(t, s.URL, Config{Retry: fastRetry, Breaker: BreakerConfig{Disabled: true}}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := fetch(ctx, &Request{Path: "/x"})
		var se *StatusError
		if !errors.As(err, &se) || se.RetryAfter != 30*time.Second {
			t.Fatalf("fetch() = %v, want the 503 with RetryAfter 30s", err)
		}
		if ctx.Err() != nil {
			t.Error("fetch() waited out the deadline instead of returning the 503")
		}
		if got := n.requests.Load(); got != 1 {
			t.Errorf("upstream saw %d requests, want 1", got)
		}
	})
	t.Run("Retry-After that fits is honoured", func(t *testing.T) {
		var n atomic.Int64
		var first time.Time
		var gap atomic.Int64
		s, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				first = time.Now()
				w.Header().Set("Retry-After", "1")
				jsonHandler(429, `{}`)(w, r)
				return
			}
			gap.Store(int64(time.Since(first)))
			jsonHandler(200, `{}`)(w, r)
		})
		fetch, _ := stackFor(t, s.URL, Config{Retry: fastRetry}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := fetch(ctx, &Request{Path: "/x"}); err != nil {
			t.Fatalf("fetch() = %v", err)
		}
		// An ordering fact, not a speed claim: the retry came after the
		// announced second, not after the microsecond backoff.
		if g := time.Duration(gap.Load()); g < time.Second {
			t.Errorf("retry sent %s after the 429, want at least its Retry-After of 1s", g)
		}
	})
	t.Run("backoff longer than the deadline is not waited for", func(t *testing.T) {
		s, n := startServer(t, jsonHandler(503, `{}`))
		fetch, _ := stackFor(t, s.URL, Config{Retry: RetryConfig{Backoff: time.Hour, MaxBackoff: time.Hour}, Breaker: BreakerConfig{Disabled: true}}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = fetch(ctx, &Request{Path: "/x"})
		if ctx.Err() != nil {
			t.Error("fetch() waited out the deadline")
		}
		if got := n.requests.Load(); got != 1 {
			t.Errorf("upstream saw %d requests, want 1", got)
		}
	})
	t.Run("cancelled caller stops retrying", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		s, n := startServer(t, func(w http.ResponseWriter, r *http.Request) {
			cancel()
			jsonHandler(503, `{}`)(w, r)
		})
		fetch, _ := stackFor(t, s.URL, Config{Retry: fastRetry}, nil)
		_, err := fetch(ctx, &Request{Path: "/x"})
		if err == nil {
			t.Fatal("fetch() succeeded")
		}
		if got := n.requests.Load(); got != 1 {
			t.Errorf("upstream saw %d requests, want 1", got)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"-5", 0}, {"3", 3 * time.Second}, {"abc", 0}, {"1.5", 0},
		{"99999999999", time.Hour},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-10 * time.Second).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestRetryBudget(t *testing.T) {
	t.Run("ratio over the window, with a floor", func(t *testing.T) {
		clock := newFakeClock()
		b := newBudget(BudgetConfig{Ratio: 0.2, MinPerSecond: 0.5, Window: 10 * time.Second}, clock.Now)
		for range 100 {
			b.call()
		}
		granted := 0
		for range 50 {
			if b.withdraw() {
				granted++
			}
		}
		if granted != 20 {
			t.Errorf("granted %d retries for 100 calls at ratio 0.2, want 20", granted)
		}
		clock.Advance(11 * time.Second) // everything slides out
		granted = 0
		for range 50 {
			if b.withdraw() {
				granted++
			}
		}
		if granted != 5 {
			t.Errorf("granted %d retries with no calls, want the floor 0.5/s × 10s = 5", granted)
		}
	})
	t.Run("an outage adds at most the budget", func(t *testing.T) {
		s, n := startServer(t, jsonHandler(503, `{}`))
		fetch, _ := stackFor(t, s.URL, Config{
			Retry:       RetryConfig{Attempts: 10, Backoff: time.Microsecond, MaxBackoff: time.Microsecond},
			RetryBudget: BudgetConfig{Ratio: 0.2, MinPerSecond: 0.1},
			Breaker:     BreakerConfig{Disabled: true},
		}, newFakeClock())
		const calls = 100
		for range calls {
			_, _ = fetch(context.Background(), &Request{Path: "/x"})
		}
		// 100 calls, 20% of them, plus a floor of 1 over the 10s window.
		if got := n.requests.Load(); got > calls+calls/5+1 || got < calls+calls/5 {
			t.Errorf("upstream saw %d requests for %d calls, want %d..%d", got, calls, calls+calls/5, calls+calls/5+1)
		}
	})
}

func TestBreakerInTheStack(t *testing.T) {
	clock := newFakeClock()
	var failing atomic.Bool
	failing.Store(true)
	s, n := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			jsonHandler(500, `{}`)(w, r)
			return
		}
		jsonHandler(200, `{}`)(w, r)
	})
	var mu sync.Mutex
	var transitions []string
	cfg := Config{URL: s.URL, Retry: fastRetry}
	set, err := NewSet(map[string]Config{"svc": cfg}, SetOptions{Now: clock.Now, Rand: func() float64 { return 0 },
		OnBreakerChange: func(name string, from, to breaker.State) {
			mu.Lock()
			defer mu.Unlock()
			transitions = append(transitions, fmt.Sprintf("%s %s->%s", name, from, to))
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	fetch, _ := set.Stack(Call{Upstream: "svc"})

	for range 100 {
		_, _ = fetch(context.Background(), &Request{Path: "/x"})
	}
	if got := n.requests.Load(); got != 5 {
		t.Errorf("upstream saw %d requests, want 5 (the default consecutive failures trip it)", got)
	}
	_, err = fetch(context.Background(), &Request{Path: "/x"})
	var rej *RejectedError
	if !errors.Is(err, breaker.ErrOpen) || !errors.Is(err, ErrUnavailable) || !errors.As(err, &rej) || rej.RetryAfter <= 0 {
		t.Fatalf("fetch() = %v, want a RejectedError matching breaker.ErrOpen and ErrUnavailable with a RetryAfter", err)
	}
	if st, _ := set.BreakerState("svc"); st != breaker.Open {
		t.Errorf("BreakerState = %s, want open", st)
	}

	failing.Store(false)
	clock.Advance(rej.RetryAfter)
	before := n.requests.Load()
	for range 10 {
		if _, err := fetch(context.Background(), &Request{Path: "/x"}); err != nil {
			t.Fatalf("after recovery fetch() = %v", err)
		}
	}
	if got := n.requests.Load() - before; got != 10 {
		t.Errorf("upstream saw %d requests after recovery, want 10", got)
	}
	if st, _ := set.BreakerState("svc"); st != breaker.Closed {
		t.Errorf("BreakerState = %s, want closed", st)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"svc closed->open", "svc open->half-open", "svc half-open->closed"}
	if fmt.Sprint(transitions) != fmt.Sprint(want) {
		t.Errorf("transitions = %q, want %q", transitions, want)
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want breaker.Outcome
	}{
		{"success", nil, breaker.Success},
		{"500", &Error{Err: &StatusError{Status: 500}}, breaker.Failure},
		{"503", &Error{Err: &StatusError{Status: 503}}, breaker.Failure},
		{"429", &Error{Err: &StatusError{Status: 429}}, breaker.Failure},
		{"404 means the upstream works", &Error{Err: &StatusError{Status: 404}}, breaker.Success},
		{"400", &Error{Err: &StatusError{Status: 400}}, breaker.Success},
		{"timeout", &Error{Err: context.DeadlineExceeded}, breaker.Failure},
		{"cancelled by the caller", &Error{Err: context.Canceled}, breaker.Ignored},
		{"connection refused", &Error{Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, breaker.Failure},
		{"invalid JSON", &Error{Err: ErrInvalidJSON}, breaker.Failure},
		{"bad path never left the gateway", &Error{Err: ErrBadPath}, breaker.Ignored},
		{"bulkhead rejection", &Error{Err: &RejectedError{Err: ErrBulkheadFull}}, breaker.Ignored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outcome(tt.err); got != tt.want {
				t.Errorf("outcome(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestBulkhead(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 2)
	s, n := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		jsonHandler(200, `{}`)(w, r)
	})
	fetch, set := stackFor(t, s.URL, Config{Bulkhead: BulkheadConfig{MaxConcurrent: 2, MaxWait: time.Millisecond}}, nil)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := fetch(context.Background(), &Request{Path: "/x"}); err != nil {
				t.Errorf("held call: %v", err)
			}
		})
	}
	<-arrived
	<-arrived
	for range 20 {
		_, err := fetch(context.Background(), &Request{Path: "/x"})
		var rej *RejectedError
		if !errors.Is(err, ErrBulkheadFull) || !errors.As(err, &rej) || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("third call: %v, want a RejectedError for ErrBulkheadFull", err)
		}
	}
	close(release)
	wg.Wait()
	if got := n.requests.Load(); got != 2 {
		t.Errorf("upstream saw %d requests, want 2: rejected calls are neither made nor retried", got)
	}
	if st, _ := set.BreakerState("svc"); st != breaker.Closed {
		t.Errorf("breaker %s after bulkhead rejections, want closed: they are not the upstream's failures", st)
	}
	if _, err := fetch(context.Background(), &Request{Path: "/x"}); err != nil {
		t.Errorf("call after the slots freed: %v", err)
	}
}

func TestHedge(t *testing.T) {
	t.Run("slow first try loses to the hedge and is cancelled", func(t *testing.T) {
		var n atomic.Int64
		cancelled := make(chan struct{})
		s, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				<-r.Context().Done()
				close(cancelled)
				return
			}
			jsonHandler(200, `{"hedge":true}`)(w, r)
		})
		fetch, _ := stackFor(t, s.URL, Config{Hedge: HedgeConfig{Enabled: true, Delay: 5 * time.Millisecond}}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := fetch(ctx, &Request{Path: "/x"})
		if err != nil || string(resp.Body) != `{"hedge":true}` {
			t.Fatalf("fetch() = %v, want the hedge's answer", err)
		}
		if got := n.Load(); got != 2 {
			t.Errorf("upstream saw %d requests, want 2", got)
		}
		select {
		case <-cancelled:
		case <-ctx.Done():
			t.Error("the losing try was never cancelled")
		}
	})
	t.Run("fast answers are not hedged", func(t *testing.T) {
		s, n := startServer(t, jsonHandler(200, `{}`))
		fetch, _ := stackFor(t, s.URL, Config{Hedge: HedgeConfig{Enabled: true, Delay: time.Hour}}, nil)
		for range 20 {
			if _, err := fetch(context.Background(), &Request{Path: "/x"}); err != nil {
				t.Fatal(err)
			}
		}
		if got := n.requests.Load(); got != 20 {
			t.Errorf("upstream saw %d requests for 20 calls, want 20", got)
		}
	})
	t.Run("hedges draw from the retry budget", func(t *testing.T) {
		var n atomic.Int64
		release := make(chan struct{})
		s, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			select { // every try is slow: every call wants a hedge
			case <-release:
			case <-r.Context().Done():
			}
			jsonHandler(200, `{}`)(w, r)
		})
		fetch, _ := stackFor(t, s.URL, Config{
			Hedge:       HedgeConfig{Enabled: true, Delay: time.Millisecond},
			RetryBudget: BudgetConfig{Ratio: 0.1, MinPerSecond: 0.1},
			Retry:       RetryConfig{Disabled: true},
		}, newFakeClock())
		const calls = 30
		var wg sync.WaitGroup
		for range calls {
			wg.Go(func() { _, _ = fetch(context.Background(), &Request{Path: "/x"}) })
		}
		// The budget allows max(10% of 30 calls, 0.1/s × 10s) = 3 hedges.
		const want = calls + 3
		deadline := time.Now().Add(10 * time.Second)
		for n.Load() < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // room for a hedge beyond the budget to show up
		close(release)
		wg.Wait()
		if got := n.Load(); got != want {
			t.Errorf("upstream saw %d requests for %d calls, want %d: every call hedged as the budget allows, no more", got, calls, want)
		}
	})
	t.Run("p95 delay needs samples", func(t *testing.T) {
		h := newHedger(HedgeConfig{Enabled: true})
		if _, ok := h.delay(); ok {
			t.Fatal("delay() ok with no samples")
		}
		for i := range 100 {
			h.observe(time.Duration(i+1) * time.Millisecond)
		}
		if d, ok := h.delay(); !ok || d != 95*time.Millisecond {
			t.Errorf("delay() = %s, %v, want the p95 95ms", d, ok)
		}
		h = newHedger(HedgeConfig{Enabled: true, Percentile: 50})
		for i := range 100 {
			h.observe(time.Duration(i+1) * time.Millisecond)
		}
		if d, ok := h.delay(); !ok || d != 50*time.Millisecond {
			t.Errorf("delay() = %s, %v, want the p50 50ms", d, ok)
		}
	})
}

func TestSetStack(t *testing.T) {
	set, err := NewSet(map[string]Config{"a": {URL: "http://127.0.0.1:1"}}, SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if _, err := set.Stack(Call{Upstream: "nope"}); !errors.Is(err, ErrUnknownUpstream) {
		t.Errorf("Stack(unknown) = %v, want ErrUnknownUpstream", err)
	}
	if _, err := NewSet(map[string]Config{"a": {URL: "http://x", Retry: RetryConfig{Attempts: -1}}}, SetOptions{}); err == nil {
		t.Error("NewSet accepted retry.attempts -1")
	}
}
