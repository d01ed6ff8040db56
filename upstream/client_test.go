package upstream

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counts is what a test server observed.
type counts struct {
	conns    atomic.Int64 // connections accepted (StateNew)
	requests atomic.Int64 // requests that reached the handler
}

// startServer starts an httptest upstream running h, counting connections
// and requests; configure may adjust the http.Server before it starts.
func startServer(t *testing.T, h http.HandlerFunc, configure ...func(*http.Server)) (*httptest.Server, *counts) {
	t.Helper()
	var n counts
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.requests.Add(1)
		h(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			n.conns.Add(1)
		}
	}
	for _, f := range configure {
		f(s.Config)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &n
}

// newClient returns a Client named "test", closed when the test ends.
func newClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := New("test", cfg)
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	t.Cleanup(c.Close)
	return c
}

// jsonHandler answers every request with status and body.
func jsonHandler(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

// seen is what the upstream saw of one request.
type seen struct {
	method, uri string
	header      http.Header
	protoMajor  int
}

// recordingHandler reports each request on the returned channel (buffered
// for one request) and answers with status and body.
func recordingHandler(status int, body string) (http.HandlerFunc, <-chan seen) {
	ch := make(chan seen, 1)
	return func(w http.ResponseWriter, r *http.Request) {
		ch <- seen{method: r.Method, uri: r.RequestURI, header: r.Header.Clone(), protoMajor: r.ProtoMajor}
		jsonHandler(status, body)(w, r)
	}, ch
}

func TestFetchSuccess(t *testing.T) {
	tests := []struct {
		name       string
		basePath   string // appended to the server URL in Config.URL
		req        Request
		status     int
		body       string
		wantMethod string
		wantURI    string
		wantBody   string
	}{
		{name: "json body", req: Request{Path: "/users/1"}, status: 200, body: `{"id":1,"name":"Ada"}`,
			wantMethod: "GET", wantURI: "/users/1", wantBody: `{"id":1,"name":"Ada"}`},
		{name: "base path prefix", basePath: "/api/v1", req: Request{Path: "/users/1"}, status: 200, body: `[]`,
			wantMethod: "GET", wantURI: "/api/v1/users/1", wantBody: `[]`},
		{name: "base path with trailing slash", basePath: "/api/", req: Request{Path: "/users"}, status: 200, body: `1`,
			wantMethod: "GET", wantURI: "/api/users", wantBody: `1`},
		{name: "escaped path kept as given", basePath: "/api", req: Request{Path: "/users/a%2Fb%20c"}, status: 200,
			body: `{}`, wantMethod: "GET", wantURI: "/api/users/a%2Fb%20c", wantBody: `{}`},
		{name: "query encoded", req: Request{Path: "/products", Query: url.Values{"ids": {"1", "2"}, "q": {"a b&c=d"}}},
			status: 200, body: `[]`, wantMethod: "GET", wantURI: "/products?ids=1&ids=2&q=a+b%26c%3Dd", wantBody: `[]`},
		{name: "method kept", req: Request{Method: "POST", Path: "/orders"}, status: 201, body: `{"ok":true}`,
			wantMethod: "POST", wantURI: "/orders", wantBody: `{"ok":true}`},
		{name: "204 becomes null", req: Request{Method: "DELETE", Path: "/orders/1"}, status: 204,
			wantMethod: "DELETE", wantURI: "/orders/1", wantBody: `null`},
		{name: "empty 200 becomes null", req: Request{Path: "/empty"}, status: 200,
			wantMethod: "GET", wantURI: "/empty", wantBody: `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, saw := recordingHandler(tt.status, tt.body)
			s, _ := startServer(t, h)
			c := newClient(t, Config{URL: s.URL + tt.basePath})

			resp, err := c.Fetch(context.Background(), &tt.req)
			if err != nil {
				t.Fatalf("Fetch() = %v", err)
			}
			got := <-saw
			if got.method != tt.wantMethod || got.uri != tt.wantURI {
				t.Errorf("upstream saw %s %s, want %s %s", got.method, got.uri, tt.wantMethod, tt.wantURI)
			}
			if resp.Status != tt.status || string(resp.Body) != tt.wantBody {
				t.Errorf("Fetch() = %d %s, want %d %s", resp.Status, resp.Body, tt.status, tt.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("response Content-Type = %q, want application/json", ct)
			}
		})
	}
}

func TestFetchHeaders(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		want   map[string]string
	}{
		{name: "defaults", want: map[string]string{"Accept": "application/json", "User-Agent": "braid"}},
		{name: "caller headers added", header: http.Header{"X-Request-Id": {"r1"}},
			want: map[string]string{"Accept": "application/json", "User-Agent": "braid", "X-Request-Id": "r1"}},
		{name: "caller overrides accept, non-canonical key", header: http.Header{"accept": {"application/x+json"}},
			want: map[string]string{"Accept": "application/x+json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, saw := recordingHandler(200, `{}`)
			s, _ := startServer(t, h)
			c := newClient(t, Config{URL: s.URL})
			if _, err := c.Fetch(context.Background(), &Request{Path: "/", Header: tt.header}); err != nil {
				t.Fatalf("Fetch() = %v", err)
			}
			got := <-saw
			for k, v := range tt.want {
				if vs := got.header.Values(k); len(vs) != 1 || vs[0] != v {
					t.Errorf("upstream saw %s: %q, want exactly %q", k, vs, v)
				}
			}
		})
	}
}

func TestFetchBudgetHeader(t *testing.T) {
	const timeout = 5 * time.Second
	tests := []struct {
		name        string
		deadline    bool
		forged      bool // the caller tries to set the header itself
		wantPresent bool
	}{
		{name: "with deadline", deadline: true, wantPresent: true},
		{name: "without deadline", deadline: false, wantPresent: false},
		{name: "forged without deadline is dropped", forged: true, wantPresent: false},
		{name: "forged with deadline is replaced", deadline: true, forged: true, wantPresent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, saw := recordingHandler(200, `{}`)
			s, _ := startServer(t, h)
			c := newClient(t, Config{URL: s.URL})
			ctx := context.Background()
			if tt.deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			req := &Request{Path: "/"}
			if tt.forged {
				req.Header = http.Header{BudgetHeader: {"99999999"}}
			}
			var remaining time.Duration
			if dl, ok := ctx.Deadline(); ok {
				remaining = time.Until(dl) // an upper bound for what the client may announce
			}
			if _, err := c.Fetch(ctx, req); err != nil {
				t.Fatalf("Fetch() = %v", err)
			}
			vs := (<-saw).header.Values(BudgetHeader)
			if !tt.wantPresent {
				if len(vs) != 0 {
					t.Fatalf("upstream saw %s: %q, want none", BudgetHeader, vs)
				}
				return
			}
			if len(vs) != 1 {
				t.Fatalf("upstream saw %s: %q, want one value", BudgetHeader, vs)
			}
			ms, err := strconv.ParseInt(vs[0], 10, 64)
			if err != nil || ms < 1 || ms > remaining.Milliseconds() {
				t.Errorf("%s = %q, want whole milliseconds in [1, %d]", BudgetHeader, vs[0], remaining.Milliseconds())
			}
		})
	}
}

func TestFetchReusesConnection(t *testing.T) {
	const calls = 50
	bigError := string(bytes.Repeat([]byte("x"), 2000)) // longer than StatusError keeps, within the drain
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr bool
	}{
		{name: "200 with length", handler: jsonHandler(200, `{"id":1}`)},
		{name: "200 chunked", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush() // no Content-Length: the body is chunked
			fmt.Fprint(w, `{"id":1}`)
		}},
		{name: "204", handler: jsonHandler(204, ``)},
		{name: "404 drained", handler: jsonHandler(404, `{"error":"not found"}`), wantErr: true},
		{name: "500 with long body drained", handler: jsonHandler(500, bigError), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, n := startServer(t, tt.handler)
			c := newClient(t, Config{URL: s.URL})
			for i := range calls {
				_, err := c.Fetch(context.Background(), &Request{Path: "/users/1"})
				if (err != nil) != tt.wantErr {
					t.Fatalf("call %d: Fetch() error = %v, want error %v", i, err, tt.wantErr)
				}
			}
			if got := n.requests.Load(); got != calls {
				t.Errorf("upstream saw %d requests, want %d", got, calls)
			}
			if got := n.conns.Load(); got != 1 {
				t.Errorf("upstream accepted %d connections for %d sequential calls, want 1", got, calls)
			}
		})
	}
}

func TestFetchH2C(t *testing.T) {
	tests := []struct {
		name      string
		h2c       bool
		wantProto int
	}{
		{name: "h2c speaks HTTP/2", h2c: true, wantProto: 2},
		{name: "default speaks HTTP/1.1", h2c: false, wantProto: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, saw := recordingHandler(200, `{"ok":true}`)
			s, _ := startServer(t, h, func(srv *http.Server) {
				var p http.Protocols
				p.SetHTTP1(true)
				p.SetUnencryptedHTTP2(true)
				srv.Protocols = &p
			})
			c := newClient(t, Config{URL: s.URL, H2C: tt.h2c})
			resp, err := c.Fetch(context.Background(), &Request{Path: "/"})
			if err != nil {
				t.Fatalf("Fetch() = %v", err)
			}
			if got := (<-saw).protoMajor; got != tt.wantProto {
				t.Errorf("upstream saw HTTP/%d, want HTTP/%d", got, tt.wantProto)
			}
			if string(resp.Body) != `{"ok":true}` {
				t.Errorf("Body = %s", resp.Body)
			}
		})
	}
}

func TestFetchConcurrent(t *testing.T) {
	const workers, calls = 16, 20
	s, n := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	})
	c := newClient(t, Config{URL: s.URL, MaxConns: 4})
	errs := make(chan error, workers*calls)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				path := fmt.Sprintf("/w%d/%d", w, i)
				resp, err := c.Fetch(context.Background(), &Request{Path: path})
				if err == nil && string(resp.Body) != fmt.Sprintf(`{"path":%q}`, path) {
					err = fmt.Errorf("%s: got body %s", path, resp.Body)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := n.requests.Load(); got != workers*calls {
		t.Errorf("upstream saw %d requests, want %d", got, workers*calls)
	}
	if got := n.conns.Load(); got > 4 {
		t.Errorf("upstream accepted %d connections, want at most max_conns=4", got)
	}
}

func BenchmarkFetch(b *testing.B) {
	body := []byte(`{"items":[`)
	for i := range 20 {
		if i > 0 {
			body = append(body, ',')
		}
		body = fmt.Appendf(body, `{"id":%d,"name":"product number %02d","price":1999}`, i, i)
	}
	body = append(body, "]}"...)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer s.Close()
	req := &Request{Path: "/products", Query: url.Values{"ids": {"1,2,3"}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, tr := range benchTransports {
		b.Run(tr.name, func(b *testing.B) {
			c := newClient(b, Config{URL: s.URL, Transport: tr.transport})
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Fetch(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchTransports are the transports benchmarks compare, named without a
// slash.
var benchTransports = []struct{ name, transport string }{
	{"lean", transportLean},
	{"nethttp", transportNetHTTP},
}
