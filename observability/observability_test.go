package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestApplyEnv(t *testing.T) {
	t.Run("standard variables fill empty fields", func(t *testing.T) {
		var c Config
		c.ApplyEnv(env(map[string]string{"OTEL_SERVICE_NAME": "gw", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://j:4318",
			"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}))
		if c.ServiceName != "gw" || c.Tracing.Endpoint != "http://j:4318" || c.Tracing.Sampler != "traceidratio" || c.Tracing.SamplerArg != "0.25" || c.Tracing.tracesURL {
			t.Errorf("ApplyEnv = %+v", c)
		}
	})
	t.Run("the traces endpoint wins and is a full URL", func(t *testing.T) {
		var c Config
		c.ApplyEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/custom"}))
		if c.Tracing.Endpoint != "http://b:4318/custom" || !c.Tracing.tracesURL {
			t.Errorf("ApplyEnv = %+v", c.Tracing)
		}
	})
	t.Run("the file wins over the environment", func(t *testing.T) {
		c := Config{ServiceName: "file", Tracing: TracingConfig{Endpoint: "http://file:4318"}}
		c.ApplyEnv(env(map[string]string{"OTEL_SERVICE_NAME": "env", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"}))
		if c.ServiceName != "file" || c.Tracing.Endpoint != "http://file:4318" {
			t.Errorf("ApplyEnv = %+v", c)
		}
	})
}

func TestValidate(t *testing.T) {
	rate := 1.5
	c := Config{
		Tracing:   TracingConfig{Endpoint: "jaeger:4318", Sampler: "sometimes", SamplerArg: "2"},
		AccessLog: AccessLogConfig{SampleRate: &rate, SlowThreshold: -time.Second},
	}
	err := c.Validate()
	for _, want := range []string{"observability.tracing.endpoint", "observability.tracing.sampler", "observability.tracing.sampler_arg",
		"observability.access_log.sample_rate", "observability.access_log.slow_threshold"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

func TestSamplers(t *testing.T) {
	for _, name := range samplers {
		if _, err := newSampler(name, "0.5"); err != nil {
			t.Errorf("newSampler(%q) = %v", name, err)
		}
	}
	if s, _ := newSampler("", ""); !strings.Contains(s.Description(), "ParentBased") {
		t.Errorf("default sampler = %s, want parent-based", s.Description())
	}
}

func TestTraceResponse(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	if got, want := TraceResponse(sc), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"; got != want {
		t.Errorf("TraceResponse = %s, want %s", got, want)
	}
}

func TestTracingOffIsNoop(t *testing.T) {
	tel, err := New(context.Background(), Config{}, Build{Service: "x"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tel.Tracing() {
		t.Fatal("tracing on without an endpoint")
	}
	base := http.DefaultTransport
	if tel.Transport("u", base) != base {
		t.Error("Transport wrapped the base with tracing off")
	}
	ctx := context.Background()
	if c, _ := tel.StartCall(ctx, "GET /r", "c", "u"); c != ctx {
		t.Error("StartCall made a new context with tracing off")
	}
	h := tel.Server(ServerOptions{Route: func(*http.Request) string { return "/r" }})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/r", nil))
	if rec.Header().Get("traceresponse") != "" {
		t.Error("traceresponse sent with tracing off")
	}
}

func TestStatsWindow(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st := newStats(clock)
	s := st.series("routes", "GET /r")
	for i := 1; i <= 100; i++ {
		s.add(time.Duration(i)*time.Millisecond, i > 95) // 5% errors, the slowest
	}
	got := st.snapshot().Routes["GET /r"]
	if got.Requests != 100 || got.ErrorRate != 0.05 {
		t.Errorf("summary = %+v, want 100 requests, error rate 0.05", got)
	}
	for _, q := range []struct {
		name      string
		got, true float64
	}{{"p50", got.P50ms, 50}, {"p95", got.P95ms, 95}, {"p99", got.P99ms, 99}} {
		if q.got < q.true || q.got > q.true*1.25 {
			t.Errorf("%s = %vms, want within 25%% above %vms", q.name, q.got, q.true)
		}
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	if got := st.snapshot().Routes["GET /r"]; got.Requests != 0 {
		t.Errorf("after a minute: %+v, want the window empty", got)
	}
}

func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	zero := 0.0
	tel, err := New(context.Background(), Config{AccessLog: AccessLogConfig{SampleRate: &zero, SlowThreshold: time.Hour}}, Build{Service: "x"},
		Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := tel.Server(ServerOptions{Route: func(*http.Request) string { return "/r/{id}" }, DegradedHeader: "Braid-Degraded"})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("fail") != "" {
				w.Header().Set("Braid-Degraded", "b")
				w.WriteHeader(502)
			}
		}))
	for _, u := range []string{"/r/1", "/r/2?fail=1"} {
		req := httptest.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer secret-token")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("logged %d lines, want 1 (sample rate 0 drops the success, the 502 is always logged): %s", len(lines), buf.String())
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line["route"] != "/r/{id}" || line["status"] != 502.0 || line["degraded"] != "b" || line["level"] != "WARN" {
		t.Errorf("access line = %v", line)
	}
	if strings.Contains(buf.String(), "secret-token") {
		t.Error("the access log holds a credential")
	}
}

func TestErrorType(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{{context.Canceled, "canceled"}, {context.DeadlineExceeded, "timeout"}, {errors.New("refused"), "transport"}} {
		if got := errorType(tt.err); got != tt.want {
			t.Errorf("errorType(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

// TestExportOnShutdown: with an endpoint, spans go to <endpoint>/v1/traces
// over OTLP/HTTP, and Shutdown flushes what is still batched.
func TestExportOnShutdown(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		mu.Unlock()
	}))
	defer collector.Close()
	cfg := Config{}
	cfg.ApplyEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}))
	tel, err := New(context.Background(), cfg, Build{Service: "x", Version: "1"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := tel.Server(ServerOptions{Route: func(*http.Request) string { return "/r" }})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/r", nil))
	if rec.Header().Get("traceresponse") == "" {
		t.Error("no traceresponse with tracing on")
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "POST /v1/traces application/x-protobuf" {
		t.Errorf("collector saw %q, want one OTLP/HTTP export", paths)
	}
}

// TestPanicIsObserved: a handler that panics (recovered further out) still
// counts as a 500 and leaves no request in flight.
func TestPanicIsObserved(t *testing.T) {
	tel, err := New(context.Background(), Config{}, Build{Service: "x"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := tel.Server(ServerOptions{Route: func(*http.Request) string { return "/boom" }})(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic was swallowed; the recoverer outside must see it")
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/boom", nil))
	}()
	rec := httptest.NewRecorder()
	tel.AdminHandlers()["/metrics"].ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if !strings.Contains(body, `http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="500",http_route="/boom"} 1`) {
		t.Error("the panicked request is not counted as a 500")
	}
	if !strings.Contains(body, "http_server_active_requests 0") {
		t.Error("the panicked request is still counted in flight")
	}
}

// BenchmarkServerMiddleware is the middleware's cost per request with
// metrics on and the access log on (to a file, as in production) or off,
// with a generated request id or the client's, and with tracing on (spans
// recorded, then handed to an exporter that drops them).
func BenchmarkServerMiddleware(b *testing.B) {
	f, err := os.CreateTemp(b.TempDir(), "access-*.log")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, bc := range []struct {
		name      string
		cfg       Config
		requestID string // sent by the client; "" sends none
		traced    bool
	}{
		{"log-off", Config{AccessLog: AccessLogConfig{Disabled: true}}, "", false},
		{"log-on", Config{}, "", false},
		{"log-off-client-id", Config{AccessLog: AccessLogConfig{Disabled: true}}, "3f1c2a9e-7b4d-4e8a-9c1f-2b6d8e0a4c7f", false},
		{"log-off-traced", Config{AccessLog: AccessLogConfig{Disabled: true}}, "", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := Options{Logger: slog.New(slog.NewTextHandler(f, nil))}
			if bc.traced {
				opts.SpanProcessors = []sdktrace.SpanProcessor{sdktrace.NewSimpleSpanProcessor(tracetest.NewNoopExporter())}
			}
			tel, err := New(context.Background(), bc.cfg, Build{Service: "x"}, opts)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
			h := tel.Server(ServerOptions{Route: func(*http.Request) string { return "/api/users/{id}/dashboard" }})(
				http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
			req := httptest.NewRequest("GET", "/api/users/1/dashboard", nil)
			if bc.requestID != "" {
				req.Header.Set("X-Request-Id", bc.requestID)
			}
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}
