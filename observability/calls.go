package observability

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// CallEnd is what became of one composite call, reported when it ends.
type CallEnd struct {
	Err      error // nil when the call succeeded
	Optional bool  // a failed optional call degrades its part
	Keys     int   // a batch call's distinct keys
	Chunks   int   // a batch call's chunk requests
	Missing  int   // a batch call's keys that got no object
	Batch    bool
}

// StartCall starts the span of one call of a composite route, a child of
// the request's server span, and returns the context the call runs in and
// the function that ends it. With tracing off it returns ctx and an end
// that only counts degraded parts.
func (t *Telemetry) StartCall(ctx context.Context, route, call, upstream string) (context.Context, func(CallEnd)) {
	if t == nil {
		return ctx, func(CallEnd) {}
	}
	if !t.tracing.on || !t.tracing.traced(ctx) {
		return ctx, func(e CallEnd) { t.callEnded(route, call, e) }
	}
	// The attributes are set when the span ends, all at once (see
	// endServerSpan).
	ctx, span := t.tracing.tracer.Start(ctx, t.callSpanName(call), internalSpan...)
	return ctx, func(e CallEnd) {
		t.callEnded(route, call, e)
		attrs := make([]attribute.KeyValue, 0, 7)
		attrs = append(attrs, attrCall.String(call), attrUpstream.String(upstream),
			attrOptional.Bool(e.Optional), attrDegraded.Bool(e.Optional && e.Err != nil))
		if e.Batch {
			attrs = append(attrs, attrKeys.Int(e.Keys), attrChunks.Int(e.Chunks), attrMissing.Int(e.Missing))
		}
		span.SetAttributes(attrs...)
		if e.Err != nil {
			span.RecordError(e.Err)
			span.SetStatus(codes.Error, e.Err.Error())
		}
		span.End()
	}
}

// callSpanName is "call <name>", made once per call name (the names are
// the configuration's, a bounded set).
func (t *Telemetry) callSpanName(call string) string {
	if v, ok := t.callNames.Load(call); ok {
		return v.(string)
	}
	name := "call " + call
	t.callNames.Store(call, name)
	return name
}

func (t *Telemetry) callEnded(route, call string, e CallEnd) {
	if e.Optional && e.Err != nil {
		t.Degraded(route, call)
	}
}

// Event adds a named event to the span in ctx, if it records: breaker
// rejections and transitions, for instance.
func Event(ctx context.Context, name string, attrs ...attribute.KeyValue) {
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		span.AddEvent(name, trace.WithAttributes(attrs...))
	}
}
