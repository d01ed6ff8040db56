package observability

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// statusClientClosed is logged when the client went away before an answer.
const statusClientClosed = 499

// ServerOptions tell the server middleware what only the router knows.
type ServerOptions struct {
	// Route returns the matched route pattern once the request has been
	// served (chi's RoutePattern), "" when no route matched. Required.
	Route func(*http.Request) string
	// DegradedHeader is the response header listing degraded parts, copied
	// into the access log. Default none.
	DegradedHeader string
	// RequestIDHeader names the request id header, read from the request
	// and set on the response; a valid header field name. Default
	// DefaultRequestIDHeader (X-Request-Id).
	RequestIDHeader string
	// NoRequestID turns request ids off: none is read, made, put in the
	// context, sent or logged. Default false.
	NoRequestID bool
}

// Server returns the middleware that observes every request: a server span
// named "METHOD pattern" continuing an incoming traceparent, with a
// traceresponse header; the request duration histogram; the in-flight
// gauge; the live /stats window; and one access log line. It must run
// inside the router, so that the pattern is known when the request ends.
//
// Every request gets an id (unless NoRequestID): the client's, from the
// RequestIDHeader, when it sent exactly one that is 1 to 64 bytes of
// [A-Za-z0-9._:-]; 32 random lowercase hex digits otherwise. The id is in
// the handler's context (RequestID), on the response before the handler
// runs (so that error and panic answers carry it too), on the server span
// as braid.request_id and in the access log as request_id.
func (t *Telemetry) Server(o ServerOptions) func(http.Handler) http.Handler {
	idHeader := "" // canonical; "" when request ids are off
	if !o.NoRequestID {
		idHeader = http.CanonicalHeaderKey(cmp.Or(o.RequestIDHeader, DefaultRequestIDHeader))
	}
	return func(next http.Handler) http.Handler {
		if t == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ctx := r.Context()
			rid := requestID{refused: -1}
			if idHeader != "" {
				rid = newRequestID(r.Header, idHeader)
				ctx = withRequestID(ctx, rid.id, w.Header(), idHeader)
			}
			var span trace.Span
			if t.tracing.on {
				ctx, span = t.startServerSpan(ctx, r)
				// Set under its canonical name: Header.Set would build it anew
				// for every request ("traceresponse" is not in net/http's table).
				w.Header()["Traceresponse"] = []string{TraceResponse(span.SpanContext())}
			}
			if idHeader != "" || span != nil {
				r = r.WithContext(ctx)
			}
			if t.metrics != nil {
				t.metrics.inFlight.Inc()
			}
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				// Deferred so that a panic, recovered further out, is still
				// observed: as a 500, with the span ended and the gauge down.
				v := recover()
				t.finish(r, sw, o, rid, span, time.Since(start), v != nil)
				if v != nil {
					panic(v)
				}
			}()
			next.ServeHTTP(sw, r)
			sw.sendComplete()
		})
	}
}

// startServerSpan starts the request's server span, continuing the trace
// of an incoming traceparent. Its attributes are set when it ends, all at
// once (see endServerSpan).
func (t *Telemetry) startServerSpan(ctx context.Context, r *http.Request) (context.Context, trace.Span) {
	ctx = t.tracing.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	return t.tracing.tracer.Start(ctx, spanMethod(r.Method), serverSpan...)
}

// otherMethod is what a request's metrics and span carry for a method
// that HTTP does not define (OpenTelemetry's semantic conventions).
const otherMethod = "_OTHER"

// requestMethod is the method a request's metrics and span carry: one of
// the methods HTTP defines, or otherMethod for any other token a client
// sends, so that a client cannot mint metric series or span names at will.
func requestMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return otherMethod
}

// spanMethod is the method in a server span's name: "HTTP" for another
// method, as the semantic conventions name such spans.
func spanMethod(m string) string {
	if m = requestMethod(m); m == otherMethod {
		return "HTTP"
	}
	return m
}

// finish records a served request: metrics, span, access log.
func (t *Telemetry) finish(r *http.Request, sw *statusWriter, o ServerOptions, rid requestID, span trace.Span, d time.Duration, panicked bool) {
	status := sw.status
	switch {
	case panicked:
		status = http.StatusInternalServerError
	case status == 0 && r.Context().Err() != nil:
		status = statusClientClosed
	case status == 0:
		status = http.StatusOK
	}
	route := o.Route(r)
	if t.metrics != nil {
		t.metrics.inFlight.Dec()
		t.metrics.request(route, r.Method, status, d)
	}
	if span != nil {
		endServerSpan(span, r, rid.id, route, status)
	}
	t.accessLog(r, sw, o, rid, route, status, d, span)
}

// endServerSpan names the server span after its route and gives it all its
// attributes in one call. Braid's spans get their attributes when they
// end: the SDK copies the attributes a span is started with and grows its
// list again for each later addition, so one call at the end allocates
// less. Nothing reads them before the span ends (no Braid sampler looks at
// attributes), and an unsampled span gets none.
func endServerSpan(span trace.Span, r *http.Request, id, route string, status int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	method := requestMethod(r.Method)
	attrs = append(attrs, semconv.HTTPRequestMethodKey.String(method), semconv.URLPath(r.URL.Path),
		semconv.URLScheme("http"), semconv.NetworkProtocolVersion(protoVersion(r)))
	if method != r.Method {
		attrs = append(attrs, semconv.HTTPRequestMethodOriginal(r.Method))
	}
	if id != "" {
		attrs = append(attrs, attrRequestID.String(id))
	}
	if route != "" {
		span.SetName(spanMethod(r.Method) + " " + route)
		attrs = append(attrs, semconv.HTTPRoute(route))
	}
	attrs = append(attrs, semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
		attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(status)))
	}
	span.SetAttributes(attrs...)
	span.End()
}

func protoVersion(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return "2"
	}
	return "1.1"
}

// accessLog writes one line for the request: always for errors and slow
// requests, for a sample of the others. It never logs headers, so no
// credential reaches the log; of a refused request id, only its length.
func (t *Telemetry) accessLog(r *http.Request, sw *statusWriter, o ServerOptions, rid requestID, route string, status int, d time.Duration, span trace.Span) {
	if t.cfg.AccessLog.Disabled {
		return
	}
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelWarn
	case status < 400 && d < t.slow && t.sample < 1 && t.rand() >= t.sample:
		return
	}
	ctx := r.Context()
	if !t.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs, slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
		slog.Int("status", status), slog.Int64("bytes", sw.bytes), slog.Float64("duration_ms", float64(d.Microseconds())/1000))
	if o.DegradedHeader != "" {
		if v := sw.Header().Get(o.DegradedHeader); v != "" {
			attrs = append(attrs, slog.String("degraded", v))
		}
	}
	if rid.id != "" {
		attrs = append(attrs, slog.String("request_id", rid.id))
	}
	if rid.refused >= 0 {
		attrs = append(attrs, slog.Int("request_id_refused_bytes", rid.refused))
	}
	if span != nil {
		sc := span.SpanContext()
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	// The record goes straight to the handler: Logger.LogAttrs would also
	// capture the caller's program counter (runtime.Callers, about a
	// quarter of the line's cost), which only a handler adding the source
	// uses, and the gateway's never does.
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(attrs...)
	t.log.Handler().Handle(ctx, rec)
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// sendComplete sends a response the handler has finished, when it declared
// its length, so that the client has it before the request's metrics,
// access line and span are recorded rather than after: net/http sends
// what is buffered only once the whole middleware chain has returned. A
// response of undeclared length is left to net/http, which can still
// give it a Content-Length once the handler is done (a flush now would
// make it chunked).
func (s *statusWriter) sendComplete() {
	if s.status == 0 || s.Header().Get("Content-Length") == "" {
		return
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
