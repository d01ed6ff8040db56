// Command gateway runs Braid, the request-aggregation gateway.
//
//	gateway -demo                      demo services in process, ./gateway.yaml or the embedded default
//	gateway -config gateway.yaml       serve the routes of a configuration file
//	gateway validate -config FILE      check a configuration file and exit
//	gateway healthcheck [-admin ADDR]  exit 0 if the admin /readyz answers 200 (container healthcheck)
//
// SIGTERM or SIGINT drains: /readyz turns 503 at once while requests are
// still served for server.drain_delay (so that load balancers stop sending),
// then the listener closes, in-flight requests finish (up to
// server.shutdown_timeout) and the process exits 0. A second signal stops
// the process at once.
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

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"

	"github.com/braidgw/braid"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line flags.
type options struct {
	config    string
	configSet bool
	demo      bool
	listen    string
	admin     string
	logFormat string
	logLevel  string
	logFlush  time.Duration // -log-flush-interval
	// drainDelay replaces server.drain_delay when -drain-delay is given.
	drainDelay *time.Duration
	// drainTimer replaces time.After for the drain delay; tests use it to
	// hold the delay open. Nil in the binary.
	drainTimer func(time.Duration) <-chan time.Time
}

// overrides are the settings of the file that flags replace.
func (o *options) overrides() overrides {
	return overrides{listen: o.listen, adminListen: o.admin, drainDelay: o.drainDelay}
}

func parseFlags(name string, args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.config, "config", "gateway.yaml", "configuration file (without -config, a missing ./gateway.yaml falls back to the embedded default)")
	if name == "gateway" {
		fs.BoolVar(&o.demo, "demo", false, "start the five demo services in process and point the upstreams at them")
		fs.StringVar(&o.listen, "listen", "", "public address, overriding server.listen")
		fs.StringVar(&o.admin, "admin", "", "admin address, overriding server.admin_listen")
		fs.Func("drain-delay", "keep serving for this `duration` after SIGTERM while /readyz answers 503, overriding server.drain_delay (e.g. 0s in tests)", func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is not a duration (write e.g. 5s or 0s)", v)
			}
			if d < 0 {
				return fmt.Errorf("%q must not be negative", v)
			}
			o.drainDelay = &d
			return nil
		})
		fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
		fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
		o.logFlush = defaultLogFlush
		fs.Func("log-flush-interval", "write log records out in batches at most this `duration` apart (default 200ms; warnings and errors at once; 0 writes each record at once)", func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is not a duration (write e.g. 200ms, or 0 to write each record at once)", v)
			}
			if d < 0 {
				return fmt.Errorf("%q must not be negative", v)
			}
			o.logFlush = d
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { o.configSet = o.configSet || f.Name == "config" })
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "validate" {
		return validate(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(args[1:], lookupEnv, stderr)
	}
	o, err := parseFlags("gateway", args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return 2
	}
	lw, stopLog := startLogWriter(stderr, o.logFlush)
	defer stopLog()
	stderr = lw // messages below keep their place among the log records
	log, err := newLogger(lw, o.logFormat, o.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return 2
	}
	log = slog.New(flushingHandler{log.Handler(), lw})
	redis.SetLogger(redisLogger{log.With("component", "redis")}) // go-redis's own complaints, in our log format
	otel.SetErrorHandler(tracingErrors(log))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	context.AfterFunc(ctx, stop) // once draining, a second signal stops the process at once
	if err := serve(ctx, o, log, stdout); err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return 1
	}
	return 0
}

// validate implements "gateway validate -config FILE".
func validate(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags("validate", args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	gw, err := build(o, lookupEnv, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return 1
	}
	gw.close()
	fmt.Fprintf(stdout, "%s: ok (%d routes, %d upstreams)\n", gw.source, len(gw.cfg.Routes), len(gw.cfg.Upstreams))
	return 0
}

// readConfig reads the configuration file, falling back to the embedded
// default when -config was not given and ./gateway.yaml does not exist.
func readConfig(o *options) (src []byte, source string, err error) {
	src, err = os.ReadFile(o.config)
	if err != nil && !o.configSet && errors.Is(err, os.ErrNotExist) {
		return braid.DefaultConfig, "embedded default configuration", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading configuration: %w", err)
	}
	return src, o.config, nil
}

// redisLogger sends go-redis's internal messages (failed dials during a
// Redis outage, for instance) to the gateway's log at debug level: the cache
// reports outages and recoveries itself, once, at warn.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}

// tracingErrors logs OpenTelemetry's errors (a trace export that failed,
// spans dropped) at warn in the gateway's log, rather than through the
// standard logger in another format. Braid's batcher reports at most one
// per 10 s.
func tracingErrors(log *slog.Logger) otel.ErrorHandler {
	log = log.With("component", "tracing")
	return otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing problem", "err", err) })
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format: %q: want text or json", format)
}
