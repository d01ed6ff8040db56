package observability

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// defaultSlowThreshold is AccessLogConfig.SlowThreshold's default.
const defaultSlowThreshold = time.Second

// Build names the running program in traces.
type Build struct {
	Service string // default service.name when Config.ServiceName is empty
	Version string // service.version
}

// Telemetry is one process's tracer, metrics and access log, built once at
// start by New. A nil *Telemetry is valid and observes nothing.
type Telemetry struct {
	cfg     Config
	log     *slog.Logger
	tracing *tracing
	metrics *metrics // nil when disabled
	sample  float64  // access log sample rate of fast successes
	slow    time.Duration
	rand    func() float64
	// callNames holds the call spans' names by call name.
	callNames sync.Map
}

// Options are what New needs besides Config.
type Options struct {
	// Logger receives the access log. Nil discards it.
	Logger *slog.Logger
	// SpanProcessors are added to the tracer provider, and turn tracing on
	// even without an endpoint: tests pass an in-memory recorder.
	SpanProcessors []sdktrace.SpanProcessor
}

// New builds the Telemetry of cfg (validated first). Call Shutdown before
// exiting, so that batched spans are flushed.
func New(ctx context.Context, cfg Config, b Build, opts Options) (*Telemetry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = b.Service
	}
	var extra []sdktrace.TracerProviderOption
	for _, sp := range opts.SpanProcessors {
		extra = append(extra, sdktrace.WithSpanProcessor(sp))
	}
	tr, err := newTracing(ctx, cfg.Tracing, cfg.ServiceName, b.Version, extra...)
	if err != nil {
		return nil, err
	}
	t := &Telemetry{cfg: cfg, log: opts.Logger, tracing: tr, sample: 1, slow: defaultSlowThreshold, rand: rand.Float64}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if cfg.AccessLog.SampleRate != nil {
		t.sample = *cfg.AccessLog.SampleRate
	}
	if cfg.AccessLog.SlowThreshold > 0 {
		t.slow = cfg.AccessLog.SlowThreshold
	}
	if !cfg.Metrics.Disabled {
		var counts *spanCounts
		if tr.batcher != nil {
			counts = &tr.batcher.spanCounts
		}
		t.metrics = newMetrics(counts)
	}
	return t, nil
}

// Shutdown flushes batched spans and stops the exporter.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tracing.shutdown(ctx)
}

// Tracing reports whether spans are recorded and exported.
func (t *Telemetry) Tracing() bool { return t != nil && t.tracing.on }

// Tracer returns the tracer; a no-op one when tracing is off or t is nil.
func (t *Telemetry) Tracer() trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer(instrumentation)
	}
	return t.tracing.tracer
}

// ServerTiming reports whether composite responses carry Server-Timing.
func (t *Telemetry) ServerTiming() bool { return t == nil || !t.cfg.ServerTiming.Disabled }

// Upstream returns the metrics recorder of the named upstream; nil (which
// records nothing) when metrics are off.
func (t *Telemetry) Upstream(name string) *Upstream {
	if t == nil || t.metrics == nil {
		return nil
	}
	return t.metrics.upstream(name)
}

// Degraded counts an optional call of route that failed.
func (t *Telemetry) Degraded(route, call string) {
	if t == nil || t.metrics == nil {
		return
	}
	t.metrics.degraded.WithLabelValues(route, call).Inc()
}

// CacheEvent counts one cache event of a layer ("l1", "l2"): the hook
// cache.Options.OnEvent takes.
func (t *Telemetry) CacheEvent(layer, event string) {
	if t == nil || t.metrics == nil {
		return
	}
	t.metrics.cache.WithLabelValues(layer, event).Inc()
}

// RateLimitFallback counts a rate-limit decision of route ("GET
// /api/me/dashboard") that the local limiter made because Redis could not.
func (t *Telemetry) RateLimitFallback(route string) {
	if t == nil || t.metrics == nil {
		return
	}
	t.metrics.rlFallback.WithLabelValues(route).Inc()
}

// AdminHandlers returns the operator endpoints for the admin listener,
// never the public one: /metrics (Prometheus), /stats (live percentiles
// as JSON) and /debug/pprof/*. Keys are chi patterns. With metrics off,
// only the profiles.
func (t *Telemetry) AdminHandlers() map[string]http.Handler {
	h := map[string]http.Handler{
		"/debug/pprof/*":       http.HandlerFunc(pprof.Index),
		"/debug/pprof/cmdline": http.HandlerFunc(pprof.Cmdline),
		"/debug/pprof/profile": http.HandlerFunc(pprof.Profile),
		"/debug/pprof/symbol":  http.HandlerFunc(pprof.Symbol),
		"/debug/pprof/trace":   http.HandlerFunc(pprof.Trace),
	}
	if t != nil && t.metrics != nil {
		h["/metrics"] = t.metrics.handler()
		h["/stats"] = t.metrics.stats.handler()
	}
	return h
}
