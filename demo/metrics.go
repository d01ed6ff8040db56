package demo

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// latencyBuckets are the gateway's request duration buckets, 100µs to 10s,
// so that a downstream's own percentiles compare with the gateway's view
// of it.
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// statusNoResponse is the status label of a request answered by resetting
// its connection: no status line was sent.
const statusNoResponse = "0"

// metrics are a service's Prometheus metrics, in a registry of the
// service's own, so that any number of services share a process (a
// Cluster, tests, `gateway -demo`) without sharing or re-registering a
// collector. Every series carries the const label service.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // http_route, http_request_method, http_response_status_code
	duration *prometheus.HistogramVec // the same labels
}

// newMetrics returns the metrics of the named service; faults reports the
// faults in force whenever they are scraped.
func newMetrics(service string, faults func() Faults) *metrics {
	labels := []string{"http_route", "http_request_method", "http_response_status_code"}
	constLabels := prometheus.Labels{"service": service}
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "braid_demo_requests_total", ConstLabels: constLabels,
		Help: "Requests served by a demo service, admin requests excluded, by route pattern (\"\" for no route); status 0 when the connection was reset without an answer.",
	}, labels)
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "braid_demo_request_duration_seconds", ConstLabels: constLabels, Buckets: latencyBuckets,
		Help: "Duration of the requests served by a demo service, injected latency included, by route pattern.",
	}, labels)
	m.reg.MustRegister(m.requests, m.duration, newFaultCollector(constLabels, faults))
	return m
}

// handler serves the metrics in the Prometheus exposition format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// skipScrapes returns traced, except that requests for /metrics go
// straight to mux: a scrape every few seconds is not a trace anyone
// wants to find in Jaeger.
func skipScrapes(mux, traced http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			mux.ServeHTTP(w, r)
			return
		}
		traced.ServeHTTP(w, r)
	})
}

// observe counts and times every request h serves, under the route
// pattern the mux matched (see routePattern), its method and the status
// it was answered with. It must run inside the mux, outside the faults, so
// that the route is known and an injected fault or latency is observed
// like any answer.
func (m *metrics) observe(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		mw := &metricsWriter{ResponseWriter: w}
		returned := false
		defer func() {
			// Deferred, so that a request aborted by a panic (a reset
			// where the connection cannot be hijacked) is counted too.
			lv := []string{routePattern(r), methodLabel(r.Method), mw.statusLabel(returned)}
			m.requests.WithLabelValues(lv...).Inc()
			m.duration.WithLabelValues(lv...).Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(mw, r)
		returned = true
	})
}

// methodLabel bounds the method label: the standard methods as they are,
// any other as "_OTHER" (a client may send any token).
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "_OTHER"
}

// metricsWriter records the status of a response and whether its
// connection was taken over.
type metricsWriter struct {
	http.ResponseWriter
	status   int  // the final status written, 0 until then
	hijacked bool // the connection was taken over (the reset fault)
}

func (w *metricsWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *metricsWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Hijack takes the connection over through the writers it wraps and
// remembers that it did.
func (w *metricsWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *metricsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusLabel returns the status the client was sent: the one written,
// 200 if the handler returned without writing (net/http sends 200), or
// statusNoResponse if the connection was taken over or the handler
// panicked before anything was written.
func (w *metricsWriter) statusLabel(returned bool) string {
	switch {
	case w.status != 0:
		return strconv.Itoa(w.status)
	case w.hijacked || !returned:
		return statusNoResponse
	}
	return strconv.Itoa(http.StatusOK)
}

// faultModes are the values of the mode label of braid_demo_fault_active:
// the fault names of a server span's demo.fault attribute, and latency.
func faultModes() []string {
	modes := []string{"latency", "error", "down", "reset"}
	for _, h := range HostileModes {
		modes = append(modes, string(h))
	}
	return modes
}

// faultCollector exposes the faults in force when scraped, so that a
// failure drill shows on the downstream's own dashboard the moment it is
// switched on, whichever way (flag, admin endpoint, SetFaults, Reset).
type faultCollector struct {
	faults    func() Faults
	modes     []string
	active    *prometheus.Desc // mode
	latency   *prometheus.Desc
	errorRate *prometheus.Desc
}

var _ prometheus.Collector = (*faultCollector)(nil)

func newFaultCollector(constLabels prometheus.Labels, faults func() Faults) *faultCollector {
	return &faultCollector{
		faults: faults,
		modes:  faultModes(),
		active: prometheus.NewDesc("braid_demo_fault_active",
			"Whether a demo service injects the fault: 1 on, 0 off; mode latency, error (error_rate above 0), down, reset or a hostile mode.",
			[]string{"mode"}, constLabels),
		latency: prometheus.NewDesc("braid_demo_fault_latency_seconds",
			"Latency a demo service adds before every answer.", nil, constLabels),
		errorRate: prometheus.NewDesc("braid_demo_fault_error_rate",
			"Fraction of requests a demo service fails on purpose, from 0 to 1.", nil, constLabels),
	}
}

// Describe implements prometheus.Collector.
func (c *faultCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.active
	ch <- c.latency
	ch <- c.errorRate
}

// Collect implements prometheus.Collector.
func (c *faultCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.faults()
	on := map[string]bool{"latency": f.Latency > 0, "error": f.ErrorRate > 0, "down": f.Down, "reset": f.Reset}
	if f.Hostile != "" {
		on[string(f.Hostile)] = true
	}
	for _, mode := range c.modes {
		v := 0.0
		if on[mode] {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, v, mode)
	}
	ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, f.Latency.Seconds())
	ch <- prometheus.MustNewConstMetric(c.errorRate, prometheus.GaugeValue, f.ErrorRate)
}
