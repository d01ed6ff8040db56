package demo

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// routePattern names a request's route for the server middleware: the path
// of the http.ServeMux pattern that matched ("/users/{id}" of
// "GET /users/{id}"), which the mux sets on the request it was given (the
// middleware's own) before calling the handler; "" for the catch-all that
// answers 404.
func routePattern(r *http.Request) string {
	p := r.Pattern
	if i := strings.IndexByte(p, '/'); i >= 0 {
		p = p[i:]
	}
	if p == "/" {
		return ""
	}
	return p
}

// Attributes the demo adds to a request's server span when a fault is
// injected, so that a trace shows why a call was slow or failed.
const (
	attrFault        = attribute.Key("demo.fault")         // reset, down or error: the fault that answered
	attrFaultLatency = attribute.Key("demo.fault.latency") // the injected latency, e.g. "50ms"
)

// markFault marks the request's span, if it records, as answered by an
// injected fault, and as an error.
func markFault(r *http.Request, fault string) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrFault.String(fault))
	span.SetStatus(codes.Error, "injected "+fault)
}

// markLatency records the injected latency on the request's span, if it
// records.
func markLatency(r *http.Request, d time.Duration) {
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetAttributes(attrFaultLatency.String(d.String()))
	}
}

// queryTracer is a pgx.QueryTracer giving every query run for a traced
// request a client span, a child of the request's span, named after the
// SQL operation ("SELECT") and carrying the OpenTelemetry database
// attributes. Queries run outside a recording span (schema creation and
// seeding at start, unsampled requests) get none. The SQL is Braid's own
// static text with $n placeholders, so it is recorded as it is; the
// arguments are not.
type queryTracer struct {
	tracer trace.Tracer
}

var _ pgx.QueryTracer = (*queryTracer)(nil)

// TraceQueryStart implements pgx.QueryTracer.
func (q *queryTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	op := sqlOperation(d.SQL)
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, semconv.DBSystemNamePostgreSQL, semconv.DBOperationName(op), semconv.DBQueryText(d.SQL))
	if conn != nil {
		c := conn.Config()
		attrs = append(attrs, semconv.DBNamespace(c.Database), semconv.ServerAddress(c.Host), semconv.ServerPort(int(c.Port)))
	}
	ctx, _ = q.tracer.Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer. It runs when the rows are
// closed, so the span covers reading them.
func (q *queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if d.Err != nil && !errors.Is(d.Err, pgx.ErrNoRows) {
		span.RecordError(d.Err)
		span.SetStatus(codes.Error, d.Err.Error())
		errType := "query"
		if pgErr, ok := errors.AsType[*pgconn.PgError](d.Err); ok {
			errType = pgErr.Code
			span.SetAttributes(semconv.DBResponseStatusCode(pgErr.Code))
		} else if ctx.Err() != nil {
			errType = "canceled"
		}
		span.SetAttributes(semconv.ErrorTypeKey.String(errType))
	} else if d.CommandTag.Select() {
		span.SetAttributes(semconv.DBResponseReturnedRows(int(d.CommandTag.RowsAffected())))
	}
	span.End()
}

// sqlOperation returns the first keyword of a statement, upper-cased:
// the low-cardinality db.operation.name and span name.
func sqlOperation(sql string) string {
	for word := range strings.FieldsSeq(sql) {
		return strings.ToUpper(word)
	}
	return "QUERY"
}
