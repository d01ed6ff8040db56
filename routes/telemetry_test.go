package routes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/observability"
	"github.com/braidgw/braid/upstream"
)

// traced builds the gateway as cmd/gateway wires it, with every span
// recorded in memory, over the given upstream handlers.
func traced(t *testing.T, handlers map[string]http.HandlerFunc, rcs ...RouteConfig) (http.Handler, *tracetest.SpanRecorder, *observability.Telemetry) {
	t.Helper()
	return tracedWith(t, observability.Config{}, handlers, rcs...)
}

// tracedWith is traced with the given observability configuration.
func tracedWith(t *testing.T, cfg observability.Config, handlers map[string]http.HandlerFunc, rcs ...RouteConfig) (http.Handler, *tracetest.SpanRecorder, *observability.Telemetry) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tel, err := observability.New(context.Background(), cfg, observability.Build{Service: "test", Version: "1"},
		observability.Options{SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	cfgs := map[string]upstream.Config{}
	for name, h := range handlers {
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		cfgs[name] = upstream.Config{URL: s.URL, Retry: RetryFast}
	}
	set, err := upstream.NewSet(cfgs, upstream.SetOptions{Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	route := func(r *http.Request) string { return chi.RouteContext(r.Context()).RoutePattern() }
	h, err := New(Config{Routes: rcs}, Options{Stack: set.Stack, Observer: tel,
		Middleware: []func(http.Handler) http.Handler{tel.Server(observability.ServerOptions{Route: route})}})
	if err != nil {
		t.Fatal(err)
	}
	return h, rec, tel
}

// RetryFast keeps retries from waiting in tests.
var RetryFast = upstream.RetryConfig{Backoff: time.Microsecond, MaxBackoff: time.Microsecond}

// spanTree renders the recorded spans as "parent > child" lines.
func spanTree(spans []sdktrace.ReadOnlySpan) map[string]sdktrace.ReadOnlySpan {
	byID := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID().String()] = s
	}
	return byID
}

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestTraceTreeDashboard(t *testing.T) {
	var userCalls atomic.Int64
	h, rec, _ := traced(t, map[string]http.HandlerFunc{
		"users": func(w http.ResponseWriter, r *http.Request) {
			if userCalls.Add(1) == 1 {
				http.Error(w, `{"error":"busy"}`, 503) // retried once
				return
			}
			if r.Header.Get("traceparent") == "" {
				t.Error("upstream request without traceparent")
			}
			_, _ = w.Write([]byte(`{"id":1}`))
		},
		"notifications": func(w http.ResponseWriter, r *http.Request) { http.Error(w, `{}`, 500) }, // degraded
	}, dashboardRoute())
	const incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	req := httptest.NewRequest("GET", "/api/users/1/dashboard", nil)
	req.Header.Set("traceparent", incoming)
	resp, body := do(t, h, req)
	if resp.StatusCode != 200 || resp.Header.Get(DegradedHeader) != "notifications" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	tr := resp.Header.Get("traceresponse")
	if !regexp.MustCompile(`^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$`).MatchString(tr) || strings.Contains(tr, "b7ad6b7169203331") {
		t.Errorf("traceresponse = %q, want the incoming trace id with the gateway's own span id", tr)
	}
	spans := rec.Ended()
	byID := spanTree(spans)
	var server sdktrace.ReadOnlySpan
	calls := map[string]sdktrace.ReadOnlySpan{}
	tries := map[string][]sdktrace.ReadOnlySpan{} // call name -> client spans
	for _, s := range spans {
		switch {
		case s.Name() == "GET /api/users/{id}/dashboard":
			server = s
		case strings.HasPrefix(s.Name(), "call "):
			calls[strings.TrimPrefix(s.Name(), "call ")] = s
		}
	}
	for _, s := range spans {
		if p, ok := byID[s.Parent().SpanID().String()]; ok && strings.HasPrefix(p.Name(), "call ") {
			tries[strings.TrimPrefix(p.Name(), "call ")] = append(tries[strings.TrimPrefix(p.Name(), "call ")], s)
		}
	}
	if server == nil {
		t.Fatalf("no server span named by the route pattern among %d spans", len(spans))
	}
	if server.Parent().SpanID().String() != "b7ad6b7169203331" || server.SpanContext().TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("server span does not continue the incoming traceparent: parent %s", server.Parent().SpanID())
	}
	if v, _ := attr(server, "http.route"); v.AsString() != "/api/users/{id}/dashboard" {
		t.Errorf("http.route = %q", v.AsString())
	}
	for _, name := range []string{"user", "notifications"} {
		c, ok := calls[name]
		if !ok {
			t.Fatalf("no span for call %s", name)
		}
		if c.Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("call %s is not a child of the server span", name)
		}
	}
	if d, _ := attr(calls["notifications"], "braid.degraded"); !d.AsBool() {
		t.Error("notifications call span not marked degraded")
	}
	userTries := tries["user"]
	if len(userTries) != 2 {
		t.Fatalf("call user has %d try spans, want 2 (a 503 and its retry)", len(userTries))
	}
	attempts := map[int64]int64{}
	for _, s := range userTries {
		a, _ := attr(s, "braid.attempt")
		st, _ := attr(s, "http.response.status_code")
		attempts[a.AsInt64()] = st.AsInt64()
	}
	if attempts[1] != 503 || attempts[2] != 200 {
		t.Errorf("user tries (attempt -> status) = %v, want 1 -> 503, 2 -> 200", attempts)
	}
	if len(tries["notifications"]) != 1 {
		t.Errorf("notifications has %d tries, want 1 (500 is not retried)", len(tries["notifications"]))
	}
}

func TestTraceBatchCall(t *testing.T) {
	h, rec, _ := traced(t, map[string]http.HandlerFunc{
		"orders":   body(`[{"product_id":1},{"product_id":2},{"product_id":3}]`),
		"products": body(`[{"id":1},{"id":2}]`),
	}, RouteConfig{Path: "/api/users/{id}/orders-with-products", Calls: []aggregate.CallConfig{
		{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders"},
		{Name: "products", Upstream: "products", Path: "/products",
			Batch: &aggregate.BatchConfig{Keys: "orders[].product_id", Stitch: "orders[].product", MaxBatch: 2}},
	}})
	resp, got := do(t, h, httptest.NewRequest("GET", "/api/users/1/orders-with-products", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	for _, s := range rec.Ended() {
		if s.Name() != "call products" {
			continue
		}
		keys, _ := attr(s, "braid.batch.keys")
		chunks, _ := attr(s, "braid.batch.chunks")
		missing, _ := attr(s, "braid.batch.missing")
		if keys.AsInt64() != 3 || chunks.AsInt64() != 2 || missing.AsInt64() != 1 {
			t.Errorf("products span: keys %d chunks %d missing %d, want 3, 2, 1", keys.AsInt64(), chunks.AsInt64(), missing.AsInt64())
		}
		return
	}
	t.Fatal("no span for call products")
}

// scrape fetches /metrics from the admin handlers and parses it.
func scrape(t *testing.T, tel *observability.Telemetry) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	tel.AdminHandlers()["/metrics"].ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	problems, err := promlint.New(strings.NewReader(rec.Body.String())).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return families
}

// sample returns the value of the series of family with the given labels:
// a counter's or gauge's value, a histogram's count.
func sample(families map[string]*dto.MetricFamily, family string, labels map[string]string) float64 {
	f := families[family]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for _, lp := range m.Label {
			if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
				continue next
			}
		}
		switch {
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return 0
}

func TestMetricsMove(t *testing.T) {
	var fail atomic.Bool
	h, _, tel := traced(t, map[string]http.HandlerFunc{
		"users": func(w http.ResponseWriter, r *http.Request) {
			if fail.Load() {
				http.Error(w, `{}`, 500)
				return
			}
			_, _ = w.Write([]byte(`{"id":1}`))
		},
		"notifications": func(w http.ResponseWriter, r *http.Request) { http.Error(w, `{}`, 503) },
	}, dashboardRoute())
	for range 3 {
		do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil))
	}
	m := scrape(t, tel)
	route := map[string]string{"http_route": "/api/users/{id}/dashboard", "http_request_method": "GET", "http_response_status_code": "200"}
	checks := []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"http_server_request_duration_seconds", route, 3},
		{"braid_upstream_call_duration_seconds", map[string]string{"upstream": "users", "outcome": "ok"}, 3},
		// notifications answers 503: request 1 tries 3 times (error);
		// request 2 fails twice more, the fifth failure in a row opens the
		// breaker and its third try is rejected; request 3 is rejected.
		{"braid_upstream_call_duration_seconds", map[string]string{"upstream": "notifications", "outcome": "error"}, 1},
		{"braid_upstream_call_duration_seconds", map[string]string{"upstream": "notifications", "outcome": "rejected"}, 2},
		{"braid_upstream_tries_total", map[string]string{"upstream": "notifications"}, 7},
		{"braid_upstream_retries_total", map[string]string{"upstream": "notifications"}, 4},
		{"braid_circuit_breaker_state", map[string]string{"upstream": "notifications"}, 2},
		{"braid_degraded_parts_total", map[string]string{"http_route": "GET /api/users/{id}/dashboard", "call": "notifications"}, 3},
		{"braid_circuit_breaker_state", map[string]string{"upstream": "users"}, 0},
		{"http_server_active_requests", nil, 0},
	}
	for _, c := range checks {
		if got := sample(m, c.family, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.family, c.labels, got, c.want)
		}
	}
	if m["go_goroutines"] == nil || m["process_cpu_seconds_total"] == nil {
		t.Error("Go runtime and process metrics missing")
	}
	fail.Store(true) // five failures in a row open the users breaker
	for range 6 {
		do(t, h, httptest.NewRequest("GET", "/api/users/1/dashboard", nil))
	}
	m = scrape(t, tel)
	if got := sample(m, "braid_circuit_breaker_state", map[string]string{"upstream": "users"}); got != 2 {
		t.Errorf("users breaker state = %v, want 2 (open)", got)
	}
	if got := sample(m, "braid_circuit_breaker_transitions_total", map[string]string{"upstream": "users", "to": "open"}); got != 1 {
		t.Errorf("users transitions to open = %v, want 1", got)
	}
	if got := sample(m, "braid_upstream_call_duration_seconds", map[string]string{"upstream": "users", "outcome": "rejected"}); got != 1 {
		t.Errorf("rejected users calls = %v, want 1", got)
	}
}

// TestUnsampledRequestsBuildNoChildSpans: under a parent-based sampler a
// request whose trace is not sampled starts no call or try spans (they
// would be dropped unrecorded), yet every upstream still receives the trace
// context, marked unsampled, with the server span as its parent.
func TestUnsampledRequestsBuildNoChildSpans(t *testing.T) {
	var mu sync.Mutex
	var parents []string
	record := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		parents = append(parents, r.Header.Get("traceparent"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"id":1}`))
	}
	cfg := observability.Config{Tracing: observability.TracingConfig{Sampler: "parentbased_always_off"}}
	h, rec, _ := tracedWith(t, cfg, map[string]http.HandlerFunc{"users": record, "orders": record},
		RouteConfig{Path: "/api/users/{id}", Calls: []aggregate.CallConfig{
			{Name: "user", Upstream: "users", Path: "/users/{id}"},
			{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders"},
		}})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/users/1", nil))
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if n := len(rec.Started()); n != 0 {
		t.Errorf("%d spans started and recorded, want none", n)
	}
	// traceresponse: 00-<trace>-<server span>-00
	tr := strings.Split(w.Header().Get("traceresponse"), "-")
	if len(tr) != 4 || tr[3] != "00" {
		t.Fatalf("traceresponse %q", w.Header().Get("traceresponse"))
	}
	if len(parents) != 2 {
		t.Fatalf("%d upstream calls, want 2", len(parents))
	}
	for _, p := range parents {
		if want := "00-" + tr[1] + "-" + tr[2] + "-00"; p != want {
			t.Errorf("upstream traceparent %q, want %q: the server span as parent, unsampled", p, want)
		}
	}
}
