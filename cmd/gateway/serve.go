package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/breaker"
	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/demo"
	"github.com/braidgw/braid/observability"
	"github.com/braidgw/braid/routes"
	"github.com/braidgw/braid/upstream"
)

// shutdownGrace bounds stopping the in-process demo services.
const shutdownGrace = 5 * time.Second

// gateway is everything built from the configuration, before serving.
type gateway struct {
	cfg       *fileConfig
	source    string
	tel       *observability.Telemetry
	cache     *cache.Cache
	upstreams *upstream.Set
	edge      *edge
	workers   *aggregate.Workers // kept goroutines for calls; closed after the servers drain
	handler   http.Handler
	demo      bool // -demo: the admin listener mints demo tokens
}

// close releases the upstream connections and flushes the spans still
// batched, waiting at most shutdownGrace for the exporter.
func (g *gateway) close() {
	if g.workers != nil {
		g.workers.Close()
	}
	if g.edge != nil {
		g.edge.close()
	}
	if g.upstreams != nil {
		g.upstreams.Close()
	}
	if g.cache != nil {
		_ = g.cache.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = g.tel.Shutdown(ctx)
}

// build reads and validates the configuration and wires the upstream
// clients and routes. Nothing listens yet. No panic escapes it: one becomes
// an error.
func build(o *options, lookup func(string) (string, bool), log *slog.Logger) (gw *gateway, err error) {
	src, source, err := readConfig(o)
	if err != nil {
		return nil, err
	}
	invalid := func(err error) error {
		return fmt.Errorf("%s: invalid configuration:\n%s", source, describeErrors(err))
	}
	cfg, err := parseConfig(src, lookup, o.overrides())
	if err != nil {
		return nil, invalid(err)
	}
	g := &gateway{cfg: cfg, source: source}
	defer func() {
		if v := recover(); v != nil {
			gw, err = nil, fmt.Errorf("%s: internal error starting the gateway (please report it): %v", source, v)
		}
		if err != nil {
			g.close()
		}
	}()
	gw = g
	gw.tel, err = observability.New(context.Background(), cfg.Observability, observability.Build{Service: "braid-gateway", Version: version()}, observability.Options{Logger: log})
	if err != nil {
		return nil, invalid(err)
	}
	if !cfg.Cache.Disabled {
		gw.cache, err = cache.New(context.Background(), cfg.Cache, cache.Options{Logger: log.With("component", "cache"), Negative: notFound, OnEvent: gw.tel.CacheEvent})
		if err != nil {
			return nil, invalid(err)
		}
	}
	gw.upstreams, err = upstream.NewSet(cfg.Upstreams, upstream.SetOptions{OnBreakerChange: logBreaker(log), Telemetry: gw.tel, Cache: gw.cache,
		MemoryBudget: int64(cfg.Server.MaxInflightResponseBytes)})
	if err != nil {
		return nil, invalid(err)
	}
	if gw.edge, err = newEdge(cfg, log, gw.tel); err != nil {
		return nil, invalid(err)
	}
	gw.workers = aggregate.NewWorkers(maxWorkers)
	gw.handler, err = compileRoutes(cfg.Config, routes.Options{
		Workers:        gw.workers,
		Auth:           gw.edge.verifier,
		RateLimiter:    gw.edge.limiter,
		Stack:          gw.upstreams.Stack,
		Logger:         log,
		MaxBodyBytes:   cfg.Server.MaxBodyBytes,
		Middleware:     []func(http.Handler) http.Handler{gw.tel.Server(observability.ServerOptions{Route: routePattern, DegradedHeader: routes.DegradedHeader})},
		Observer:       gw.tel,
		Cache:          gw.cache,
		NoServerTiming: !gw.tel.ServerTiming(),
	})
	if err != nil {
		return nil, invalid(err)
	}
	return gw, nil
}

// maxWorkers bounds the goroutines kept for running calls: beyond it a
// call gets a goroutine of its own, as before. 1024 kept goroutines with
// grown stacks cost at most about 32 MiB; idle ones end after 10 s.
const maxWorkers = 1024

// notFound reports whether err is an upstream's 404: the one answer a
// cache may remember as negative.
func notFound(err error) bool {
	var se *upstream.StatusError
	return errors.As(err, &se) && se.Status == http.StatusNotFound
}

// demoTelemetry traces the in-process demo services as their own service,
// braid-demo, when the OTEL_* variables turn tracing on; nil otherwise. It
// keeps no metrics and no access log: those are the gateway's.
func demoTelemetry(ctx context.Context, log *slog.Logger) (*observability.Telemetry, error) {
	cfg := observability.Config{ServiceName: "braid-demo", // set first: OTEL_SERVICE_NAME names the gateway
		Metrics: observability.MetricsConfig{Disabled: true}, AccessLog: observability.AccessLogConfig{Disabled: true}}
	cfg.ApplyEnv(lookupEnv)
	tel, err := observability.New(ctx, cfg, observability.Build{Service: "braid-demo", Version: version()}, observability.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("demo tracing: %w", err)
	}
	if !tel.Tracing() {
		return nil, nil
	}
	return tel, nil
}

// routePattern is the chi route pattern a request matched, "" if none.
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		return rc.RoutePattern()
	}
	return ""
}

// version is the module version the binary was built from, or "dev".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// logBreaker logs circuit breaker transitions: opening is a warning, the
// rest is information.
func logBreaker(log *slog.Logger) func(string, breaker.State, breaker.State) {
	return func(name string, from, to breaker.State) {
		level := slog.LevelInfo
		if to == breaker.Open {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "circuit breaker "+to.String(), "upstream", name, "from", from.String(), "to", to.String())
	}
}

// demoEnv maps the upstream URL variables of gateway.yaml to the in-process
// demo services.
func demoEnv(c *demo.Cluster) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for _, svc := range demo.ServiceNames {
			if name == strings.ToUpper(svc)+"_URL" {
				return c.URL(svc), true
			}
		}
		if name == "AUTH_JWKS_URL" {
			return c.URL("users") + demo.JWKSPath, true
		}
		return lookupEnv(name)
	}
}

// serve runs the gateway until ctx ends, then drains.
func serve(ctx context.Context, o *options, log *slog.Logger, stdout io.Writer) error {
	lookup := lookupEnv
	var demoURLs []string
	if o.demo {
		dtel, err := demoTelemetry(ctx, log)
		if err != nil {
			return err
		}
		cluster, err := demo.Start(ctx, demo.Options{Logger: log.With("component", "demo"), Telemetry: dtel})
		if err != nil {
			return fmt.Errorf("starting demo services: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
			defer cancel()
			_ = cluster.Shutdown(sctx)
			_ = dtel.Shutdown(sctx)
		}()
		lookup = demoEnv(cluster)
		for _, name := range demo.ServiceNames {
			demoURLs = append(demoURLs, name+" "+cluster.URL(name))
		}
	}
	gw, err := build(o, lookup, log)
	if err != nil {
		return err
	}
	defer gw.close()
	gw.demo = o.demo
	limit, why, restore := applyMemoryLimit(gw, lookup)
	defer restore()
	log.Info("memory limit", "bytes", limit, "from", why)
	pct, why, restoreGC := applyGCPercent(gw, limit, lookup)
	defer restoreGC()
	log.Info("gc percent", "percent", pct, "from", why)
	tctx, stopTrim := context.WithCancel(ctx)
	var trimDone sync.WaitGroup
	trimDone.Go(func() {
		trimMemory(tctx, trimEvery, reclaimable, func() (int64, int64) { m := gw.upstreams.Memory(); return m.InUse, m.Budget }, debug.FreeOSMemory, log)
	})
	defer trimDone.Wait()
	defer stopTrim()
	sc := gw.cfg.Server
	pub, err := net.Listen("tcp", sc.Listen)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	adm, err := net.Listen("tcp", sc.AdminListen)
	if err != nil {
		pub.Close()
		return fmt.Errorf("server.admin_listen: %w", err)
	}
	var st state
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	public := &http.Server{Handler: closeWhenDraining(&st.draining, gw.handler), ReadHeaderTimeout: sc.ReadHeaderTimeout, ReadTimeout: sc.ReadTimeout,
		WriteTimeout: sc.WriteTimeout, IdleTimeout: sc.IdleTimeout, MaxHeaderBytes: sc.MaxHeaderBytes, ErrorLog: errLog}
	admin := &http.Server{Handler: adminHandler(&st.ready, gw), ReadHeaderTimeout: sc.ReadHeaderTimeout, ErrorLog: errLog}
	errc := make(chan error, 2)
	go func() { errc <- public.Serve(pub) }()
	go func() { errc <- admin.Serve(adm) }()
	st.ready.Store(true)
	banner(stdout, gw, pub.Addr(), adm.Addr(), demoURLs)
	log.Info("serving", "addr", pub.Addr().String(), "admin", adm.Addr().String(), "config", gw.source)

	var serveErr error
	select {
	case <-ctx.Done():
		serveErr = drainDelay(o, &st, *sc.DrainDelay, errc, log)
	case serveErr = <-errc:
		st.ready.Store(false)
	}
	log.Info("draining: closing the public listener, finishing in-flight requests", "shutdown_timeout", sc.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sc.ShutdownTimeout)
	defer cancel()
	shutErr := errors.Join(public.Shutdown(sctx), admin.Shutdown(sctx))
	for range cap(errc) - boolInt(serveErr != nil) {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			serveErr = errors.Join(serveErr, err)
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", serveErr)
	}
	if shutErr != nil {
		return fmt.Errorf("draining: %w", shutErr)
	}
	log.Info("drained; bye")
	return nil
}

// state is what the admin listener and the public handler know of the
// gateway's life.
type state struct {
	ready    atomic.Bool // /readyz answers 200
	draining atomic.Bool // responses carry Connection: close
}

// drainDelay is the first phase of a drain: /readyz answers 503 at once,
// but requests are still served for delay, so that load balancers see the
// gateway leave and stop sending before its listener closes; every
// response meanwhile closes its connection (see closeWhenDraining). A
// server failing meanwhile ends the delay; its error is returned.
func drainDelay(o *options, st *state, delay time.Duration, errc <-chan error, log *slog.Logger) error {
	st.ready.Store(false)
	if delay <= 0 {
		return nil
	}
	st.draining.Store(true)
	log.Info("draining: /readyz answers 503; still serving until the drain delay ends, so load balancers stop sending (a second signal stops at once)", "drain_delay", delay)
	after := time.After
	if o.drainTimer != nil {
		after = o.drainTimer
	}
	select {
	case <-after(delay):
		return nil
	case err := <-errc:
		return err
	}
}

// closeWhenDraining answers with Connection: close once draining is set, so
// that a keep-alive client learns with its next response to reconnect
// (through its balancer, which by then sends it elsewhere). Idle
// connections are left to Shutdown: closing them while a balancer may still
// pick one would race its next request.
func closeWhenDraining(draining *atomic.Bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// adminHandler serves the admin listener: liveness and readiness, the
// operator endpoints (/metrics, /stats, /debug/pprof/) and the cache API
// (POST /cache/invalidate, behind admin.token).
func adminHandler(ready *atomic.Bool, gw *gateway) http.Handler {
	r := chi.NewRouter()
	for pattern, h := range gw.tel.AdminHandlers() {
		r.Handle(pattern, h)
	}
	if gw.cache != nil {
		r.Handle("/cache/invalidate", gw.cache.AdminHandler(gw.cfg.Admin.Token))
	}
	if gw.demo {
		// GET /demo/token?sub=7: a signed demo token for user 7, for
		// trying the /api/me/... routes (demo mode only).
		r.Method(http.MethodGet, "/demo/token", demo.TokenHandler())
	}
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"status": 404, "error": "no_route", "message": "no admin endpoint " + r.URL.Path})
	})
	return r
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// banner tells a person what is running and what to try.
func banner(w io.Writer, gw *gateway, pub, adm net.Addr, demoURLs []string) {
	base := "http://" + pub.String()
	if host, port, err := net.SplitHostPort(pub.String()); err == nil && (host == "::" || host == "0.0.0.0") {
		base = "http://localhost:" + port
	}
	mode := ""
	if len(demoURLs) > 0 {
		mode = ", demo services in process: " + strings.Join(demoURLs, ", ")
	}
	fmt.Fprintf(w, "braid: serving on %s (admin http://%s; config %s%s)\n", base, adm, gw.source, mode)
	fmt.Fprintln(w, "try:")
	for _, rc := range gw.cfg.Routes {
		auth := ""
		if rc.Auth != nil {
			if !gw.demo {
				continue // needs a token this banner cannot give
			}
			auth = fmt.Sprintf(`-H "Authorization: Bearer $(curl -s http://%s/demo/token?sub=7)" `, adm)
		}
		fmt.Fprintf(w, "  curl -s %s%s%s\n", auth, base, patternParamRE.ReplaceAllString(rc.Path, "1"))
	}
	fmt.Fprintf(w, "  curl -s http://%s/readyz\n", adm)
}
