package observability

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"testing"
)

// TestClientMethodsAreBounded: a request's method is any token the client
// sends. Thirty made-up methods and a GET leave two request series in the
// metrics and in the stats window (GET and _OTHER, as OpenTelemetry's
// conventions have it), and the made-up ones' server spans are named
// "HTTP <route>" with the method as sent in http.request.method_original:
// a client cannot mint series or span names. They were one series each.
func TestClientMethodsAreBounded(t *testing.T) {
	tel, rec := recordingTelemetry(t)
	h := tel.Server(ServerOptions{Route: func(*http.Request) string { return "/r" }})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	methods := []string{http.MethodGet}
	for i := range 30 {
		methods = append(methods, fmt.Sprintf("ZZZ%d", i))
	}
	for _, m := range methods {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, "/r", nil))
	}

	w := httptest.NewRecorder()
	tel.AdminHandlers()["/metrics"].ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	series := regexp.MustCompile(`(?m)^http_server_request_duration_seconds_count\{.*$`).FindAllString(w.Body.String(), -1)
	want := []string{
		`http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/r"} 1`,
		`http_server_request_duration_seconds_count{http_request_method="_OTHER",http_response_status_code="200",http_route="/r"} 30`,
	}
	if !slices.Equal(series, want) {
		t.Errorf("request series:\n%s\nwant:\n%s", series, want)
	}
	var routes []string
	for k, s := range tel.metrics.stats.snapshot().Routes {
		routes = append(routes, fmt.Sprintf("%s %d", k, s.Requests))
	}
	slices.Sort(routes)
	if want := []string{"GET /r 1", "_OTHER /r 30"}; !slices.Equal(routes, want) {
		t.Errorf("stats routes %q, want %q", routes, want)
	}

	spans := rec.Ended()
	if len(spans) != len(methods) {
		t.Fatalf("%d spans, want %d", len(spans), len(methods))
	}
	for i, sp := range spans {
		attrs := attrMap(sp)
		wantName, wantMethod, wantOriginal := "GET /r", "GET", ""
		if i > 0 {
			wantName, wantMethod, wantOriginal = "HTTP /r", "_OTHER", methods[i]
		}
		if sp.Name() != wantName || attrs["http.request.method"] != wantMethod || attrs["http.request.method_original"] != wantOriginal {
			t.Errorf("span %d: %q method %q original %q, want %q, %q, %q", i, sp.Name(),
				attrs["http.request.method"], attrs["http.request.method_original"], wantName, wantMethod, wantOriginal)
		}
	}
}

// TestRequestMetricsAllocateNothing: recording a served request whose
// series exist costs no allocation (a key string and its boxing were
// built per request).
func TestRequestMetricsAllocateNothing(t *testing.T) {
	m := newMetrics(&spanCounts{})
	m.request("/r", http.MethodGet, 200, 1e6)
	if allocs := testing.AllocsPerRun(100, func() { m.request("/r", http.MethodGet, 200, 1e6) }); allocs != 0 {
		t.Errorf("recording a request costs %.0f allocations, want 0", allocs)
	}
}
