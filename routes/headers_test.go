package routes

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/cache"
)

func TestHeaderList(t *testing.T) {
	items := func(texts ...string) *headerList {
		var l headerList
		for _, s := range texts {
			l.add(",", s)
		}
		return &l
	}
	tests := []struct {
		name string
		list *headerList
		max  int
		want string
	}{
		{name: "empty", list: items(), max: 10, want: ""},
		{name: "fits exactly", list: items("aaaa", "bbbb"), max: 9, want: "aaaa,bbbb"},
		{name: "cut at an item boundary", list: items("aaaa", "bbbb", "cccc", "dddd"), max: 16, want: "aaaa,...(3 more)"},
		{name: "more items kept as room allows", list: items("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t"), max: 30,
			want: "a,b,c,d,e,f,g,h,i,...(11 more)"},
		{name: "first item too long", list: items(strings.Repeat("x", 50), "b"), max: 20, want: "...(2 more)"},
		{name: "counts what items stand for", list: func() *headerList {
			l := items("aaaa")
			l.addN(",", "...(100 more)", 100)
			l.add("; ", "bbbbbbbbbbbbbbbbbbbb")
			return l
		}(), max: 30, want: "aaaa,...(101 more)"},
		{name: "marker takes the cut item's separator", list: func() *headerList {
			var l headerList
			l.add("; ", "aaaa")
			l.add("; ", strings.Repeat("b", 40))
			return &l
		}(), max: 20, want: "aaaa; ...(1 more)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.list.value(tt.max, moreItems)
			if got != tt.want {
				t.Errorf("value(%d) = %q, want %q", tt.max, got, tt.want)
			}
			if len(got) > tt.max {
				t.Errorf("value(%d) is %d bytes", tt.max, len(got))
			}
		})
	}
}

var moreRE = regexp.MustCompile(`\.\.\.\((\d+) more\)$`)

// TestHeadersAreBounded: every list header Braid writes stays within
// maxHeaderBytes however many items an upstream or a config produces, cut
// at an item boundary and saying how many were left out; a key an
// upstream sent cannot break the list apart.
func TestHeadersAreBounded(t *testing.T) {
	longKeys := func(n, size int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(`{"product_id":"%0*d"}`, size, i)
		}
		return `[{"id":1,"items":[` + strings.Join(items, ",") + `]}]`
	}
	batchRoute := func(orders string) (map[string]http.HandlerFunc, func(*RouteConfig)) {
		return map[string]http.HandlerFunc{"orders": body(orders), "products": body(`[]`)}, func(rc *RouteConfig) {
			rc.Path = "/api/users/{id}/orders-with-products"
			rc.Params = rc.Params[:1]
			rc.Calls = []aggregate.CallConfig{
				{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders"},
				{Name: "products", Upstream: "products", Path: "/products", Batch: &aggregate.BatchConfig{Keys: "orders[].items[].product_id", Stitch: "orders[].items[].product", MaxBatch: 1000}},
			}
		}
	}
	manyCalls := func(n int) (map[string]http.HandlerFunc, func(*RouteConfig)) {
		return map[string]http.HandlerFunc{"users": body(`{"id":1}`), "broken": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }}, func(rc *RouteConfig) {
			rc.Calls = []aggregate.CallConfig{{Name: "user", Upstream: "users", Path: "/users/{id}"}}
			for i := range n {
				name := fmt.Sprintf("optional-call-with-a-long-descriptive-name-number-%03d-%s", i, strings.Repeat("x", 30))
				rc.Calls = append(rc.Calls, aggregate.CallConfig{Name: name, Upstream: "broken", Path: "/x", Optional: true})
			}
		}
	}
	tests := []struct {
		name   string
		setup  func() (map[string]http.HandlerFunc, func(*RouteConfig))
		path   string
		header string
		check  func(t *testing.T, v string)
	}{
		{name: "missing keys, long ones", setup: func() (map[string]http.HandlerFunc, func(*RouteConfig)) { return batchRoute(longKeys(300, 100)) },
			path: "/api/users/1/orders-with-products", header: MissingKeysHeader, check: func(t *testing.T, v string) {
				listed := strings.Count(strings.TrimPrefix(v, "products="), ",") // the keys before the marker
				m := moreRE.FindStringSubmatch(v)
				if !strings.HasPrefix(v, "products=") || m == nil {
					t.Fatalf("%s = %.80q..., want products=keys,...(N more)", MissingKeysHeader, v)
				}
				if n, _ := strconv.Atoi(m[1]); listed+n != 300 {
					t.Errorf("%d keys listed and %d more, want 300 in all", listed, n)
				}
			}},
		{name: "missing keys with separators and control characters", setup: func() (map[string]http.HandlerFunc, func(*RouteConfig)) {
			return batchRoute(`[{"id":1,"items":[{"product_id":"a b"},{"product_id":"c;d=e"},{"product_id":"x\r\ny"},{"product_id":"50%"},{"product_id":"é"}]}]`)
		}, path: "/api/users/1/orders-with-products", header: MissingKeysHeader, check: func(t *testing.T, v string) {
			if want := "products=a%20b,c%3Bd%3De,x%0D%0Ay,50%25,%C3%A9"; v != want {
				t.Errorf("%s = %q, want %q", MissingKeysHeader, v, want)
			}
		}},
		{name: "degraded calls", setup: func() (map[string]http.HandlerFunc, func(*RouteConfig)) { return manyCalls(100) },
			path: "/api/users/1/dashboard", header: DegradedHeader, check: func(t *testing.T, v string) {
				m := moreRE.FindStringSubmatch(v)
				if m == nil {
					t.Fatalf("%s = %.80q..., want it to end with ...(N more)", DegradedHeader, v)
				}
				if n, _ := strconv.Atoi(m[1]); strings.Count(v, ",")+n != 100 {
					t.Errorf("%d calls listed and %d more, want 100 in all", strings.Count(v, ","), n)
				}
			}},
		{name: "server timing", setup: func() (map[string]http.HandlerFunc, func(*RouteConfig)) { return manyCalls(100) },
			path: "/api/users/1/dashboard", header: "Server-Timing", check: func(t *testing.T, v string) {
				if !regexp.MustCompile(`, more;desc="\d+ more calls", gateway;dur=[0-9.]+$`).MatchString(v) {
					t.Errorf("Server-Timing = ...%q, want it to end with the count of calls cut and the gateway's entry", v[max(len(v)-80, 0):])
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, mutate := tt.setup()
			h, _ := gateway(t, hs, mutate)
			resp, got := do(t, h, httptest.NewRequest("GET", tt.path, nil))
			if resp.StatusCode != 200 {
				t.Fatalf("status = %d: %s", resp.StatusCode, got)
			}
			v := resp.Header.Get(tt.header)
			if len(v) > maxHeaderBytes {
				t.Errorf("%s is %d bytes, want at most %d", tt.header, len(v), maxHeaderBytes)
			}
			tt.check(t, v)
		})
	}
}

// TestCacheStatusIsBounded: one Cache-Status entry per cached call, cut
// with a last, well-formed entry counting the calls left out.
func TestCacheStatusIsBounded(t *testing.T) {
	tests := []struct {
		name     string
		calls    int
		wantMore string // "" when nothing is cut
	}{
		{name: "few calls", calls: 3},
		{name: "many calls", calls: 200, wantMore: `more calls"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries := make([]aggregate.CacheEntry, tt.calls)
			for i := range entries {
				entries[i] = aggregate.CacheEntry{Call: fmt.Sprintf("call-%03d", i), Status: cache.HitL1}
			}
			v := cacheStatus(entries)
			if len(v) > maxHeaderBytes {
				t.Errorf("Cache-Status is %d bytes, want at most %d", len(v), maxHeaderBytes)
			}
			listed := strings.Count(v, "key=")
			if tt.wantMore == "" {
				if listed != tt.calls {
					t.Errorf("Cache-Status lists %d calls, want %d: %s", listed, tt.calls, v)
				}
				return
			}
			m := regexp.MustCompile(`, braid; detail="(\d+) more calls"$`).FindStringSubmatch(v)
			if m == nil {
				t.Fatalf("Cache-Status = ...%q, want a last entry counting the calls cut", v[max(len(v)-80, 0):])
			}
			if n, _ := strconv.Atoi(m[1]); listed+n != tt.calls {
				t.Errorf("%d calls listed and %d more, want %d", listed, n, tt.calls)
			}
		})
	}
}

func TestHeaderSafe(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "plain id", in: "sku-17_A.b~", want: "sku-17_A.b~"},
		{name: "list separators", in: "a,b;c=d", want: "a%2Cb%3Bc%3Dd"},
		{name: "quotes, backslash, percent", in: `"x\y%`, want: "%22x%5Cy%25"},
		{name: "space and control characters", in: "a b\r\n\x00", want: "a%20b%0D%0A%00"},
		{name: "non-ASCII", in: "é", want: "%C3%A9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := headerSafe(tt.in); got != tt.want {
				t.Errorf("headerSafe(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
