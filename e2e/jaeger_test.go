package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A real Jaeger (v2, in-memory storage) for the tracing tests. It is built
// from the Go module proxy at the version pinned in tools/go.mod, outside
// this module, by scripts/test.sh into a cache directory; the tests only
// run it.

// jaegerConfig is the Jaeger v2 (OpenTelemetry Collector) configuration:
// an OTLP/HTTP receiver storing straight into memory, and the query API.
// Everything listens on the loopback ports given; Jaeger's own telemetry
// and its other receivers are off.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memory_store
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
`

// jaeger is a running Jaeger process.
type jaeger struct {
	proc     *process
	otlpURL  string // OTLP/HTTP base URL, the value of OTEL_EXPORTER_OTLP_ENDPOINT
	queryURL string // base URL of the query API and UI
}

// jaegerBinary returns the path of the Jaeger binary: $BRAID_JAEGER_BIN,
// else where scripts/test.sh caches it. It fails the test, saying how to
// get one, if there is none.
func jaegerBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("BRAID_JAEGER_BIN")
	if bin == "" {
		version, err := jaegerVersion()
		if err != nil {
			t.Fatal(err)
		}
		cache, err := os.UserCacheDir() // $XDG_CACHE_HOME, else $HOME/.cache, as in scripts/test.sh
		if err != nil {
			t.Fatalf("no cache directory for the Jaeger binary (%v); set BRAID_JAEGER_BIN or run: bash scripts/test.sh", err)
		}
		bin = filepath.Join(cache, "braid", "jaeger-"+version)
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		t.Fatalf("no Jaeger binary at %s (%v).\nRun the tests with: bash scripts/test.sh — it builds Jaeger once "+
			"(cd tools && go build github.com/jaegertracing/jaeger/cmd/jaeger) into that cache — "+
			"or point BRAID_JAEGER_BIN at a Jaeger v2 binary.", bin, err)
	}
	return bin
}

// jaegerVersion reads the Jaeger version pinned in tools/go.mod.
func jaegerVersion() (string, error) {
	mod, err := os.ReadFile("../tools/go.mod")
	if err != nil {
		return "", fmt.Errorf("reading the Jaeger version: %w", err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/jaegertracing/jaeger (v\S+)`).FindSubmatch(mod)
	if m == nil {
		return "", fmt.Errorf("tools/go.mod does not require github.com/jaegertracing/jaeger")
	}
	return string(m[1]), nil
}

// startJaeger starts Jaeger on free loopback ports, waits until it
// accepts spans and queries, and stops it when the test ends.
func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := jaegerBinary(t)
	var lastErr error
	for range 3 { // a free port may be taken before Jaeger binds it
		j, err := tryJaeger(t, bin)
		if err == nil {
			t.Cleanup(func() {
				if code, err := j.proc.stop(syscall.SIGTERM, 15*time.Second); err != nil || code != 0 {
					t.Errorf("jaeger: exit code %d (%v) after SIGTERM, want 0\n%s", code, err, j.proc.logs())
				}
			})
			return j
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func tryJaeger(t *testing.T, bin string) (*jaeger, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	query, grpc, otlp := ports[0], ports[1], ports[2]
	config := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, jaegerConfig, query, grpc, otlp), 0o644); err != nil {
		return nil, err
	}
	p, err := start("jaeger", bin, nil, "--config", config)
	if err != nil {
		return nil, err
	}
	j := &jaeger{proc: p, otlpURL: fmt.Sprintf("http://127.0.0.1:%d", otlp), queryURL: fmt.Sprintf("http://127.0.0.1:%d", query)}
	started := time.Now()
	deadline := started.Add(30 * time.Second)
	for !j.ready() {
		select {
		case <-p.done:
			return nil, fmt.Errorf("jaeger exited while starting:\n%s", p.logs())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("jaeger did not become ready within 30s:\n%s", p.logs())
		}
	}
	t.Logf("jaeger ready in %v: OTLP %s, query %s", time.Since(started).Round(time.Millisecond), j.otlpURL, j.queryURL)
	return j, nil
}

// ready reports whether the query API answers and the OTLP port accepts
// connections.
func (j *jaeger) ready() bool {
	resp, err := client.Get(j.queryURL + "/api/services")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(j.otlpURL, "http://"), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close() // held until all n are chosen, so they differ
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// jaegerTrace is one trace as Jaeger's query API returns it.
type jaegerTrace struct {
	TraceID   string `json:"traceID"`
	Spans     []jaegerSpan
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	}
}

type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	}
	ProcessID string `json:"processID"`
	Tags      []struct {
		Key   string
		Value any
	}
}

// parent returns the span id of the span's CHILD_OF parent, "" for a root.
func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// tag returns the value of the span's tag key as text, "" if it has none.
func (s jaegerSpan) tag(key string) string {
	for _, tg := range s.Tags {
		if tg.Key == key {
			return fmt.Sprint(tg.Value)
		}
	}
	return ""
}

// traces returns the traces Jaeger holds under the trace id: none until
// it has received a span of it.
func (j *jaeger) traces(t *testing.T, traceID string) []jaegerTrace {
	t.Helper()
	resp, body := get(t, j.queryURL+"/api/traces/"+traceID)
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var out struct{ Data []jaegerTrace }
	if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("jaeger GET /api/traces/%s: %d %v: %.500s", traceID, resp.StatusCode, err, body)
	}
	return out.Data
}
