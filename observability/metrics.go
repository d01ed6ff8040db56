package observability

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// latencyBuckets fit latencies from 100µs to 10s, so that
// histogram_quantile gives usable p50/p95/p99 across that range.
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Outcome is how an upstream call ended, the outcome label of its metrics.
type Outcome int

// The outcomes of an upstream call.
const (
	OK       Outcome = iota // a 2xx JSON answer
	Failed                  // an error answer, a transport error, a bad body
	Timeout                 // the call's deadline passed
	Rejected                // refused by the breaker or bulkhead: never sent
	Canceled                // the caller went away
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "error", "timeout", "rejected", "canceled"}

// String returns the outcome's label value.
func (o Outcome) String() string { return outcomeNames[o] }

// metrics holds the Prometheus collectors and the live /stats windows.
type metrics struct {
	reg *prometheus.Registry

	requests *prometheus.HistogramVec // http_route, http_request_method, http_response_status_code
	inFlight prometheus.Gauge
	degraded *prometheus.CounterVec // http_route, call

	upCalls     *prometheus.HistogramVec  // upstream, outcome
	upTries     *prometheus.CounterVec    // upstream
	upRetries   *prometheus.CounterVec    // upstream
	upHedges    *prometheus.CounterVec    // upstream
	brState     *prometheus.GaugeVec      // upstream
	brChanges   *prometheus.CounterVec    // upstream, from, to
	cache       *prometheus.CounterVec    // layer, event
	rlFallback  *prometheus.CounterVec    // http_route
	routeMu     sync.RWMutex              // guards routeSeries
	routeSeries map[routeKey]*routeSeries // resolved per route, method and status

	stats *stats
}

// newMetrics builds the collectors; b is the trace export's span counts,
// nil with tracing off.
func newMetrics(b *spanCounts) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), stats: newStats(time.Now)}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_server_request_duration_seconds", Help: "Duration of HTTP server requests, by route pattern.",
		Buckets: latencyBuckets,
	}, []string{"http_route", "http_request_method", "http_response_status_code"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "http_server_active_requests", Help: "HTTP server requests in flight."})
	m.degraded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "braid_degraded_parts_total", Help: "Optional calls that failed, leaving their part of a response null."},
		[]string{"http_route", "call"})
	m.upCalls = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "braid_upstream_call_duration_seconds", Help: "Duration of upstream calls, retries and hedges included, by outcome (ok, error, timeout, rejected, canceled).",
		Buckets: latencyBuckets,
	}, []string{"upstream", "outcome"})
	m.upTries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "braid_upstream_tries_total", Help: "Tries of upstream calls: first tries, retries and hedges, including those the breaker or bulkhead refused."}, []string{"upstream"})
	m.upRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "braid_upstream_retries_total", Help: "Retries sent to upstreams."}, []string{"upstream"})
	m.upHedges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "braid_upstream_hedges_total", Help: "Hedged tries sent to upstreams."}, []string{"upstream"})
	m.brState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "braid_circuit_breaker_state", Help: "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open."}, []string{"upstream"})
	m.brChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "braid_circuit_breaker_transitions_total", Help: "Circuit breaker state changes per upstream."}, []string{"upstream", "from", "to"})
	m.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "braid_cache_events_total", Help: "Cache events per layer (l1, l2): hit, miss, stale, error, fill, skip_stale_write, invalidate, flush."},
		[]string{"layer", "event"})
	m.rlFallback = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "braid_ratelimit_local_fallbacks_total", Help: "Rate-limit decisions made by the local limiter because Redis was down or slow (the limit then holds per replica)."},
		[]string{"http_route"})
	m.reg.MustRegister(m.requests, m.inFlight, m.degraded, m.upCalls, m.upTries, m.upRetries, m.upHedges, m.brState, m.brChanges, m.cache, m.rlFallback,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The trace export's span counts, zero with tracing off (so that a
	// dashboard's query finds the series either way).
	if b == nil {
		b = &spanCounts{}
	}
	for _, c := range []struct {
		result string
		n      *atomic.Uint64
	}{{"exported", &b.exported}, {"dropped", &b.dropped}, {"failed", &b.failed}} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "braid_trace_spans_total", ConstLabels: prometheus.Labels{"result": c.result},
			Help: "Sampled spans by what became of them: exported, dropped (the export queue was full), failed (their export failed). Zero with tracing off."},
			func() float64 { return float64(c.n.Load()) }))
	}
	return m
}

// handler serves the metrics in the Prometheus exposition format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// routeKey is what the served requests' series are kept by. Every part
// is bounded: a route pattern (or "" for none), a method of
// requestMethod's, a status the gateway chose.
type routeKey struct {
	route, method string
	status        int
}

// routeSeries is where one routeKey's requests are recorded, resolved once
// so that recording a request costs one map lookup and no allocation.
type routeSeries struct {
	duration prometheus.Observer
	stats    *series // nil for requests that matched no route
}

// request records one served request.
func (m *metrics) request(route, method string, status int, d time.Duration) {
	k := routeKey{route: route, method: requestMethod(method), status: status}
	m.routeMu.RLock()
	rs := m.routeSeries[k]
	m.routeMu.RUnlock()
	if rs == nil {
		rs = m.resolveRoute(k)
	}
	rs.duration.Observe(d.Seconds())
	if rs.stats != nil {
		rs.stats.add(d, status >= 500)
	}
}

// resolveRoute returns k's series, making them on first use.
func (m *metrics) resolveRoute(k routeKey) *routeSeries {
	m.routeMu.Lock()
	defer m.routeMu.Unlock()
	if rs := m.routeSeries[k]; rs != nil {
		return rs
	}
	rs := &routeSeries{duration: m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(k.status))}
	if k.route != "" {
		rs.stats = m.stats.series("routes", k.method+" "+k.route)
	}
	if m.routeSeries == nil {
		m.routeSeries = map[routeKey]*routeSeries{}
	}
	m.routeSeries[k] = rs
	return rs
}

// Upstream is the metrics of one upstream, resolved once when its stack is
// built so that recording costs no label lookup. A nil *Upstream records
// nothing.
type Upstream struct {
	calls                 [numOutcomes]prometheus.Observer
	tries, retries, hedge prometheus.Counter
	state                 prometheus.Gauge
	changes               *prometheus.CounterVec
	name                  string
	live                  *series
}

// upstream returns the recorder of the named upstream.
func (m *metrics) upstream(name string) *Upstream {
	u := &Upstream{
		tries: m.upTries.WithLabelValues(name), retries: m.upRetries.WithLabelValues(name),
		hedge: m.upHedges.WithLabelValues(name), state: m.brState.WithLabelValues(name),
		changes: m.brChanges, name: name, live: m.stats.series("upstreams", name),
	}
	for o := range numOutcomes {
		u.calls[o] = m.upCalls.WithLabelValues(name, o.String())
	}
	return u
}

// Call records one call's outcome and duration, retries included.
func (u *Upstream) Call(o Outcome, d time.Duration) {
	if u == nil {
		return
	}
	u.calls[o].Observe(d.Seconds())
	if o != Canceled {
		u.live.add(d, o != OK)
	}
}

// Try records one HTTP try: a retry (attempt > 1) or a hedge, or a first.
func (u *Upstream) Try(retry, hedge bool) {
	if u == nil {
		return
	}
	u.tries.Inc()
	switch {
	case hedge:
		u.hedge.Inc()
	case retry:
		u.retries.Inc()
	}
}

// Breaker records a circuit breaker transition; states are "closed",
// "half-open" and "open".
func (u *Upstream) Breaker(from, to string) {
	if u == nil {
		return
	}
	u.changes.WithLabelValues(u.name, from, to).Inc()
	switch to {
	case "closed":
		u.state.Set(0)
	case "half-open":
		u.state.Set(1)
	case "open":
		u.state.Set(2)
	}
}
