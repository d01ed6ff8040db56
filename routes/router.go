package routes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/auth"
	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/ratelimit"
	"github.com/braidgw/braid/upstream"
)

// Response headers set on composite responses.
const (
	// DegradedHeader lists the optional calls that failed (their parts are
	// null), comma separated.
	DegradedHeader = "Braid-Degraded"
	// MissingKeysHeader lists, per batch call, keys that had no object and
	// were stitched as null: "products=17,23; sellers=4".
	MissingKeysHeader = "Braid-Missing-Keys"
	// CacheStatusHeader says, per cached call, how the cache answered
	// (RFC 9211): `braid; hit; detail=l1; key="user"`.
	CacheStatusHeader = "Cache-Status"
)

// Options are what the routes are built with.
type Options struct {
	// Stack builds each call's Fetch, once per call, when the routes are
	// compiled: upstream.(*Set).Stack in the gateway, upstream.Static in
	// tests. Required.
	Stack upstream.Factory
	// Logger receives access logs and errors; nil discards them.
	Logger *slog.Logger
	// MaxBodyBytes: a request declaring a longer body (Content-Length)
	// gets 413. No route reads a body, so none is ever read or buffered;
	// see guardBody. Default 1 MiB.
	MaxBodyBytes int64
	// Middleware runs inside the router, after panic recovery and before
	// the body limit, so that it sees the matched route pattern once the
	// request is served (chi.RouteContext): the server span, request
	// metrics and access log go here. Default none.
	Middleware []func(http.Handler) http.Handler
	// Observer watches every call of every route (call spans, degraded
	// parts); nil observes nothing.
	Observer aggregate.Observer
	// Cache caches the calls that declare a cache section (a batch call per
	// key); the same *cache.Cache the stacks were built with. Nil caches no
	// batch call.
	Cache *cache.Cache
	// NoServerTiming leaves the Server-Timing header out, for public edges
	// that should not reveal their upstreams' timings. Default false.
	NoServerTiming bool
	// Auth builds the verifier of each route's auth section; nil builds
	// one per route with auth.New and never closes it (tests).
	Auth AuthFactory
	// Workers runs calls on kept goroutines (see aggregate.Workers); the
	// caller closes it after the server has drained. Nil: a goroutine per
	// call run beside others.
	Workers *aggregate.Workers
	// RateLimiter builds each rate-limited route's limiter; nil builds a
	// local one per route with ratelimit.New and never closes it (tests).
	RateLimiter LimiterFactory
}

// route is a compiled RouteConfig.
type route struct {
	field   string // "routes[i] (path)", for errors
	method  string
	path    string
	key     string // the pattern without parameter names: see pattern.key
	timeout time.Duration
	params  []*param
	plan    *aggregate.Plan

	verifier    *auth.Verifier     // nil: anyone may call
	limiter     *ratelimit.Limiter // nil: no rate limit
	proxies     []netip.Prefix     // trusted proxies, for the client's IP
	forward     []string           // client headers the calls forward
	copyHeaders []ResponseHeader   // call answers' headers copied to the response
	cors        *CORSConfig        // nil: no CORS
}

// compile checks cfg against the upstreams and compiles every route. All
// mistakes are reported, joined, each naming its field.
func compile(cfg Config, opts Options) ([]*route, error) {
	var errs []error
	errf := func(f, format string, args ...any) {
		errs = append(errs, &aggregate.ConfigError{Field: f, Msg: fmt.Sprintf(format, args...)})
	}
	if len(cfg.Routes) == 0 {
		errf("routes", "at least one route is required")
	}
	claimed := map[string]*route{} // method + " " + pattern key -> the route mounted there
	var out []*route
	proxies, perrs := parseProxies(cfg.TrustedProxies)
	errs = append(errs, perrs...)
	if cfg.Defaults.CORS != nil {
		errs = append(errs, cfg.Defaults.CORS.validate("defaults.cors")...)
	}
	for i, rc := range cfg.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		if rc.Path != "" {
			field += " (" + rc.Path + ")"
		}
		rt := &route{field: field, path: rc.Path, timeout: rc.Timeout}
		var ok bool
		if rt.method, ok = validMethod(rc.Method); !ok {
			errf(field+".method", "%q: only GET and HEAD are allowed", rc.Method)
		}
		inPath, err := rt.compilePath(claimed)
		if err != nil {
			errs = append(errs, err)
		}
		if rc.Timeout < 0 {
			errf(field+".timeout", "must not be negative")
		} else if rc.Timeout == 0 {
			rt.timeout = defaultTimeout
		}
		params, perrs := compileParams(field, rc, inPath)
		errs = append(errs, perrs...)
		rt.params = params
		names := make([]string, len(params))
		for j, p := range params {
			names[j] = p.Name
		}
		errs = append(errs, rt.compileEdge(rc, cfg, opts, proxies)...)
		rt.cors = cfg.Defaults.CORS
		if rc.CORS != nil {
			rt.cors = rc.CORS
			errs = append(errs, rc.CORS.validate(field+".cors")...)
		}
		env := aggregate.Env{Field: field, Route: rt.method + " " + rc.Path, Params: names, Stack: opts.Stack, Observer: opts.Observer, Cache: opts.Cache, Workers: opts.Workers,
			Auth: rc.Auth != nil, Forward: rt.forward}
		plan, err := aggregate.Compile(rc.Calls, env)
		if err != nil {
			errs = append(errs, err)
		}
		rt.plan = plan
		out = append(out, rt)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// compilePath checks rt's pattern and claims its requests for rt's method
// in claimed (method + " " + pattern key -> route), refusing a pattern that
// a route before it claimed. It returns the pattern's parameter names,
// those found before any error.
func (rt *route) compilePath(claimed map[string]*route) ([]string, error) {
	errf := func(format string, args ...any) error {
		return &aggregate.ConfigError{Field: rt.field + ".path", Msg: fmt.Sprintf(format, args...)}
	}
	if rt.path == "" || rt.path[0] != '/' {
		return nil, errf("%q must start with /", rt.path)
	}
	pat, err := parsePattern(rt.path)
	if err != nil {
		return pat.params, errf("%v", err)
	}
	rt.key = pat.key
	switch prev := claimed[rt.method+" "+rt.key]; {
	case prev == nil:
		claimed[rt.method+" "+rt.key] = rt
	case prev.path == rt.path:
		return pat.params, errf("%s %s is declared twice, first by %s", rt.method, rt.path, prev.field)
	default:
		return pat.params, errf("%s %s matches the same requests as %s: only the parameter names differ", rt.method, rt.path, prev.field)
	}
	return pat.params, nil
}

// New compiles cfg and returns the gateway's public handler: a chi router
// with the composite routes behind recover, body and access-log
// middleware. A GET route answers HEAD too, unless a HEAD route matches the
// same requests. Unknown paths get a 404 JSON error; a known path asked
// with a method it does not serve gets a 405 with an Allow header.
func New(cfg Config, opts Options) (http.Handler, error) {
	rts, err := compile(cfg, opts)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	r := chi.NewRouter()
	r.Use(recoverer(log))
	r.Use(opts.Middleware...)
	r.Use(guardBody(opts.MaxBodyBytes))
	r.NotFound(noRoute)
	r.MethodNotAllowed(methodNotAllowed(r))
	head := map[string]bool{} // pattern keys with a HEAD route of their own
	for _, rt := range rts {
		if rt.method == http.MethodHead {
			head[rt.key] = true
		}
	}
	var errs []error
	preflights := map[string]bool{} // pattern keys with an OPTIONS handler
	for _, rt := range rts {
		var h http.Handler = &handler{route: rt, log: log, serverTiming: !opts.NoServerTiming}
		if wrap, preflight := rt.cors.middleware(); wrap != nil {
			h = wrap(h)
			if !preflights[rt.key] {
				preflights[rt.key] = true
				errs = append(errs, mount(r, http.MethodOptions, rt, preflight))
			}
		}
		errs = append(errs, mount(r, rt.method, rt, h))
		if rt.method == http.MethodGet && !head[rt.key] {
			errs = append(errs, mount(r, http.MethodHead, rt, h))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// mount serves h for method on rt's pattern. compile refuses every pattern
// known to make chi panic; should one slip through, the panic becomes an
// error naming the route instead of a crash at start-up.
func mount(r chi.Router, method string, rt *route, h http.Handler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &aggregate.ConfigError{Field: rt.field + ".path", Msg: fmt.Sprintf("%q is refused by the router: %v", rt.path, v)}
		}
	}()
	r.Method(method, rt.path, h)
	return nil
}

// routeMethods are the methods a route may serve, in the order Allow
// lists them.
var routeMethods = []string{http.MethodGet, http.MethodHead}

func noRoute(w http.ResponseWriter, r *http.Request) {
	writeError(w, apiError{Status: http.StatusNotFound, Code: "no_route", Message: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
}

// methodNotAllowed answers 405 with an Allow header listing the methods
// that mux serves on the request's path. chi also calls it for a method it
// does not know, whatever the path: a path that no route serves is a 404.
func methodNotAllowed(mux *chi.Mux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		var allowed []string
		for _, m := range routeMethods {
			if mux.Match(chi.NewRouteContext(), m, path) {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) == 0 {
			noRoute(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", "))})
	}
}

// handler serves one composite route.
type handler struct {
	route        *route
	log          *slog.Logger
	serverTiming bool
}

// maxReserve is the most of a route's timeout kept back from its calls for
// assembling and writing the response.
const maxReserve = 20 * time.Millisecond

// reserve is the part of a route's timeout kept back from its calls: a
// tenth of it, at most maxReserve. A call's deadline is thus the smaller of
// its own timeout and the route's remaining time minus the reserve, so a
// late call fails with a clean 504 or a degraded part instead of the client
// timing out on the gateway.
func reserve(timeout time.Duration) time.Duration {
	return min(timeout/10, maxReserve)
}

// writeBufSize is the size of the pooled buffer that gathers a response's
// small parts (keys, punctuation, small bodies) into few writes; a part at
// least directWrite long is written as it is, never copied.
const (
	writeBufSize = 16 << 10
	directWrite  = 4 << 10
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, writeBufSize); return &b }}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id, ok := h.admit(w, r)
	if !ok {
		return
	}
	params, err := readParams(r, h.route.params)
	if err != nil {
		writeError(w, classify(err))
		return
	}
	if id != nil {
		if params, ok = h.claimParams(w, id, params); !ok {
			return
		}
	}
	// Upstream bodies stay counted against the memory budget until the
	// answer built from them has been written.
	ctx, release := upstream.HoldMemory(upstream.WithClientHeader(r.Context(), r.Header))
	defer release()
	ctx, cancel := context.WithTimeout(ctx, h.route.timeout-reserve(h.route.timeout))
	defer cancel()
	res, err := h.route.plan.Execute(ctx, params)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var partsArr [24][]byte
	parts, size, err := res.Parts(partsArr[:0])
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hdr := w.Header()
	// The headers every answer has take their values from one array: one
	// allocation, not one per header. Their names are canonical, so they
	// go straight into the map, as Set would put them.
	own := make([]string, 3)
	own[0] = "application/json"
	hdr["Content-Type"] = own[0:1:1]
	if d := res.Degraded(); len(d) > 0 {
		hdr.Set(DegradedHeader, formatDegraded(d))
		for _, e := range res.Errors() {
			h.log.WarnContext(r.Context(), "optional call failed", "route", h.route.path, "err", e)
		}
	}
	if m := res.MissingKeys(); len(m) > 0 {
		hdr.Set(MissingKeysHeader, formatMissing(m))
		h.log.InfoContext(r.Context(), "batch keys not found", "route", h.route.path, "missing", hdr.Get(MissingKeysHeader))
	}
	if cs := res.CacheStatuses(); len(cs) > 0 {
		hdr.Set(CacheStatusHeader, cacheStatus(cs))
	}
	for _, c := range h.route.copyHeaders {
		if vs := res.Header(c.Call).Values(c.Header); len(vs) > 0 {
			hdr.Set(c.Header, boundedValue(vs))
		}
	}
	if h.serverTiming {
		own[1] = serverTiming(res, time.Since(start))
		hdr["Server-Timing"] = own[1:2:2]
	}
	own[2] = strconv.Itoa(size + 1)
	hdr["Content-Length"] = own[2:3:3]
	if r.Method == http.MethodHead {
		return
	}
	writeParts(w, parts)
}

// writeParts writes a response document's parts and a final newline
// without assembling them in one buffer: large parts (upstream bodies) go
// to w as they are, small ones are gathered in a pooled buffer first. It
// stops at the first write error (the client went away).
func writeParts(w io.Writer, parts [][]byte) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:0]
	flush := func() bool {
		if len(buf) == 0 {
			return true
		}
		_, err := w.Write(buf)
		buf = buf[:0]
		return err == nil
	}
	for _, p := range parts {
		if len(p) >= directWrite {
			if !flush() {
				return
			}
			if _, err := w.Write(p); err != nil {
				return
			}
			continue
		}
		if len(buf)+len(p) > cap(buf) && !flush() {
			return
		}
		buf = append(buf, p...)
	}
	buf = append(buf, '\n')
	flush()
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := classify(err)
	h.log.WarnContext(r.Context(), "request failed", "route", h.route.path, "status", e.Status, "err", err)
	writeError(w, e)
}
