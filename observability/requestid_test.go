package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// generatedID is the shape of an id the middleware makes.
var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// observed is a Telemetry whose spans and access log lines are kept.
type observed struct {
	tel   *Telemetry
	spans *tracetest.SpanRecorder
	log   *bytes.Buffer
}

// newObserved builds a Telemetry that logs every request as JSON and, when
// traced, records every span in memory.
func newObserved(t *testing.T, traced bool) *observed {
	t.Helper()
	o := &observed{spans: tracetest.NewSpanRecorder(), log: &bytes.Buffer{}}
	opts := Options{Logger: slog.New(slog.NewJSONHandler(o.log, nil))}
	if traced {
		opts.SpanProcessors = []sdktrace.SpanProcessor{o.spans}
	}
	tel, err := New(context.Background(), Config{}, Build{Service: "x"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	o.tel = tel
	return o
}

// lastLine returns the last access log line, decoded.
func (o *observed) lastLine(t *testing.T) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(o.log.String()), "\n")
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &line); err != nil {
		t.Fatalf("access log %q: %v", o.log.String(), err)
	}
	return line
}

// lastSpanID returns the braid.request_id attribute of the last ended span.
func (o *observed) lastSpanID(t *testing.T) (string, bool) {
	t.Helper()
	ended := o.spans.Ended()
	if len(ended) == 0 {
		t.Fatal("no span ended")
	}
	for _, kv := range ended[len(ended)-1].Attributes() {
		if kv.Key == attrRequestID {
			return kv.Value.AsString(), true
		}
	}
	return "", false
}

// serve sends one request with the given request id header values through
// h and returns the response recorder and the id the handler saw.
func serve(h func(http.Handler) http.Handler, name string, values []string) (*httptest.ResponseRecorder, string) {
	var inCtx string
	handler := h(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inCtx = RequestID(r.Context()) }))
	req := httptest.NewRequest("GET", "/r", nil)
	if values != nil {
		req.Header[name] = values
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return rec, inCtx
}

func TestRequestID(t *testing.T) {
	o := newObserved(t, true)
	mw := o.tel.Server(ServerOptions{Route: func(*http.Request) string { return "/r" }})
	generated := map[string]bool{}
	for _, tt := range []struct {
		name   string
		values []string // X-Request-Id values sent; nil sends none
		keep   bool     // the incoming id is the request's
	}{
		{"short", []string{"a"}, true},
		{"uuid", []string{"3f1c2a9e-7b4d-4e8a-9c1f-2b6d8e0a4c7f"}, true},
		{"every allowed byte", []string{"AZaz09._:-"}, true},
		{"64 bytes", []string{strings.Repeat("x", 64)}, true},
		{"absent", nil, false},
		{"empty", []string{""}, false},
		{"65 bytes", []string{strings.Repeat("y", 65)}, false},
		{"space", []string{"evil id"}, false},
		{"quotes", []string{`"quoted"`}, false},
		{"newline", []string{"line\nbreak"}, false},
		{"carriage return", []string{"line\rbreak"}, false},
		{"tab", []string{"tab\tbed"}, false},
		{"NUL", []string{"nul\x00byte"}, false},
		{"DEL", []string{"del\x7fbyte"}, false},
		{"non-ASCII", []string{"línea"}, false},
		{"comma list", []string{"first,second"}, false},
		{"two headers", []string{"first", "second"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o.log.Reset()
			rec, inCtx := serve(mw, "X-Request-Id", tt.values)
			id := rec.Header().Get("X-Request-Id")
			if got := rec.Header().Values("X-Request-Id"); len(got) != 1 {
				t.Fatalf("response X-Request-Id = %q, want one value", got)
			}
			switch {
			case tt.keep && id != tt.values[0]:
				t.Errorf("X-Request-Id = %q, want the incoming %q echoed", id, tt.values[0])
			case !tt.keep && !generatedID.MatchString(id):
				t.Errorf("X-Request-Id = %q, want 32 lowercase hex digits", id)
			case !tt.keep && generated[id]:
				t.Errorf("X-Request-Id = %q was generated before", id)
			}
			generated[id] = true
			if inCtx != id {
				t.Errorf("RequestID(ctx) in the handler = %q, want %q", inCtx, id)
			}
			if got, ok := o.lastSpanID(t); !ok || got != id {
				t.Errorf("server span braid.request_id = %q (set: %v), want %q", got, ok, id)
			}
			line := o.lastLine(t)
			if line["request_id"] != id {
				t.Errorf("access log request_id = %v, want %q", line["request_id"], id)
			}
			refused, logged := line["request_id_refused_bytes"]
			switch {
			case tt.keep || tt.values == nil:
				if logged {
					t.Errorf("access log request_id_refused_bytes = %v, want none", refused)
				}
			default:
				if want := float64(len(strings.Join(tt.values, ""))); refused != want {
					t.Errorf("access log request_id_refused_bytes = %v, want %v", refused, want)
				}
				for _, v := range tt.values {
					for k, field := range line { // decoded, so an escaped value is found too
						if s, ok := field.(string); ok && v != "" && strings.Contains(s, v) {
							t.Errorf("the access log's %s holds the refused value %q", k, v)
						}
					}
				}
			}
		})
	}
}

// TestRequestIDOnPanic: the id is on the response before the handler runs,
// so the 500 that a recoverer further out writes after a panic carries it,
// and the access log line of the panicked request names it.
func TestRequestIDOnPanic(t *testing.T) {
	for _, tt := range []struct {
		name     string
		incoming string
	}{{"incoming", "req-42"}, {"generated", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			o := newObserved(t, false) // ids do not depend on tracing
			var inCtx string
			h := o.tel.Server(ServerOptions{Route: func(*http.Request) string { return "/boom" }})(
				http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { inCtx = RequestID(r.Context()); panic("boom") }))
			recoverer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer func() {
					if recover() != nil {
						w.WriteHeader(http.StatusInternalServerError)
					}
				}()
				h.ServeHTTP(w, r)
			})
			req := httptest.NewRequest("GET", "/boom", nil)
			if tt.incoming != "" {
				req.Header.Set("X-Request-Id", tt.incoming)
			}
			rec := httptest.NewRecorder()
			recoverer.ServeHTTP(rec, req)
			id := rec.Header().Get("X-Request-Id")
			if rec.Code != 500 || id == "" || id != inCtx || (tt.incoming != "" && id != tt.incoming) || (tt.incoming == "" && !generatedID.MatchString(id)) {
				t.Errorf("after a panic: %d, X-Request-Id %q, handler saw %q, want a 500 carrying the request's id", rec.Code, id, inCtx)
			}
			if line := o.lastLine(t); line["request_id"] != id || line["status"] != 500.0 {
				t.Errorf("access line = %v, want status 500 and request_id %q", line, id)
			}
		})
	}
}

func TestRequestIDOptions(t *testing.T) {
	route := func(*http.Request) string { return "/r" }
	t.Run("custom header", func(t *testing.T) {
		o := newObserved(t, true)
		mw := o.tel.Server(ServerOptions{Route: route, RequestIDHeader: "x-correlation-id"})
		rec, inCtx := serve(mw, "X-Correlation-Id", []string{"corr-1"})
		if got := rec.Header().Get("X-Correlation-Id"); got != "corr-1" || inCtx != "corr-1" {
			t.Errorf("X-Correlation-Id = %q, in the handler %q, want corr-1 echoed", got, inCtx)
		}
		if got := rec.Header().Get("X-Request-Id"); got != "" {
			t.Errorf("X-Request-Id = %q, want none when another header is configured", got)
		}
		rec, _ = serve(mw, "X-Request-Id", []string{"ignored"})
		if got := rec.Header().Get("X-Correlation-Id"); !generatedID.MatchString(got) {
			t.Errorf("X-Correlation-Id = %q, want a generated id: X-Request-Id is not the configured header", got)
		}
	})
	t.Run("off", func(t *testing.T) {
		o := newObserved(t, true)
		mw := o.tel.Server(ServerOptions{Route: route, NoRequestID: true})
		rec, inCtx := serve(mw, "X-Request-Id", []string{"abc"})
		if got := rec.Header().Get("X-Request-Id"); got != "" || inCtx != "" {
			t.Errorf("X-Request-Id = %q, in the handler %q, want neither with NoRequestID", got, inCtx)
		}
		if got, ok := o.lastSpanID(t); ok {
			t.Errorf("server span braid.request_id = %q, want none", got)
		}
		if line := o.lastLine(t); line["request_id"] != nil {
			t.Errorf("access line = %v, want no request_id", line)
		}
	})
}

func TestWithRequestID(t *testing.T) {
	ctx := context.Background()
	if got := RequestID(ctx); got != "" {
		t.Errorf("RequestID(Background) = %q, want empty", got)
	}
	if got := RequestID(WithRequestID(ctx, "abc")); got != "abc" {
		t.Errorf("RequestID(WithRequestID(abc)) = %q", got)
	}
}

// TestRandomRequestIDsDiffer: generated ids are 32 hex digits and do not
// repeat, across goroutines too.
func TestRandomRequestIDsDiffer(t *testing.T) {
	const each, workers = 5000, 4
	ids := make(chan string, each*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				ids <- randomRequestID()
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if !generatedID.MatchString(id) || seen[id] {
			t.Fatalf("id %q: malformed or repeated", id)
		}
		seen[id] = true
	}
}
