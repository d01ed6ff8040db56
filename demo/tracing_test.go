package demo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/braidgw/braid/observability"
)

// Fixed ids of the caller's span in the incoming traceparent.
const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + callerTraceID + "-" + callerSpanID + "-01"
)

// newTestTelemetry returns a Telemetry that traces into an in-memory
// recorder, without metrics or access log, shut down with the test.
func newTestTelemetry(t *testing.T) (*observability.Telemetry, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	cfg := observability.Config{Metrics: observability.MetricsConfig{Disabled: true}, AccessLog: observability.AccessLogConfig{Disabled: true}}
	tel, err := observability.New(t.Context(), cfg, observability.Build{Service: "braid-demo-test"},
		observability.Options{SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return tel, rec
}

// tracedGet serves a GET of target on h in process with the caller's
// traceparent and returns the response.
func tracedGet(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
	req.Header.Set("traceparent", traceparent)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// attrOf returns the value of the span's attribute key, "" if it has none.
func attrOf(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// onlySpan fails unless spans holds exactly one span and returns it.
func onlySpan(t *testing.T, spans []sdktrace.ReadOnlySpan, what string) sdktrace.ReadOnlySpan {
	t.Helper()
	if len(spans) != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("%s: %d spans %q, want 1", what, len(spans), names)
	}
	return spans[0]
}

func TestServerSpanContinuesIncomingTrace(t *testing.T) {
	tel, rec := newTestTelemetry(t)
	s := newTestService(t, "orders", ServiceOptions{Telemetry: tel})
	for _, tc := range []struct {
		target, name, route string
		status              int
	}{
		{"/users/1/orders?limit=2", "GET /users/{id}/orders", "/users/{id}/orders", http.StatusOK},
		{"/orders/999999", "GET /orders/{id}", "/orders/{id}", http.StatusNotFound},
		{"/healthz", "GET /healthz", "/healthz", http.StatusOK},
		{"/no/such/route", "GET", "", http.StatusNotFound}, // the catch-all is no route
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tracedGet(t, s, tc.target)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			span := onlySpan(t, rec.Ended(), tc.target)
			rec.Reset()
			sc := span.SpanContext()
			if span.Name() != tc.name || span.SpanKind() != trace.SpanKindServer {
				t.Errorf("span %q of kind %v, want %q of kind server", span.Name(), span.SpanKind(), tc.name)
			}
			if got := sc.TraceID().String(); got != callerTraceID {
				t.Errorf("trace id %s, want the caller's %s", got, callerTraceID)
			}
			if got := span.Parent().SpanID().String(); got != callerSpanID || !span.Parent().IsRemote() {
				t.Errorf("parent span %s (remote %v), want the caller's %s", got, span.Parent().IsRemote(), callerSpanID)
			}
			if got := attrOf(span, "http.route"); got != tc.route {
				t.Errorf("http.route = %q, want %q", got, tc.route)
			}
			if got, want := w.Header().Get("traceresponse"), observability.TraceResponse(sc); got != want {
				t.Errorf("traceresponse = %q, want %q", got, want)
			}
		})
	}
}

func TestUntracedServiceIsTheBareMux(t *testing.T) {
	s := newTestService(t, "users", ServiceOptions{})
	if s.handler != http.Handler(s.mux) {
		t.Errorf("handler without Telemetry is %T, want the bare *http.ServeMux", s.handler)
	}
	if w := tracedGet(t, s, "/users/1"); w.Code != http.StatusOK || w.Header().Get("traceresponse") != "" {
		t.Errorf("untraced GET /users/1: %d, traceresponse %q; want 200 and none", w.Code, w.Header().Get("traceresponse"))
	}
}

func TestClusterPassesTelemetryToEveryService(t *testing.T) {
	tel, rec := newTestTelemetry(t)
	c := startCluster(t, Options{Telemetry: tel})
	client := testClient(t)
	for _, name := range ServiceNames {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, c.URL(name)+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("traceparent", traceparent)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.HasPrefix(resp.Header.Get("traceresponse"), "00-"+callerTraceID+"-") {
			t.Errorf("%s: traceresponse %q, want one in trace %s", name, resp.Header.Get("traceresponse"), callerTraceID)
		}
	}
	if err := c.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Ended()); n != len(ServiceNames) {
		t.Errorf("%d spans ended, want one per service (%d)", n, len(ServiceNames))
	}
}

// openTracedPostgres opens the schema through OpenPostgres, tracing with
// tel, and closes it when the test ends.
func openTracedPostgres(t *testing.T, tel *observability.Telemetry) *PostgresStore {
	t.Helper()
	sep := "?"
	if strings.Contains(testDSN(), "?") {
		sep = "&"
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pg, err := OpenPostgres(ctx, testDSN()+sep+"search_path="+testSchema(t), tel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	return pg
}

func TestPostgresQueriesAreChildSpans(t *testing.T) {
	tel, rec := newTestTelemetry(t)
	pg := openTracedPostgres(t, tel)
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("opening the store (schema, seed) made %d spans, want none outside a request", n)
	}
	s, err := NewService("users", pg, ServiceOptions{Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	if w := tracedGet(t, s, "/users/1"); w.Code != http.StatusOK {
		t.Fatalf("GET /users/1: %d %s", w.Code, w.Body)
	}
	var server, sql []sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		switch sp.SpanKind() {
		case trace.SpanKindServer:
			server = append(server, sp)
		case trace.SpanKindClient:
			sql = append(sql, sp)
		}
	}
	srv := onlySpan(t, server, "server spans")
	q := onlySpan(t, sql, "SQL spans")
	if q.Parent().SpanID() != srv.SpanContext().SpanID() || q.SpanContext().TraceID().String() != callerTraceID {
		t.Errorf("SQL span parent %s in trace %s, want the server span %s in %s",
			q.Parent().SpanID(), q.SpanContext().TraceID(), srv.SpanContext().SpanID(), callerTraceID)
	}
	dsn, err := pgx.ParseConfig(testDSN())
	if err != nil {
		t.Fatal(err)
	}
	want := map[attribute.Key]string{
		"db.system.name": "postgresql", "db.operation.name": "SELECT", "db.response.returned_rows": "1",
		"db.namespace": dsn.Database, "server.address": dsn.Host, "server.port": strconv.Itoa(int(dsn.Port)),
	}
	if q.Name() != "SELECT" {
		t.Errorf("SQL span name %q, want SELECT", q.Name())
	}
	for k, v := range want {
		if got := attrOf(q, k); got != v {
			t.Errorf("SQL span %s = %q, want %q", k, got, v)
		}
	}
	if got := attrOf(q, "db.query.text"); !strings.Contains(got, "FROM users WHERE id = $1") {
		t.Errorf("db.query.text = %q, want the user query", got)
	}
}

func TestPostgresQueryErrorIsRecorded(t *testing.T) {
	tel, rec := newTestTelemetry(t)
	pg := openTracedPostgres(t, tel)
	ctx, span := tel.Tracer().Start(t.Context(), "request")
	_, err := pg.pool.Exec(ctx, "SELEC 1")
	span.End()
	if err == nil {
		t.Fatal("SELEC 1 succeeded")
	}
	var q sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.Name() == "SELEC" {
			q = sp
		}
	}
	if q == nil {
		t.Fatalf("no span for the failed query among %d", len(rec.Ended()))
	}
	if q.Status().Code != codes.Error || attrOf(q, "db.response.status_code") != "42601" || attrOf(q, "error.type") != "42601" {
		t.Errorf("failed query span: status %v, db.response.status_code %q, error.type %q; want Error, 42601, 42601",
			q.Status(), attrOf(q, "db.response.status_code"), attrOf(q, "error.type"))
	}
	if len(q.Events()) == 0 || q.Events()[0].Name != "exception" {
		t.Errorf("failed query span events %v, want the recorded error", q.Events())
	}
}

func TestUntracedPostgresHasNoTracer(t *testing.T) {
	pg := openTracedPostgres(t, nil)
	if tr := pg.pool.Config().ConnConfig.Tracer; tr != nil {
		t.Errorf("OpenPostgres without Telemetry set tracer %T, want none", tr)
	}
}

func TestInjectedFaultsAreOnTheSpan(t *testing.T) {
	tel, rec := newTestTelemetry(t)
	c := startCluster(t, Options{Telemetry: tel, Faults: map[string]Faults{
		"users":           {Reset: true},
		"orders":          {Down: true},
		"notifications":   {ErrorRate: 1, Latency: time.Millisecond},
		"recommendations": {Latency: time.Millisecond},
	}})
	client := testClient(t)
	paths := map[string]string{"users": "/users/1", "orders": "/users/1/orders",
		"notifications": "/users/1/notifications", "recommendations": "/users/1/recommendations"}
	for name, path := range paths {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, c.URL(name)+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("traceparent", traceparent)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		} else if name != "users" {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := c.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		fault, latency string
		code           codes.Code
	}{
		"GET /users/{id}":                 {"reset", "", codes.Error},
		"GET /users/{id}/orders":          {"down", "", codes.Error},
		"GET /users/{id}/notifications":   {"error", "1ms", codes.Error},
		"GET /users/{id}/recommendations": {"", "1ms", codes.Unset},
	}
	spans := rec.Ended()
	if len(spans) != len(want) {
		t.Fatalf("%d spans, want %d", len(spans), len(want))
	}
	for _, sp := range spans {
		w, ok := want[sp.Name()]
		if !ok {
			t.Errorf("unexpected span %q", sp.Name())
			continue
		}
		if f, l := attrOf(sp, attrFault), attrOf(sp, attrFaultLatency); f != w.fault || l != w.latency || sp.Status().Code != w.code {
			t.Errorf("%s: demo.fault %q, demo.fault.latency %q, status %v; want %q, %q, %v", sp.Name(), f, l, sp.Status().Code, w.fault, w.latency, w.code)
		}
	}
}
