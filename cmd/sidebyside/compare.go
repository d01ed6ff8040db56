package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/braidgw/braid"
)

// startTimeout bounds each child's start-up.
const startTimeout = 30 * time.Second

// errNoUpstreams reports a fake upstream process that did not say where
// it listens.
var errNoUpstreams = errors.New("the fake upstreams did not print their URLs")

// report is a run's outcome.
type report struct {
	header     []string
	rows       []row
	sink       *otlpSink
	loadBefore string
	loadAfter  string
}

// write prints the header lines, the table and the sink's tally.
func (r *report) write(w io.Writer) {
	for _, h := range r.header {
		fmt.Fprintln(w, h)
	}
	fmt.Fprintf(w, "load average (1, 5, 15 min) before: %s; after: %s\n\n", r.loadBefore, r.loadAfter)
	writeTable(w, r.rows)
	if r.sink != nil {
		fmt.Fprintf(w, "\nOTLP sink: %d export requests, %d bytes\n", r.sink.requests.Load(), r.sink.bytes.Load())
	}
}

// env is the processes' common state: where they are and how to stop them.
type env struct {
	dir      string
	children []*child
}

// start starts a child and remembers it for stopAll.
func (e *env) start(name, bin string, vars []string, args ...string) (*child, error) {
	c, err := startChild(e.dir, name, bin, vars, args...)
	if err == nil {
		e.children = append(e.children, c)
	}
	return c, err
}

// stopAll stops the children, last started first.
func (e *env) stopAll() {
	for _, c := range slices.Backward(e.children) {
		c.stop()
	}
}

var (
	upstreamsRE = regexp.MustCompile(`^upstreams: (.+)$`)
	baselineRE  = regexp.MustCompile(`^baseline: serving on (http://\S+)`)
	braidRE     = regexp.MustCompile(`^braid: serving on (http://\S+) `)
)

// compare starts everything, measures, stops everything, and returns the
// report; progress goes to logw. On an error after some rounds it returns
// the report of those rounds too.
func compare(ctx context.Context, cfg config, logw io.Writer) (*report, error) {
	dir, err := os.MkdirTemp("", "sidebyside-")
	if err != nil {
		return nil, err
	}
	if cfg.keep {
		fmt.Fprintf(logw, "sidebyside: working directory %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e := &env{dir: dir}
	var st setup
	defer func() {
		e.stopAll()
		if st.sink != nil {
			st.sink.close() // after the gateways have flushed their spans to it
		}
	}()
	st, err = setUp(ctx, cfg, e, logw)
	if err != nil {
		return nil, err
	}
	return measureAll(ctx, cfg, st, logw)
}

// setup is what setUp started.
type setup struct {
	sides     []side // the baseline first
	upstreams *child
	callsURL  string    // the fake upstreams' call counter
	sink      *otlpSink // nil without -trace
}

// setUp builds what is missing and starts the fake upstreams, the
// baseline and the Braid sides, all at once, then waits for them.
func setUp(ctx context.Context, cfg config, e *env, logw io.Writer) (st setup, err error) {
	if cfg.gatewayBin == "" || cfg.baselineBin == "" {
		fmt.Fprintln(logw, "sidebyside: go build ./cmd/gateway ./cmd/baseline")
	}
	for _, b := range []struct {
		bin  *string
		name string
	}{{&cfg.gatewayBin, "gateway"}, {&cfg.baselineBin, "baseline"}} {
		if *b.bin == "" {
			if *b.bin, err = build(ctx, e.dir, b.name, "github.com/braidgw/braid/cmd/"+b.name); err != nil {
				return st, err
			}
		}
	}
	urls, err := startUpstreams(ctx, cfg, e)
	if err != nil {
		return st, err
	}
	st.upstreams, st.callsURL = e.children[0], urls["users"]+callsPath
	if len(cfg.trace) > 0 {
		if st.sink, err = startSink(); err != nil {
			return st, err
		}
	}
	base, err := e.start(baselineName, cfg.baselineBin, nil, "-listen", "127.0.0.1:0", "-fanout", strconv.Itoa(cfg.fanout),
		"-users", urls["users"], "-orders", urls["orders"], "-products", urls["products"],
		"-notifications", urls["notifications"], "-recommendations", urls["recommendations"])
	if err != nil {
		return st, err
	}
	braids, err := startBraids(cfg, e, urls, st.sink)
	if err != nil {
		return st, err
	}
	u, err := base.await(ctx, startTimeout, baselineRE)
	if err != nil {
		return st, err
	}
	st.sides = append(st.sides, side{name: baselineName, url: u, proc: base})
	for _, s := range braids {
		if s.url, err = s.proc.await(ctx, startTimeout, braidRE); err != nil {
			return st, err
		}
		st.sides = append(st.sides, s)
	}
	return st, nil
}

// startUpstreams starts the fake upstreams (this binary again) and
// returns their base URLs by service name.
func startUpstreams(ctx context.Context, cfg config, e *env) (map[string]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	up, err := e.start("upstreams", self, []string{roleEnv + "=" + roleUpstreams}, "-keys", strconv.Itoa(cfg.keys))
	if err != nil {
		return nil, err
	}
	line, err := up.await(ctx, startTimeout, upstreamsRE)
	if err != nil {
		return nil, err
	}
	urls := map[string]string{}
	for _, f := range strings.Fields(line) {
		name, u, _ := strings.Cut(f, "=")
		urls[name] = u
	}
	if len(urls) != len(serviceNames) {
		return nil, errNoUpstreams
	}
	return urls, nil
}

// startBraids starts the Braid sides: one untraced, and one per -trace
// percentage exporting to sink. Their URLs are filled in once they are up.
func startBraids(cfg config, e *env, urls map[string]string, sink *otlpSink) ([]side, error) {
	confPath, err := gatewayConfig(cfg, e.dir)
	if err != nil {
		return nil, err
	}
	vars := []string{"BRAID_CACHE_DISABLED=true", "AUTH_JWKS_URL=" + urls["users"] + "/.well-known/jwks.json"}
	if cfg.transport != "" {
		vars = append(vars, "BRAID_UPSTREAM_TRANSPORT="+cfg.transport)
	}
	for _, name := range serviceNames {
		vars = append(vars, strings.ToUpper(name)+"_URL="+urls[name])
	}
	names, extra := []string{"braid"}, [][]string{nil}
	for _, p := range cfg.trace {
		names = append(names, "braid+trace"+strconv.FormatFloat(p, 'f', -1, 64)+"%")
		extra = append(extra, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + sink.url,
			"OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG=" + strconv.FormatFloat(p/100, 'f', -1, 64)})
	}
	sides := make([]side, len(names))
	for i, name := range names {
		logName := strings.NewReplacer("%", "pct", "+", "-").Replace(name)
		c, err := e.start(logName, cfg.gatewayBin, slices.Concat(vars, extra[i]),
			"-config", confPath, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-drain-delay", "0s")
		if err != nil {
			return nil, err
		}
		sides[i] = side{name: name, proc: c}
	}
	return sides, nil
}

// gatewayConfig writes Braid's configuration into dir and returns its path.
func gatewayConfig(cfg config, dir string) (string, error) {
	if cfg.gatewayConf != "" {
		return filepath.Abs(cfg.gatewayConf)
	}
	src := braid.DefaultConfig // the repository's gateway.yaml
	if cfg.scenario == "dashboard" && cfg.fanout != len(dashboardCalls) {
		src = fanoutConfig(cfg.fanout)
	}
	path := filepath.Join(dir, "gateway.yaml")
	return path, os.WriteFile(path, src, 0o644)
}

// requestPath returns the scenario's request path for a user id.
func requestPath(scenario string) func(int) string {
	suffix := "/dashboard"
	if scenario == "batch" {
		suffix = "/orders-with-products"
	}
	return func(id int) string { return "/api/users/" + strconv.Itoa(id) + suffix }
}

// measureAll checks that the sides agree, then runs the rounds.
func measureAll(ctx context.Context, cfg config, st setup, logw io.Writer) (*report, error) {
	client := newClient(slices.Max(cfg.concurrency))
	defer client.CloseIdleConnections()
	sides, path := st.sides, requestPath(cfg.scenario)
	size, err := sameAnswers(ctx, client, sides, path(7))
	if err != nil {
		return nil, err
	}
	clk, measured := clockTicks()
	rep := &report{sink: st.sink, loadBefore: loadAverage(), header: header(cfg, size, clk, measured)}
	m := &meter{client: client, upstream: st.upstreams, callsURL: st.callsURL}
	var rounds []round
	defer func() { rep.loadAfter = loadAverage(); rep.rows = summarize(rounds, clk) }()
	for _, c := range cfg.concurrency {
		l := load{path: path, concurrency: c, rate: cfg.rate, warmup: cfg.warmup, duration: cfg.duration}
		for i := range cfg.rounds {
			order := slices.Clone(sides)
			if i%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				r, err := measure(ctx, client, m, s, l)
				if err != nil {
					return rep, fmt.Errorf("%s, c=%d, round %d: %w", s.name, c, i+1, err)
				}
				rounds = append(rounds, r)
				one := summarize([]round{r}, clk)[0]
				fmt.Fprintf(logw, "sidebyside: c=%d round %d/%d %-16s %6.0f ok/s  p50 %.3f ms  p99 %.3f ms  %4.0f µs CPU/req  non-200: %s\n",
					c, i+1, cfg.rounds, s.name, one.OKPerSec, ms(one.P50), ms(one.P99), one.GatewayCPU, one.failures())
			}
		}
	}
	return rep, nil
}

// sameAnswers checks that every side answers path with 200 and the same
// JSON document, and returns its size as the baseline sends it.
func sameAnswers(ctx context.Context, client *http.Client, sides []side, path string) (int, error) {
	var want any
	size := 0
	for _, s := range sides {
		body, err := fetch(ctx, client, s.url+path)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", s.name, err)
		}
		var doc any
		if err := json.Unmarshal(body, &doc); err != nil {
			return 0, fmt.Errorf("%s: GET %s: %w", s.name, path, err)
		}
		if want == nil {
			want, size = doc, len(body)
			continue
		}
		if !reflect.DeepEqual(doc, want) {
			return 0, fmt.Errorf("%s and %s answer different documents for GET %s", sides[0].name, s.name, path)
		}
	}
	return size, nil
}

// fetch GETs url and returns the body of a 200 answer.
func fetch(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %.300s", url, resp.Status, body)
	}
	return body, err
}

// header describes the run.
func header(cfg config, size int, clk int64, measured bool) []string {
	what := fmt.Sprintf("dashboard, fan-out %d (GET /api/users/{id}/dashboard)", cfg.fanout)
	if cfg.scenario == "batch" {
		what = fmt.Sprintf("batch, %d distinct product ids (GET /api/users/{id}/orders-with-products)", cfg.keys)
	}
	conf := "the repository's gateway.yaml"
	switch {
	case cfg.gatewayConf != "":
		conf = cfg.gatewayConf
	case cfg.scenario == "dashboard" && cfg.fanout != len(dashboardCalls):
		conf = "a generated gateway.yaml with that fan-out"
	}
	if cfg.transport != "" {
		conf += ", upstream transport " + cfg.transport
	}
	tick := "getconf CLK_TCK"
	if !measured {
		tick = "assumed; getconf failed"
	}
	return []string{
		fmt.Sprintf("scenario: %s, answer %d bytes; users 1-%d cycled", what, size, maxUserID),
		loadLine(cfg),
		fmt.Sprintf("braid: %s, cache off (BRAID_CACHE_DISABLED=true); tracing off unless the side says trace", conf),
		fmt.Sprintf("machine: %d CPUs, %s/%s, %s; CLK_TCK %d (%s)", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), clk, tick),
	}
}

// loadLine describes the load.
func loadLine(cfg config) string {
	kind := "closed loop"
	if cfg.rate > 0 {
		kind = fmt.Sprintf("open loop at %g requests/s per side (c: most in flight; latency from when a request was due)", cfg.rate)
	}
	return fmt.Sprintf("load: %s, %d round(s) × %v per side and concurrency after %v warm-up; rounds alternate which side goes first",
		kind, cfg.rounds, cfg.duration, cfg.warmup)
}

// loadAverage returns the first three fields of /proc/loadavg and the
// CPU pressure ("some" avg10 and avg60 of /proc/pressure/cpu, when the
// kernel has it): how busy the shared machine was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if err != nil || len(f) < 3 {
		return "?"
	}
	s := strings.Join(f[:3], " ")
	if p, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
		line, _, _ := strings.Cut(string(p), "\n")
		if pf := strings.Fields(line); len(pf) >= 3 && pf[0] == "some" {
			s += " (CPU pressure " + strings.Join(pf[1:3], " ") + ")"
		}
	}
	return s
}
