package e2e

import (
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// eventually polls cond every 10ms until it holds or timeout passes. It
// bounds a wait for another process; it asserts nothing about speed.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSIGTERMDrains: a request in flight when SIGTERM arrives completes;
// readiness turns 503; new connections are refused; the exit code is 0.
func TestSIGTERMDrains(t *testing.T) {
	resetDemo(t)
	gw, url, admin, err := startGateway()
	if err != nil {
		t.Fatal(err)
	}
	defer gw.kill()
	setFaults(t, "orders", `{"latency":"1500ms"}`)

	type result struct {
		status int
		err    error
	}
	inFlight := make(chan result, 1)
	go func() {
		resp, err := client.Get(url + "/api/users/1/dashboard")
		if err != nil {
			inFlight <- result{err: err}
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		inFlight <- result{status: resp.StatusCode, err: err}
	}()
	eventually(t, 10*time.Second, "the slow request to reach the orders service", func() bool { return served(t, "orders") >= 1 })

	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}, Timeout: 2 * time.Second}
	eventually(t, 5*time.Second, "/readyz to answer 503 while draining", func() bool {
		resp, err := fresh.Get(admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	eventually(t, 5*time.Second, "new connections to be refused", func() bool {
		resp, err := fresh.Get(url + "/api/users/1/dashboard")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
	if r := <-inFlight; r.err != nil || r.status != 200 {
		t.Errorf("in-flight request: status %d, err %v; want it completed with 200", r.status, r.err)
	}
	if code, err := gw.wait(30 * time.Second); err != nil || code != 0 {
		t.Errorf("gateway exit code %d (%v), want 0\n%s", code, err, gw.logs())
	}
}
