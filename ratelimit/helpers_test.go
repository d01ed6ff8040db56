package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// sharedRedis is the Redis the tests use, DB 0, each test under a random
// key prefix of its own.
const sharedRedis = "127.0.0.1:6379"

// t0 is the fake clocks' start.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

// Now returns the fake time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the fake time forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// noJitter makes the Redis backoff exactly as long as configured.
func noJitter(o *options) { o.rand = func() float64 { return 0 } }

// newLimiter returns a Limiter closed when the test ends.
func newLimiter(t testing.TB, name string, cfg Config, opts ...Option) *Limiter {
	t.Helper()
	l := New(name, cfg, opts...)
	t.Cleanup(l.Close)
	return l
}

// newLocal returns a Limiter on a fake clock, without Redis.
func newLocal(t testing.TB, cfg Config, opts ...Option) (*Limiter, *fakeClock) {
	t.Helper()
	clk := newClock()
	return newLimiter(t, "default", cfg, append([]Option{WithClock(clk.Now)}, opts...)...), clk
}

// want is what a test expects of one Decision; Limit, Window and Policy
// are checked by wantDecision's caller when they matter.
type want struct {
	allowed    bool
	remaining  int
	retryAfter time.Duration
	reset      time.Duration
}

// wantDecision calls l.Allow for key and fails the test unless the answer
// is w.
func wantDecision(t *testing.T, l *Limiter, key string, w want) Decision {
	t.Helper()
	d := l.Allow(context.Background(), key)
	got := want{d.Allowed, d.Remaining, d.RetryAfter, d.Reset}
	if got != w {
		t.Fatalf("Allow(%q) = %+v, want %+v", key, got, w)
	}
	return d
}

// testPrefix returns a key prefix no other test uses.
func testPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "braidtest:" + hex.EncodeToString(b) + ":"
}

// redisClient returns a client of the Redis at addr, with no retries of its
// own and context deadlines honoured, closed when the test ends.
func redisClient(t testing.TB, addr string, hooks ...redis.Hook) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr:                     addr,
		MaxRetries:               -1,
		DialerRetries:            1,
		DialTimeout:              time.Second,
		ContextTimeoutEnabled:    true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	for _, h := range hooks {
		rdb.AddHook(h)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// sharedClient returns a client of the shared Redis, failing the test if
// it does not answer, and deletes every rate-limit key under prefix when
// the test ends. Only this test-side clean-up scans keys.
func sharedClient(t testing.TB, prefix string, hooks ...redis.Hook) *redis.Client {
	t.Helper()
	rdb := redisClient(t, sharedRedis, hooks...)
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("shared Redis at %s: %v", sharedRedis, err)
	}
	t.Cleanup(func() {
		var keys []string
		iter := rdb.Scan(ctx, 0, redisKey(prefix, "*"), 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean-up: %v", err)
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return rdb
}

// redisKey is where a Limiter with prefix keeps a key's state: redis_rate
// adds "rate:".
func redisKey(prefix, rest string) string { return "rate:" + prefix + rest }

// commands is a go-redis hook counting the commands a client sends, or
// tries to.
type commands struct{ n atomic.Int64 }

func (c *commands) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// closedAddr returns an address on which nothing listens: connections to
// it are refused.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// proxy is a TCP proxy to a backend that a test can stop (connections
// refused) and start again on the same address, or make hang (connections
// accepted, nothing forwarded nor answered).
type proxy struct {
	t       testing.TB
	backend string
	addr    string

	mu    sync.Mutex // guards the fields below
	ln    net.Listener
	conns map[net.Conn]struct{}
	hang  bool
	wg    sync.WaitGroup // the accept loop and the copiers
}

// startProxy starts a proxy to backend on a free port; it is stopped when
// the test ends.
func startProxy(t testing.TB, backend string) *proxy {
	t.Helper()
	p := &proxy{t: t, backend: backend, conns: map[net.Conn]struct{}{}}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go p.accept(ln)
}

func (p *proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		hang := p.hang
		p.mu.Unlock()
		if hang {
			continue // held open, never read: the client waits for its deadline
		}
		b, err := net.Dial("tcp", p.backend)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[b] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, b)
		go p.pipe(b, c)
	}
}

// pipe copies from src to dst and then closes both.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// stop closes the listener and every connection, and waits for the
// goroutines. Stopping twice is fine.
func (p *proxy) stop() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			p.t.Logf("proxy: close: %v", err)
		}
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

// restart listens again on the proxy's address.
func (p *proxy) restart() { p.listen(p.addr) }

// setHang makes new connections hang (or not).
func (p *proxy) setHang(h bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hang = h
}

// logs records what a Limiter logs, by level and message.
type logs struct {
	mu   sync.Mutex // guards recs
	recs []string
}

func (g *logs) Enabled(context.Context, slog.Level) bool { return true }
func (g *logs) WithAttrs([]slog.Attr) slog.Handler       { return g }
func (g *logs) WithGroup(string) slog.Handler            { return g }

func (g *logs) Handle(_ context.Context, r slog.Record) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recs = append(g.recs, r.Level.String()+" "+r.Message)
	return nil
}

// count returns the number of records at level whose message contains s.
func (g *logs) count(level slog.Level, s string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, r := range g.recs {
		if strings.HasPrefix(r, level.String()+" ") && strings.Contains(r, s) {
			n++
		}
	}
	return n
}
