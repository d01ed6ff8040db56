package demo

import (
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/braidgw/braid/observability"
)

// ServiceNames lists the five demo services in their conventional order;
// cmd/demo gives them ports 9101..9105 in this order.
var ServiceNames = []string{"users", "orders", "products", "notifications", "recommendations"}

// ServiceOptions configures NewService. The zero value is ready to use.
type ServiceOptions struct {
	// Faults are the initial faults; the zero value injects none.
	Faults Faults
	// Rand decides which requests fail under Faults.ErrorRate. Nil means a
	// PCG seeded from the service name, so a run is repeatable.
	Rand rand.Source
	// Logger receives request errors and injected faults. Nil discards.
	Logger *slog.Logger
	// Telemetry observes every request with its server middleware: a
	// server span named after the route pattern, continuing an incoming
	// traceparent (see [observability.Telemetry.Server]). Nil observes
	// nothing and costs nothing.
	Telemetry *observability.Telemetry
}

// Service is one demo service: an http.Handler serving its API, its health
// check, its admin endpoints and its Prometheus metrics, with injectable
// faults and request counters. It is safe for concurrent use.
type Service struct {
	name    string
	mux     *http.ServeMux // the API, /healthz and the admin endpoints
	handler http.Handler   // mux, wrapped in the server middleware (but for /metrics) when observed
	logger  *slog.Logger
	metrics *metrics // served at GET /metrics

	faultsMu sync.Mutex // serialises updates of faults
	faults   atomic.Pointer[Faults]

	rngMu sync.Mutex // guards rng
	rng   *rand.Rand

	requests atomic.Int64
	byRoute  map[string]*atomic.Int64 // keys fixed at construction: the route patterns
}

// NewService returns the service with the given name (one of ServiceNames)
// reading from store.
func NewService(name string, store Store, opts ServiceOptions) (*Service, error) {
	if store == nil {
		return nil, fmt.Errorf("demo: service %q: nil store", name)
	}
	routes, err := routesFor(name, store)
	if err != nil {
		return nil, err
	}
	if err := opts.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("demo: service %q: faults: %w", name, err)
	}
	src := opts.Rand
	if src == nil {
		h := fnv.New64a()
		h.Write([]byte(name))
		src = rand.NewPCG(h.Sum64(), seed2)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		name:    name,
		mux:     http.NewServeMux(),
		logger:  logger.With("service", name),
		rng:     rand.New(src),
		byRoute: make(map[string]*atomic.Int64, len(routes)+1),
	}
	s.faults.Store(&opts.Faults)
	s.metrics = newMetrics(name, s.Faults)
	routes = append(routes, route{"GET /healthz", s.healthz})
	for _, rt := range routes {
		s.byRoute[rt.pattern] = new(atomic.Int64)
		s.mux.Handle(rt.pattern, s.metrics.observe(s.instrument(s.byRoute[rt.pattern], s.endpoint(rt.handle))))
	}
	s.mux.Handle("/", s.metrics.observe(s.instrument(nil, s.endpoint(noRoute))))
	s.registerAdmin()
	s.handler = s.mux
	if opts.Telemetry != nil {
		s.handler = skipScrapes(s.mux, opts.Telemetry.Server(observability.ServerOptions{Route: routePattern})(s.mux))
	}
	return s, nil
}

// route is one API endpoint of a service.
type route struct {
	pattern string // http.ServeMux pattern, also the key of the per-route counter
	handle  handler
}

// Name returns the service name.
func (s *Service) Name() string { return s.name }

// ServeHTTP serves the API, /healthz, the /_demo/ admin endpoints and
// GET /metrics.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// instrument counts a non-admin request (in Stats; the metrics observe it
// from outside, see metrics.observe), then injects the current faults
// (a connection reset, 503 when down, latency, an error at the error rate,
// a hostile answer), then runs h if no fault answered the request. count is nil for requests
// that match no route; they count only towards the total.
func (s *Service) instrument(count *atomic.Int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if count != nil {
			count.Add(1)
		}
		f := s.Faults()
		if f.Reset {
			markFault(r, "reset")
			s.logger.Debug("injected connection reset", "path", r.URL.Path)
			if err := resetConnection(w); err != nil {
				s.logger.Warn("injected connection reset", "path", r.URL.Path, "err", err)
			}
			return
		}
		if f.Down {
			markFault(r, "down")
			writeError(w, http.StatusServiceUnavailable, "service down")
			return
		}
		if f.Latency > 0 {
			markLatency(r, f.Latency)
		}
		if err := wait(r.Context(), f.Latency); err != nil {
			s.logger.Debug("request ended during injected latency", "path", r.URL.Path, "err", err)
			writeError(w, http.StatusServiceUnavailable, "request cancelled during injected latency")
			return
		}
		if s.fail(f.ErrorRate) {
			markFault(r, "error")
			s.logger.Debug("injected failure", "path", r.URL.Path)
			writeError(w, f.errorStatus(), "injected failure")
			return
		}
		if f.Hostile != "" {
			markFault(r, string(f.Hostile))
			s.logger.Debug("injected hostile answer", "mode", f.Hostile, "path", r.URL.Path)
			s.answerHostile(w, r, f, h)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// fail draws whether a request fails at the given rate; 0 and 1 are exact.
func (s *Service) fail(rate float64) bool {
	switch {
	case rate <= 0:
		return false
	case rate >= 1:
		return true
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64() < rate
}

// Faults returns the faults currently injected.
func (s *Service) Faults() Faults { return *s.faults.Load() }

// SetFaults replaces the injected faults. Invalid faults are an error and
// leave the current ones in place.
func (s *Service) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("demo: service %q: %w", s.name, err)
	}
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	s.faults.Store(&f)
	return nil
}

// updateFaults applies change to a copy of the current faults and stores
// the result unless change fails; concurrent updates do not lose each other.
func (s *Service) updateFaults(change func(*Faults) error) (Faults, error) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	next := s.Faults()
	if err := change(&next); err != nil {
		return Faults{}, err
	}
	s.faults.Store(&next)
	return next, nil
}

// Stats are a service's request counters.
type Stats struct {
	Service  string           `json:"service"`
	Requests int64            `json:"requests"` // every non-admin request, matched or not
	ByRoute  map[string]int64 `json:"by_route"` // per route pattern, e.g. "GET /products/{id}"
}

// Requests returns how many non-admin requests the service has received
// since start or the last Reset, including those answered by a fault and
// those that matched no route.
func (s *Service) Requests() int64 { return s.requests.Load() }

// RouteCount returns how many requests matched the route pattern, e.g.
// "GET /products"; an unknown pattern counts zero.
func (s *Service) RouteCount(pattern string) int64 {
	if c, ok := s.byRoute[pattern]; ok {
		return c.Load()
	}
	return 0
}

// Routes returns the service's route patterns, sorted.
func (s *Service) Routes() []string {
	var ps []string
	for p := range s.byRoute {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	st := Stats{Service: s.name, Requests: s.requests.Load(), ByRoute: make(map[string]int64, len(s.byRoute))}
	for p, c := range s.byRoute {
		st.ByRoute[p] = c.Load()
	}
	return st
}

// Reset zeroes the counters and clears the faults. The Prometheus
// metrics keep counting: a counter that went back to zero would read as a
// restart.
func (s *Service) Reset() {
	s.faultsMu.Lock()
	s.faults.Store(&Faults{})
	s.faultsMu.Unlock()
	s.requests.Store(0)
	for _, c := range s.byRoute {
		c.Store(0)
	}
}

// checkName returns an error unless name is one of ServiceNames.
func checkName(name string) error {
	if slices.Contains(ServiceNames, name) {
		return nil
	}
	return fmt.Errorf("demo: unknown service %q (want one of %s)", name, strings.Join(ServiceNames, ", "))
}
