package observability

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// instrumentation names Braid's tracer.
const instrumentation = "github.com/braidgw/braid"

// tracing is the trace half of Telemetry.
type tracing struct {
	on bool
	// parentBased: the sampler follows the parent's decision, so a child
	// of an unsampled span is never sampled and need not be built.
	parentBased bool
	tracer      trace.Tracer
	provider    *sdktrace.TracerProvider // nil when off
	prop        propagation.TextMapPropagator
	export      *http.Transport // the exporter's own, closed on shutdown; nil without an endpoint
	batcher     *spanBatcher    // nil without an endpoint
}

// newTracing builds the tracer provider, or a no-op tracer when no endpoint
// is configured. opts are extra provider options (tests add a synchronous
// in-memory exporter).
func newTracing(ctx context.Context, c TracingConfig, service, version string, opts ...sdktrace.TracerProviderOption) (*tracing, error) {
	t := &tracing{prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	if c.Endpoint == "" && len(opts) == 0 {
		t.tracer = noop.NewTracerProvider().Tracer(instrumentation)
		return t, nil
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service), semconv.ServiceVersion(version))
	sampler, err := newSampler(c.Sampler, c.SamplerArg)
	if err != nil {
		return nil, err
	}
	all := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sampler)}
	if c.Endpoint != "" {
		u := c.Endpoint
		if !c.tracesURL {
			u = strings.TrimSuffix(u, "/") + "/v1/traces"
		}
		settings, errs := c.exportSettings()
		batching, batchErrs := c.batchOptions()
		if errs = append(errs, batchErrs...); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		// The exporter gets its own transport, closed on shutdown so that
		// no keep-alive goroutine outlives the Telemetry.
		t.export = &http.Transport{Proxy: nil, MaxIdleConns: 2, IdleConnTimeout: 30 * time.Second, ForceAttemptHTTP2: true,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext, TLSHandshakeTimeout: 5 * time.Second}
		exp := newOTLPExporter(u, &http.Client{Transport: t.export}, settings, version)
		t.batcher = newSpanBatcher(exp, batching).start()
		all = append(all, sdktrace.WithSpanProcessor(t.batcher))
	}
	t.provider = sdktrace.NewTracerProvider(append(all, opts...)...)
	t.tracer = t.provider.Tracer(instrumentation)
	t.on = true
	t.parentBased = c.Sampler == "" || strings.HasPrefix(c.Sampler, "parentbased_")
	return t, nil
}

// newSampler parses an OTEL_TRACES_SAMPLER name and argument; the default
// is parentbased_always_on.
func newSampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if arg != "" {
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil {
			return nil, fmt.Errorf("observability.tracing.sampler_arg: %q is not a ratio", arg)
		}
		ratio = f
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("observability.tracing.sampler: unknown sampler %q", name)
}

// shutdown flushes the spans still batched and stops the exporter.
func (t *tracing) shutdown(ctx context.Context) error {
	if t.provider == nil {
		return nil
	}
	err := t.provider.Shutdown(ctx)
	if t.export != nil {
		t.export.CloseIdleConnections()
	}
	return err
}

// TraceResponse formats sc as a W3C Trace Context Level 2 traceresponse
// header value: 00-<trace-id>-<span-id>-<flags>.
func TraceResponse(sc trace.SpanContext) string {
	var b [55]byte
	copy(b[:], "00-")
	tid, sid := sc.TraceID(), sc.SpanID()
	hexTo(b[3:35], tid[:])
	b[35] = '-'
	hexTo(b[36:52], sid[:])
	b[52] = '-'
	hexTo(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

func hexTo(dst, src []byte) {
	const digits = "0123456789abcdef"
	for i, c := range src {
		dst[2*i], dst[2*i+1] = digits[c>>4], digits[c&0xf]
	}
}

// traced reports whether a child of the span in ctx is worth starting: the
// span is part of a trace and, under a parent-based sampler, that trace is
// sampled. A child of an unsampled span would be dropped unrecorded, so
// Braid does not build it (nor its attributes): at 1 % sampling, 99 % of
// requests skip the call and try spans; the trace context still travels
// to upstreams, unsampled.
func (t *tracing) traced(ctx context.Context) bool {
	sc := trace.SpanFromContext(ctx).SpanContext()
	return sc.IsValid() && (sc.IsSampled() || !t.parentBased)
}

// The start options of Braid's spans, made once: options passed one by
// one are gathered into a new slice on every Start (the tracer is an
// interface, so the slice escapes).
var (
	serverSpan   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	internalSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	clientSpan   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)
