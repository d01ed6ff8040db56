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
// With no OTLP endpoint configured, tracing is off: the tracer is a no-op
// and no span, attribute or context value is created per request.
package observability
