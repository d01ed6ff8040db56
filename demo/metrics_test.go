package demo

import (
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseMetrics parses a Prometheus text exposition, failing the test if it
// is not one or holds a metric not named braid_demo_*.
func parseMetrics(t *testing.T, body io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	for name := range fams {
		if !strings.HasPrefix(name, "braid_demo_") {
			t.Errorf("metric %s is not named braid_demo_*", name)
		}
	}
	return fams
}

// scrapeService serves GET /metrics on s in process and parses the answer.
func scrapeService(t *testing.T, s *Service) map[string]*dto.MetricFamily {
	t.Helper()
	r := get(t, s, "/metrics")
	wantStatus(t, r, http.StatusOK)
	return parseMetrics(t, strings.NewReader(r.body))
}

// labelsOf returns a series' labels, failing the test unless its service
// label is service.
func labelsOf(t *testing.T, m *dto.Metric, service string) map[string]string {
	t.Helper()
	ls := map[string]string{}
	for _, lp := range m.GetLabel() {
		ls[lp.GetName()] = lp.GetValue()
	}
	if ls["service"] != service {
		t.Errorf("series %v: service label %q, want %q", ls, ls["service"], service)
	}
	delete(ls, "service")
	return ls
}

// requestSeries identifies a series of the request metrics.
type requestSeries struct{ route, method, status string }

// requestCounts returns braid_demo_requests_total per series, checking
// that braid_demo_request_duration_seconds counted the same requests.
func requestCounts(t *testing.T, fams map[string]*dto.MetricFamily, service string) map[requestSeries]float64 {
	t.Helper()
	key := func(m *dto.Metric) requestSeries {
		ls := labelsOf(t, m, service)
		return requestSeries{ls["http_route"], ls["http_request_method"], ls["http_response_status_code"]}
	}
	counts := map[requestSeries]float64{}
	for _, m := range fams["braid_demo_requests_total"].GetMetric() {
		counts[key(m)] = m.GetCounter().GetValue()
	}
	timed := map[requestSeries]float64{}
	for _, m := range fams["braid_demo_request_duration_seconds"].GetMetric() {
		timed[key(m)] = float64(m.GetHistogram().GetSampleCount())
	}
	if !maps.Equal(counts, timed) {
		t.Errorf("requests counted %v, timed %v: want the same", counts, timed)
	}
	return counts
}

// faultGauges returns braid_demo_fault_active per mode, and the latency
// and error rate gauges under the keys "latency_seconds" and "error_rate".
func faultGauges(t *testing.T, fams map[string]*dto.MetricFamily, service string) map[string]float64 {
	t.Helper()
	g := map[string]float64{}
	for _, m := range fams["braid_demo_fault_active"].GetMetric() {
		g[labelsOf(t, m, service)["mode"]] = m.GetGauge().GetValue()
	}
	for key, name := range map[string]string{"latency_seconds": "braid_demo_fault_latency_seconds", "error_rate": "braid_demo_fault_error_rate"} {
		if ms := fams[name].GetMetric(); len(ms) == 1 {
			labelsOf(t, ms[0], service)
			g[key] = ms[0].GetGauge().GetValue()
		} else {
			t.Errorf("%s: %d series, want 1", name, len(ms))
		}
	}
	return g
}

// wantFaultGauges fails unless the fault gauges show exactly the modes
// on, every other mode off, and the latency and error rate.
func wantFaultGauges(t *testing.T, got map[string]float64, latency time.Duration, errorRate float64, on ...string) {
	t.Helper()
	want := map[string]float64{"latency_seconds": latency.Seconds(), "error_rate": errorRate}
	for _, mode := range faultModes() {
		want[mode] = 0
		if slices.Contains(on, mode) {
			want[mode] = 1
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("fault gauges %v, want %v", got, want)
	}
}

// TestMetricsCountRequests serves a products service on a real listener,
// sends it requests of every kind — matched, unmatched, HEAD, an unknown
// method, answered by an injected error, by down, by a connection reset —
// and counts them in its /metrics by route pattern, method and status.
// The admin requests and the scrapes are not counted, and faults (a reset
// of every connection, here) do not touch /metrics.
func TestMetricsCountRequests(t *testing.T) {
	c := startCluster(t, Options{})
	base := c.URL("products")
	client := testClient(t)
	call := func(method, path, body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	for _, rq := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/products/1", 200}, {"GET", "/products/1", 200}, {"GET", "/products/2", 200},
		{"GET", "/products/100000", 404},
		{"GET", "/products?ids=1,2", 200},
		{"HEAD", "/products/1", 200},
		{"GET", "/nope/123", 404},
		{"BREW", "/coffee", 404},
		{"GET", "/healthz", 200},
	} {
		if got := call(rq.method, rq.path, ""); got != rq.status {
			t.Fatalf("%s %s = %d, want %d", rq.method, rq.path, got, rq.status)
		}
	}
	for _, fault := range []struct {
		faults string
		status int
	}{{`{"error_rate":1}`, 500}, {`{"error_rate":0,"down":true}`, 503}} {
		if got := call("PUT", "/_demo/faults", fault.faults); got != 200 {
			t.Fatalf("PUT /_demo/faults %s = %d", fault.faults, got)
		}
		if got := call("GET", "/products/3", ""); got != fault.status {
			t.Fatalf("GET /products/3 with faults %s = %d, want %d", fault.faults, got, fault.status)
		}
	}
	if got := call("PUT", "/_demo/faults", `{"down":false,"reset":true}`); got != 200 {
		t.Fatalf("PUT /_demo/faults reset = %d", got)
	}
	// A fresh connection for the reset: on a reused one the transport
	// would retry the GET, and the service would count it twice.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := fresh.Get(base + "/products/4"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /products/4 with the reset fault answered %d, want a reset connection", resp.StatusCode)
	}
	if got := call("GET", "/_demo/stats", ""); got != 200 {
		t.Fatalf("GET /_demo/stats = %d", got)
	}

	// Scraped over HTTP while every connection is reset: /metrics answers.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("scrape under the reset fault: %v", err)
	}
	fams := parseMetrics(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape under the reset fault: status %d", resp.StatusCode)
	}
	wantFaultGauges(t, faultGauges(t, fams, "products"), 0, 0, "reset")

	// The client sees the reset before the handler has returned and been
	// counted: Shutdown waits for every handler, then count.
	if err := c.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := map[requestSeries]float64{
		{"/products/{id}", "GET", "200"}:  3,
		{"/products/{id}", "GET", "404"}:  1,
		{"/products", "GET", "200"}:       1,
		{"/products/{id}", "HEAD", "200"}: 1,
		{"", "GET", "404"}:                1,
		{"", "_OTHER", "404"}:             1,
		{"/healthz", "GET", "200"}:        1,
		{"/products/{id}", "GET", "500"}:  1,
		{"/products/{id}", "GET", "503"}:  1,
		{"/products/{id}", "GET", "0"}:    1,
	}
	if got := requestCounts(t, scrapeService(t, c.Service("products")), "products"); !maps.Equal(got, want) {
		t.Errorf("requests\n got %v\nwant %v", got, want)
	}
	if n := c.Service("products").Requests(); n != 12 {
		t.Errorf("Stats count %d requests, /metrics 12", n)
	}
}

// TestMetricsFaultGauges: the fault gauges follow the faults, however they
// are set.
func TestMetricsFaultGauges(t *testing.T) {
	s := newTestService(t, "orders", ServiceOptions{Faults: Faults{Latency: 250 * time.Millisecond, ErrorRate: 0.25}})
	wantFaultGauges(t, faultGauges(t, scrapeService(t, s), "orders"), 250*time.Millisecond, 0.25, "latency", "error")

	wantStatus(t, do(t, s, http.MethodPut, "/_demo/faults", `{"latency":"0s","hostile":"drip","down":true}`), http.StatusOK)
	wantFaultGauges(t, faultGauges(t, scrapeService(t, s), "orders"), 0, 0.25, "error", "down", "drip")

	if err := s.SetFaults(Faults{Reset: true, Hostile: HostileGarbage}); err != nil {
		t.Fatal(err)
	}
	wantFaultGauges(t, faultGauges(t, scrapeService(t, s), "orders"), 0, 0, "reset", "garbage")

	s.Reset()
	fams := scrapeService(t, s)
	wantFaultGauges(t, faultGauges(t, fams, "orders"), 0, 0)
	if got := requestCounts(t, fams, "orders"); len(got) != 0 {
		t.Errorf("requests %v: want none, scrapes and admin requests are not counted", got)
	}
}

// TestMetricsPerService: two services of the same name in one process
// each count their own requests, in a registry of their own.
func TestMetricsPerService(t *testing.T) {
	a := newTestService(t, "users", ServiceOptions{})
	b := newTestService(t, "users", ServiceOptions{})
	wantStatus(t, get(t, a, "/users/1"), http.StatusOK)
	wantStatus(t, get(t, a, "/users/1"), http.StatusOK)
	wantStatus(t, get(t, b, "/users/2"), http.StatusOK)
	for s, n := range map[*Service]float64{a: 2, b: 1} {
		want := map[requestSeries]float64{{"/users/{id}", "GET", "200"}: n}
		if got := requestCounts(t, scrapeService(t, s), "users"); !maps.Equal(got, want) {
			t.Errorf("requests %v, want %v", got, want)
		}
	}
}

// TestMetricsNotTraced: a scrape gets no server span; the API still does.
func TestMetricsNotTraced(t *testing.T) {
	tel, rec := newTestTelemetry(t)
	s := newTestService(t, "users", ServiceOptions{Telemetry: tel})
	if w := tracedGet(t, s, "/metrics"); w.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", w.Code)
	}
	if w := tracedGet(t, s, "/users/1"); w.Code != http.StatusOK {
		t.Fatalf("GET /users/1 = %d", w.Code)
	}
	span := onlySpan(t, rec.Ended(), "a scrape and an API request")
	if span.Name() != "GET /users/{id}" {
		t.Errorf("span %q, want the API request's", span.Name())
	}
}
