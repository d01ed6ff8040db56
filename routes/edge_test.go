package routes

import (
	"bufio"
	"cmp"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/upstream"
)

// TestParamsAreForwardedCanonical: an int parameter reaches the upstream in
// its canonical decimal form and a bool as true or false, whatever the
// client typed.
func TestParamsAreForwardedCanonical(t *testing.T) {
	tests := []struct {
		name string
		path string // the request, under /api/users/
		want string // what the users upstream saw
	}{
		{name: "plus sign", path: "+1/dashboard", want: "/users/1"},
		{name: "leading zeros", path: "0001/dashboard", want: "/users/1"},
		{name: "negative with leading zeros", path: "-007/dashboard", want: "/users/-7"},
		{name: "negative zero", path: "-0/dashboard", want: "/users/0"},
		{name: "canonical already", path: "42/dashboard", want: "/users/42"},
		{name: "int query parameter", path: "1/dashboard?limit=%2B07", want: "/users/1?limit=7"},
		{name: "bool query parameter", path: "1/dashboard?verbose=T", want: "/users/1?verbose=true"},
		{name: "bool query parameter as 0", path: "1/dashboard?verbose=0", want: "/users/1?verbose=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var saw []string
			hs := okHandlers()
			hs["users"] = func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				saw = append(saw, r.URL.RequestURI())
				mu.Unlock()
				_, _ = io.WriteString(w, `{"id":1}`)
			}
			h, _ := gateway(t, hs, func(rc *RouteConfig) {
				rc.Params = []ParamConfig{{Name: "id", Type: "int"}, {Name: "limit", Type: "int"}, {Name: "verbose", Type: "bool"}}
				rc.Calls = []aggregate.CallConfig{{Name: "user", Upstream: "users", Path: "/users/{id}", Query: map[string]string{"limit": "{limit}", "verbose": "{verbose}"}}}
			})
			resp, got := do(t, h, httptest.NewRequest("GET", "/api/users/"+tt.path, nil))
			if resp.StatusCode != 200 {
				t.Fatalf("status = %d: %s", resp.StatusCode, got)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(saw) != 1 || saw[0] != tt.want {
				t.Errorf("users saw %v, want %s", saw, tt.want)
			}
		})
	}
}

// TestMethods: HEAD is served wherever GET is, with GET's headers and no
// body; a 405 says in Allow which methods the path has.
func TestMethods(t *testing.T) {
	tests := []struct {
		name        string
		routeMethod string // the route's method
		method      string
		path        string
		wantStatus  int
		wantAllow   string
		wantCode    string
	}{
		{name: "HEAD on a GET route", routeMethod: "GET", method: "HEAD", wantStatus: 200},
		{name: "GET on a GET route", routeMethod: "GET", method: "GET", wantStatus: 200},
		{name: "POST on a GET route", routeMethod: "GET", method: "POST", wantStatus: 405, wantAllow: "GET, HEAD", wantCode: "method_not_allowed"},
		{name: "DELETE on a GET route", routeMethod: "GET", method: "DELETE", wantStatus: 405, wantAllow: "GET, HEAD", wantCode: "method_not_allowed"},
		{name: "OPTIONS on a GET route", routeMethod: "GET", method: "OPTIONS", wantStatus: 405, wantAllow: "GET, HEAD", wantCode: "method_not_allowed"},
		{name: "unknown method on a route", routeMethod: "GET", method: "BREW", wantStatus: 405, wantAllow: "GET, HEAD", wantCode: "method_not_allowed"},
		{name: "unknown method on no route", routeMethod: "GET", method: "BREW", path: "/nope", wantStatus: 404, wantCode: "no_route"},
		{name: "POST on no route", routeMethod: "GET", method: "POST", path: "/nope", wantStatus: 404, wantCode: "no_route"},
		{name: "GET on a HEAD route", routeMethod: "HEAD", method: "GET", wantStatus: 405, wantAllow: "HEAD", wantCode: "method_not_allowed"},
		{name: "HEAD on a HEAD route", routeMethod: "HEAD", method: "HEAD", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := gateway(t, okHandlers(), func(rc *RouteConfig) { rc.Method = tt.routeMethod })
			srv := httptest.NewServer(h) // a real server: it drops a HEAD answer's body
			t.Cleanup(srv.Close)
			path := cmp.Or(tt.path, "/api/users/1/dashboard")
			resp := send(t, srv, tt.method, path)
			got := readAll(t, resp)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.wantStatus, got)
			}
			if a := resp.Header.Get("Allow"); a != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", a, tt.wantAllow)
			}
			if tt.wantCode != "" && tt.method != "HEAD" {
				checkError(t, resp, got, tt.wantStatus, tt.wantCode, "")
			}
			if tt.method != "HEAD" || tt.wantStatus != 200 {
				return
			}
			if got != "" {
				t.Errorf("HEAD body = %q, want none", got)
			}
			if tt.routeMethod == "HEAD" {
				return
			}
			get := send(t, srv, "GET", path)
			getBody := readAll(t, get)
			for _, k := range []string{"Content-Length", "Content-Type", DegradedHeader} {
				if resp.Header.Get(k) != get.Header.Get(k) {
					t.Errorf("HEAD %s = %q, GET's = %q", k, resp.Header.Get(k), get.Header.Get(k))
				}
			}
			if resp.ContentLength != int64(len(getBody)) {
				t.Errorf("HEAD Content-Length = %d, GET body is %d bytes", resp.ContentLength, len(getBody))
			}
		})
	}
}

// TestHeadRouteOfItsOwn: a HEAD route matching the same requests as a GET
// route serves HEAD; the GET route keeps GET.
func TestHeadRouteOfItsOwn(t *testing.T) {
	users, heads := newUpstream(t, "users", body(`{"id":1}`)), newUpstream(t, "heads", body(`{"h":1}`))
	cfg := Config{Routes: []RouteConfig{
		{Path: "/a/{id}", Calls: []aggregate.CallConfig{{Name: "u", Upstream: "users", Path: "/users/{id}"}}},
		{Path: "/a/{x}", Method: "HEAD", Calls: []aggregate.CallConfig{{Name: "h", Upstream: "heads", Path: "/heads/{x}"}}},
	}}
	h, err := New(cfg, Options{Stack: upstream.Static(map[string]upstream.Fetch{"users": users.fetch, "heads": heads.fetch})})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"GET", "HEAD"} {
		t.Run(m, func(t *testing.T) {
			if resp, got := do(t, h, httptest.NewRequest(m, "/a/1", nil)); resp.StatusCode != 200 {
				t.Fatalf("%s: status %d: %s", m, resp.StatusCode, got)
			}
		})
	}
	if users.calls.Load() != 1 || heads.calls.Load() != 1 {
		t.Errorf("users called %d times, heads %d; want 1 each (GET by the GET route, HEAD by the HEAD route)", users.calls.Load(), heads.calls.Load())
	}
}

// TestRequestBodies: no route reads a body, so none is read or buffered; a
// chunked request, which net/http cannot tell from one that also carries a
// Content-Length, is refused and its connection closed; a declared length
// over the limit is refused unread. Sent as raw bytes to a real server, as
// a load balancer would.
func TestRequestBodies(t *testing.T) {
	const req = "GET /api/users/1/dashboard HTTP/1.1\r\nHost: gw\r\n"
	tests := []struct {
		name       string
		raw        string // request bytes
		wantStatus []int  // one per response read from the connection
		wantCode   string // of the first response, if an error
		wantMsg    string
		wantClosed bool // the connection is closed after the responses
		wantUsers  int64
	}{
		{name: "Content-Length and Transfer-Encoding", raw: req + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + req + "\r\n",
			wantStatus: []int{400}, wantCode: "bad_framing", wantMsg: "both Content-Length and Transfer-Encoding", wantClosed: true},
		{name: "Transfer-Encoding then Content-Length", raw: req + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
			wantStatus: []int{400}, wantCode: "bad_framing", wantMsg: "Transfer-Encoding: chunked", wantClosed: true},
		{name: "chunked body", raw: req + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			wantStatus: []int{400}, wantCode: "bad_framing", wantMsg: "Transfer-Encoding: chunked", wantClosed: true},
		{name: "declared length over the limit, body never sent", raw: req + "Content-Length: 100000\r\n\r\n",
			wantStatus: []int{413}, wantCode: "body_too_large", wantMsg: "over the limit of 64 bytes", wantClosed: true},
		{name: "small body ignored, connection kept", raw: req + "Content-Length: 10\r\n\r\n0123456789" + req + "\r\n",
			wantStatus: []int{200, 200}, wantUsers: 2},
		{name: "no body", raw: req + "\r\n", wantStatus: []int{200}, wantUsers: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, servers := gateway(t, okHandlers())
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, tt.raw); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			for i, want := range tt.wantStatus {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("response %d: %v", i+1, err)
				}
				got := readAll(t, resp)
				if resp.StatusCode != want {
					t.Fatalf("response %d: status %d, want %d (%s)", i+1, resp.StatusCode, want, got)
				}
				if i == 0 && tt.wantCode != "" {
					checkError(t, resp, got, want, tt.wantCode, tt.wantMsg)
				}
			}
			if tt.wantClosed {
				if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("after the response: %v, want the connection closed", err)
				}
			}
			if n := servers["users"].calls.Load(); n != tt.wantUsers {
				t.Errorf("users called %d times, want %d", n, tt.wantUsers)
			}
		})
	}
}

// TestBodyIsNotRead: a body within the limit is left unread by the
// gateway, whatever its declared length.
func TestBodyIsNotRead(t *testing.T) {
	tests := []struct {
		name   string
		length int64
	}{
		{name: "declared length", length: 10},
		{name: "unknown length (HTTP/2)", length: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := gateway(t, okHandlers())
			b := &spyBody{}
			req := httptest.NewRequest("GET", "/api/users/1/dashboard", b)
			req.ContentLength = tt.length
			resp, got := do(t, h, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status = %d: %s", resp.StatusCode, got)
			}
			if b.reads > 0 {
				t.Errorf("the body was read %d times, want never", b.reads)
			}
		})
	}
}

// spyBody is a request body that counts reads.
type spyBody struct{ reads int }

func (b *spyBody) Read(p []byte) (int, error) {
	b.reads++
	return copy(p, "0123456789"), io.EOF
}

func send(t *testing.T, srv *httptest.Server, method, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
