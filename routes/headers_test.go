package routes

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/breaker"
	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/upstream"
)

// TestHeaderList: a list that fits is kept whole; one that does not is cut
// at an item boundary with the marker counting what was cut, the same
// whether the writer stops once the list is full or writes every item.
func TestHeaderList(t *testing.T) {
	type item struct {
		sep, text string
		n         int
	}
	items := func(texts ...string) []item {
		var l []item
		for _, s := range texts {
			l = append(l, item{",", s, 1})
		}
		return l
	}
	tests := []struct {
		name  string
		items []item
		max   int
		want  string
	}{
		{name: "empty", items: items(), max: 10, want: ""},
		{name: "fits exactly", items: items("aaaa", "bbbb"), max: 9, want: "aaaa,bbbb"},
		{name: "cut at an item boundary", items: items("aaaa", "bbbb", "cccc", "dddd"), max: 16, want: "aaaa,...(3 more)"},
		{name: "more items kept as room allows", items: items("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t"), max: 30,
			want: "a,b,c,d,e,f,g,h,i,...(11 more)"},
		{name: "first item too long", items: items(strings.Repeat("x", 50), "b"), max: 20, want: "...(2 more)"},
		{name: "counts what items stand for", items: append(items("aaaa"), item{",", "...(100 more)", 100}, item{"; ", "bbbbbbbbbbbbbbbbbbbb", 1}), max: 30,
			want: "aaaa,...(101 more)"},
		{name: "marker takes the cut item's separator", items: []item{{"; ", "aaaa", 1}, {"; ", strings.Repeat("b", 40), 1}}, max: 20, want: "aaaa; ...(1 more)"},
		{name: "marker fits nowhere", items: items("aaaa", "bbbb"), max: 8, want: ""},
		{name: "empty items", items: items("", "", ""), max: 2, want: ",,"},
		{name: "empty items cut", items: items("", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""), max: 24,
			want: ",,,,,,,,,,,,...(14 more)"},
	}
	for _, tt := range tests {
		for _, stop := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/stop=%v", tt.name, stop), func(t *testing.T) {
				total := 0
				for _, it := range tt.items {
					total += it.n
				}
				l := newHeaderList(tt.max, total, moreItems)
				var b []byte
				for _, it := range tt.items {
					if stop && l.full(b) {
						break
					}
					b = append(l.next(b, it.sep, it.n), it.text...)
				}
				got := string(l.end(b))
				if got != tt.want {
					t.Errorf("value(%d) = %q, want %q", tt.max, got, tt.want)
				}
				if len(got) > tt.max {
					t.Errorf("value(%d) is %d bytes", tt.max, len(got))
				}
				var ref refList
				for _, it := range tt.items {
					ref.addN(it.sep, it.text, it.n)
				}
				if want := ref.value(tt.max, moreItemsReference); got != want {
					t.Errorf("value(%d) = %q, the reference %q", tt.max, got, want)
				}
			})
		}
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
			if got := string(appendHeaderSafe([]byte("k="), tt.in)); got != "k="+tt.want {
				t.Errorf("appendHeaderSafe(%q) = %q, want %q", tt.in, got, "k="+tt.want)
			}
		})
	}
}

// TestServerTiming pins the header's exact text: durations in ms to the
// tenth as fmt's %.1f rounds them (ties to even: 1.25 is 1.2; 0.05 and
// 0.15 ms are not exact in binary and go either way), a failed call's code,
// a cached call's outcome, and the cut at maxHeaderBytes.
func TestServerTiming(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	many := func(n int, d time.Duration) []aggregate.CallTiming {
		ts := make([]aggregate.CallTiming, n)
		for i := range ts {
			ts[i] = aggregate.CallTiming{Call: fmt.Sprintf("call-%03d", i), Duration: d}
		}
		return ts
	}
	// 300 calls of "call-NNN;dur=1.0" (16 bytes, 18 with ", "), the gateway
	// entry 15: 4096-2-15 = 4079 bytes for the calls and the marker. 225
	// calls take 4048, `, more;desc="75 more calls"` 27: 4075.
	var cut strings.Builder
	for i := range 225 {
		fmt.Fprintf(&cut, "call-%03d;dur=1.0, ", i)
	}
	cut.WriteString(`more;desc="75 more calls", gateway;dur=0.3`)
	tests := []struct {
		name    string
		timings []aggregate.CallTiming
		gateway time.Duration
		want    string
	}{
		{name: "no calls", want: "gateway;dur=0.0"},
		{name: "dashboard", timings: []aggregate.CallTiming{
			{Call: "user", Duration: ms(12.345)},
			{Call: "orders", Duration: ms(1.25)},
			{Call: "notifications", Duration: ms(0.05)},
			{Call: "recommendations", Duration: ms(999.95)},
		}, gateway: 150 * time.Microsecond,
			want: "user;dur=12.3, orders;dur=1.2, notifications;dur=0.1, recommendations;dur=1000.0, gateway;dur=0.1"},
		{name: "rounding", timings: []aggregate.CallTiming{
			{Call: "zero", Duration: 0},
			{Call: "sub-microsecond", Duration: 999},
			{Call: "half-even-down", Duration: ms(0.25)},
			{Call: "inexact-up", Duration: ms(1.35)},
			{Call: "negative", Duration: -40 * time.Microsecond},
			{Call: "hour", Duration: time.Hour + 55*time.Microsecond},
		}, gateway: 2*time.Millisecond + 949*time.Microsecond + 999,
			want: "zero;dur=0.0, sub-microsecond;dur=0.0, half-even-down;dur=0.2, inexact-up;dur=1.4, negative;dur=-0.0, hour;dur=3600000.1, gateway;dur=2.9"},
		{name: "failed and cached calls", timings: []aggregate.CallTiming{
			{Call: "user", Duration: ms(3), Cache: "hit l1"},
			{Call: "orders", Duration: ms(5), Failed: true, Err: context.DeadlineExceeded},
			{Call: "products", Duration: ms(7), Cache: "40/50 keys"},
			{Call: "notifications", Duration: ms(1), Failed: true, Err: &upstream.StatusError{Status: 404}},
			{Call: "recommendations", Duration: ms(2), Failed: true, Err: &upstream.RejectedError{Err: breaker.ErrOpen}},
			{Call: "wishlist", Duration: ms(4), Failed: true, Err: &upstream.StatusError{Status: 500}, Cache: "miss"},
		}, gateway: ms(0.5),
			want: `user;desc="cache hit l1";dur=3.0, orders;desc="degraded: deadline_exceeded";dur=5.0, products;desc="cache 40/50 keys";dur=7.0, ` +
				`notifications;desc="degraded: not_found";dur=1.0, recommendations;desc="degraded: circuit_open";dur=2.0, wishlist;desc="degraded: upstream_error";dur=4.0, gateway;dur=0.5`},
		{name: "all fit", timings: many(200, ms(1)), gateway: ms(0.3),
			want: cut.String()[:200*18] + "gateway;dur=0.3"},
		{name: "cut at the size cap", timings: many(300, ms(1)), gateway: ms(0.3), want: cut.String()},
		{name: "huge durations", timings: many(1, time.Duration(1<<62)), gateway: time.Duration(1 << 62),
			want: "call-000;dur=4611686018427.4, gateway;dur=4611686018427.4"},
		{name: "no call fits", timings: []aggregate.CallTiming{{Call: strings.Repeat("x", maxHeaderBytes)}}, gateway: 0,
			want: `more;desc="1 more calls", gateway;dur=0.0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := formatServerTiming(tt.timings, tt.gateway)
			if got != tt.want {
				t.Errorf("Server-Timing\n got %q\nwant %q", got, tt.want)
			}
			if ref := serverTimingReference(tt.timings, tt.gateway); got != ref {
				t.Errorf("Server-Timing\n got %q\n the reference %q", got, ref)
			}
			if len(got) > maxHeaderBytes {
				t.Errorf("Server-Timing is %d bytes, want at most %d", len(got), maxHeaderBytes)
			}
		})
	}
}

// TestListHeaderAllocs: a list header that fits costs one allocation, its
// string; the items are written in place.
func TestListHeaderAllocs(t *testing.T) {
	timings := []aggregate.CallTiming{
		{Call: "user", Duration: 12345 * time.Microsecond, Cache: "hit l1"},
		{Call: "orders", Duration: 1250 * time.Microsecond},
		{Call: "notifications", Duration: 50 * time.Microsecond, Cache: "40/50 keys"},
		{Call: "recommendations", Duration: 999950 * time.Microsecond},
	}
	entries := []aggregate.CacheEntry{
		{Call: "user", Status: cache.HitL1},
		{Call: "orders", Status: cache.Miss},
		{Call: "products", Batch: true, Keys: 50, Hits: 40},
		{Call: "recommendations", Status: cache.HitL2},
	}
	missing := []aggregate.Missing{{Call: "products", Keys: []string{"17", "23", "a b"}}, {Call: "sellers", Keys: []string{"4"}}}
	var sink string
	for _, tt := range []struct {
		name string
		f    func()
	}{
		{"Server-Timing", func() { sink = formatServerTiming(timings, 150*time.Microsecond) }},
		{CacheStatusHeader, func() { sink = cacheStatus(entries) }},
		{MissingKeysHeader, func() { sink = formatMissing(missing) }},
		{DegradedHeader, func() { sink = formatDegraded([]string{"notifications", "recommendations"}) }},
	} {
		if allocs := testing.AllocsPerRun(100, tt.f); allocs > 1 {
			t.Errorf("%s: %v allocs, want 1", tt.name, allocs)
		}
	}
	_ = sink
}
