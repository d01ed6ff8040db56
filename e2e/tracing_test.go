package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The trace of a client's request to a caller's traceparent.
const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
)

// traceresponseRE matches a W3C traceresponse header: version, trace id,
// span id, flags.
var traceresponseRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

// dashboardCalls are the calls of the dashboard route and the demo route
// each one reaches.
var dashboardCalls = map[string]string{
	"user":            "GET /users/{id}",
	"orders":          "GET /users/{id}/orders",
	"notifications":   "GET /users/{id}/notifications",
	"recommendations": "GET /users/{id}/recommendations",
}

// TestTracesReachJaeger: a gateway and a demo exporting to a real Jaeger.
// A dashboard request without a traceparent starts one trace, which Jaeger
// holds whole once both processes have drained (they flush on SIGTERM,
// sooner than the 5s export interval): the gateway's server span, a call
// span per call, a client span per try, the demo's server span below it
// and the demo's SQL spans below that. A request with a traceparent
// continues the caller's trace.
func TestTracesReachJaeger(t *testing.T) {
	start := time.Now()
	j := startJaeger(t)
	otel := func(service string) []string {
		return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + j.otlpURL, "OTEL_SERVICE_NAME=" + service}
	}
	demo, services, err := startDemoProcess(otel("braid-demo")...)
	if err != nil {
		t.Fatal(err)
	}
	defer demo.kill()
	env := otel("braid-gateway")
	for name, u := range services {
		env = append(env, upper(name)+"_URL="+u) // after the shared demo's URLs, so these win
	}
	gw, gwURL, _, err := startGateway(env...)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.kill()
	started := time.Now()

	resp, body := get(t, gwURL+dashboardPath)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", dashboardPath, resp.StatusCode, body)
	}
	traceID, _ := traceresponse(t, resp)

	req, err := http.NewRequest(http.MethodGet, gwURL+dashboardPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", "00-"+callerTraceID+"-"+callerSpanID+"-01")
	resp2, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if tid, sid := traceresponse(t, resp2); tid != callerTraceID || sid == callerSpanID {
		t.Errorf("with traceparent in trace %s: traceresponse in trace %s, span %s; want the caller's trace, a new span",
			callerTraceID, tid, sid)
	}

	for _, p := range []*process{gw, demo} {
		if code, err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil || code != 0 {
			t.Fatalf("%s: exit code %d (%v) after SIGTERM, want 0\n%s", p.name, code, err, p.logs())
		}
	}
	drained := time.Now()

	waitForTrace(t, j, traceID, checkDashboardTrace)
	waitForTrace(t, j, callerTraceID, checkContinuedTrace)
	t.Logf("jaeger, demo and gateway started in %v; two requests and both drains took %v; traces complete in Jaeger %v later",
		started.Sub(start).Round(time.Millisecond), drained.Sub(started).Round(time.Millisecond), time.Since(drained).Round(time.Millisecond))
}

// traceresponse returns the trace and span ids of resp's traceresponse
// header, failing the test if it has none.
func traceresponse(t *testing.T, resp *http.Response) (traceID, spanID string) {
	t.Helper()
	h := resp.Header.Get("traceresponse")
	m := traceresponseRE.FindStringSubmatch(h)
	if m == nil || m[3] != "01" {
		t.Fatalf("traceresponse header %q, want 00-<trace id>-<span id>-01", h)
	}
	return m[1], m[2]
}

// waitForTrace polls Jaeger until the trace passes check, or fails the
// test with check's complaints; it logs the trace as a tree. Both processes
// have flushed, so the wait only covers Jaeger storing what it received.
func waitForTrace(t *testing.T, j *jaeger, traceID string, check func(*spanTree) []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		traces := j.traces(t, traceID)
		var problems []string
		var tree *spanTree
		if len(traces) != 1 {
			problems = []string{fmt.Sprintf("Jaeger holds %d traces under id %s, want 1", len(traces), traceID)}
		} else {
			tree = newSpanTree(traces[0])
			problems = check(tree)
		}
		if len(problems) == 0 {
			t.Logf("trace %s in Jaeger:\n%s", traceID, tree) // shown with -v
			return
		}
		if time.Now().After(deadline) {
			if tree != nil {
				t.Logf("trace %s in Jaeger:\n%s", traceID, tree)
			}
			t.Fatalf("trace %s:\n  %s", traceID, strings.Join(problems, "\n  "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkDashboardTrace returns what is missing from the trace of one
// dashboard request.
func checkDashboardTrace(tr *spanTree) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	roots := tr.roots()
	if len(roots) != 1 {
		bad("%d root spans, want only the gateway's server span", len(roots))
		return problems
	}
	root := roots[0]
	if root.OperationName != "GET /api/users/{id}/dashboard" || tr.service(root) != "braid-gateway" || root.tag("span.kind") != "server" {
		bad("root span %s, want braid-gateway's server span GET /api/users/{id}/dashboard", tr.describe(root))
	}
	var calls []string
	for _, call := range tr.children(root) {
		calls = append(calls, call.OperationName)
		name, ok := strings.CutPrefix(call.OperationName, "call ")
		if !ok || tr.service(call) != "braid-gateway" {
			bad("child of the server span %s, want only braid-gateway's call spans", tr.describe(call))
			continue
		}
		problems = append(problems, checkCall(tr, call, dashboardCalls[name])...)
	}
	slices.Sort(calls)
	if want := []string{"call notifications", "call orders", "call recommendations", "call user"}; !slices.Equal(calls, want) {
		bad("call spans %q below the server span, want %q", calls, want)
	}
	return problems
}

// checkCall returns what is missing below one call span: a client span per
// try, the demo's server span for demoRoute below a try, SQL spans below
// that.
func checkCall(tr *spanTree, call jaegerSpan, demoRoute string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	tries := tr.children(call)
	if len(tries) == 0 {
		bad("%s has no client span", call.OperationName)
	}
	served := 0
	for _, try := range tries {
		if try.tag("span.kind") != "client" || tr.service(try) != "braid-gateway" {
			bad("below %s: %s, want braid-gateway's client spans", call.OperationName, tr.describe(try))
			continue
		}
		for _, srv := range tr.children(try) {
			if srv.OperationName != demoRoute || srv.tag("span.kind") != "server" || tr.service(srv) != "braid-demo" {
				bad("below %s's try: %s, want braid-demo's server span %s", call.OperationName, tr.describe(srv), demoRoute)
				continue
			}
			served++
			sql := 0
			for _, q := range tr.children(srv) {
				if q.tag("db.system.name") == "postgresql" && q.tag("span.kind") == "client" && tr.service(q) == "braid-demo" {
					sql++
				}
			}
			if sql == 0 {
				bad("%s (for %s) has no SQL span below it", demoRoute, call.OperationName)
			}
		}
	}
	if served == 0 {
		bad("no try of %s has braid-demo's server span %s below it", call.OperationName, demoRoute)
	}
	return problems
}

// checkContinuedTrace returns what is wrong with the trace of a request
// that came with the caller's traceparent: its server span must be the
// caller's span's child.
func checkContinuedTrace(tr *spanTree) []string {
	for _, s := range tr.spans {
		if s.OperationName == "GET /api/users/{id}/dashboard" && tr.service(s) == "braid-gateway" {
			if s.parent() != callerSpanID {
				return []string{fmt.Sprintf("the gateway's server span has parent %q, want the caller's span %s", s.parent(), callerSpanID)}
			}
			return nil
		}
	}
	return []string{"no braid-gateway server span GET /api/users/{id}/dashboard in the caller's trace"}
}

// spanTree indexes a Jaeger trace by parent.
type spanTree struct {
	trace    jaegerTrace
	spans    []jaegerSpan
	byParent map[string][]jaegerSpan
	ids      map[string]bool
}

func newSpanTree(tr jaegerTrace) *spanTree {
	t := &spanTree{trace: tr, spans: tr.Spans, byParent: map[string][]jaegerSpan{}, ids: map[string]bool{}}
	for _, s := range tr.Spans {
		t.ids[s.SpanID] = true
	}
	for _, s := range tr.Spans {
		t.byParent[s.parent()] = append(t.byParent[s.parent()], s)
	}
	return t
}

// roots returns the spans whose parent is not in the trace.
func (t *spanTree) roots() []jaegerSpan {
	var roots []jaegerSpan
	for _, s := range t.spans {
		if !t.ids[s.parent()] {
			roots = append(roots, s)
		}
	}
	return roots
}

func (t *spanTree) children(s jaegerSpan) []jaegerSpan { return t.byParent[s.SpanID] }

func (t *spanTree) service(s jaegerSpan) string { return t.trace.Processes[s.ProcessID].ServiceName }

func (t *spanTree) describe(s jaegerSpan) string {
	return fmt.Sprintf("%s %q (%s, %s)", t.service(s), s.OperationName, s.tag("span.kind"), s.SpanID)
}

// String draws the trace as an indented tree.
func (t *spanTree) String() string {
	var b strings.Builder
	var draw func(s jaegerSpan, depth int)
	draw = func(s jaegerSpan, depth int) {
		fmt.Fprintf(&b, "%s%s\n", strings.Repeat("  ", depth), t.describe(s))
		for _, c := range t.children(s) {
			draw(c, depth+1)
		}
	}
	for _, r := range t.roots() {
		draw(r, 0)
	}
	return b.String()
}
