package observability

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// chanExporter hands every export to the test: its size goes on sizes,
// and the export returns when the test sends on release (or at once when
// release is nil).
type chanExporter struct {
	sizes    chan int
	release  chan struct{}
	mu       sync.Mutex
	ctxErrs  []error
	shutdown int
}

func newChanExporter(blocking bool) *chanExporter {
	e := &chanExporter{sizes: make(chan int, 1000)}
	if blocking {
		e.release = make(chan struct{})
	}
	return e
}

func (e *chanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.sizes <- len(spans)
	if e.release != nil {
		select {
		case <-e.release:
		case <-ctx.Done():
		}
	}
	e.mu.Lock()
	e.ctxErrs = append(e.ctxErrs, ctx.Err())
	e.mu.Unlock()
	return nil
}

func (e *chanExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	e.shutdown++
	e.mu.Unlock()
	return nil
}

func sampledSpans(n int, sampled bool) []sdktrace.ReadOnlySpan {
	stubs := make(tracetest.SpanStubs, n)
	flags := trace.TraceFlags(0)
	if sampled {
		flags = trace.FlagsSampled
	}
	for i := range stubs {
		stubs[i].SpanContext = trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{byte(i + 1)}, TraceFlags: flags})
	}
	return stubs.Snapshots()
}

// startBatcher starts a batcher whose delay never passes unless the test
// sends on the returned tick channel.
func startBatcher(t *testing.T, exp sdktrace.SpanExporter, o batchOptions) (*spanBatcher, chan time.Time) {
	t.Helper()
	tick := make(chan time.Time)
	b := newSpanBatcher(exp, o)
	b.tick = tick
	b.start()
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return b, tick
}

func recv(t *testing.T, c <-chan int) int {
	t.Helper()
	select {
	case n := <-c:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no export")
		return 0
	}
}

// TestBatcherWakesPerBatch: the exporting goroutine is woken by the span
// that fills a batch, not by every span.
func TestBatcherWakesPerBatch(t *testing.T) {
	exp := newChanExporter(false)
	// The queue holds all 5 120 spans sent below even if the exporter
	// does not run meanwhile.
	b, _ := startBatcher(t, exp, batchOptions{maxQueue: 8192, batchSize: 512, timeout: time.Second})
	spans := sampledSpans(512, true)
	for _, s := range spans[:511] {
		b.OnEnd(s)
	}
	if len(b.kick) != 0 {
		t.Fatal("woken before the batch was full")
	}
	b.OnEnd(spans[511])
	if n := recv(t, exp.sizes); n != 512 {
		t.Errorf("exported %d spans, want the batch of 512", n)
	}
	// Many batches: every export at most a batch, far fewer exports than
	// spans, nothing lost.
	total, exports := 0, 0
	for range 10 {
		for _, s := range spans {
			b.OnEnd(s)
		}
	}
	if err := b.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for len(exp.sizes) > 0 {
		n := <-exp.sizes
		if n > 512 {
			t.Errorf("an export of %d spans, more than the batch size", n)
		}
		total += n
		exports++
	}
	if total != 5120 || exports > 20 {
		t.Errorf("%d spans in %d exports, want 5120 in at most 20", total, exports)
	}
}

// TestBatcherFullBatches: a wake-up by a full batch exports whole batches
// only; what is left over waits for the next batch or the delay.
func TestBatcherFullBatches(t *testing.T) {
	exp := newChanExporter(true)
	b, tick := startBatcher(t, exp, batchOptions{maxQueue: 100, batchSize: 4, timeout: time.Minute})
	spans := sampledSpans(11, true)
	for _, s := range spans[:4] {
		b.OnEnd(s)
	}
	if n := recv(t, exp.sizes); n != 4 {
		t.Fatalf("first export %d", n)
	}
	for _, s := range spans[4:] { // 7 while the first export is under way
		b.OnEnd(s)
	}
	exp.release <- struct{}{}
	if n := recv(t, exp.sizes); n != 4 {
		t.Errorf("after the wake-up: an export of %d, want one full batch", n)
	}
	exp.release <- struct{}{}
	b.mu.Lock()
	left := len(b.queue)
	b.mu.Unlock()
	if left != 3 {
		t.Errorf("%d left queued, want 3", left)
	}
	tick <- time.Now()
	if n := recv(t, exp.sizes); n != 3 {
		t.Errorf("the delay exported %d, want the 3 left", n)
	}
	exp.release <- struct{}{}
}

func TestBatcherDelay(t *testing.T) {
	exp := newChanExporter(false)
	b, tick := startBatcher(t, exp, batchOptions{maxQueue: 2048, batchSize: 512, timeout: time.Second})
	for _, s := range sampledSpans(3, true) {
		b.OnEnd(s)
	}
	for _, s := range sampledSpans(4, false) {
		b.OnEnd(s) // unsampled: never exported
	}
	tick <- time.Now()
	if n := recv(t, exp.sizes); n != 3 {
		t.Errorf("the delay exported %d spans, want the 3 sampled", n)
	}
}

// TestBatcherQueueLimit: while an export is under way, spans queue up to
// the limit; the rest are dropped and reported; the queue drains in
// batches.
func TestBatcherQueueLimit(t *testing.T) {
	var mu sync.Mutex
	var reported []error
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }))
	defer otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	exp := newChanExporter(true)
	b, tick := startBatcher(t, exp, batchOptions{maxQueue: 10, batchSize: 4, timeout: time.Minute})
	spans := sampledSpans(20, true)
	for _, s := range spans[:4] {
		b.OnEnd(s)
	}
	if n := recv(t, exp.sizes); n != 4 { // the exporter now holds the first batch
		t.Fatalf("first export %d", n)
	}
	for _, s := range spans[4:] { // 16 more: 10 fit
		b.OnEnd(s)
	}
	exp.release <- struct{}{}
	// Woken by the full batch: the full batches go, the last 2 wait for
	// the delay.
	var sizes []int
	for range 2 {
		sizes = append(sizes, recv(t, exp.sizes))
		exp.release <- struct{}{}
	}
	tick <- time.Now()
	sizes = append(sizes, recv(t, exp.sizes))
	exp.release <- struct{}{}
	if sizes[0] != 4 || sizes[1] != 4 || sizes[2] != 2 {
		t.Errorf("then exports of %v, want [4 4 2]", sizes)
	}
	if err := b.ForceFlush(context.Background()); err != nil { // the last export has been counted
		t.Fatal(err)
	}
	if d, e := b.dropped.Load(), b.exported.Load(); d != 6 || e != 14 {
		t.Errorf("counted %d dropped, %d exported; want 6, 14", d, e)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "6 spans dropped: more than 10 were waiting") {
		t.Errorf("reported %v", reported)
	}
}

func TestBatcherShutdown(t *testing.T) {
	t.Run("exports what is queued", func(t *testing.T) {
		exp := newChanExporter(false)
		b := newSpanBatcher(exp, defaultBatchOptions).start()
		for _, s := range sampledSpans(7, true) {
			b.OnEnd(s)
		}
		if err := b.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := recv(t, exp.sizes); n != 7 || exp.shutdown != 1 {
			t.Errorf("exported %d, exporter shut down %d times", n, exp.shutdown)
		}
		b.OnEnd(sampledSpans(1, true)[0]) // after: dropped
		if err := b.Shutdown(context.Background()); err != nil || exp.shutdown != 1 || len(b.queue) != 0 {
			t.Errorf("a second Shutdown: %v, exporter shut down %d times, %d queued", err, exp.shutdown, len(b.queue))
		}
		if err := b.ForceFlush(context.Background()); err != nil {
			t.Errorf("ForceFlush after Shutdown: %v", err)
		}
	})
	t.Run("abandons a stuck export when its context ends", func(t *testing.T) {
		exp := newChanExporter(true)
		b := newSpanBatcher(exp, defaultBatchOptions).start()
		b.OnEnd(sampledSpans(1, true)[0])
		ctx, cancel := context.WithCancel(context.Background())
		go func() { recv(t, exp.sizes); cancel() }()
		err := b.Shutdown(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown = %v, want its context's error", err)
		}
		select {
		case <-b.done:
		default:
			t.Error("the goroutine outlived Shutdown")
		}
		exp.mu.Lock()
		defer exp.mu.Unlock()
		if len(exp.ctxErrs) != 1 || exp.ctxErrs[0] == nil {
			t.Errorf("the export's context: %v, want it cancelled", exp.ctxErrs)
		}
	})
}

func TestBatcherForceFlush(t *testing.T) {
	exp := newChanExporter(true)
	b, _ := startBatcher(t, exp, defaultBatchOptions)
	b.OnEnd(sampledSpans(1, true)[0])
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- b.ForceFlush(ctx) }()
	if n := recv(t, exp.sizes); n != 1 {
		t.Fatalf("flushed %d", n)
	}
	cancel() // the export is stuck: ForceFlush gives up with ctx
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("ForceFlush = %v", err)
	}
	exp.release <- struct{}{}
	go func() { errc <- b.ForceFlush(context.Background()) }()
	if err := <-errc; err != nil {
		t.Errorf("ForceFlush with nothing queued: %v", err)
	}
}

func TestBatchEnv(t *testing.T) {
	c := Config{}
	c.ApplyEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BSP_EXPORT_TIMEOUT": "1500",
		"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "300"}))
	o, errs := c.Tracing.batchOptions()
	if len(errs) != 0 || o != (batchOptions{maxQueue: 100, batchSize: 100, delay: 200 * time.Millisecond, timeout: 1500 * time.Millisecond}) {
		t.Errorf("batchOptions = %+v, %v", o, errs)
	}
	if o, _ := (TracingConfig{}).batchOptions(); o != defaultBatchOptions {
		t.Errorf("defaults = %+v", o)
	}
	c = Config{}
	c.ApplyEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_BSP_SCHEDULE_DELAY": "5s", "OTEL_BSP_MAX_QUEUE_SIZE": "0"}))
	err := c.Validate()
	for _, want := range []string{`OTEL_BSP_SCHEDULE_DELAY: want milliseconds from 1 to 3600000, got "5s"`, `OTEL_BSP_MAX_QUEUE_SIZE: want a count from 1 to 1000000, got "0"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %s", err, want)
		}
	}
}

// BenchmarkTracedRequest is the tracing cost of one dashboard-shaped
// request at 100 % sampling, through the real middleware: a server span,
// four call spans and four client try spans (against a canned upstream
// answer), exported to a loopback collector. "sdk" is what Braid used
// before: the SDK's batch span processor and OTLP exporter; "braid" is
// spanBatcher and otlpExporter ("braid-1%" sampling 1 % of requests);
// "off" is the same request untraced. Run
// in parallel, so the exporting
// goroutine's CPU counts against ns/op.
func BenchmarkTracedRequest(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	braid := func(client *http.Client) sdktrace.SpanProcessor {
		return newSpanBatcher(newOTLPExporter(srv.URL+"/v1/traces", client, exportSettings{timeout: 10 * time.Second}, "bench"),
			batchOptions{maxQueue: benchQueue, batchSize: 512, delay: 5 * time.Second, timeout: 30 * time.Second}).start()
	}
	for _, bc := range []struct {
		name  string
		sp    func(client *http.Client) sdktrace.SpanProcessor
		ratio string // sampler_arg of parentbased_traceidratio; "" samples all
	}{
		{"off", nil, ""},
		{"sdk", func(client *http.Client) sdktrace.SpanProcessor {
			exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"), otlptracehttp.WithHTTPClient(client))
			if err != nil {
				b.Fatal(err)
			}
			return sdktrace.NewBatchSpanProcessor(exp, sdktrace.WithMaxQueueSize(benchQueue))
		}, ""},
		{"braid", braid, ""},
		{"braid-1%", braid, "0.01"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			var opts Options
			if bc.sp != nil {
				opts.SpanProcessors = []sdktrace.SpanProcessor{bc.sp(&http.Client{Transport: tr})}
			}
			cfg := Config{AccessLog: AccessLogConfig{Disabled: true}, Metrics: MetricsConfig{Disabled: true}}
			if bc.ratio != "" {
				cfg.Tracing = TracingConfig{Sampler: "parentbased_traceidratio", SamplerArg: bc.ratio}
			}
			tel, err := New(context.Background(), cfg, Build{Service: "braid", Version: "bench"}, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer tel.Shutdown(context.Background())
			upstream := tel.Transport("users", cannedTransport{})
			h := tel.Server(ServerOptions{Route: func(*http.Request) string { return "/api/users/{id}/dashboard" }})(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					for _, call := range []string{"user", "orders", "notifications", "recommendations"} {
						ctx, end := tel.StartCall(r.Context(), "/api/users/{id}/dashboard", call, "users")
						req, _ := http.NewRequestWithContext(WithTry(ctx, 1, false), "GET", "http://127.0.0.1:9101/users/7", nil)
						resp, err := upstream.RoundTrip(req)
						if err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
						end(CallEnd{Err: err})
					}
					w.WriteHeader(200)
				}))
			b.ReportAllocs()
			b.SetParallelism(benchParallelism)
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", "/api/users/7/dashboard", nil)
				w := httptest.NewRecorder()
				for pb.Next() {
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}

// benchQueue: a queue no benchmark fills, so that no span is dropped
// (which would make exporting look cheaper).
const benchQueue = 1 << 20

// benchParallelism: goroutines per CPU serving requests, as many as at
// 32 concurrent requests on a 2-CPU machine.
const benchParallelism = 16

// cannedTransport answers every request 200 with a small JSON body.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"id":7}`)), ContentLength: 8}, nil
}

// failingExporter fails every export and tells the test it was called.
type failingExporter struct{ calls chan int }

func (e failingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.calls <- len(spans)
	return errors.New("connection refused")
}

func (failingExporter) Shutdown(context.Context) error { return nil }

// TestBatcherReportsThrottled: while every export fails, one problem is
// reported per 10 s, the next saying how many went unsaid.
func TestBatcherReportsThrottled(t *testing.T) {
	var mu sync.Mutex
	var reported []string
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { mu.Lock(); reported = append(reported, err.Error()); mu.Unlock() }))
	defer otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	exp := failingExporter{calls: make(chan int, 10)}
	tick := make(chan time.Time)
	b := newSpanBatcher(exp, defaultBatchOptions)
	b.tick = tick
	clock := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	// The time of each failed export's report, read by the exporting
	// goroutine only.
	times := []time.Duration{0, time.Second, 2 * time.Second, 11 * time.Second, 12 * time.Second}
	b.now = func() time.Time { d := times[0]; times = times[1:]; return clock.Add(d) }
	b.start()
	defer b.Shutdown(context.Background())
	for range 5 {
		b.OnEnd(sampledSpans(1, true)[0])
		tick <- clock
		recv(t, exp.calls)
	}
	if err := b.ForceFlush(context.Background()); err != nil { // the last report has been made
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 2 || !strings.Contains(reported[0], "exporting 1 spans: connection refused") ||
		!strings.Contains(reported[1], "(and 2 more problems in the 11s before)") {
		t.Errorf("reported %q, want the first failure and, 11 s later, one saying 2 more went unsaid", reported)
	}
	if f, e := b.failed.Load(), b.exported.Load(); f != 5 || e != 0 {
		t.Errorf("counted %d failed, %d exported; want 5, 0", f, e)
	}
}
