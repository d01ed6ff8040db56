package upstream

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/braidgw/braid/observability"
)

// TestNewRequestURL: the outgoing URL built from its parts is the one
// parsing the whole URL gives, for plain and escaped paths, with and
// without a base path and a query.
func TestNewRequestURL(t *testing.T) {
	for _, tt := range []struct {
		base, path string
		query      url.Values
	}{
		{"http://127.0.0.1:9101", "/users/7", nil},
		{"http://127.0.0.1:9101/", "/users/7/orders", url.Values{"limit": {"5"}}},
		{"http://users.internal/v1", "/users/a%20b", url.Values{"q": {"x y&z"}, "a": {"1"}}},
		{"http://users.internal/v%201/", "/caf%C3%A9/%2F", url.Values{"ids": {"1,2,3"}}},
		{"https://[::1]:8443/api", "/", nil},
	} {
		c, err := New("users", Config{URL: tt.base})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.newRequest(context.Background(), http.MethodGet, &Request{Path: tt.path, Query: tt.query})
		if err != nil {
			t.Fatalf("%s + %s: %v", tt.base, tt.path, err)
		}
		raw := c.basePath + tt.path
		u, _ := url.Parse(tt.base)
		raw = u.Scheme + "://" + u.Host + raw
		if q := tt.query.Encode(); q != "" {
			raw += "?" + q
		}
		want, err := http.NewRequest(http.MethodGet, raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.URL.String() != want.URL.String() || got.URL.EscapedPath() != want.URL.EscapedPath() ||
			got.URL.Path != want.URL.Path || got.URL.RequestURI() != want.URL.RequestURI() || got.Host != want.Host {
			t.Errorf("%s + %s: URL %q (path %q, host %q), want %q (path %q, host %q)", tt.base, tt.path,
				got.URL, got.URL.Path, got.Host, want.URL, want.URL.Path, want.Host)
		}
	}
}

// TestNewRequestAllocations: building a try's request (URL from its parts,
// the usual headers' values in one array) stays within a fixed number of
// allocations; parsing the URL and a slice per header took 12.
func TestNewRequestAllocations(t *testing.T) {
	c, err := New("orders", Config{URL: "http://127.0.0.1:9102"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(observability.WithRequestID(context.Background(), "abc"), time.Now().Add(time.Hour))
	defer cancel()
	req := &Request{Path: "/users/7/orders", Query: url.Values{"limit": {"5"}}}
	var hreq *http.Request
	allocs := testing.AllocsPerRun(100, func() {
		hreq, err = c.newRequest(ctx, http.MethodGet, req)
		if err != nil {
			t.Fatal(err)
		}
	})
	want := http.Header{"Accept": {"application/json"}, "User-Agent": {"braid"}, "X-Request-Id": {"abc"}}
	if b := hreq.Header.Get(BudgetHeader); len(b) != 7 || b[:3] != "359" {
		t.Errorf("%s %q, want about an hour in ms", BudgetHeader, b)
	}
	if len(hreq.Header) != len(want)+1 {
		t.Errorf("headers %v, want %v", hreq.Header, want)
	}
	for k, v := range want {
		if got := hreq.Header[k]; len(got) != 1 || got[0] != v[0] {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if got := hreq.URL.String(); got != "http://127.0.0.1:9102/users/7/orders?limit=5" {
		t.Errorf("URL %s", got)
	}
	t.Logf("%v allocations", allocs)
	if allocs > 8 {
		t.Errorf("%v allocations per request built, want at most 8", allocs)
	}
}

// TestEncodedQuery: a request that carries its query encoded is sent, and
// keyed in the cache, with that encoding, not with Query encoded again
// (the deliberately different encoding shows which one was used); without
// one, Query is encoded.
func TestEncodedQuery(t *testing.T) {
	c, err := New("orders", Config{URL: "http://127.0.0.1:9102"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		req  Request
		want string
	}{
		{Request{Path: "/o", Query: url.Values{"limit": {"5"}}, EncodedQuery: "limit=5&x=1"}, "limit=5&x=1"},
		{Request{Path: "/o", Query: url.Values{"limit": {"5"}, "a b": {"c&d"}}}, "a+b=c%26d&limit=5"},
		{Request{Path: "/o"}, ""},
	} {
		hreq, err := c.newRequest(context.Background(), http.MethodGet, &tt.req)
		if err != nil {
			t.Fatal(err)
		}
		if hreq.URL.RawQuery != tt.want {
			t.Errorf("%+v: sent query %q, want %q", tt.req, hreq.URL.RawQuery, tt.want)
		}
		key, want := EntryKey("orders", &tt.req), "orders GET /o"
		if tt.want != "" {
			want += "?" + tt.want
		}
		if key != want {
			t.Errorf("%+v: cache key %q, want %q", tt.req, key, want)
		}
	}
}

// TestBudgetValue: the budget header's value is the decimal milliseconds
// on both sides of the table's end, and a value seen before costs no
// allocation.
func TestBudgetValue(t *testing.T) {
	for _, ms := range []int64{0, 1, 7, 1999, 8191, 8192, 3599999, -1} {
		if got, want := budgetValue(ms), strconv.FormatInt(ms, 10); got != want {
			t.Errorf("budgetValue(%d) = %q, want %q", ms, got, want)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { budgetValue(1999) }); allocs != 0 {
		t.Errorf("a budget seen before costs %.0f allocations", allocs)
	}
}
