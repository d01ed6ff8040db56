package observability

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Attributes Braid adds to call and try spans.
const (
	attrUpstream = attribute.Key("braid.upstream")
	attrCall     = attribute.Key("braid.call")
	attrAttempt  = attribute.Key("braid.attempt")
	attrHedge    = attribute.Key("braid.hedge")
	attrOptional = attribute.Key("braid.optional")
	attrDegraded = attribute.Key("braid.degraded")
	attrKeys     = attribute.Key("braid.batch.keys")
	attrChunks   = attribute.Key("braid.batch.chunks")
	attrMissing  = attribute.Key("braid.batch.missing")
)

// tryKey carries a try's attempt number and whether it is a hedge.
type tryKey struct{}

type tryInfo struct {
	attempt int
	hedge   bool
}

// Recording reports whether ctx carries a span that records: whether
// per-try details are worth putting in the context.
func Recording(ctx context.Context) bool {
	return trace.SpanFromContext(ctx).IsRecording()
}

// WithTry marks ctx as the context of try number attempt (from 1) of a
// call, a hedge or not, for the try's client span.
func WithTry(ctx context.Context, attempt int, hedge bool) context.Context {
	return context.WithValue(ctx, tryKey{}, tryInfo{attempt, hedge})
}

// Transport wraps an upstream's transport so that every HTTP try gets a
// client span (attempt number, hedge, semantic-convention HTTP attributes)
// and carries the W3C traceparent. With tracing off it returns base. The
// trace headers are set on the request it is given, so the caller must
// build a new request for every round trip, as upstream.Client does.
func (t *Telemetry) Transport(upstream string, base http.RoundTripper) http.RoundTripper {
	if !t.Tracing() {
		return base
	}
	return &tracedTransport{base: base, tracing: t.tracing, tracer: t.tracing.tracer, prop: t.tracing.prop, upstream: upstream}
}

type tracedTransport struct {
	base     http.RoundTripper
	tracing  *tracing
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	upstream string
	server   atomic.Pointer[serverAttrs] // of the last host seen: an upstream has one
}

// serverAttrs are a try span's attributes that depend only on the host it
// is sent to, made once per host rather than per try.
type serverAttrs struct {
	host  string                // URL.Host, "name:port"
	attrs [2]attribute.KeyValue // server.address, server.port
	n     int                   // of attrs that are set
}

// serverOf returns host's server attributes.
func (tt *tracedTransport) serverOf(u *url.URL) *serverAttrs {
	if s := tt.server.Load(); s != nil && s.host == u.Host {
		return s
	}
	s := &serverAttrs{host: u.Host}
	s.attrs[0], s.n = semconv.ServerAddress(u.Hostname()), 1
	if p, err := strconv.Atoi(u.Port()); err == nil {
		s.attrs[1], s.n = semconv.ServerPort(p), 2
	}
	tt.server.Store(s)
	return s
}

func (tt *tracedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	parent := req.Context()
	if !trace.SpanFromContext(parent).SpanContext().IsValid() {
		return tt.base.RoundTrip(req) // not part of a traced request
	}
	if !tt.tracing.traced(parent) {
		// An unsampled trace: no span, but the upstream learns the trace
		// and that it is not sampled.
		tt.prop.Inject(parent, outgoingHeader(req.Header))
		return tt.base.RoundTrip(req)
	}
	// The span's attributes are set in one call once the try has its
	// answer (see endServerSpan), gathered in the array of the body
	// wrapper that ends the span, which is allocated anyway.
	ctx, span := tt.tracer.Start(parent, req.Method, clientSpan...)
	// The upstream client builds a new request for every try and never
	// reuses it, so the trace headers go straight into its header map
	// rather than into a clone.
	tt.prop.Inject(ctx, outgoingHeader(req.Header))
	// The request keeps its own context: the transports below need its
	// deadline, cancellation and values, which ctx only adds the span to,
	// and none of them starts spans (a copy of the request per try saved).
	resp, err := tt.base.RoundTrip(req)
	if err != nil {
		var buf [tryAttrs]attribute.KeyValue
		attrs := append(tt.requestAttrs(buf[:0], req, parent), semconv.ErrorTypeKey.String(errorType(err)))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attrs...)
		span.End()
		return nil, err
	}
	b := &spanBody{ReadCloser: resp.Body, span: span}
	attrs := append(tt.requestAttrs(b.attrs[:0], req, parent), semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, strconv.Itoa(resp.StatusCode))
		attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
	}
	span.SetAttributes(attrs...)
	resp.Body = b
	return resp, nil
}

// tryAttrs is the most attributes a try span has.
const tryAttrs = 10

// requestAttrs appends a try span's request attributes to attrs.
func (tt *tracedTransport) requestAttrs(attrs []attribute.KeyValue, req *http.Request, parent context.Context) []attribute.KeyValue {
	s := tt.serverOf(req.URL)
	attrs = append(attrs, semconv.HTTPRequestMethodKey.String(req.Method), s.attrs[0],
		semconv.URLFull(req.URL.String()), attrUpstream.String(tt.upstream))
	attrs = append(attrs, s.attrs[1:s.n]...)
	if ti, ok := parent.Value(tryKey{}).(tryInfo); ok {
		attrs = append(attrs, attrAttempt.Int(ti.attempt), attrHedge.Bool(ti.hedge))
		if ti.attempt > 1 {
			attrs = append(attrs, semconv.HTTPRequestResendCount(ti.attempt-1))
		}
	}
	return attrs
}

// outgoingHeader is the carrier trace context is injected into: an
// http.Header whose Set skips canonicalising the propagators' own names
// (lower case "traceparent" is not in net/http's table of common headers,
// so http.Header.Set built the canonical name anew on every try).
type outgoingHeader http.Header

func (h outgoingHeader) Set(key, value string) {
	switch key {
	case "traceparent":
		h["Traceparent"] = []string{value}
	case "tracestate":
		h["Tracestate"] = []string{value}
	case "baggage":
		h["Baggage"] = []string{value}
	default:
		http.Header(h).Set(key, value)
	}
}

func (h outgoingHeader) Get(key string) string { return http.Header(h).Get(key) }

func (h outgoingHeader) Keys() []string { return propagation.HeaderCarrier(h).Keys() }

// errorType is the error.type of a try that got no answer.
func errorType(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "transport"
}

// spanBody ends the try's span when the body is closed, so the span covers
// reading it. The client closes a body once, from one goroutine.
type spanBody struct {
	io.ReadCloser
	span  trace.Span
	done  bool
	attrs [tryAttrs]attribute.KeyValue // the span's, handed to it at once
}

func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	if !b.done {
		b.done = true
		b.span.End()
	}
	return err
}
