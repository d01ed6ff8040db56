package demo

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
)

// serveTCP serves s on a loopback httptest server and returns its URL and
// a client with its own connection pool, both closed when the test ends.
func serveTCP(t *testing.T, s *Service) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(s)
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	return srv.URL, &http.Client{Transport: tr}
}

// call makes one request and returns the status and body, or the error
// of a request that got no response.
func call(t *testing.T, c *http.Client, method, url, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestResetFault: with reset on, every API request, counted, gets its TCP
// connection reset and no HTTP response, while the admin endpoints answer;
// turning reset off restores service.
func TestResetFault(t *testing.T) {
	s := newTestService(t, "users", ServiceOptions{})
	url, c := serveTCP(t, s)
	if status, _, err := call(t, c, http.MethodGet, url+"/users/1", ""); err != nil || status != http.StatusOK {
		t.Fatalf("before the fault: status %d, %v", status, err) // leaves an idle connection to be reset
	}
	if status, body, err := call(t, c, http.MethodPut, url+"/_demo/faults", `{"reset":true}`); err != nil || status != http.StatusOK {
		t.Fatalf("PUT reset: status %d %s, %v", status, body, err)
	}
	for _, target := range []string{"/users/1", "/users/2", "/healthz", "/nowhere"} {
		status, body, err := call(t, c, http.MethodGet, url+target, "")
		if err == nil {
			t.Fatalf("GET %s answered %d %s, want a connection reset and no response", target, status, body)
		}
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("GET %s: %v, want a connection reset (ECONNRESET)", target, err)
		}
	}
	if status, body, err := call(t, c, http.MethodGet, url+"/_demo/faults", ""); err != nil || status != http.StatusOK || !strings.Contains(body, `"reset":true`) {
		t.Fatalf("admin GET /_demo/faults during reset: %d %s, %v", status, body, err)
	}
	// net/http's client retries an idempotent request once on a new
	// connection when a reused one fails before any answer, so the first
	// request after the fault may be counted twice.
	if n := s.Requests(); n < 5 || n > 6 {
		t.Errorf("Requests() = %d, want 5 or 6: every reset request is counted", n)
	}
	if n := s.RouteCount("GET /users/{id}"); n < 3 || n > 4 {
		t.Errorf("RouteCount(GET /users/{id}) = %d, want 3 or 4", n)
	}
	if status, body, err := call(t, c, http.MethodPut, url+"/_demo/faults", `{"reset":false}`); err != nil || status != http.StatusOK {
		t.Fatalf("PUT reset off: status %d %s, %v", status, body, err)
	}
	if status, body, err := call(t, c, http.MethodGet, url+"/users/1", ""); err != nil || status != http.StatusOK {
		t.Errorf("after the fault: status %d %s, %v", status, body, err)
	}
}

// TestResetFaultPrecedes: reset wins over the other faults, which would
// each have answered.
func TestResetFaultPrecedes(t *testing.T) {
	s := newTestService(t, "orders", ServiceOptions{Faults: Faults{Reset: true, Down: true, ErrorRate: 1}})
	url, c := serveTCP(t, s)
	if status, body, err := call(t, c, http.MethodGet, url+"/users/1/orders", ""); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("status %d %s, err %v; want a connection reset", status, body, err)
	}
}

// TestResetFaultWithoutHijacker: a ResponseWriter that cannot be hijacked
// gets the request aborted with http.ErrAbortHandler, never an answer.
func TestResetFaultWithoutHijacker(t *testing.T) {
	s := newTestService(t, "products", ServiceOptions{Faults: Faults{Reset: true}})
	rec := httptest.NewRecorder()
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", r)
		}
		if rec.Code != http.StatusOK || rec.Body.Len() != 0 || len(rec.Header()) != 0 {
			t.Errorf("recorder got an answer: %d %v %q", rec.Code, rec.Header(), rec.Body)
		}
	}()
	s.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/products/1", nil))
	t.Error("ServeHTTP returned")
}
