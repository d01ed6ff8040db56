// Package observability is how Braid is seen from outside: OpenTelemetry
// traces exported over OTLP (to Jaeger or any collector), Prometheus
// metrics, live percentiles for operators without Prometheus, and the
// HTTP middleware and transport wrapper that produce them.
//
// cmd/gateway builds one Telemetry from Config at start and hands its
// pieces to the packages that need them: the server middleware to routes,
// a Recorder per upstream and the traced transport to upstream, the call
// observer to aggregate. Nothing here reads the environment by itself;
// Config.ApplyEnv takes the standard OTEL_* variables when main passes them.
//
//	cfg.ApplyEnv(os.LookupEnv)
//	tel, err := observability.New(ctx, cfg, observability.Build{Service: "braid-gateway", Version: version})
//	defer tel.Shutdown(ctx)
//	admin.Handle("/metrics", tel.MetricsHandler())
//
// Every request served through the middleware has an id: the client's
// X-Request-Id when it is short and safe (1 to 64 bytes of
// [A-Za-z0-9._:-]), 32 random hex digits otherwise. It is sent back on the
// response, logged as request_id, set on the server span as
// braid.request_id, and kept in the context, where RequestID finds it for
// the upstream client to send on every call.
//
// With no OTLP endpoint configured, tracing is off: the tracer is a no-op
// and no span, attribute or trace context is created per request. The
// request id does not depend on tracing: it is made all the same.
package observability
