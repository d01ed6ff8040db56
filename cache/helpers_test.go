package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// sharedRedis is the Redis every test may use, DB 0, each test under a
// random key prefix of its own.
const sharedRedis = "127.0.0.1:6379"

// t0 is the fake clocks' start.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// noJitter makes every TTL exact.
func noJitter() float64 { return 0 }

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

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

// testPrefix returns a key prefix no other test uses.
func testPrefix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "braidtest:" + hex.EncodeToString(b) + ":"
}

// redisClient returns a client of the Redis at addr that deletes every key
// under prefix when the test ends. Only this test-side cleanup scans keys;
// the package never does.
func redisClient(t *testing.T, addr, prefix string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		_ = rdb.Close()
	})
	return rdb
}

// sharedSetup returns a Config for the shared Redis under a fresh prefix,
// and a client to look at it with.
func sharedSetup(t *testing.T) (Config, *redis.Client) {
	t.Helper()
	prefix := testPrefix(t)
	rdb := redisClient(t, sharedRedis, prefix)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("shared Redis at %s: %v", sharedRedis, err)
	}
	// A generous timeout: -race on a busy machine is slow, and these tests
	// are about behaviour, not about the timeout.
	return Config{Redis: RedisConfig{URL: "redis://" + sharedRedis + "/0", Prefix: prefix, Timeout: time.Second}}, rdb
}

// newCache returns a Cache closed when the test ends.
func newCache(t *testing.T, cfg Config, opts Options) *Cache {
	t.Helper()
	c, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// source is an upstream that counts its fetches. Its answer is "v<n>" for
// the n-th fetch, or err when set.
type source struct {
	calls atomic.Int64
	mu    sync.Mutex
	err   error
}

func (s *source) fetch(ctx context.Context) ([]byte, error) {
	n := s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return []byte(`"v` + strconv.FormatInt(n, 10) + `"`), nil
}

func (s *source) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// events counts what a Cache reports to OnEvent.
type events struct {
	mu sync.Mutex
	n  map[string]int
}

func (ev *events) on(layer, event string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.n == nil {
		ev.n = map[string]int{}
	}
	ev.n[layer+" "+event]++
}

func (ev *events) count(layer, event string) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.n[layer+" "+event]
}

// get calls c.Get and fails the test on an error.
func get(t *testing.T, c *Cache, e Entry, p Policy, fetch Fetcher) (string, Status) {
	t.Helper()
	v, st, err := c.Get(context.Background(), e, p, fetch)
	if err != nil {
		t.Fatalf("Get(%q): %v", e.Key, err)
	}
	return string(v), st
}

// wantGet calls c.Get and wants value and status.
func wantGet(t *testing.T, c *Cache, e Entry, p Policy, fetch Fetcher, value string, status Status) {
	t.Helper()
	v, st := get(t, c, e, p, fetch)
	if v != value || st != status {
		t.Fatalf("Get(%q) = %s, %s; want %s, %s", e.Key, v, st, value, status)
	}
}

// waitFor polls cond every millisecond until it holds, failing the test
// after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// redisServer is a redis-server the test owns, on a port of its own.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

// startRedis starts a redis-server on port (0: a free one) and waits until
// it answers. It is killed when the test ends.
func startRedis(t *testing.T, port int) *redisServer {
	t.Helper()
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	s := &redisServer{t: t, port: port}
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--bind", "127.0.0.1")
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(s.kill)
	rdb := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
	defer rdb.Close()
	waitFor(t, 10*time.Second, "redis-server answering", func() bool {
		return rdb.Ping(context.Background()).Err() == nil
	})
	return s
}

func (s *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }
func (s *redisServer) url() string  { return "redis://" + s.addr() + "/0" }

// kill stops the server and waits for it to exit; killing it twice is fine.
func (s *redisServer) kill() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	var ee *exec.ExitError
	if err := s.cmd.Wait(); err != nil && !errors.As(err, &ee) {
		s.t.Errorf("redis-server: %v", err)
	}
}
