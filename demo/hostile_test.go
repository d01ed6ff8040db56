package demo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestHostileJSON(t *testing.T) {
	s := newTestService(t, "users", ServiceOptions{Faults: Faults{Latency: time.Millisecond}})
	r := do(t, s, http.MethodPut, "/_demo/faults", `{"hostile":"truncate"}`)
	want := Faults{Latency: time.Millisecond, Hostile: HostileTruncate}
	if got := decode[Faults](t, r); got != want || s.Faults() != want {
		t.Fatalf("after PUT hostile: response %+v, service %+v, want %+v", got, s.Faults(), want)
	}
	r = do(t, s, http.MethodPut, "/_demo/faults", `{"huge_bytes":1024}`)
	want.HugeBytes = 1024
	if got := decode[Faults](t, r); got != want {
		t.Fatalf("PUT huge_bytes = %+v, want the mode kept: %+v", got, want)
	}
	for _, m := range HostileModes {
		r := do(t, s, http.MethodPut, "/_demo/faults", `{"hostile":"`+string(m)+`"}`)
		if got := decode[Faults](t, r); got.Hostile != m {
			t.Errorf("PUT hostile %q: faults %+v", m, got)
		}
		// The admin endpoints are never hostile.
		if got := decode[Faults](t, get(t, s, "/_demo/faults")); got.Hostile != m {
			t.Errorf("GET /_demo/faults in mode %q: %+v", m, got)
		}
	}
	r = do(t, s, http.MethodPut, "/_demo/faults", `{"hostile":"","huge_bytes":9437184}`)
	if got := decode[Faults](t, r); got != (Faults{Latency: time.Millisecond}) {
		t.Errorf(`PUT {"hostile":""} with the default size = %+v, want none and HugeBytes 0`, got)
	}
	if d := (Faults{Hostile: HostileHuge}).hugeBytes(); d <= 8<<20 {
		t.Errorf("default huge body %d bytes, want more than the gateway's 8 MiB max_response_bytes", d)
	}
}

// hostileGet serves s over TCP in mode with the given faults and GETs
// target with a plain client: it returns the answer (its body unread, for
// the test to read) and the length of the service's normal answer.
func hostileGet(t *testing.T, name, target string, f Faults) (*http.Response, int) {
	t.Helper()
	s := newTestService(t, name, ServiceOptions{})
	normal := get(t, s, target)
	if err := s.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	url, c := serveTCP(t, s)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+target, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s in mode %q: %v, want an answer", target, f.Hostile, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, len(normal.body)
}

func TestHostileTruncate(t *testing.T) {
	resp, full := hostileGet(t, "users", "/users/1", Faults{Hostile: HostileTruncate})
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.ContentLength != int64(full) {
		t.Fatalf("status %d, Content-Length %d; want 200 and the real answer's %d", resp.StatusCode, resp.ContentLength, full)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(body) != full/2 {
		t.Errorf("read %d of %d bytes, then %v; want half of them, then an unexpected EOF", len(body), full, err)
	}
}

func TestHostileResetMidBody(t *testing.T) {
	resp, full := hostileGet(t, "orders", "/users/1/orders", Faults{Hostile: HostileResetMidBody})
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.ContentLength != int64(full) {
		t.Fatalf("status %d, Content-Length %d; want 200 and the real answer's %d", resp.StatusCode, resp.ContentLength, full)
	}
	if !errors.Is(err, syscall.ECONNRESET) || len(body) == 0 || len(body) >= full {
		t.Errorf("read %d of %d bytes, then %v; want part of the body, then a connection reset", len(body), full, err)
	}
}

func TestHostileHuge(t *testing.T) {
	for _, size := range []int{100 << 10, 0} { // 0: the default, 9 MiB
		resp, _ := hostileGet(t, "recommendations", "/users/1/recommendations", Faults{Hostile: HostileHuge, HugeBytes: size})
		body, err := io.ReadAll(resp.Body)
		if size == 0 {
			size = defaultHugeBytes
		}
		if err != nil || resp.StatusCode != 200 || resp.ContentLength != -1 || len(body) != size || !json.Valid(body) {
			t.Errorf("status %d, Content-Length %d, %d bytes (valid JSON: %v), %v; want 200 streamed, valid JSON of %d bytes",
				resp.StatusCode, resp.ContentLength, len(body), json.Valid(body), err, size)
		}
	}
}

func TestHostileGarbage(t *testing.T) {
	resp, _ := hostileGet(t, "users", "/users/1", Faults{Hostile: HostileGarbage})
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || json.Valid(body) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("status %d %s %q, %v; want 200 with an HTML body", resp.StatusCode, resp.Header.Get("Content-Type"), body, err)
	}
}

// flushRecorder is a ResponseWriter that a handler may flush while the test
// reads what it has written so far.
type flushRecorder struct {
	mu      sync.Mutex // guards the fields below
	header  http.Header
	status  int
	body    []byte
	flushed int // bytes written before the last Flush
}

func (f *flushRecorder) Header() http.Header { return f.header }

func (f *flushRecorder) WriteHeader(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status == 0 {
		f.status = status
	}
}

func (f *flushRecorder) Write(b []byte) (int, error) {
	f.WriteHeader(http.StatusOK)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body = append(f.body, b...)
	return len(b), nil
}

func (f *flushRecorder) Flush() {
	f.WriteHeader(http.StatusOK)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushed = len(f.body)
}

// sent returns the status and the body flushed so far.
func (f *flushRecorder) sent() (int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, string(f.body[:f.flushed])
}

// slowAnswer serves target on s in a synctest bubble for 950ms of bubble
// time, then cancels the request: it returns what was sent by then and
// fails unless the handler returned at once on cancellation.
func slowAnswer(t *testing.T, s *Service, target string) (int, string, http.Header) {
	t.Helper()
	rec := &flushRecorder{header: make(http.Header)}
	ctx, cancel := context.WithCancel(t.Context())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeHTTP(rec, req)
	}()
	time.Sleep(950 * time.Millisecond)
	synctest.Wait()
	status, body := rec.sent()
	select {
	case <-done:
		t.Fatal("the handler ended on its own")
	default:
	}
	start := time.Now()
	cancel()
	<-done
	if d := time.Since(start); d != 0 {
		t.Errorf("the handler took %v to end after the request was cancelled, want 0", d)
	}
	return status, body, rec.header
}

func TestHostileDrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestService(t, "users", ServiceOptions{})
		full := get(t, s, "/users/1").body
		if err := s.SetFaults(Faults{Hostile: HostileDrip}); err != nil {
			t.Fatal(err)
		}
		status, body, h := slowAnswer(t, s, "/users/1")
		// One byte at 0, 100ms, ..., 900ms.
		if status != 200 || h.Get("Content-Length") != strconv.Itoa(len(full)) || body != full[:10] {
			t.Errorf("after 950ms: %d, Content-Length %s, %q; want 200, %d and the first 10 bytes %q",
				status, h.Get("Content-Length"), body, len(full), full[:10])
		}
	})
}

func TestHostileEndless(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestService(t, "notifications", ServiceOptions{Faults: Faults{Hostile: HostileEndless}})
		status, body, h := slowAnswer(t, s, "/users/1/notifications")
		const head = `{"hostile":"endless","items":[`
		// A 1 KiB piece at 0, 100ms, ..., 900ms.
		if want := len(head) + 10*endlessPiece; status != 200 || h.Get("Content-Length") != "" ||
			!strings.HasPrefix(body, head+"0,0,") || len(body) != want {
			t.Errorf("after 950ms: %d, Content-Length %q, %d bytes %.40q; want 200, none, %d bytes", status, h.Get("Content-Length"), len(body), body, want)
		}
	})
}

// TestHostileAfterOtherFaults: the other faults come first; hostile answers
// only what they let through.
func TestHostileAfterOtherFaults(t *testing.T) {
	s := newTestService(t, "users", ServiceOptions{Faults: Faults{Down: true, Hostile: HostileGarbage}})
	wantError(t, get(t, s, "/users/1"), http.StatusServiceUnavailable, "service down")
	if err := s.SetFaults(Faults{ErrorRate: 1, Hostile: HostileGarbage}); err != nil {
		t.Fatal(err)
	}
	wantError(t, get(t, s, "/users/1"), http.StatusInternalServerError, "injected failure")
}
