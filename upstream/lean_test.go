package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer is an upstream speaking raw bytes: each accepted connection
// is served by its own call of serve, given the connection's number (from
// 1). It counts connections and answers; Cleanup closes everything and
// waits for the serving goroutines.
type rawServer struct {
	ln      net.Listener
	conns   atomic.Int64 // connections accepted
	answers atomic.Int64 // requests read and answered (see answer)
	mu      sync.Mutex   // guards open
	open    []net.Conn
	wg      sync.WaitGroup
}

func startRaw(t *testing.T, serve func(s *rawServer, i int, conn net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			i := int(s.conns.Add(1))
			s.mu.Lock()
			s.open = append(s.open, conn)
			s.mu.Unlock()
			s.wg.Go(func() {
				defer conn.Close()
				serve(s, i, conn)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) URL() string { return "http://" + s.ln.Addr().String() }

// answer reads requests from conn and writes reply(request) to each, for
// at most n requests (0: until the connection ends). It returns the first
// read or write error.
func (s *rawServer) answer(conn net.Conn, n int, reply func(*http.Request) string) error {
	br := bufio.NewReader(conn)
	for i := 0; n == 0 || i < n; i++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return err
		}
		s.answers.Add(1) // before the answer, which may end the client's call
		if _, err := io.WriteString(conn, reply(req)); err != nil {
			return err
		}
	}
	return nil
}

// okJSON is a keep-alive 200 answer with a JSON body.
func okJSON(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// leanClient returns a Client on the lean transport, closed when the test
// ends, and the transport.
func leanClient(t *testing.T, cfg Config) (*Client, *leanTransport) {
	t.Helper()
	cfg.Transport = transportLean
	c := newClient(t, cfg)
	return c, c.transport.(*leanTransport)
}

// poolCounts returns the connections a lean pool has open, idle and
// waiting callers.
func poolCounts(tr *leanTransport) (open, idle, waiters int) {
	tr.pool.mu.Lock()
	defer tr.pool.mu.Unlock()
	return tr.pool.open, len(tr.pool.idle), len(tr.pool.waiters)
}

// wantPool fails unless the lean pool has open connections, all of them
// idle, and nobody waits: no exchange holds a connection.
func wantPool(t *testing.T, tr *leanTransport, open int) {
	t.Helper()
	if o, i, w := poolCounts(tr); o != open || i != open || w != 0 {
		t.Errorf("pool: %d open, %d idle, %d waiting; want %d open, all idle, none waiting", o, i, w, open)
	}
}

// eventually polls cond until it holds or 10s pass. It waits for events
// the test caused, not for time to pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestLeanRequestHead: what the lean transport writes, as an HTTP/1.1
// server reads it.
func TestLeanRequestHead(t *testing.T) {
	reqs := make(chan *http.Request, 2)
	s := startRaw(t, func(s *rawServer, _ int, conn net.Conn) {
		s.answer(conn, 0, func(r *http.Request) string {
			reqs <- r
			return okJSON(`{}`)
		})
	})
	c, _ := leanClient(t, Config{URL: s.URL() + "/api"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Fetch(ctx, &Request{Path: "/a%2Fb/c", Query: map[string][]string{"q": {"x y"}},
		Header: http.Header{"X-Padded": {"  v \t"}, "X-Two": {"1", "2"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := <-reqs
	if r.Method != "GET" || r.RequestURI != "/api/a%2Fb/c?q=x+y" || r.Proto != "HTTP/1.1" || r.Host != s.ln.Addr().String() {
		t.Errorf("request line and host: %s %s %s, Host %s", r.Method, r.RequestURI, r.Proto, r.Host)
	}
	for k, want := range map[string]string{"User-Agent": "braid", "Accept": "application/json", "X-Padded": "v", "X-Two": "1,2"} {
		if got := strings.Join(r.Header.Values(k), ","); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if r.Header.Get(BudgetHeader) == "" {
		t.Errorf("no %s header", BudgetHeader)
	}
	for _, k := range []string{"Accept-Encoding", "Content-Length", "Transfer-Encoding", "Connection"} {
		if v, ok := r.Header[k]; ok {
			t.Errorf("%s: %q, want none", k, v)
		}
	}
	if _, err := c.Fetch(ctx, &Request{Method: "POST", Path: "/p"}); err != nil {
		t.Fatal(err)
	}
	if r := <-reqs; r.Method != "POST" || r.ContentLength != 0 || r.Header.Get("Content-Length") != "0" {
		t.Errorf("POST with Content-Length %q, want 0", r.Header.Get("Content-Length"))
	}
}

// TestLeanConnectionReuse counts the connections the upstream accepts:
// one for sequential calls whose answers allow keep-alive and are read to
// their end, one per call otherwise.
func TestLeanConnectionReuse(t *testing.T) {
	const calls = 5
	tests := []struct {
		name    string
		reply   string
		closes  bool // the upstream closes the connection after one answer
		wantErr bool
		reused  bool // one connection serves every call
	}{
		{name: "content length", reply: okJSON(`{"a":1}`), reused: true},
		{name: "chunked with trailer", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
			"3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nX-T: 1\r\n\r\n", reused: true},
		{name: "204", reply: "HTTP/1.1 204 No Content\r\n\r\n", reused: true},
		{name: "status error drained", reply: "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops", wantErr: true, reused: true},
		{name: "informational answers skipped", reply: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n" + okJSON(`1`), reused: true},
		{name: "connection close", reply: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", closes: true},
		{name: "HTTP/1.0 without keep-alive", reply: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", closes: true},
		{name: "close-delimited body", reply: "HTTP/1.1 200 OK\r\n\r\n{}", closes: true},
		{name: "more than the answer sent", reply: okJSON(`{}`) + "HTTP/1.1 200 OK\r\n"},
		{name: "switching protocols unasked", reply: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", wantErr: true},
		{name: "body over max_response_bytes refused unread", reply: okJSON(`"` + strings.Repeat("x", 200) + `"`), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startRaw(t, func(s *rawServer, _ int, conn net.Conn) {
				n := 0
				if tt.closes {
					n = 1
				}
				s.answer(conn, n, func(*http.Request) string { return tt.reply })
			})
			c, tr := leanClient(t, Config{URL: s.URL(), MaxResponseBytes: 100})
			for i := range calls {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := c.Fetch(ctx, &Request{Path: "/x"})
				cancel()
				if (err != nil) != tt.wantErr {
					t.Fatalf("call %d: %v, want error %v", i, err, tt.wantErr)
				}
			}
			wantConns, open := int64(calls), 0
			if tt.reused {
				wantConns, open = 1, 1
			}
			if got := s.conns.Load(); got != wantConns {
				t.Errorf("upstream accepted %d connections for %d calls, want %d", got, calls, wantConns)
			}
			if got := s.answers.Load(); got != calls {
				t.Errorf("upstream answered %d requests, want %d", got, calls)
			}
			wantPool(t, tr, open)
		})
	}
}

// TestLeanPartialBodyNotReused: a body closed before its end costs its
// connection; the next exchange dials a new one.
func TestLeanPartialBodyNotReused(t *testing.T) {
	s := startRaw(t, func(s *rawServer, _ int, conn net.Conn) {
		s.answer(conn, 0, func(*http.Request) string { return okJSON(`{"long":"` + strings.Repeat("x", 100) + `"}`) })
	})
	_, tr := leanClient(t, Config{URL: s.URL()})
	req, _ := http.NewRequest("GET", s.URL()+"/x", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := resp.Body.Read(buf); !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Errorf("read after close: %v, want ErrBodyReadAfterClose", err)
	}
	wantPool(t, tr, 0)
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := s.conns.Load(); got != 2 {
		t.Errorf("upstream accepted %d connections, want 2: the half-read one is not reused", got)
	}
	wantPool(t, tr, 1)
}

// TestLeanCancelledCallNotReused: a call cancelled while it waits for the
// answer's head or reads its body returns while the upstream still holds
// the request, with the context's error, and its connection is closed,
// not reused.
func TestLeanCancelledCallNotReused(t *testing.T) {
	for _, tt := range []struct {
		name   string
		handle http.HandlerFunc
	}{
		{"waiting for the head", blockBefore(nil, func() {})},
		{"reading the body", blockAfterHeaders(nil, func() {})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			s, n := startServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/fast" {
					jsonHandler(200, `{}`)(w, r)
					return
				}
				arrived <- struct{}{}
				tt.handle(w, r)
			})
			c, tr := leanClient(t, Config{URL: s.URL})
			if _, err := c.Fetch(context.Background(), &Request{Path: "/fast"}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-arrived
				cancel()
			}()
			_, err := c.Fetch(ctx, &Request{Path: "/slow"}) // reuses the /fast connection
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Fetch() = %v, want context.Canceled", err)
			}
			wantPool(t, tr, 0)
			if _, err := c.Fetch(context.Background(), &Request{Path: "/fast"}); err != nil {
				t.Fatal(err)
			}
			if got := n.conns.Load(); got != 2 {
				t.Errorf("upstream accepted %d connections, want 2: the cancelled call's is not reused", got)
			}
			wantPool(t, tr, 1)
		})
	}
}

// TestLeanMaxConns: with max_conns 2, eight concurrent calls to an
// upstream that holds every request open 2 connections; the six others
// wait for them, and one that is cancelled while waiting leaves at once
// and takes no slot.
func TestLeanMaxConns(t *testing.T) {
	const maxConns, callers = 2, 8
	gate := make(chan struct{})
	var inHandler, peak atomic.Int64
	s, n := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		now := inHandler.Add(1)
		for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
		}
		<-gate
		inHandler.Add(-1)
		jsonHandler(200, `{}`)(w, r)
	})
	c, tr := leanClient(t, Config{URL: s.URL, MaxConns: maxConns, MaxIdleConns: maxConns})
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := c.Fetch(context.Background(), &Request{Path: "/x"})
			errs <- err
		}()
	}
	eventually(t, "the callers to fill the pool and queue", func() bool {
		o, _, w := poolCounts(tr)
		return o == maxConns && w == callers-maxConns && inHandler.Load() == maxConns
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Fetch(ctx, &Request{Path: "/x"})
		done <- err
	}()
	eventually(t, "the ninth caller to queue", func() bool { _, _, w := poolCounts(tr); return w == callers-maxConns+1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while waiting: %v, want context.Canceled", err)
	}
	if _, _, w := poolCounts(tr); w != callers-maxConns {
		t.Errorf("%d waiting after one left, want %d", w, callers-maxConns)
	}
	close(gate)
	for range callers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := n.conns.Load(); got != maxConns {
		t.Errorf("upstream accepted %d connections, want %d", got, maxConns)
	}
	if got := peak.Load(); got != maxConns {
		t.Errorf("peak %d requests in the upstream at once, want %d", got, maxConns)
	}
	wantPool(t, tr, maxConns)
}

// TestLeanDialFailureFreesSlot: a refused dial gives its slot back, so
// that max_conns failed dials do not wedge the pool.
func TestLeanDialFailureFreesSlot(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, tr := leanClient(t, Config{URL: "http://" + addr, MaxConns: 1})
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.Fetch(ctx, &Request{Path: "/x"})
		cancel()
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" {
			t.Fatalf("Fetch() = %v, want a dial error", err)
		}
	}
	wantPool(t, tr, 0)
}

// TestLeanIdleTimeout: a connection idle for idle_timeout is closed, by
// the pool's timer when no call comes, or when the next call meets it.
func TestLeanIdleTimeout(t *testing.T) {
	t.Run("timer", func(t *testing.T) {
		var closed atomic.Int64
		s, _ := startServer(t, jsonHandler(200, `{}`), func(srv *http.Server) {
			srv.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateClosed {
					closed.Add(1)
				}
			}
		})
		c, tr := leanClient(t, Config{URL: s.URL, IdleTimeout: 20 * time.Millisecond})
		if _, err := c.Fetch(context.Background(), &Request{Path: "/x"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the idle connection to be closed", func() bool { return closed.Load() == 1 })
		wantPool(t, tr, 0)
		if _, err := c.Fetch(context.Background(), &Request{Path: "/x"}); err != nil {
			t.Fatal(err)
		}
		wantPool(t, tr, 1)
	})
	t.Run("met by a call", func(t *testing.T) {
		s, n := startServer(t, jsonHandler(200, `{}`))
		c, tr := leanClient(t, Config{URL: s.URL})
		for range 2 {
			if _, err := c.Fetch(context.Background(), &Request{Path: "/x"}); err != nil {
				t.Fatal(err)
			}
		}
		tr.pool.mu.Lock()
		tr.pool.idle[0].idleAt = time.Now().Add(-time.Hour) // as if it sat idle past idle_timeout (90s)
		tr.pool.mu.Unlock()
		if _, err := c.Fetch(context.Background(), &Request{Path: "/x"}); err != nil {
			t.Fatal(err)
		}
		if got := n.conns.Load(); got != 2 {
			t.Errorf("upstream accepted %d connections, want 2: the expired one replaced", got)
		}
		wantPool(t, tr, 1)
	})
	t.Run("max idle", func(t *testing.T) {
		gate := make(chan struct{})
		s, n := startServer(t, func(w http.ResponseWriter, r *http.Request) {
			<-gate
			jsonHandler(200, `{}`)(w, r)
		})
		c, tr := leanClient(t, Config{URL: s.URL, MaxIdleConns: 1})
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if _, err := c.Fetch(context.Background(), &Request{Path: "/x"}); err != nil {
					t.Error(err)
				}
			})
		}
		eventually(t, "three calls in the upstream", func() bool { return n.requests.Load() == 3 })
		close(gate)
		wg.Wait()
		wantPool(t, tr, 1)
	})
}

// staleServer answers the first request of its first connection with
// keep-alive, then closes that connection, as an upstream does when its
// own idle timeout ends one; later connections get every request
// answered, unless refuse, in which case they are closed unanswered.
func staleServer(t *testing.T, refuse bool) (*rawServer, <-chan struct{}) {
	t.Helper()
	closed := make(chan struct{})
	s := startRaw(t, func(s *rawServer, i int, conn net.Conn) {
		switch {
		case i == 1:
			s.answer(conn, 1, func(*http.Request) string { return okJSON(`{"conn":1}`) })
			conn.Close()
			close(closed)
		case refuse:
			return
		default:
			s.answer(conn, 0, func(*http.Request) string { return okJSON(fmt.Sprintf(`{"conn":%d}`, i)) })
		}
	})
	return s, closed
}

// TestLeanStaleConnection: the upstream closed an idle connection. A GET
// that meets it is sent again, once, on a new connection, without the
// caller noticing; a POST is not sent on it at all (the pool peeks at the
// connection first and finds it closed).
func TestLeanStaleConnection(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			s, closed := staleServer(t, false)
			c, tr := leanClient(t, Config{URL: s.URL()})
			if _, err := c.Fetch(context.Background(), &Request{Path: "/x"}); err != nil {
				t.Fatal(err)
			}
			<-closed
			resp, err := c.Fetch(context.Background(), &Request{Method: method, Path: "/x"})
			if err != nil {
				t.Fatalf("%s on a connection the upstream closed: %v", method, err)
			}
			if string(resp.Body) != `{"conn":2}` {
				t.Errorf("body %s, want the second connection's", resp.Body)
			}
			if got := s.conns.Load(); got != 2 {
				t.Errorf("upstream accepted %d connections, want 2", got)
			}
			wantPool(t, tr, 1)
		})
	}
	t.Run("retried once only", func(t *testing.T) {
		s, closed := staleServer(t, true)
		c, tr := leanClient(t, Config{URL: s.URL()})
		if _, err := c.Fetch(context.Background(), &Request{Path: "/x"}); err != nil {
			t.Fatal(err)
		}
		<-closed
		_, err := c.Fetch(context.Background(), &Request{Path: "/x"})
		if err == nil {
			t.Fatal("Fetch() succeeded against an upstream that closes every new connection")
		}
		if got := s.conns.Load(); got != 2 {
			t.Errorf("upstream accepted %d connections for the retried call, want 2: the stale one and one new", got)
		}
		wantPool(t, tr, 0)
	})
}

// TestLeanRejectsBeforeIO: a request the transport cannot write as it is
// fails before any connection is taken.
func TestLeanRejectsBeforeIO(t *testing.T) {
	s := startRaw(t, func(*rawServer, int, net.Conn) {})
	_, tr := leanClient(t, Config{URL: s.URL()})
	for _, req := range []*http.Request{
		{Method: "GET", URL: mustURL(t, s.URL()+"/x"), Header: http.Header{"Bad Name": {"v"}}},
		{Method: "GET", URL: mustURL(t, s.URL()+"/x"), Header: http.Header{"X": {"a\r\nInjected: 1"}}},
		{Method: "G T", URL: mustURL(t, s.URL()+"/x"), Header: http.Header{}},
		{Method: "POST", URL: mustURL(t, s.URL()+"/x"), Header: http.Header{}, Body: io.NopCloser(strings.NewReader("x"))},
	} {
		if _, err := tr.RoundTrip(req.WithContext(context.Background())); err == nil {
			t.Errorf("RoundTrip(%s %v) succeeded, want an error", req.Method, req.Header)
		}
	}
	if got := s.conns.Load(); got != 0 {
		t.Errorf("upstream accepted %d connections, want 0", got)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
