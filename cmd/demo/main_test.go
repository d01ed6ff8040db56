package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ephemeral returns flags that put every service on an ephemeral port.
func ephemeral() []string {
	return []string{"-users-addr", ":0", "-orders-addr", ":0", "-products-addr", ":0",
		"-notifications-addr", ":0", "-recommendations-addr", ":0", "-host", "127.0.0.1"}
}

func noEnv(string) string { return "" }

func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		mention string
	}{
		{[]string{"-latency", "users=soon"}, "-latency"},
		{[]string{"-error-rate", "products=1.5"}, "-error-rate"},
		{[]string{"-down", "payments"}, "-down"},
		{[]string{"-users-addr", "nowhere"}, "-users-addr"},
		{[]string{"extra"}, "extra"},
	} {
		var stderr strings.Builder
		code := run(t.Context(), tc.args, noEnv, io.Discard, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.mention) {
			t.Errorf("run(%q) = %d, stderr %q; want 2 naming %s", tc.args, code, stderr.String(), tc.mention)
		}
	}
}

// runUntilCancelled runs the binary's run with args, waits for the five
// URLs it prints, GETs path on the products service, then cancels the run
// as SIGTERM would and returns the body and exit code.
func runUntilCancelled(t *testing.T, args []string, getenv func(string) string, path string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, w := io.Pipe()
	code := make(chan int, 1)
	go func() {
		defer w.Close()
		code <- run(ctx, args, getenv, w, io.Discard)
	}()
	urls := map[string]string{}
	lines := bufio.NewScanner(out)
	for len(urls) < 5 && lines.Scan() {
		if f := strings.Fields(lines.Text()); len(f) == 2 {
			urls[f[0]] = f[1]
		}
	}
	if len(urls) < 5 {
		t.Fatalf("run printed %v, then exited with %d", urls, <-code)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // drain anything else
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(urls["products"] + path)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, body, err)
	}
	cancel()
	return string(body), <-code
}

func TestRunServesAndDrains(t *testing.T) {
	body, code := runUntilCancelled(t, ephemeral(), noEnv, "/products?ids=1,2,3")
	if code != 0 {
		t.Errorf("exit code %d after cancel, want 0", code)
	}
	if !strings.HasPrefix(body, `[{"id":1,`) {
		t.Errorf("products batch = %s", body)
	}
}

func TestRunWithDatabaseURL(t *testing.T) {
	dsn := os.Getenv("BRAID_TEST_DATABASE_URL")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("cannot connect to PostgreSQL at %s: %v\nStart it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start", dsn, err)
	}
	schema := fmt.Sprintf("braid_demo_cmd_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		conn.Close(ctx)
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	getenv := func(k string) string {
		if k == "DATABASE_URL" {
			return dsn + sep + "search_path=" + schema
		}
		return ""
	}
	body, code := runUntilCancelled(t, ephemeral(), getenv, "/products/17")
	if code != 0 || !strings.Contains(body, `"id":17`) {
		t.Errorf("with DATABASE_URL: exit %d, body %s", code, body)
	}
	var users int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+schema+".users").Scan(&users); err != nil || users != 300 {
		t.Errorf("schema %s has %d users (%v), want the 300 seeded from DATABASE_URL", schema, users, err)
	}
}

// otlpReceiver is an OTLP/HTTP trace endpoint keeping what it receives.
type otlpReceiver struct {
	mu    sync.Mutex          // guards spans
	spans map[string][]string // service.name -> span names
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if r.URL.Path != "/v1/traces" || err != nil {
		http.Error(w, fmt.Sprintf("%s: %v", r.URL.Path, err), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				o.spans[service] = append(o.spans[service], s.GetName())
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func TestRunExportsSpansWhenDrained(t *testing.T) {
	recv := &otlpReceiver{spans: map[string][]string{}}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	getenv := func(k string) string {
		if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			return srv.URL
		}
		return ""
	}
	// The batch processor exports every 5s; run returns sooner, so the
	// span arrives only because draining flushes it.
	if _, code := runUntilCancelled(t, ephemeral(), getenv, "/products?ids=1,2,3"); code != 0 {
		t.Fatalf("exit code %d after cancel, want 0", code)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if got := recv.spans["braid-demo"]; !slices.Equal(got, []string{"GET /products"}) {
		t.Errorf("exported spans %v, want service braid-demo with one span GET /products", recv.spans)
	}
}

func TestRunRejectsBadTracingEnvironment(t *testing.T) {
	getenv := func(k string) string {
		if k == "OTEL_TRACES_SAMPLER" {
			return "sometimes"
		}
		return ""
	}
	var stderr strings.Builder
	code := run(t.Context(), ephemeral(), getenv, io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "sometimes") {
		t.Errorf("run with OTEL_TRACES_SAMPLER=sometimes = %d, stderr %q; want 1 naming it", code, stderr.String())
	}
}
