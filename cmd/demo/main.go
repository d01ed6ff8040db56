// Command demo runs the five Braid demo downstream services (users, orders,
// products, notifications, recommendations) on ports 9101–9105, over
// in-memory seed data or PostgreSQL, with optional injected faults.
//
// Usage:
//
//	demo [-db DSN] [-host 0.0.0.0] [-users-addr 127.0.0.1:9101 ...]
//	     [-latency users=50ms,orders=80ms] [-error-rate products=0.1] [-down notifications]
//
// Without -db it reads $DATABASE_URL; without either it serves in-memory data.
// It prints each service's URL, then serves until SIGINT or SIGTERM and drains.
//
// With $OTEL_EXPORTER_OTLP_ENDPOINT set (an OTLP/HTTP base URL such as
// http://jaeger:4318) every request gets a server span continuing the
// caller's traceparent, and every PostgreSQL query a child span; they are
// exported as service $OTEL_SERVICE_NAME (default braid-demo) and flushed
// after draining. OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG apply.
//
// Each service serves its Prometheus metrics at GET /metrics on its own
// port (see package demo).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/braidgw/braid/demo"
	"github.com/braidgw/braid/observability"
)

// drainTimeout bounds the graceful shutdown.
const drainTimeout = 10 * time.Second

// flushTimeout bounds exporting the last spans after draining.
const flushTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, starts the services and serves until ctx is done. It
// returns the process exit code: 0 after a clean drain, 2 for bad flags,
// 1 for any other failure.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var flags demo.Flags
	flags.Register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // fs has printed the error naming the flag
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	opts, err := flags.Options()
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	opts.Logger = logger
	tel, err := telemetry(ctx, getenv, logger)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	opts.Telemetry = tel
	code := 0
	if err := serve(ctx, flags.DSN, getenv, opts, stdout); err != nil {
		logger.Error("demo failed", "err", err)
		code = 1
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	if err := tel.Shutdown(fctx); err != nil {
		logger.Warn("flushing spans", "err", err)
	}
	return code
}

// telemetry builds the tracer from the standard OTEL_* variables; nil when
// they configure no tracing, so that an untraced demo does no per-request
// work for it. It serves no metrics (each demo service serves its own) and
// logs no access lines.
func telemetry(ctx context.Context, getenv func(string) string, logger *slog.Logger) (*observability.Telemetry, error) {
	cfg := observability.Config{
		Metrics:   observability.MetricsConfig{Disabled: true},
		AccessLog: observability.AccessLogConfig{Disabled: true},
	}
	cfg.ApplyEnv(func(k string) (string, bool) { v := getenv(k); return v, v != "" })
	tel, err := observability.New(ctx, cfg, observability.Build{Service: "braid-demo"}, observability.Options{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("OTEL_* environment: %w", err)
	}
	if !tel.Tracing() {
		return nil, nil
	}
	logger.Info("tracing", "endpoint", cfg.Tracing.Endpoint)
	return tel, nil
}

// serve opens the store, starts the cluster, prints the URLs and drains
// the cluster once ctx is done.
func serve(ctx context.Context, dsn string, getenv func(string) string, opts demo.Options, stdout io.Writer) error {
	if dsn == "" {
		dsn = getenv("DATABASE_URL")
	}
	if dsn != "" {
		pg, err := demo.OpenPostgres(ctx, dsn, opts.Telemetry)
		if err != nil {
			return err
		}
		defer pg.Close()
		opts.Store = pg
	}
	c, err := demo.Start(ctx, opts)
	if err != nil {
		return err
	}
	for _, name := range demo.ServiceNames {
		fmt.Fprintf(stdout, "%-16s %s\n", name, c.URL(name))
	}
	opts.Logger.Info("demo services ready", "store", storeKind(dsn))
	<-ctx.Done()
	opts.Logger.Info("draining")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	return c.Shutdown(shutdownCtx)
}

func storeKind(dsn string) string {
	if dsn == "" {
		return "memory"
	}
	return "postgres"
}
