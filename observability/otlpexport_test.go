package observability

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is a scripted OTLP/HTTP endpoint: each request gets the next
// answer (the last one repeats) and is kept, decoded.
type collector struct {
	mu       sync.Mutex
	answers  []func(w http.ResponseWriter)
	requests []*http.Request
	bodies   [][]byte
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, r)
	c.bodies = append(c.bodies, body)
	if len(c.answers) > 0 {
		a := c.answers[0]
		if len(c.answers) > 1 {
			c.answers = c.answers[1:]
		}
		a(w)
	}
}

func status(code int, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code)+" from the collector")
	}
}

// startExporter starts a collector answering answers and an exporter to
// it whose waits are recorded, not slept.
func startExporter(t *testing.T, s exportSettings, answers ...func(http.ResponseWriter)) (*otlpExporter, *collector, *[]time.Duration) {
	t.Helper()
	c := &collector{answers: answers}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	if s.timeout == 0 {
		s.timeout = 5 * time.Second
	}
	e := newOTLPExporter(srv.URL+"/v1/traces", &http.Client{Transport: tr}, s, "1.2.3")
	var waits []time.Duration
	e.wait = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	return e, c, &waits
}

func TestExporterSendsProtobuf(t *testing.T) {
	e, c, waits := startExporter(t, exportSettings{headers: map[string]string{"Authorization": "Bearer k", "X-Tenant": "a b"}})
	spans := braidLikeSpans(20)
	if err := e.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if err := e.ExportSpans(context.Background(), spans[:3]); err != nil {
		t.Fatal(err)
	}
	if len(c.requests) != 2 || len(*waits) != 0 {
		t.Fatalf("%d requests, %d waits; want 2, 0", len(c.requests), len(*waits))
	}
	r := c.requests[0]
	for k, want := range map[string]string{"Content-Type": "application/x-protobuf", "User-Agent": "braid/1.2.3 (OTLP/HTTP protobuf)",
		"Authorization": "Bearer k", "X-Tenant": "a b", "Content-Encoding": ""} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if r.Method != "POST" || r.URL.Path != "/v1/traces" || r.ContentLength != int64(len(c.bodies[0])) {
		t.Errorf("%s %s, Content-Length %d for %d bytes", r.Method, r.URL.Path, r.ContentLength, len(c.bodies[0]))
	}
	// The buffer is reused: the second request must not carry the first.
	for i, want := range []int{20, 3} {
		if got := countSpans(t, c.bodies[i]); got != want {
			t.Errorf("request %d holds %d spans, want %d", i, got, want)
		}
	}
}

func countSpans(t *testing.T, body []byte) int {
	t.Helper()
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	return n
}

func TestExporterGzip(t *testing.T) {
	e, c, _ := startExporter(t, exportSettings{gzip: true})
	spans := braidLikeSpans(30)
	for range 2 {
		if err := e.ExportSpans(context.Background(), spans); err != nil {
			t.Fatal(err)
		}
	}
	for i, body := range c.bodies {
		if got := c.requests[i].Header.Get("Content-Encoding"); got != "gzip" {
			t.Fatalf("Content-Encoding %q", got)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(plain, appendTraceRequest(nil, spans)) {
			t.Errorf("request %d: the gunzipped body is not the encoded request", i)
		}
	}
}

// TestExporterRetries: 429/502/503/504 are retried (after Retry-After when
// given, else on the back-off schedule); other statuses are not; the
// attempts stop when the caller's context ends.
func TestExporterRetries(t *testing.T) {
	spans := braidLikeSpans(2)
	t.Run("retry-after then success", func(t *testing.T) {
		e, c, waits := startExporter(t, exportSettings{}, status(503, "Retry-After", "2"), status(429, "Retry-After", "1"), status(200))
		if err := e.ExportSpans(context.Background(), spans); err != nil {
			t.Fatal(err)
		}
		if len(c.requests) != 3 || len(*waits) != 2 || (*waits)[0] != 2*time.Second || (*waits)[1] != time.Second {
			t.Errorf("%d requests, waits %v; want 3, [2s 1s]", len(c.requests), *waits)
		}
		if !bytes.Equal(c.bodies[0], c.bodies[2]) {
			t.Error("a retry sent a different body")
		}
	})
	t.Run("back-off without retry-after", func(t *testing.T) {
		e, c, waits := startExporter(t, exportSettings{}, status(502), status(504), status(503), status(200))
		if err := e.ExportSpans(context.Background(), spans); err != nil {
			t.Fatal(err)
		}
		if len(c.requests) != 4 || len(*waits) != 3 {
			t.Fatalf("%d requests, waits %v", len(c.requests), *waits)
		}
		for i, d := range *waits {
			base := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second}[i]
			if d < base/2 || d >= base*3/2 {
				t.Errorf("wait %d = %v, want within ±50%% of %v", i, d, base)
			}
		}
	})
	t.Run("not retried", func(t *testing.T) {
		for _, code := range []int{400, 401, 404, 413, 500} {
			e, c, waits := startExporter(t, exportSettings{}, status(code))
			err := e.ExportSpans(context.Background(), spans)
			if err == nil || !strings.Contains(err.Error(), http.StatusText(code)+" from the collector") || len(c.requests) != 1 || len(*waits) != 0 {
				t.Errorf("%d: %v after %d requests, %d waits; want one request and an error quoting the answer", code, err, len(c.requests), len(*waits))
			}
		}
	})
	t.Run("the caller gives up", func(t *testing.T) {
		e, c, _ := startExporter(t, exportSettings{}, status(503))
		ctx, cancel := context.WithCancel(context.Background())
		e.wait = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
		err := e.ExportSpans(ctx, spans)
		if !errors.Is(err, context.Canceled) || len(c.requests) != 1 {
			t.Errorf("%v after %d requests", err, len(c.requests))
		}
	})
	t.Run("gives up after a minute", func(t *testing.T) {
		e, c, waits := startExporter(t, exportSettings{}, status(503, "Retry-After", "61"))
		if err := e.ExportSpans(context.Background(), spans); err == nil || len(c.requests) != 1 || len(*waits) != 0 {
			t.Errorf("%v after %d requests, waits %v; want an error without waiting past the minute", err, len(c.requests), *waits)
		}
	})
	t.Run("no collector there", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		e := newOTLPExporter("http://"+addr+"/v1/traces", &http.Client{Transport: tr}, exportSettings{timeout: time.Second}, "x")
		e.wait = func(context.Context, time.Duration) error { t.Error("a refused connection was retried"); return nil }
		if err := e.ExportSpans(context.Background(), spans); err == nil || !strings.Contains(err.Error(), addr) {
			t.Errorf("err = %v, want one naming the collector", err)
		}
	})
}

func TestExporterPartialSuccess(t *testing.T) {
	answer := func(rejected int64, msg string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: rejected, ErrorMessage: msg}})
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(b)
		}
	}
	e, _, _ := startExporter(t, exportSettings{}, answer(3, "too old"), answer(0, ""))
	err := e.ExportSpans(context.Background(), braidLikeSpans(5))
	if err == nil || !strings.Contains(err.Error(), "rejected 3 spans: too old") {
		t.Errorf("err = %v, want the rejection reported", err)
	}
	if err := e.ExportSpans(context.Background(), braidLikeSpans(5)); err != nil {
		t.Errorf("an empty partial success: %v", err)
	}
}

func TestExporterShutdown(t *testing.T) {
	e, c, _ := startExporter(t, exportSettings{})
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.ExportSpans(context.Background(), braidLikeSpans(1)); err == nil || len(c.requests) != 0 {
		t.Errorf("after Shutdown: %v, %d requests", err, len(c.requests))
	}
}

// TestExporterAllocations: exporting a batch allocates for the HTTP round
// trip only, not per span (the SDK's exporter: ~25 objects per span).
func TestExporterAllocations(t *testing.T) {
	e, _, _ := startExporter(t, exportSettings{})
	spans := braidLikeSpans(512)
	ctx := context.Background()
	_ = e.ExportSpans(ctx, spans) // warm: buffer grown, connection open
	allocs := testing.AllocsPerRun(20, func() {
		if err := e.ExportSpans(ctx, spans); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 150 {
		t.Errorf("%.0f allocations to export 512 spans, want at most 150 (none per span)", allocs)
	}
}

// TestExportEnv: the OTLP exporter variables of the OpenTelemetry SDKs,
// the traces-specific one replacing the general one, and every bad value
// refused naming its variable.
func TestExportEnv(t *testing.T) {
	settings := func(vars map[string]string) (exportSettings, error) {
		c := Config{}
		vars["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://c:4318"
		c.ApplyEnv(env(vars))
		if err := c.Validate(); err != nil {
			return exportSettings{}, err
		}
		s, errs := c.Tracing.exportSettings()
		return s, errors.Join(errs...)
	}
	s, err := settings(map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": " api-key = secret%20one ,x-b=2,", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
		"OTEL_EXPORTER_OTLP_TIMEOUT": "2500"})
	if err != nil || len(s.headers) != 2 || s.headers["api-key"] != "secret one" || s.headers["x-b"] != "2" || !s.gzip || s.timeout != 2500*time.Millisecond {
		t.Errorf("general variables: %+v, %v", s, err)
	}
	s, err = settings(map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=2",
		"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none"})
	if err != nil || len(s.headers) != 1 || s.headers["b"] != "2" || s.gzip || s.timeout != defaultExportTimeout {
		t.Errorf("traces variables: %+v, %v", s, err)
	}
	_, err = settings(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "novalue,bad name=1,x=%zz,y=a%0Ab", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd",
		"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "10s"})
	for _, want := range []string{`OTEL_EXPORTER_OTLP_TRACES_HEADERS: "novalue" is not key=value`, `"bad name" is not a header name`,
		"the value of x", "the value of y holds control characters", `OTEL_EXPORTER_OTLP_COMPRESSION: "zstd": want gzip or none`,
		`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: want milliseconds`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %s", err, want)
		}
	}
	s, err = settings(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "", "OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_TIMEOUT": " ",
		"OTEL_BSP_MAX_QUEUE_SIZE": ""})
	if err != nil || len(s.headers) != 1 || s.headers["a"] != "1" || s.timeout != defaultExportTimeout {
		t.Errorf("empty variables count as unset: %+v, %v", s, err)
	}
	c := Config{}
	c.ApplyEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}))
	if err := c.Validate(); err != nil {
		t.Errorf("exporter variables without an endpoint (tracing off) are not checked: %v", err)
	}
}

// TestExportThroughTelemetry: spans of a request reach the collector
// through the batch span processor, with the configured headers, and
// Shutdown flushes them.
func TestExportThroughTelemetry(t *testing.T) {
	c := &collector{}
	srv := httptest.NewServer(c)
	defer srv.Close()
	cfg := Config{}
	cfg.ApplyEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_HEADERS": "x-team=edge"}))
	tel, err := New(context.Background(), cfg, Build{Service: "braid", Version: "9"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := tel.Server(ServerOptions{Route: func(*http.Request) string { return "/r" }})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, end := tel.StartCall(r.Context(), "/r", "user", "users")
		end(CallEnd{})
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/r?x=1", nil))
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	tel.AdminHandlers()["/metrics"].ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`braid_trace_spans_total{result="exported"} 2`, `braid_trace_spans_total{result="dropped"} 0`, `braid_trace_spans_total{result="failed"} 0`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.requests) != 1 || c.requests[0].Header.Get("x-team") != "edge" {
		t.Fatalf("%d requests", len(c.requests))
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(c.bodies[0], &req); err != nil {
		t.Fatal(err)
	}
	var names []string
	var server *tracepb.Span
	for _, ss := range req.GetResourceSpans()[0].GetScopeSpans() {
		for _, s := range ss.GetSpans() {
			names = append(names, s.GetName())
			if s.GetKind() == tracepb.Span_SPAN_KIND_SERVER {
				server = s
			}
		}
	}
	if strings.Join(names, ",") != "call user,GET /r" || server == nil || server.GetStatus() == nil {
		t.Fatalf("spans %q", names)
	}
	res := req.GetResourceSpans()[0].GetResource().GetAttributes()
	found := false
	for _, a := range res {
		found = found || a.GetKey() == "service.name" && a.GetValue().GetStringValue() == "braid"
	}
	if !found {
		t.Errorf("resource %v lacks service.name=braid", res)
	}
}

// TestEncodeInvalidUTF8: a string with invalid UTF-8 (a client's path
// with %FF, say) is sent with U+FFFD in its place, so the batch still
// decodes; the SDK's exporter refused to send the whole batch.
func TestEncodeInvalidUTF8(t *testing.T) {
	spans := braidLikeSpans(1)
	stub := tracetest.SpanStubFromReadOnlySpan(spans[0])
	stub.Name = "GET /api/users/\xff/dashboard"
	b := appendTraceRequest(nil, tracetest.SpanStubs{stub}.Snapshots())
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	if got := req.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans()[0].GetName(); got != "GET /api/users/\uFFFD/dashboard" {
		t.Errorf("name %q", got)
	}
}

// TestOutgoingHeader: the carrier sets the canonical names net/http would,
// so upstreams see the same headers.
func TestOutgoingHeader(t *testing.T) {
	for _, k := range []string{"traceparent", "tracestate", "baggage", "x-other"} {
		got, want := http.Header{}, http.Header{}
		outgoingHeader(got).Set(k, "v")
		want.Set(k, "v")
		if len(got) != 1 || got.Get(k) != "v" || len(got[http.CanonicalHeaderKey(k)]) != 1 || outgoingHeader(got).Get(k) != "v" {
			t.Errorf("%s: %v, want %v", k, got, want)
		}
		if keys := outgoingHeader(got).Keys(); len(keys) != 1 || keys[0] != http.CanonicalHeaderKey(k) {
			t.Errorf("%s: keys %v", k, keys)
		}
	}
}

// TestTraceSpanMetricWithTracingOff: the span counter is exposed, at zero,
// with tracing off, so that a dashboard's query finds it either way.
func TestTraceSpanMetricWithTracingOff(t *testing.T) {
	tel, err := New(context.Background(), Config{}, Build{Service: "x"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	rec := httptest.NewRecorder()
	tel.AdminHandlers()["/metrics"].ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, result := range []string{"exported", "dropped", "failed"} {
		if want := `braid_trace_spans_total{result="` + result + `"} 0`; !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
