package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// sharedMemory is one MemoryStore for the tests that only read it.
var sharedMemory = sync.OnceValue(NewMemoryStore)

// newTestService returns the named service over the shared memory store.
func newTestService(t *testing.T, name string, opts ServiceOptions) *Service {
	t.Helper()
	s, err := NewService(name, sharedMemory(), opts)
	if err != nil {
		t.Fatalf("NewService(%q): %v", name, err)
	}
	return s
}

// response is a recorded HTTP answer.
type response struct {
	status int
	body   string
	ctype  string
}

// do serves one request on h in process.
func do(t *testing.T, h http.Handler, method, target, body string) response {
	t.Helper()
	return serve(h, httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body)))
}

// serve serves req on h in process and records the answer.
func serve(h http.Handler, req *http.Request) response {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{status: rec.Code, body: rec.Body.String(), ctype: rec.Header().Get("Content-Type")}
}

// get serves a GET on h in process.
func get(t *testing.T, h http.Handler, target string) response {
	t.Helper()
	return do(t, h, http.MethodGet, target, "")
}

// decode unmarshals a response body, failing the test if it is not T.
func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if r.ctype != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json (body %s)", r.ctype, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r.body, err)
	}
	return v
}

// wantStatus fails unless r has the status.
func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
}

// wantError fails unless r is a JSON error with the status whose message
// contains every one of parts.
func wantError(t *testing.T, r response, status int, parts ...string) {
	t.Helper()
	wantStatus(t, r, status)
	e := decode[errorBody](t, r)
	if e.Error == "" {
		t.Fatalf("error body %s has no message", r.body)
	}
	for _, p := range parts {
		if !strings.Contains(e.Error, p) {
			t.Errorf("error %q does not mention %q", e.Error, p)
		}
	}
}
