package upstream

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// asError asserts that err is an *Error naming the "test" upstream and the
// request, and returns it.
func asError(t *testing.T, err error, method, path string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Fetch() error = %v (%T), want an *Error", err, err)
	}
	if e.Upstream != "test" || e.Method != method || e.Path != path {
		t.Errorf("Error names %q %s %s, want \"test\" %s %s", e.Upstream, e.Method, e.Path, method, path)
	}
	return e
}

func TestFetchStatusError(t *testing.T) {
	long := strings.Repeat("e", 600)
	tests := []struct {
		name            string
		status          int
		body            string
		wantBody        string
		wantUnavailable bool
	}{
		{name: "404", status: 404, body: `{"error":"no such user"}`, wantBody: `{"error":"no such user"}`},
		{name: "500", status: 500, body: `oops`, wantBody: `oops`},
		{name: "502", status: 502, body: ``, wantBody: ``},
		{name: "body kept to 512 bytes", status: 500, body: long, wantBody: long[:512]},
		{name: "503 is unavailable", status: 503, body: `busy`, wantBody: `busy`, wantUnavailable: true},
		{name: "429 is unavailable", status: 429, body: `slow down`, wantBody: `slow down`, wantUnavailable: true},
		{name: "304 is not success", status: 304, wantBody: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, jsonHandler(tt.status, tt.body))
			c := newClient(t, Config{URL: s.URL})
			resp, err := c.Fetch(context.Background(), &Request{Path: "/users/1"})
			if resp != nil {
				t.Errorf("Fetch() response = %+v, want nil", resp)
			}
			asError(t, err, "GET", "/users/1")
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("Fetch() error = %v, want a *StatusError inside", err)
			}
			if se.Status != tt.status || string(se.Body) != tt.wantBody {
				t.Errorf("StatusError = %d %q, want %d %q", se.Status, se.Body, tt.status, tt.wantBody)
			}
			if got := errors.Is(err, ErrUnavailable); got != tt.wantUnavailable {
				t.Errorf("errors.Is(err, ErrUnavailable) = %v, want %v", got, tt.wantUnavailable)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	s, _ := startServer(t, jsonHandler(500, `{}`))
	c, err := New("users", Config{URL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Fetch(context.Background(), &Request{Path: "/users/1"})
	if want := `upstream "users": GET /users/1: status 500`; err == nil || err.Error() != want {
		t.Errorf("Fetch() error = %v, want %s", err, want)
	}
	bad := &Error{Upstream: "users", Method: "GET", Path: "/a\nforged log line", Err: ErrBadPath}
	if got := bad.Error(); strings.Contains(got, "\n") {
		t.Errorf("Error() = %q, want the unprintable path quoted", got)
	}
}

func TestFetchDoesNotFollowRedirects(t *testing.T) {
	s, n := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/new" {
			jsonHandler(200, `{}`)(w, r)
			return
		}
		http.Redirect(w, r, "/new", http.StatusFound)
	})
	c := newClient(t, Config{URL: s.URL})
	_, err := c.Fetch(context.Background(), &Request{Path: "/old"})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusFound {
		t.Fatalf("Fetch() error = %v, want a StatusError 302", err)
	}
	if got := n.requests.Load(); got != 1 {
		t.Errorf("upstream saw %d requests, want 1 (the redirect must not be followed)", got)
	}
}

func TestFetchBodyErrors(t *testing.T) {
	const limit = 64
	exact := `"` + strings.Repeat("a", limit-2) + `"` // valid JSON of exactly limit bytes
	tests := []struct {
		name     string
		maxBytes int64 // max_response_bytes; limit when zero
		handler  http.HandlerFunc
		want     []error // the error must match one of these; nil means success
	}{
		{name: "exactly max_response_bytes is fine", handler: jsonHandler(200, exact)},
		{name: "invalid json", handler: jsonHandler(200, `{"a":`), want: []error{ErrInvalidJSON}},
		{name: "not json at all", handler: jsonHandler(200, `<html>oops</html>`), want: []error{ErrInvalidJSON}},
		{name: "truncated body", maxBytes: 1024, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.Write([]byte(`{"a":1234}`)) // valid JSON, but 10 of the promised 100 bytes
		}, want: []error{io.ErrUnexpectedEOF, ErrInvalidJSON}},
		{name: "oversize with content length", handler: jsonHandler(200, exact+" "), want: []error{ErrTooLarge}},
		{name: "oversize refused by content length, unread", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.(http.Flusher).Flush()
			<-r.Context().Done() // reading the body would wait here until the test's deadline
		}, want: []error{ErrTooLarge}},
		{name: "oversize chunked", handler: func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush() // no Content-Length: the size is only found by reading
			for range 100 {
				w.Write([]byte(" "))
			}
			w.Write([]byte(`1`))
		}, want: []error{ErrTooLarge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, tt.handler)
			c := newClient(t, Config{URL: s.URL, MaxResponseBytes: cmp.Or(tt.maxBytes, limit)})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := c.Fetch(ctx, &Request{Path: "/x"})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Fetch() = %v, want success", err)
				}
				if string(resp.Body) != exact {
					t.Errorf("Body = %s, want %s", resp.Body, exact)
				}
				return
			}
			if resp != nil {
				t.Errorf("Fetch() response = %s, want nil", resp.Body)
			}
			asError(t, err, "GET", "/x")
			if !slices.ContainsFunc(tt.want, func(w error) bool { return errors.Is(err, w) }) {
				t.Errorf("Fetch() error = %v, want one of %v", err, tt.want)
			}
		})
	}
}

func TestFetchConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens on addr any more
	c := newClient(t, Config{URL: "http://" + addr})
	_, err = c.Fetch(context.Background(), &Request{Path: "/users/1"})
	asError(t, err, "GET", "/users/1")
	var se *StatusError
	if errors.As(err, &se) {
		t.Errorf("Fetch() error = %v, must not be a StatusError", err)
	}
	var ue *url.Error
	var oe *net.OpError
	if !errors.As(err, &ue) || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("Fetch() error = %v, want a *url.Error carrying a dial *net.OpError", err)
	}
}

func TestFetchContext(t *testing.T) {
	const inFlight = -1 // wantRequests: the deadline may fire before or after the request lands
	tests := []struct {
		name            string
		timeout         time.Duration                                             // context deadline; 0 for none
		setup           func(context.Context, context.CancelFunc) context.Context // before calling
		cancelOnArrival bool                                                      // once the handler holds the request
		handler         func(release <-chan struct{}, arrived func()) http.HandlerFunc
		want            error
		wantRequests    int64
	}{
		{name: "deadline while waiting for headers", timeout: 100 * time.Millisecond,
			handler: blockBefore, want: context.DeadlineExceeded, wantRequests: inFlight},
		{name: "deadline while reading body", timeout: 100 * time.Millisecond,
			handler: blockAfterHeaders, want: context.DeadlineExceeded, wantRequests: inFlight},
		{name: "cancel while waiting for headers", cancelOnArrival: true,
			handler: blockBefore, want: context.Canceled, wantRequests: 1},
		{name: "cancel while reading body", cancelOnArrival: true,
			handler: blockAfterHeaders, want: context.Canceled, wantRequests: 1},
		{name: "already expired", timeout: -time.Second,
			handler: blockBefore, want: context.DeadlineExceeded, wantRequests: 0},
		{name: "deadline passed, not yet signalled", setup: withLateDeadline,
			handler: blockBefore, want: context.DeadlineExceeded, wantRequests: 0},
		{name: "already canceled", setup: cancelFirst,
			handler: blockBefore, want: context.Canceled, wantRequests: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := testContext(tt.timeout)
			defer cancel()
			if tt.setup != nil {
				ctx = tt.setup(ctx, cancel)
			}
			arrived := func() {
				if tt.cancelOnArrival {
					cancel()
				}
			}
			release := make(chan struct{})
			s, n := startServer(t, tt.handler(release, arrived))
			t.Cleanup(func() { close(release) }) // runs before the server closes
			c := newClient(t, Config{URL: s.URL})

			_, err := c.Fetch(ctx, &Request{Path: "/slow"})
			asError(t, err, "GET", "/slow")
			if !errors.Is(err, tt.want) {
				t.Errorf("Fetch() error = %v, want errors.Is %v", err, tt.want)
			}
			if got := n.requests.Load(); tt.wantRequests != inFlight && got != tt.wantRequests {
				t.Errorf("upstream saw %d requests, want %d", got, tt.wantRequests)
			}
		})
	}
}

// testContext returns a context with the timeout, or with none if it is 0.
func testContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout == 0 {
		return context.WithCancel(context.Background())
	}
	return context.WithTimeout(context.Background(), timeout)
}

func cancelFirst(ctx context.Context, cancel context.CancelFunc) context.Context {
	cancel()
	return ctx
}

func withLateDeadline(ctx context.Context, _ context.CancelFunc) context.Context {
	return lateDeadline{ctx}
}

// lateDeadline is a context whose deadline has passed while its Done channel
// has not closed yet, as happens just before the context's timer fires.
type lateDeadline struct{ context.Context }

func (lateDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// blockBefore answers only once the test ends or the client goes away.
func blockBefore(release <-chan struct{}, arrived func()) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		arrived()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
}

// blockAfterHeaders sends the headers and part of the body, then waits.
func blockAfterHeaders(release <-chan struct{}, arrived func()) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write(bytes.Repeat([]byte(" "), 10))
		w.(http.Flusher).Flush()
		blockBefore(release, arrived)(w, r)
	}
}

func TestFetchBadPath(t *testing.T) {
	s, n := startServer(t, jsonHandler(200, `{}`))
	c := newClient(t, Config{URL: s.URL + "/api"})
	for _, p := range []string{"/../admin", "/a/%2e%2e/b", "/a?x=y", "a", "/a#f", "", "/a\\b", "/a\r\nHost: evil"} {
		t.Run(fmt.Sprintf("%q", p), func(t *testing.T) {
			_, err := c.Fetch(context.Background(), &Request{Path: p})
			asError(t, err, "GET", p)
			if !errors.Is(err, ErrBadPath) {
				t.Errorf("Fetch(%q) error = %v, want ErrBadPath", p, err)
			}
		})
	}
	t.Run("nil request", func(t *testing.T) {
		if _, err := c.Fetch(context.Background(), nil); !errors.Is(err, ErrBadPath) {
			t.Errorf("Fetch(nil) error = %v, want ErrBadPath", err)
		}
	})
	if got := n.requests.Load(); got != 0 {
		t.Errorf("upstream saw %d requests, want 0", got)
	}
}

// rawAnswer answers with the raw bytes of resp on the hijacked connection,
// then closes it: with a TCP reset (SO_LINGER 0) when reset is set.
func rawAnswer(resp string, reset bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		buf.WriteString(resp)
		buf.Flush()
		if reset {
			conn.(*net.TCPConn).SetLinger(0)
		}
		conn.Close()
	}
}

// TestFetchTruncatedBody: a 2xx body that breaks off, by a close before
// its Content-Length or a reset, is ErrTruncated (with the read's own
// error), not a transport failure; a deadline while reading stays a
// deadline.
func TestFetchTruncatedBody(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		timeout time.Duration // 0: 10s
		want    []error       // all must match
		wantNot []error
	}{
		{name: "closed short of its Content-Length", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.Write([]byte(`{"a":1234}`)) // valid JSON, but 10 of the promised 100 bytes
		}, want: []error{ErrTruncated, io.ErrUnexpectedEOF}, wantNot: []error{ErrInvalidJSON}},
		{name: "reset mid-body", handler: rawAnswer("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":", true),
			want: []error{ErrTruncated}, wantNot: []error{ErrInvalidJSON}},
		{name: "chunked body broken off", handler: rawAnswer("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n", false),
			want: []error{ErrTruncated, io.ErrUnexpectedEOF}, wantNot: []error{ErrInvalidJSON}},
		{name: "deadline while reading stays a deadline", timeout: 100 * time.Millisecond, handler: blockAfterHeaders(nil, func() {}),
			want: []error{context.DeadlineExceeded}, wantNot: []error{ErrTruncated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, tt.handler)
			c := newClient(t, Config{URL: s.URL})
			ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(tt.timeout, 10*time.Second))
			defer cancel()
			resp, err := c.Fetch(ctx, &Request{Path: "/x"})
			if resp != nil {
				t.Errorf("Fetch() response = %s, want nil", resp.Body)
			}
			asError(t, err, "GET", "/x")
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("Fetch() error = %v, want errors.Is %v", err, w)
				}
			}
			for _, w := range tt.wantNot {
				if errors.Is(err, w) {
					t.Errorf("Fetch() error = %v, must not match %v", err, w)
				}
			}
		})
	}
}

// TestTruncatedBodyIsRetried: the retry layer tries an idempotent call
// again after a body cut short, and a POST once. (A HEAD answer has no body
// to cut.)
func TestTruncatedBodyIsRetried(t *testing.T) {
	truncatedOnce := func() http.HandlerFunc {
		var n atomic.Int64
		return func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				w.Header().Set("Content-Length", "100")
				w.Write([]byte(`{"a":`))
				return
			}
			jsonHandler(200, `{"ok":true}`)(w, r)
		}
	}
	tests := []struct {
		name      string
		method    string
		wantCalls int64
		wantErr   error
	}{
		{name: "GET is retried", method: "GET", wantCalls: 2},
		{name: "POST is tried once", method: "POST", wantCalls: 1, wantErr: ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, n := startServer(t, truncatedOnce())
			fetch, _ := stackFor(t, s.URL, Config{Retry: fastRetry, Breaker: BreakerConfig{Disabled: true}}, nil)
			_, err := fetch(context.Background(), &Request{Method: tt.method, Path: "/x"})
			if got := n.requests.Load(); got != tt.wantCalls {
				t.Errorf("upstream saw %d requests, want %d", got, tt.wantCalls)
			}
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("fetch() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestFetchHeaderBounds: an answer whose head exceeds maxHeaderBytes fails
// the call without a StatusError; one within it is read.
func TestFetchHeaderBounds(t *testing.T) {
	for _, tt := range []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"within the bound", maxHeaderBytes - 1024, false},
		{"over the bound", maxHeaderBytes + 1024, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Big", strings.Repeat("b", tt.size))
				jsonHandler(200, `{}`)(w, r)
			})
			c := newClient(t, Config{URL: s.URL})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.Fetch(ctx, &Request{Path: "/x"})
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Fetch() = %v, want success", err)
				}
				return
			}
			asError(t, err, "GET", "/x")
			var se *StatusError
			if errors.As(err, &se) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Fetch() = %v, want a transport error", err)
			}
		})
	}
}

// TestFetchResponseHeaderTimeout: without a sooner deadline, a try whose
// answer's head does not come within response_header_timeout fails as a
// timeout, not as the caller's cancellation.
func TestFetchResponseHeaderTimeout(t *testing.T) {
	s, _ := startServer(t, blockBefore(nil, func() {}))
	c := newClient(t, Config{URL: s.URL, ResponseHeaderTimeout: 50 * time.Millisecond})
	_, err := c.Fetch(context.Background(), &Request{Path: "/slow"})
	asError(t, err, "GET", "/slow")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Errorf("Fetch() = %v, want a timeout matching context.DeadlineExceeded", err)
	}
}

// TestFetchRejectsUnwritableHeader: a header that would break the request
// head fails the call before the upstream is reached.
func TestFetchRejectsUnwritableHeader(t *testing.T) {
	s, n := startServer(t, jsonHandler(200, `{}`))
	c := newClient(t, Config{URL: s.URL})
	for _, h := range []http.Header{{"X-Bad": {"a\r\nInjected: 1"}}, {"Bad Name": {"v"}}, {"X-Nul": {"a\x00b"}}} {
		if _, err := c.Fetch(context.Background(), &Request{Path: "/x", Header: h}); err == nil {
			t.Errorf("Fetch() with header %q succeeded, want an error", h)
		}
	}
	if got := n.requests.Load(); got != 0 {
		t.Errorf("upstream saw %d requests, want 0", got)
	}
}

// TestFetchSkipsInformational: 1xx answers before the final one are
// skipped, whichever transport reads them.
func TestFetchSkipsInformational(t *testing.T) {
	s, _ := startServer(t, rawAnswer("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", false))
	c := newClient(t, Config{URL: s.URL})
	resp, err := c.Fetch(context.Background(), &Request{Path: "/x"})
	if err != nil || resp.Status != 200 || string(resp.Body) != `{}` {
		t.Fatalf("Fetch() = %v, %v; want 200 {}", resp, err)
	}
}
