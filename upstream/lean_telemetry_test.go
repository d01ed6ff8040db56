package upstream

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/braidgw/braid/observability"
)

// TestTrySpansSameOnBothTransports: a call retried after a 503, one
// answered 200 and one answered 404, through a traced Set, give the same
// per-try client spans (name, kind, attributes, status) on the lean
// transport as on net/http, and each try carries the traceparent of its
// own span to the upstream.
func TestTrySpansSameOnBothTransports(t *testing.T) {
	var (
		retried atomic.Int64
		mu      sync.Mutex // guards parents
		parents []string   // traceparent of each request, in order
	)
	s, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		parents = append(parents, r.Header.Get("Traceparent"))
		mu.Unlock()
		switch {
		case r.URL.Path == "/retry" && retried.Add(1) == 1:
			jsonHandler(503, `{}`)(w, r)
		case r.URL.Path == "/missing":
			jsonHandler(404, `{}`)(w, r)
		default:
			jsonHandler(200, `{"ok":true}`)(w, r)
		}
	})
	run := func(transport string) []string {
		rec := tracetest.NewSpanRecorder()
		tel, err := observability.New(context.Background(), observability.Config{}, observability.Build{Service: "test", Version: "1"},
			observability.Options{SpanProcessors: []sdktrace.SpanProcessor{rec}})
		if err != nil {
			t.Fatal(err)
		}
		defer tel.Shutdown(context.Background())
		fetch, _ := stackWith(t, Config{URL: s.URL, Transport: transport, Retry: fastRetry}, SetOptions{Telemetry: tel, Rand: func() float64 { return 0.5 }})
		retried.Store(0)
		mu.Lock()
		parents = nil
		mu.Unlock()
		ctx, root := tel.Tracer().Start(context.Background(), "root")
		for _, p := range []string{"/ok", "/retry", "/missing"} {
			fetch(ctx, &Request{Path: p})
		}
		root.End()
		var views []string
		var tries []trace.SpanContext
		for _, sp := range rec.Ended() {
			if sp.SpanKind() != trace.SpanKindClient {
				continue
			}
			tries = append(tries, sp.SpanContext())
			attrs := []string{}
			for _, kv := range sp.Attributes() {
				attrs = append(attrs, fmt.Sprintf("%s=%s", kv.Key, kv.Value.Emit()))
			}
			slices.Sort(attrs)
			views = append(views, fmt.Sprintf("%s parent=%v status=%v %q %v", sp.Name(), sp.Parent().SpanID() == root.SpanContext().SpanID(),
				sp.Status().Code, sp.Status().Description, attrs))
		}
		mu.Lock()
		defer mu.Unlock()
		if len(parents) != len(tries) {
			t.Fatalf("%s: %d requests for %d try spans", transport, len(parents), len(tries))
		}
		for i, sc := range tries {
			if want := fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID()); parents[i] != want {
				t.Errorf("%s: request %d carried traceparent %q, want its try span's %q", transport, i, parents[i], want)
			}
		}
		return views
	}
	lean, nethttp := run(transportLean), run(transportNetHTTP)
	if len(lean) != 4 {
		t.Errorf("lean: %d try spans, want 4 (ok, 503 then 200, 404)", len(lean))
	}
	if !slices.Equal(lean, nethttp) {
		t.Errorf("try spans differ:\nlean:     %q\nnet/http: %q", lean, nethttp)
	}
}
