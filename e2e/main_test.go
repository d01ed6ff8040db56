package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

// stack is the system under test: the real demo binary on PostgreSQL and
// the real gateway binary, on free loopback ports.
var stack struct {
	gatewayBin string
	demoBin    string
	demo       *process
	gateway    *process
	gatewayURL string
	adminURL   string
	services   map[string]string // demo service name -> URL
	dsn        string
}

func databaseURL() string {
	if v := os.Getenv("BRAID_TEST_DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func TestMain(m *testing.M) {
	code, err := runMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runMain(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	schema := fmt.Sprintf("e2e_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	dropSchema, err := createSchema(ctx, schema)
	if err != nil {
		return 1, err
	}
	defer dropSchema()
	sep := "?"
	if strings.Contains(databaseURL(), "?") {
		sep = "&"
	}
	stack.dsn = databaseURL() + sep + "search_path=" + schema

	dir, err := os.MkdirTemp("", "braid-e2e-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	if stack.gatewayBin, stack.demoBin, err = buildBinaries(ctx, dir); err != nil {
		return 1, err
	}
	if err := startDemo(); err != nil {
		return 1, err
	}
	defer stack.demo.kill()
	gw, gwURL, admURL, err := startGateway()
	if err != nil {
		return 1, err
	}
	stack.gateway, stack.gatewayURL, stack.adminURL = gw, gwURL, admURL
	defer gw.kill()

	code := m.Run()

	if exit, err := gw.stop(syscall.SIGTERM, 30*time.Second); err != nil || exit != 0 {
		return 1, fmt.Errorf("gateway did not drain cleanly on SIGTERM: exit %d, %v\n%s", exit, err, gw.logs())
	}
	if exit, err := stack.demo.stop(syscall.SIGTERM, 30*time.Second); err != nil || exit != 0 {
		return 1, fmt.Errorf("demo did not drain cleanly: exit %d, %v\n%s", exit, err, stack.demo.logs())
	}
	client.CloseIdleConnections()
	if err := goleak.Find(); err != nil {
		return 1, fmt.Errorf("leaked goroutines: %w", err)
	}
	return code, nil
}

// createSchema makes an empty schema for this run in the test database and
// returns a function dropping it.
func createSchema(ctx context.Context, schema string) (func(), error) {
	conn, err := pgx.Connect(ctx, databaseURL())
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL is not reachable at %s (%v).\n"+
			"Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"+
			"or set BRAID_TEST_DATABASE_URL; .ci/run does this for you", databaseURL(), err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = conn.Exec(dctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		conn.Close(dctx)
	}, nil
}

func startDemo() error {
	p, services, err := startDemoProcess()
	if err != nil {
		return err
	}
	stack.demo, stack.services = p, services
	return nil
}

// startDemoProcess starts a demo process on the suite's database schema,
// its services on free loopback ports, with env ("NAME=value") added to
// its environment. It returns the process and each service's URL.
func startDemoProcess(env ...string) (*process, map[string]string, error) {
	args := []string{"-db", stack.dsn}
	var patterns []*regexp.Regexp
	names := []string{"users", "orders", "products", "notifications", "recommendations"}
	for _, n := range names {
		args = append(args, "-"+n+"-addr", "127.0.0.1:0")
		patterns = append(patterns, regexp.MustCompile(`^`+n+`\s+(http://\S+)`))
	}
	p, err := start("demo", stack.demoBin, env, args...)
	if err != nil {
		return nil, nil, err
	}
	urls, err := p.await(60*time.Second, patterns...)
	if err != nil {
		p.kill()
		return nil, nil, err
	}
	services := map[string]string{}
	for i, n := range names {
		services[n] = urls[i]
	}
	return p, services, nil
}

// startGateway starts a gateway on the repo's gateway.yaml, pointed at the
// demo services, and returns it with its public and admin base URLs.
// extraEnv ("NAME=value") is added to its environment after the upstream
// URLs, so it may override them. Each gateway has its own breakers, retry
// budgets and pools: a test that trips breakers starts its own (see
// ownGateway) and leaves the shared stack.gateway healthy.
func startGateway(extraEnv ...string) (*process, string, string, error) {
	return startGatewayConfig(repoConfig, extraEnv...)
}

// repoConfig is the repo's gateway.yaml, relative to the e2e directory.
const repoConfig = "../gateway.yaml"

// startGatewayConfig is startGateway on the config file at path.
func startGatewayConfig(path string, extraEnv ...string) (*process, string, string, error) {
	// Caching is off unless a test turns it on: most tests count the calls
	// each upstream receives, and a cached answer would hide them.
	env := []string{"BRAID_CACHE_DISABLED=true"}
	for name, u := range stack.services {
		env = append(env, fmt.Sprintf("%s_URL=%s", upper(name), u))
	}
	env = append(env, "AUTH_JWKS_URL="+stack.services["users"]+"/.well-known/jwks.json")
	env = append(env, extraEnv...)
	p, err := start("gateway", stack.gatewayBin, env, "-config", path, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-drain-delay", "0s")
	if err != nil {
		return nil, "", "", err
	}
	re := regexp.MustCompile(`^braid: serving on (http://\S+) `)
	adm := regexp.MustCompile(`\(admin (http://[^;]+);`)
	got, err := p.await(30*time.Second, re, adm)
	if err != nil {
		p.kill()
		return nil, "", "", err
	}
	return p, got[0], got[1], nil
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// ownGateway starts a gateway of the test's own (see startGateway) and
// returns its public base URL. When the test ends the gateway gets SIGTERM
// and must drain and exit 0; its breakers die with it.
func ownGateway(t *testing.T, extraEnv ...string) string {
	t.Helper()
	url, _ := ownGatewayConfig(t, repoConfig, extraEnv...)
	return url
}

// ownGatewayConfig is ownGateway on the config file at path; it returns
// the gateway's public and admin base URLs.
func ownGatewayConfig(t *testing.T, path string, extraEnv ...string) (public, admin string) {
	t.Helper()
	gw, public, admin, err := startGatewayConfig(path, extraEnv...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if code, err := gw.stop(syscall.SIGTERM, 30*time.Second); err != nil || code != 0 {
			t.Errorf("own gateway: exit code %d (%v) after SIGTERM, want 0\n%s", code, err, gw.logs())
		}
	})
	return public, admin
}
