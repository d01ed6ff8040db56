package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The Grafana dashboards of deploy/grafana/dashboards: valid JSON on the
// provisioned datasources, laid out without overlaps, covering what the
// demo promises (request rate, errors, p50/p95/p99 per route, upstream
// latency, breakers, cache hit ratio, retries, hedges, degraded parts, the
// demo services' own requests and faults), and every metric and label in
// every query exposed by a real gateway or real demo services, whichever
// the query's scrape job scrapes.

// grafanaDashboard is what these checks rely on of a Grafana dashboard.
type grafanaDashboard struct {
	UID    string         `json:"uid"`
	Title  string         `json:"title"`
	Panels []grafanaPanel `json:"panels"`
	Links  []struct {
		URL string `json:"url"`
	} `json:"links"`
}

type grafanaPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct{ X, Y, W, H int }
	Targets    []struct {
		Datasource *datasourceRef `json:"datasource"`
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// panelQuery is one PromQL query of a dashboard panel.
type panelQuery struct {
	where string // dashboard, panel and refId, for messages
	expr  string
}

// dashboards returns every dashboard JSON file Grafana provisions, by
// path, failing the test if one does not parse.
func dashboards(t *testing.T) map[string]grafanaDashboard {
	t.Helper()
	files, _ := filepath.Glob("../deploy/grafana/dashboards/*.json")
	if len(files) == 0 {
		t.Fatal("no dashboards in deploy/grafana/dashboards")
	}
	out := map[string]grafanaDashboard{}
	for _, f := range files {
		var d grafanaDashboard
		if err := json.Unmarshal(readFile(t, f), &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

// allPanels returns the panels of d, those inside rows included.
func allPanels(d grafanaDashboard) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// promQueries returns every Prometheus query of every dashboard.
func promQueries(t *testing.T, dss map[string]grafanaDatasource) []panelQuery {
	t.Helper()
	var qs []panelQuery
	for f, d := range dashboards(t) {
		for _, p := range allPanels(d) {
			for _, tg := range p.Targets {
				ref := tg.Datasource
				if ref == nil {
					ref = p.Datasource
				}
				if ref == nil || dss[ref.UID].Type != "prometheus" {
					continue
				}
				qs = append(qs, panelQuery{fmt.Sprintf("%s panel %d %q query %s", filepath.Base(f), p.ID, p.Title, tg.RefID), tg.Expr})
			}
		}
	}
	return qs
}

func TestComposeDashboard(t *testing.T) {
	p := loadCompose(t)
	dss := grafanaDatasources(t, p)
	prom, _ := prometheusConfig(t, p)
	var jobs []string
	for _, sc := range prom.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
	}
	published := map[string]bool{}
	for _, s := range p.Services {
		for _, port := range s.Ports {
			published[port.Published] = true
		}
	}

	uids := map[string]bool{}
	for f, d := range dashboards(t) {
		if d.UID == "" || d.Title == "" || uids[d.UID] {
			t.Errorf("%s: uid %q and title %q: want both, the uid unique", f, d.UID, d.Title)
		}
		uids[d.UID] = true
		ids := map[int]bool{}
		var boxes []grafanaPanel
		for _, pn := range allPanels(d) {
			if ids[pn.ID] || pn.ID == 0 {
				t.Errorf("%s: panel id %d missing or repeated", f, pn.ID)
			}
			ids[pn.ID] = true
			g := pn.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				t.Errorf("%s: panel %q: gridPos %+v is off the 24-column grid", f, pn.Title, g)
			}
			for _, o := range boxes {
				h := o.GridPos
				if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
					t.Errorf("%s: panels %q and %q overlap", f, o.Title, pn.Title)
				}
			}
			boxes = append(boxes, pn)
			if pn.Type == "row" {
				continue
			}
			if len(pn.Targets) == 0 {
				t.Errorf("%s: panel %q has no queries", f, pn.Title)
			}
			for _, tg := range pn.Targets {
				ref := tg.Datasource
				if ref == nil {
					ref = pn.Datasource
				}
				if ref == nil || dss[ref.UID].Type == "" || dss[ref.UID].Type != ref.Type {
					t.Errorf("%s: panel %q query %s: datasource %+v is not a provisioned one (by uid and type)", f, pn.Title, tg.RefID, ref)
				}
			}
		}
		for _, l := range d.Links {
			if u, err := url.Parse(l.URL); err == nil && u.Hostname() == "localhost" && !published[u.Port()] {
				t.Errorf("%s: link %s: no service publishes host port %s", f, l.URL, u.Port())
			}
		}
	}

	qs := promQueries(t, dss)
	used := map[string]string{} // metric -> all its queries, for the coverage check
	for _, q := range qs {
		sel := parsePromQL(q.expr)
		if len(sel.metrics) == 0 {
			t.Errorf("%s: no metric in %q", q.where, q.expr)
		}
		for _, m := range sel.metrics {
			used[m] += q.expr + "\n"
		}
		for _, m := range sel.matchers {
			if m.label == "job" && (m.op != "=" || !slices.Contains(jobs, m.value)) {
				t.Errorf("%s: job%s%q is not a scrape job of deploy/prometheus/prometheus.yml (%v)", q.where, m.op, m.value, jobs)
			}
		}
	}
	// What the demo promises to show, each by the series it needs.
	for what, want := range map[string][]string{
		"request rate and error rate per route": {"http_server_request_duration_seconds_count", `http_response_status_code=~"5.."`},
		"p50 per route":                         {"http_server_request_duration_seconds_bucket", "histogram_quantile(0.5,"},
		"p95 per route":                         {"http_server_request_duration_seconds_bucket", "histogram_quantile(0.95,"},
		"p99 per route":                         {"http_server_request_duration_seconds_bucket", "histogram_quantile(0.99,"},
		"upstream latency per upstream":         {"braid_upstream_call_duration_seconds_bucket", "by (le, upstream)"},
		"breaker state":                         {"braid_circuit_breaker_state"},
		"cache hit ratio per layer":             {"braid_cache_events_total", `event="hit"`, "by (layer)"},
		"retries":                               {"braid_upstream_retries_total"},
		"hedges":                                {"braid_upstream_hedges_total"},
		"degraded responses":                    {"braid_degraded_parts_total"},
		"trace spans exported, dropped, failed": {"braid_trace_spans_total", "by (result)"},
		"demo service requests by status":       {"braid_demo_requests_total", "by (service, http_response_status_code)"},
		"demo faults switched on":               {"braid_demo_fault_active", "by (service, mode)"},
	} {
		if !slices.ContainsFunc(strings.Split(used[want[0]], "\n"), func(e string) bool {
			return e != "" && !slices.ContainsFunc(want[1:], func(w string) bool { return !strings.Contains(e, w) })
		}) {
			t.Errorf("no dashboard query shows %s (a query on %s with %q)", what, want[0], want[1:])
		}
	}

	// promtool, when installed, parses every query as a recording rule.
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Logf("promtool is not on PATH: the queries' syntax is not checked beyond parsePromQL")
		return
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range qs {
		expr, _ := json.Marshal(grafanaVars.ReplaceAllString(q.expr, "1m"))
		fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", i, expr)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard queries: %v\n%s\n%s", err, out, rules.String())
	}
}

// TestComposeDashboardMetricsExist scrapes a real gateway, started with the
// compose gateway's environment, and the real demo services of the test's
// own demo process behind it, after traffic that makes every labelled
// series appear: a dashboard whose optional recommendations call fails
// (degraded parts, retries, the breaker opening), repeated requests with
// caching on (cache events in both layers) and a request failed by a
// fault injected in a demo service. Every metric of every dashboard query
// must then be exposed by what the query's job scrapes (the gateway or
// the demo services, by the compose service its targets name; all of them
// for a query without a job), every label it groups or filters by must be
// one of that metric's, and every value it matches exactly must have been
// seen.
func TestComposeDashboardMetricsExist(t *testing.T) {
	p := loadCompose(t)
	dss := grafanaDatasources(t, p)
	prom, _ := prometheusConfig(t, p)
	services := ownDemo(t)
	_, prefix := sharedRedis(t)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close() // connection refused from now on
	local := map[string]string{
		"REDIS_URL":                   redisURL(),
		"BRAID_CACHE_PREFIX":          prefix,
		"OTEL_EXPORTER_OTLP_ENDPOINT": "", // tracing off: no Jaeger here
		"RECOMMENDATIONS_URL":         "http://" + dead.Addr().String(),
		"AUTH_JWKS_URL":               services["users"] + "/.well-known/jwks.json",
	}
	for name, u := range services {
		if name != "recommendations" {
			local[upper(name)+"_URL"] = u
		}
	}
	public, admin := composeGateway(t, local)
	for i := range 8 {
		if a := ask(t, public, "/api/users/1/dashboard"); a.status != 200 || a.degraded != "recommendations" {
			t.Fatalf("dashboard %d: %v; want 200 with recommendations degraded", i, a)
		}
	}
	for range 2 {
		if a := ask(t, public, "/api/users/7/orders-with-products"); a.status != 200 {
			t.Fatalf("orders-with-products: %v", a)
		}
	}

	// The downstream's own view: a request failed by an injected fault.
	send(t, "PUT", services["users"]+"/_demo/faults", `{"error_rate":1}`)
	if resp, body := get(t, services["users"]+"/users/1"); resp.StatusCode != 500 {
		t.Fatalf("users with error_rate 1: %d %s, want 500", resp.StatusCode, body)
	}

	// What each compose service Prometheus scrapes exposes, here.
	scraped := map[string]map[string]map[string][]string{"gateway": scrapeSeries(t, admin+"/metrics"), "demo": {}}
	for _, u := range services {
		mergeSeries(scraped["demo"], scrapeSeries(t, u+"/metrics"))
	}
	byJob := map[string]string{} // scrape job -> the compose service its targets name
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, _, _ := net.SplitHostPort(target)
				if _, ok := scraped[host]; !ok || (byJob[sc.JobName] != "" && byJob[sc.JobName] != host) {
					t.Fatalf("prometheus job %s: target %s: want every target of a job on one of %v", sc.JobName, target, slices.Sorted(maps.Keys(scraped)))
				}
				byJob[sc.JobName] = host
			}
		}
	}
	all := map[string]map[string][]string{}
	for _, s := range scraped {
		mergeSeries(all, s)
	}
	for _, q := range promQueries(t, dss) {
		sel := parsePromQL(q.expr)
		series, from := all, "any scrape job"
		for _, m := range sel.matchers {
			if m.label == "job" && m.op == "=" {
				series, from = scraped[byJob[m.value]], "job "+m.value+" (the "+byJob[m.value]+" service)"
			}
		}
		labels := map[string][]string{} // label -> values, over the query's metrics
		for _, m := range sel.metrics {
			s, ok := series[m]
			if !ok {
				t.Errorf("%s: metric %s is not exposed by %s", q.where, m, from)
				continue
			}
			for l, vs := range s {
				labels[l] = append(labels[l], vs...)
			}
		}
		for _, l := range sel.grouping {
			if _, ok := labels[l]; !ok && l != "le" {
				t.Errorf("%s: groups by %s, a label none of %v has", q.where, l, sel.metrics)
			}
		}
		for _, m := range sel.matchers {
			if m.label == "job" { // added by Prometheus; checked in TestComposeDashboard
				continue
			}
			vs, ok := labels[m.label]
			if !ok {
				t.Errorf("%s: filters on %s, a label none of %v has", q.where, m.label, sel.metrics)
				continue
			}
			for _, v := range m.exactValues() {
				if !slices.Contains(vs, v) {
					t.Errorf("%s: %s%s%q: %s never wrote %s %q (saw %v)", q.where, m.label, m.op, m.value, from, m.label, v, sortedCopy(vs))
				}
			}
		}
	}
}

// ownDemo starts a demo process of the test's own (see startDemoProcess)
// and returns its services' URLs. When the test ends it gets SIGTERM and
// must drain and exit 0.
func ownDemo(t *testing.T) map[string]string {
	t.Helper()
	p, services, err := startDemoProcess()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if code, err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil || code != 0 {
			t.Errorf("own demo: exit code %d (%v) after SIGTERM, want 0\n%s", code, err, p.logs())
		}
	})
	return services
}

// mergeSeries adds the series of src, their labels and values, to dst.
func mergeSeries(dst, src map[string]map[string][]string) {
	for name, labels := range src {
		if dst[name] == nil {
			dst[name] = map[string][]string{}
		}
		for l, vs := range labels {
			for _, v := range vs {
				if !slices.Contains(dst[name][l], v) {
					dst[name][l] = append(dst[name][l], v)
				}
			}
		}
	}
}

// scrapeSeries returns, for every series name the exposition at url
// holds (a histogram's _bucket, _sum and _count), its labels and the
// values seen of each.
func scrapeSeries(t *testing.T, url string) map[string]map[string][]string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	out := map[string]map[string][]string{}
	add := func(name string, m *dto.Metric, extra ...string) {
		if out[name] == nil {
			out[name] = map[string][]string{}
		}
		for _, lp := range m.GetLabel() {
			if !slices.Contains(out[name][lp.GetName()], lp.GetValue()) {
				out[name][lp.GetName()] = append(out[name][lp.GetName()], lp.GetValue())
			}
		}
		for _, l := range extra {
			out[name][l] = append(out[name][l], "")
		}
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				add(name+"_bucket", m, "le")
				add(name+"_sum", m)
				add(name+"_count", m)
			case dto.MetricType_SUMMARY:
				add(name, m, "quantile")
				add(name+"_sum", m)
				add(name+"_count", m)
			default:
				add(name, m)
			}
		}
	}
	return out
}

// promSelection is what parsePromQL finds in a PromQL expression.
type promSelection struct {
	metrics  []string      // metric names selected
	matchers []promMatcher // label matchers of every selector
	grouping []string      // labels of by, without, on, ignoring, group_left, group_right
}

type promMatcher struct{ label, op, value string }

// exactValues returns the label values the matcher requires to exist: its
// value for =, each alternative of a plain a|b|c for =~, none otherwise.
func (m promMatcher) exactValues() []string {
	switch {
	case m.op == "=":
		return []string{m.value}
	case m.op == "=~" && regexp.MustCompile(`^[\w-]+(\|[\w-]+)*$`).MatchString(m.value):
		return strings.Split(m.value, "|")
	}
	return nil
}

var (
	// grafanaVars are Grafana's template variables ($__rate_interval...).
	grafanaVars = regexp.MustCompile(`\$\{?__\w+\}?|\$\{\w+\}|\$\w+`)
	promRange   = regexp.MustCompile(`\[[^\]]*\]`)
	promGroup   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	promSel     = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}`)
	promMatch   = regexp.MustCompile(`([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	promString  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promIdent   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// promWords are PromQL's keywords: operators and literals, not metrics.
	promWords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring", "group_left", "group_right"}
)

// parsePromQL finds the metrics, label matchers and grouping labels of a
// PromQL expression: a lexical scan, enough for dashboard queries (a
// metric is an identifier that is neither a keyword nor called like a
// function). promtool, where installed, checks the full syntax.
func parsePromQL(expr string) promSelection {
	var s promSelection
	e := promRange.ReplaceAllString(grafanaVars.ReplaceAllString(expr, "1m"), "")
	e = promGroup.ReplaceAllStringFunc(e, func(g string) string {
		for _, l := range strings.Split(promGroup.FindStringSubmatch(g)[2], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(s.grouping, l) {
				s.grouping = append(s.grouping, l)
			}
		}
		return " "
	})
	e = promSel.ReplaceAllStringFunc(e, func(sel string) string {
		m := promSel.FindStringSubmatch(sel)
		name := m[1]
		for _, mm := range promMatch.FindAllStringSubmatch(m[2], -1) {
			if mm[1] == "__name__" && mm[2] == "=" {
				name = mm[3]
				continue
			}
			s.matchers = append(s.matchers, promMatcher{mm[1], mm[2], mm[3]})
		}
		return " " + name + " "
	})
	e = promString.ReplaceAllString(e, " ")
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		word := e[loc[0]:loc[1]]
		if loc[0] > 0 && (e[loc[0]-1] == '.' || (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9')) {
			continue // inside a number: 1e3, 0x1f
		}
		if slices.Contains(promWords, strings.ToLower(word)) || strings.HasPrefix(strings.TrimLeft(e[loc[1]:], " \t\n"), "(") {
			continue
		}
		if !slices.Contains(s.metrics, word) {
			s.metrics = append(s.metrics, word)
		}
	}
	return s
}

func TestComposeParsePromQL(t *testing.T) {
	for _, tc := range []struct {
		expr     string
		metrics  []string
		grouping []string
		matchers []promMatcher
	}{
		{
			expr:     `histogram_quantile(0.99, sum by (le, http_route) (rate(http_server_request_duration_seconds_bucket{job="braid-gateway"}[$__rate_interval])))`,
			metrics:  []string{"http_server_request_duration_seconds_bucket"},
			grouping: []string{"le", "http_route"},
			matchers: []promMatcher{{"job", "=", "braid-gateway"}},
		},
		{
			expr:     `count(braid_circuit_breaker_state == 2) or vector(0)`,
			metrics:  []string{"braid_circuit_breaker_state"},
			grouping: nil,
		},
		{
			expr:     `sum by (layer) (rate(braid_cache_events_total{event="hit", layer=~"l1|l2"}[5m])) / on(layer) sum without (event) (rate(braid_cache_events_total{event!~"flush"}[1m] offset 1h)) * 1e3`,
			metrics:  []string{"braid_cache_events_total"},
			grouping: []string{"layer", "event"},
			matchers: []promMatcher{{"event", "=", "hit"}, {"layer", "=~", "l1|l2"}, {"event", "!~", "flush"}},
		},
		{
			expr:     `{__name__="go_goroutines", job="x"} + process_resident_memory_bytes`,
			metrics:  []string{"go_goroutines", "process_resident_memory_bytes"},
			matchers: []promMatcher{{"job", "=", "x"}},
		},
	} {
		got := parsePromQL(tc.expr)
		if !slices.Equal(got.metrics, tc.metrics) || !slices.Equal(got.grouping, tc.grouping) || !slices.Equal(got.matchers, tc.matchers) {
			t.Errorf("parsePromQL(%s)\n = %+v\nwant metrics %v grouping %v matchers %v", tc.expr, got, tc.metrics, tc.grouping, tc.matchers)
		}
	}
}
