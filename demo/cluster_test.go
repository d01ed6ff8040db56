package demo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testClient returns a client with its own transport, closed with the test.
func testClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// startCluster starts a cluster that is shut down when the test ends, if
// the test has not done so itself.
func startCluster(t *testing.T, opts Options) *Cluster {
	t.Helper()
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown(context.Background()) }) // idempotent; the test checks its own call
	return c
}

// fetch GETs url and returns the status and body.
func fetch(ctx context.Context, c *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestClusterServesEveryService(t *testing.T) {
	c := startCluster(t, Options{Faults: map[string]Faults{"notifications": {Down: true}}})
	client := testClient(t)
	api := map[string]string{
		"users": "/users/1", "orders": "/users/7/orders", "products": "/products?ids=1,2,3",
		"notifications": "/users/1/notifications", "recommendations": "/users/1/recommendations",
	}
	for _, name := range ServiceNames {
		if !strings.HasPrefix(c.URL(name), "http://127.0.0.1:") {
			t.Errorf("URL(%q) = %q, want a loopback URL", name, c.URL(name))
		}
		status, body, err := fetch(t.Context(), client, c.URL(name)+"/healthz")
		var h health
		if err != nil || json.Unmarshal([]byte(body), &h) != nil {
			t.Fatalf("%s /healthz: %d %s %v", name, status, body, err)
		}
		wantAPI := http.StatusOK
		if name == "notifications" {
			wantAPI = http.StatusServiceUnavailable // the initial fault from Options
		} else if h.Service != name {
			t.Errorf("%s /healthz = %s", name, body)
		}
		if status, body, err := fetch(t.Context(), client, c.URL(name)+api[name]); err != nil || status != wantAPI {
			t.Errorf("%s %s = %d %s %v, want %d", name, api[name], status, body, err, wantAPI)
		}
		if n := c.Service(name).Requests(); n != 2 {
			t.Errorf("%s counted %d requests, want 2", name, n)
		}
	}
	if c.Service("payments") != nil || c.URL("payments") != "" {
		t.Error("unknown service name answered")
	}
	if err := c.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, _, err := fetch(t.Context(), client, c.URL("users")+"/healthz"); err == nil {
		t.Error("users still answers after Shutdown")
	}
	if err := c.Shutdown(t.Context()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestClusterShutdownEndsSlowRequests(t *testing.T) {
	c := startCluster(t, Options{Faults: map[string]Faults{"orders": {Latency: time.Hour}}})
	client := testClient(t)
	done := make(chan error, 1)
	go func() {
		_, _, err := fetch(t.Context(), client, c.URL("orders")+"/users/1/orders")
		done <- err
	}()
	for c.Service("orders").Requests() == 0 { // wait until the request is in its latency
		select {
		case <-time.After(time.Millisecond):
		case err := <-done:
			t.Fatalf("request ended before shutdown: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // give no grace: Shutdown must cancel the request itself
	if err := c.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want it to report forcing with context.Canceled", err)
	}
	<-done // the handler has ended, so the client has its answer or a closed connection
}

func TestStartRejects(t *testing.T) {
	if _, err := Start(t.Context(), Options{Addrs: map[string]string{"payments": "127.0.0.1:0"}}); err == nil || !strings.Contains(err.Error(), "payments") {
		t.Errorf("unknown name in Addrs: %v", err)
	}
	if _, err := Start(t.Context(), Options{Faults: map[string]Faults{"users": {ErrorRate: -1}}}); err == nil || !strings.Contains(err.Error(), "error_rate") {
		t.Errorf("bad faults: %v", err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = Start(t.Context(), Options{Addrs: map[string]string{"products": busy.Addr().String()}})
	if err == nil || !strings.Contains(err.Error(), "products") {
		t.Errorf("port in use: %v", err)
	}
}
