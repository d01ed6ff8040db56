package observability

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkinstr "go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// sdkExport sends spans through opentelemetry-go's own OTLP/HTTP exporter
// (the one Braid used before otlpencode.go) and returns the request it
// sent, decoded.
func sdkExport(t testing.TB, spans []sdktrace.ReadOnlySpan) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	var mu sync.Mutex
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		body = b
		mu.Unlock()
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"),
		otlptracehttp.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	return &req
}

// ourExport encodes spans with appendTraceRequest and decodes the bytes.
func ourExport(t testing.TB, spans []sdktrace.ReadOnlySpan) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	b := appendTraceRequest([]byte("junk"), spans)
	if string(b[:4]) != "junk" {
		t.Fatalf("appendTraceRequest overwrote what was in the buffer")
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b[4:], &req); err != nil {
		t.Fatalf("our encoding does not decode: %v", err)
	}
	return &req
}

// sameRequest compares two decoded requests. The SDK's exporter orders
// resources by map iteration, so resources are matched as a set. Link
// trace states, which that exporter leaves out, are checked against the
// spans' own (linkStates: by linked trace and span id) and then cleared.
func sameRequest(t *testing.T, ours, sdk *coltracepb.ExportTraceServiceRequest, linkStates map[string]string) {
	t.Helper()
	n := 0
	for _, rs := range ours.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				for _, l := range s.GetLinks() {
					if want := linkStates[string(l.GetTraceId())+string(l.GetSpanId())]; l.GetTraceState() != want {
						t.Errorf("a link's trace state %q, want %q", l.GetTraceState(), want)
					}
					l.TraceState = ""
					n++
				}
			}
		}
	}
	if n != len(linkStates) {
		t.Errorf("%d links sent, want %d", n, len(linkStates))
	}
	a, b := ours.GetResourceSpans(), sdk.GetResourceSpans()
	if len(a) != len(b) {
		t.Fatalf("%d resource spans, the SDK's exporter sent %d", len(a), len(b))
	}
	used := make([]bool, len(b))
next:
	for i, x := range a {
		for j, y := range b {
			if !used[j] && proto.Equal(x, y) {
				used[j] = true
				continue next
			}
		}
		t.Errorf("resource spans %d differ from every one the SDK's exporter sent:\nours: %v\nsdk:  %v", i, x, b)
	}
	if len(ours.ProtoReflect().GetUnknown()) != 0 {
		t.Errorf("unknown fields in our request")
	}
}

func sc(r *rand.Rand, remote bool, state string) trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	for i := range tid {
		tid[i] = byte(r.Uint32())
	}
	for i := range sid {
		sid[i] = byte(r.Uint32())
	}
	ts, _ := trace.ParseTraceState(state)
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(r.IntN(2)), TraceState: ts, Remote: remote})
}

// randomValue is an attribute value of any type, strings of lengths around
// the one-byte length boundary (127/128) included.
func randomValue(r *rand.Rand, depth int) attribute.Value {
	str := func() string {
		return strings.Repeat("é", r.IntN(3)) + strings.Repeat("x", []int{0, 1, 126, 127, 128, 300, 20000}[r.IntN(7)])
	}
	switch n := r.IntN(13); {
	case n == 0:
		return attribute.Value{} // EMPTY
	case n == 1:
		return attribute.BoolValue(r.IntN(2) == 1)
	case n == 2:
		return attribute.Int64Value([]int64{0, -1, 1, math.MinInt64, math.MaxInt64, r.Int64()}[r.IntN(6)])
	case n == 3:
		return attribute.Float64Value([]float64{0, -0.5, math.Inf(1), math.MaxFloat64, r.Float64()}[r.IntN(5)])
	case n == 4:
		return attribute.BoolSliceValue([]bool{true, false, true}[:r.IntN(4)])
	case n == 5:
		return attribute.Int64SliceValue([]int64{0, -7, 1 << 40}[:r.IntN(4)])
	case n == 6:
		return attribute.Float64SliceValue([]float64{0, 1.5}[:r.IntN(3)])
	case n == 7:
		return attribute.StringSliceValue([]string{"", str(), "b"}[:r.IntN(4)])
	case n == 8:
		return attribute.ByteSliceValue([]byte(str()))
	case n == 9 && depth < 2:
		vs := make([]attribute.Value, r.IntN(4))
		for i := range vs {
			vs[i] = randomValue(r, depth+1)
		}
		return attribute.SliceValue(vs...)
	case n == 10 && depth < 2:
		kvs := make([]attribute.KeyValue, r.IntN(4))
		for i := range kvs {
			kvs[i] = attribute.KeyValue{Key: attribute.Key("k" + strings.Repeat("é", r.IntN(2))), Value: randomValue(r, depth+1)}
		}
		return attribute.MapValue(kvs...)
	}
	return attribute.StringValue(str())
}

func randomAttrs(r *rand.Rand, n int) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, r.IntN(n+1))
	for i := range kvs {
		kvs[i] = attribute.KeyValue{Key: attribute.Key("attr." + string(rune('a'+i))), Value: randomValue(r, 0)}
	}
	return kvs
}

// randomSpans builds n spans over a few resources and scopes, with every
// field the exporter writes set to something, zero values included.
func randomSpans(r *rand.Rand, n int) ([]sdktrace.ReadOnlySpan, map[string]string) {
	resources := []*resource.Resource{
		resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0", attribute.String("service.name", "braid"), attribute.String("service.version", "1")),
		resource.NewSchemaless(attribute.String("service.name", "other")),
		resource.Empty(),
	}
	scopes := []sdkinstr.Scope{
		{Name: "github.com/braidgw/braid"},
		{Name: "lib", Version: "1.2.3", SchemaURL: "https://example.com/s", Attributes: attribute.NewSet(attribute.Int("n", 1))},
		{},
	}
	stubs := make(tracetest.SpanStubs, n)
	start := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	for i := range stubs {
		s := tracetest.SpanStub{
			Name:                 []string{"", "GET", "call user", strings.Repeat("n", 200)}[r.IntN(4)],
			SpanContext:          sc(r, false, []string{"", "vendor=value"}[r.IntN(2)]),
			SpanKind:             trace.SpanKind(r.IntN(7)),
			StartTime:            start.Add(time.Duration(r.IntN(1e9))),
			Attributes:           randomAttrs(r, 8),
			Status:               sdktrace.Status{Code: codes.Code(r.IntN(3)), Description: []string{"", "upstream said 503"}[r.IntN(2)]},
			DroppedAttributes:    r.IntN(2) * r.IntN(300),
			DroppedEvents:        r.IntN(2),
			DroppedLinks:         r.IntN(2) * 3,
			Resource:             resources[r.IntN(len(resources))],
			InstrumentationScope: scopes[r.IntN(len(scopes))],
		}
		if r.IntN(4) > 0 {
			s.EndTime = s.StartTime.Add(time.Duration(r.IntN(1e7)))
		}
		if r.IntN(3) > 0 {
			s.Parent = sc(r, r.IntN(2) == 1, "")
		}
		for range r.IntN(3) {
			s.Events = append(s.Events, sdktrace.Event{Name: []string{"exception", ""}[r.IntN(2)], Time: s.StartTime.Add(time.Millisecond),
				Attributes: randomAttrs(r, 3), DroppedAttributeCount: r.IntN(2)})
		}
		for range r.IntN(3) {
			state := []string{"", "a=b"}[r.IntN(2)]
			s.Links = append(s.Links, sdktrace.Link{SpanContext: sc(r, r.IntN(2) == 1, state), Attributes: randomAttrs(r, 2), DroppedAttributeCount: r.IntN(2)})
		}
		stubs[i] = s
	}
	snaps := stubs.Snapshots()
	states := map[string]string{} // linked trace id + span id -> trace state
	for _, s := range snaps {
		for _, l := range s.Links() {
			tid, sid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
			states[string(tid[:])+string(sid[:])] = l.SpanContext.TraceState().String()
		}
	}
	return snaps, states
}

// TestEncodeMatchesSDKExporter: for random spans of every shape, the
// request appendTraceRequest writes decodes to the one opentelemetry-go's
// OTLP exporter sends (resources as a set; link trace states, which that
// exporter drops, checked on their own).
func TestEncodeMatchesSDKExporter(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 26))
	for i := range 150 {
		n := []int{1, 2, 5, 40}[i%4]
		spans, states := randomSpans(r, n)
		sameRequest(t, ourExport(t, spans), sdkExport(t, spans), states)
		if t.Failed() {
			t.Fatalf("case %d (%d spans)", i, n)
		}
	}
}

// TestEncodeRealSpans: spans as Braid's own middleware makes them, through
// a tracer provider, encode as the SDK's exporter encodes them.
func TestEncodeRealSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel, err := New(context.Background(), Config{}, Build{Service: "braid", Version: "test"}, Options{SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	h := tel.Server(ServerOptions{Route: func(*http.Request) string { return "/api/users/{id}/dashboard" }})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, end := tel.StartCall(r.Context(), "/api/users/{id}/dashboard", "user", "users")
		end(CallEnd{Err: io.ErrUnexpectedEOF, Optional: true})
		w.WriteHeader(http.StatusBadGateway)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/users/1/dashboard", nil))
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans ended, want the call's and the server's", len(spans))
	}
	sameRequest(t, ourExport(t, spans), sdkExport(t, spans), nil)
}

// TestCloseMessageLengths: a message's length is written in as many bytes
// as it needs, the message moved along intact.
func TestCloseMessageLengths(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 300, 16383, 16384, 1 << 21} {
		b, at := openMessage([]byte{0xAA}, 5)
		for i := range n {
			b = append(b, byte(i))
		}
		b = closeMessage(b, at)
		num, typ, l := protowire.ConsumeTag(b[1:])
		if num != 5 || typ != protowire.BytesType {
			t.Fatalf("n=%d: tag %d/%d", n, num, typ)
		}
		v, k := protowire.ConsumeVarint(b[1+l:])
		if int(v) != n || len(b) != 1+l+k+n {
			t.Fatalf("n=%d: length %d in %d bytes, total %d", n, v, k, len(b))
		}
		for i, c := range b[1+l+k:] {
			if c != byte(i) {
				t.Fatalf("n=%d: byte %d is %d", n, i, c)
			}
		}
	}
}

// BenchmarkEncode: one batch of 512 Braid-like spans (the batch span
// processor's batch), ours against the SDK's conversion and marshalling.
func BenchmarkEncode(b *testing.B) {
	spans := braidLikeSpans(512)
	b.Run("braid", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendTraceRequest(buf[:0], spans)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("sdk-exporter", func(b *testing.B) {
		b.ReportAllocs()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
		defer srv.Close()
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"), otlptracehttp.WithHTTPClient(&http.Client{Transport: tr}))
		if err != nil {
			b.Fatal(err)
		}
		defer exp.Shutdown(context.Background())
		for b.Loop() {
			if err := exp.ExportSpans(context.Background(), spans); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("braid-exporter", func(b *testing.B) {
		b.ReportAllocs()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
		defer srv.Close()
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		exp := newOTLPExporter(srv.URL+"/v1/traces", &http.Client{Transport: tr}, exportSettings{timeout: time.Second}, "bench")
		defer exp.Shutdown(context.Background())
		for b.Loop() {
			if err := exp.ExportSpans(context.Background(), spans); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// braidLikeSpans are n spans shaped like a dashboard's: a server span,
// call spans and client try spans with Braid's attributes.
func braidLikeSpans(n int) []sdktrace.ReadOnlySpan {
	r := rand.New(rand.NewPCG(1, 2))
	res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0", attribute.String("service.name", "braid"), attribute.String("service.version", "dev"))
	scope := sdkinstr.Scope{Name: "github.com/braidgw/braid"}
	stubs := make(tracetest.SpanStubs, n)
	start := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	for i := range stubs {
		s := tracetest.SpanStub{SpanContext: sc(r, false, ""), Parent: sc(r, false, ""), StartTime: start, EndTime: start.Add(time.Millisecond),
			Resource: res, InstrumentationScope: scope}
		switch i % 9 {
		case 0:
			s.Name, s.SpanKind = "GET /api/users/{id}/dashboard", trace.SpanKindServer
			s.Attributes = []attribute.KeyValue{attribute.String("http.request.method", "GET"), attribute.String("url.path", "/api/users/7/dashboard"),
				attribute.String("url.scheme", "http"), attribute.String("network.protocol.version", "1.1"), attribute.String("braid.request_id", "f894e3cecdfce977cedad24deb3c686b"),
				attribute.String("http.route", "/api/users/{id}/dashboard"), attribute.Int("http.response.status_code", 200)}
		case 1, 3, 5, 7:
			s.Name, s.SpanKind = "call user", trace.SpanKindInternal
			s.Attributes = []attribute.KeyValue{attribute.String("braid.call", "user"), attribute.String("braid.upstream", "users"),
				attribute.Bool("braid.optional", false), attribute.Bool("braid.degraded", false)}
		default:
			s.Name, s.SpanKind = "GET", trace.SpanKindClient
			s.Attributes = []attribute.KeyValue{attribute.String("http.request.method", "GET"), attribute.String("server.address", "127.0.0.1"),
				attribute.String("url.full", "http://127.0.0.1:9101/users/7"), attribute.String("braid.upstream", "users"), attribute.Int("server.port", 9101),
				attribute.Int("braid.attempt", 1), attribute.Bool("braid.hedge", false), attribute.Int("http.response.status_code", 200)}
		}
		stubs[i] = s
	}
	return stubs.Snapshots()
}
