package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// served is a gateway running in process in -demo mode.
type served struct {
	public, admin string     // base URLs
	done          chan error // serve's result
}

// startServe runs serve with o until ctx ends; it returns once the banner
// is out, that is once both listeners accept.
func startServe(t *testing.T, ctx context.Context, o *options) *served {
	t.Helper()
	pr, pw := io.Pipe()
	s := &served{done: make(chan error, 1)}
	go func() {
		err := serve(ctx, o, slog.New(slog.DiscardHandler), pw)
		pw.CloseWithError(io.EOF)
		s.done <- err
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no banner: %v", <-s.done)
	}
	m := regexp.MustCompile(`serving on (http://\S+) \(admin (http://[^;]+);.*demo services in process: users http://`).FindStringSubmatch(sc.Text())
	if m == nil {
		t.Fatalf("banner = %q", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }() // drain the rest of the banner
	s.public, s.admin = m[1], m[2]
	return s
}

// wait returns serve's result, failing the test if serve does not return.
func (s *served) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after its context ended")
		return nil
	}
}

// get fetches url on a new connection and returns the status and body.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func demoOptions(drainDelay time.Duration) *options {
	return &options{config: "../../gateway.yaml", demo: true, listen: "127.0.0.1:0", admin: "127.0.0.1:0", drainDelay: &drainDelay}
}

// TestServeDemoAndShutdown runs the whole gateway in process in -demo mode,
// answers both composite endpoints, then shuts down when its context ends.
// goleak (TestMain) then proves nothing it started outlives it.
func TestServeDemoAndShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := demoOptions(0)
	o.drainTimer = func(time.Duration) <-chan time.Time {
		t.Error("drain_delay 0 waited for the drain timer")
		return nil
	}
	s := startServe(t, ctx, o)
	for _, path := range []string{"/api/users/1/dashboard", "/api/users/7/orders-with-products"} {
		if code, body := get(t, s.public+path); code != 200 || !json.Valid(body) {
			t.Errorf("%s: %d %.200s", path, code, body)
		}
	}
	if code, _ := get(t, s.admin+"/readyz"); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	cancel()
	if err := s.wait(t); err != nil {
		t.Errorf("serve: %v, want a clean drain", err)
	}
}

// TestDrainDelay: once the context ends (SIGTERM), /readyz answers 503 at
// once but requests are still served, on new connections too, until the
// drain delay is over; then the public listener is closed.
func TestDrainDelay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := demoOptions(5 * time.Second)
	waited := make(chan time.Duration, 1)
	release := make(chan time.Time)
	o.drainTimer = func(d time.Duration) <-chan time.Time { waited <- d; return release }
	s := startServe(t, ctx, o)
	if code, _ := get(t, s.admin+"/readyz"); code != 200 {
		t.Fatalf("readyz before SIGTERM: %d, want 200", code)
	}
	keepAlive := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	defer keepAlive.CloseIdleConnections()
	connClose := func() bool { // whether the response asks the client to reconnect
		t.Helper()
		resp, err := keepAlive.Get(s.public + "/api/users/1/dashboard")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Close
	}
	if connClose() {
		t.Error("before SIGTERM a response closes its keep-alive connection")
	}

	cancel()
	if d := <-waited; d != 5*time.Second { // the delay has begun
		t.Errorf("drain delay = %v, want server.drain_delay (5s)", d)
	}
	checks := []struct {
		name, url string
		want      int
	}{
		{"readyz", s.admin + "/readyz", http.StatusServiceUnavailable},
		{"healthz", s.admin + "/healthz", http.StatusOK},
		{"a composite request", s.public + "/api/users/1/dashboard", http.StatusOK},
		{"another composite request", s.public + "/api/users/7/orders-with-products", http.StatusOK},
	}
	for _, c := range checks {
		if code, body := get(t, c.url); code != c.want {
			t.Errorf("during the drain delay, %s: %d %.200s, want %d", c.name, code, body, c.want)
		}
	}

	if !connClose() {
		t.Error("during the drain delay a response keeps its connection open; want Connection: close")
	}

	close(release)
	if err := s.wait(t); err != nil {
		t.Errorf("serve: %v, want a clean drain", err)
	}
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.public, "http://"), 2*time.Second)
	if err == nil {
		conn.Close()
		t.Error("after the drain delay the public listener still accepts connections")
	}
}
