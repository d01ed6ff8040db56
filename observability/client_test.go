package observability

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTrySpanServerAttributes: each try's client span names the host and
// port it went to, also when one transport sees several hosts in turn (the
// attributes are made once per host); the request handed down is the one
// given, carrying the try span's traceparent.
func TestTrySpanServerAttributes(t *testing.T) {
	tel, rec := recordingTelemetry(t)
	var sent []*http.Request
	rt := tel.Transport("users", roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r)
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("{}"))}, nil
	}))
	ctx, root := tel.Tracer().Start(context.Background(), "root")
	urls := []string{"http://127.0.0.1:9101/users/7", "http://[::1]:9102/orders?limit=5", "http://svc.local/p", "http://127.0.0.1:9101/users/8"}
	var given []*http.Request
	for _, u := range urls {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		given = append(given, req)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	root.End()
	want := []struct{ address, port string }{{"127.0.0.1", "9101"}, {"::1", "9102"}, {"svc.local", ""}, {"127.0.0.1", "9101"}}
	var tries []sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.Name() == http.MethodGet {
			tries = append(tries, sp)
		}
	}
	if len(tries) != len(urls) {
		t.Fatalf("%d try spans, want %d", len(tries), len(urls))
	}
	for i, sp := range tries {
		attrs := attrMap(sp)
		if attrs["server.address"] != want[i].address || attrs["server.port"] != want[i].port || attrs["url.full"] != urls[i] {
			t.Errorf("try %d: server.address %q server.port %q url.full %q, want %q %q %q", i,
				attrs["server.address"], attrs["server.port"], attrs["url.full"], want[i].address, want[i].port, urls[i])
		}
		if sent[i] != given[i] {
			t.Errorf("try %d: the transport below got a copy of the request", i)
		}
		if tp := given[i].Header.Get("Traceparent"); tp != TraceResponse(sp.SpanContext()) {
			t.Errorf("try %d: traceparent %q, want the try span's %q", i, tp, TraceResponse(sp.SpanContext()))
		}
	}
}

// recordingTelemetry is a Telemetry with default settings that hands every
// span to the recorder it returns; it shuts down when the test ends.
func recordingTelemetry(t *testing.T) (*Telemetry, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tel, err := New(context.Background(), Config{}, Build{Service: "x"}, Options{SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	return tel, rec
}

// attrMap is a span's attributes by key, their values as text.
func attrMap(sp sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range sp.Attributes() {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}
