package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/braidgw/braid"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

const validConfig = `
upstreams:
  users:
    url: ${USERS_URL:-http://127.0.0.1:9101}
routes:
  - path: /api/users/{id}
    params: [{name: id, type: int}]
    calls:
      - {name: user, upstream: users, path: "/users/{id}"}
`

func TestExpandEnv(t *testing.T) {
	src := []byte("a: ${A}\nb: ${B:-fallback}\nc: ${C:-}\nd: $NOT_EXPANDED ^x$\n")
	got, err := expandEnv(src, env(map[string]string{"A": "one", "B": "two"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "a: one\nb: two\nc: \nd: $NOT_EXPANDED ^x$\n"; string(got) != want {
		t.Errorf("expandEnv = %q, want %q", got, want)
	}
	got, err = expandEnv(src, env(nil))
	if err == nil || !strings.Contains(err.Error(), "line 1: environment variable A is not set") {
		t.Errorf("err = %v, want one naming A and its line", err)
	}
	_ = got
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown top-level field", validConfig + "extra: 1\n", []string{`extra: unknown field "extra" (line 10)`}},
		{"unknown route field", strings.Replace(validConfig, "params:", "parms:", 1), []string{`routes[0].parms: unknown field "parms"`}},
		{"not yaml", "routes: [", []string{"not valid YAML"}},
		{"wrong type", strings.Replace(validConfig, "calls:", "calls: 3\n    x:", 1), []string{`routes[0].calls: "3" is not a list`}},
		{"bad int", "server: {max_body_bytes: lots}\n" + validConfig, []string{`server.max_body_bytes: "lots" is not a whole number`}},
		{"no upstreams", "routes: []\n", []string{"upstreams: at least one upstream is required"}},
		{"bad upstream url", strings.Replace(validConfig, "${USERS_URL:-http://127.0.0.1:9101}", "ftp://x", 1), []string{`upstreams.users.url: must be an absolute http or https URL`}},
		{"negative upstream timeout", strings.Replace(validConfig, "url:", "dial_timeout: -1s\n    url:", 1), []string{"upstreams.users.dial_timeout"}},
		{"bad listen", "server: {listen: nope}\n" + validConfig, []string{`server.listen: "nope" is not host:port`}},
		{"admin on public port", "server: {listen: ':8080', admin_listen: '0.0.0.0:8080'}\n" + validConfig, []string{"server.admin_listen: \"0.0.0.0:8080\" uses the public port"}},
		{"negative body limit", "server: {max_body_bytes: -1}\n" + validConfig, []string{"server.max_body_bytes: must not be negative"}},
		{"bad duration", "server: {shutdown_timeout: soon}\n" + validConfig, []string{`server.shutdown_timeout: "soon" is not a duration (write e.g. 2s or 500ms) (line 1)`}},
		{"bad resilience settings, all named", strings.Replace(validConfig, "url:", "retry: {attempts: -1, statuses: [200]}\n    breaker: {failure_rate: 1.5, open_duration: -1s}\n    bulkhead: {max_concurrent: -2}\n    hedge: {delay: -1ms}\n    retry_budget: {ratio: -1}\n    url:", 1), []string{
			"upstreams.users.retry.attempts: must not be negative", "upstreams.users.retry.statuses[0]: 200 is not an HTTP error status",
			"upstreams.users.breaker.failure_rate", "upstreams.users.breaker.open_duration", "upstreams.users.bulkhead.max_concurrent",
			"upstreams.users.hedge.delay", "upstreams.users.retry_budget.ratio"}},
		{"unknown resilience field", strings.Replace(validConfig, "url:", "breaker: {failure_ratio: 0.3}\n    url:", 1), []string{`upstreams.users.breaker.failure_ratio: unknown field "failure_ratio"`}},
		{"missing env", strings.Replace(validConfig, "${USERS_URL:-http://127.0.0.1:9101}", "${NOPE_URL}", 1), []string{"environment variable NOPE_URL is not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.src), env(nil), overrides{})
			if err == nil {
				t.Fatalf("parseConfig succeeded, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseConfigDefaultsAndOverrides(t *testing.T) {
	cfg, err := parseConfig([]byte(validConfig), env(map[string]string{"USERS_URL": "http://10.1.2.3:80"}), overrides{listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "127.0.0.1:0" || cfg.Server.AdminListen != "127.0.0.1:9090" || cfg.Server.MaxBodyBytes != 1<<20 {
		t.Errorf("server = %+v, want the listen override and defaults", cfg.Server)
	}
	if u := cfg.Upstreams["users"].URL; u != "http://10.1.2.3:80" {
		t.Errorf("users url = %q, want the environment's", u)
	}
}

// TestBuildReportsRouteErrors: route mistakes found when compiling against
// the upstreams are reported with their field and the file's name.
func TestBuildReportsRouteErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	src := strings.Replace(validConfig, "upstream: users", "upstream: userz", 1) +
		"  - path: /api/x/{id}\n    calls:\n      - {name: a, upstream: users, path: '/a/{b.id}'}\n      - {name: b, upstream: users, path: '/b/{a.id}'}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := build(&options{config: path, configSet: true}, env(nil), slog.New(slog.DiscardHandler))
	for _, w := range []string{path + ": invalid configuration", `routes[0] (/api/users/{id}).calls[0] (user).upstream: unknown upstream "userz"`, "routes[1] (/api/x/{id}).calls: dependency cycle: a -> b -> a"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error\n%v\ndoes not contain %q", err, w)
		}
	}
}

func TestValidateCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"validate", "-config", "../../gateway.yaml"}, &out, &errOut); code != 0 {
		t.Fatalf("validate gateway.yaml: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "ok (4 routes, 5 upstreams)") {
		t.Errorf("output = %q", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("upstreams: {}\nroutes: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"validate", "-config", bad}, &out, &errOut); code != 1 {
		t.Errorf("validate bad file: exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "upstreams: at least one upstream is required") {
		t.Errorf("stderr = %q, want the field named", errOut.String())
	}
	if code := run([]string{"validate", "-config", filepath.Join(t.TempDir(), "missing.yaml")}, &out, &errOut); code != 1 {
		t.Errorf("validate missing file: exit %d, want 1", code)
	}
}

// TestEmbeddedDefaultIsTheRepoFile: the binary's fallback configuration is
// the repository's gateway.yaml, and it is valid.
func TestEmbeddedDefaultIsTheRepoFile(t *testing.T) {
	src, err := os.ReadFile("../../gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src, braid.DefaultConfig) {
		t.Fatal("embedded DefaultConfig differs from gateway.yaml")
	}
	gw, err := build(&options{config: filepath.Join(t.TempDir(), "none.yaml")}, env(nil), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("build with the embedded default: %v", err)
	}
	defer gw.close()
	if gw.source != "embedded default configuration" {
		t.Errorf("source = %q", gw.source)
	}
}

func TestFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-log-format", "xml"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "-log-format") {
		t.Errorf("bad -log-format: exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"-nope"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "-nope") {
		t.Errorf("unknown flag: exit %d, stderr %q", code, errOut.String())
	}
	for _, bad := range []string{"-1s", "soon"} {
		errOut.Reset()
		if code := run([]string{"-drain-delay", bad}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "-drain-delay") {
			t.Errorf("-drain-delay %s: exit %d, stderr %q", bad, code, errOut.String())
		}
	}
	o, err := parseFlags("gateway", []string{"-drain-delay", "0s"}, &errOut)
	if err != nil || o.drainDelay == nil || *o.drainDelay != 0 {
		t.Errorf("-drain-delay 0s: options %+v, err %v", o, err)
	}
	if o, _ := parseFlags("gateway", nil, &errOut); o.drainDelay != nil {
		t.Errorf("no -drain-delay: drainDelay = %v, want nil (the file decides)", *o.drainDelay)
	}
}

// TestResilienceOnByDefault: an upstream with no resilience settings gets a
// breaker; one that turns it off gets none.
func TestResilienceOnByDefault(t *testing.T) {
	src := validConfig + "  - path: /api/x/{id}\n    calls:\n      - {name: a, upstream: orders, path: '/a/{id}'}\n"
	src = strings.Replace(src, "upstreams:\n", "upstreams:\n  orders:\n    url: http://127.0.0.1:9102\n    breaker: {disabled: true}\n", 1)
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	gw, err := build(&options{config: path, configSet: true}, env(nil), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer gw.close()
	if _, ok := gw.upstreams.BreakerState("users"); !ok {
		t.Error("users has no circuit breaker, want one by default")
	}
	if _, ok := gw.upstreams.BreakerState("orders"); ok {
		t.Error("orders has a circuit breaker despite breaker.disabled")
	}
}

// TestWriteTimeoutLongerThanRoutes: a write_timeout that is not longer than
// a route's timeout (2s when unset) is refused, naming both fields.
func TestServerTimeoutsLongerThanRoutes(t *testing.T) {
	two := validConfig + "  - path: /slow\n    timeout: 5s\n    calls:\n      - {name: a, upstream: users, path: /a}\n"
	tests := []struct {
		name, server, src string
		want              string // "" for no error
	}{
		{"shorter than the default route timeout", "write_timeout: 1s", validConfig,
			"server.write_timeout: 1s is shorter than routes[0] (/api/users/{id}).timeout 2s; a response could not be written"},
		{"equal", "write_timeout: 2s", validConfig, "server.write_timeout: 2s is not longer than routes[0] (/api/users/{id}).timeout 2s"},
		{"longer", "write_timeout: 2100ms", validConfig, ""},
		{"the longest route is named", "write_timeout: 3s", two, "server.write_timeout: 3s is shorter than routes[1] (/slow).timeout 5s"},
		{"default write_timeout", "listen: ':8080'", two, ""},
		{"read_timeout does not count", "{read_timeout: 1s, write_timeout: 6s}", two, ""},
		{"shutdown_timeout shorter", "shutdown_timeout: 1s", validConfig,
			"server.shutdown_timeout: 1s is shorter than routes[0] (/api/users/{id}).timeout 2s; requests in flight at SIGTERM would be cut off"},
		{"shutdown_timeout equal", "{shutdown_timeout: 5s, write_timeout: 6s}", two, "server.shutdown_timeout: 5s is not longer than routes[1] (/slow).timeout 5s"},
		{"default shutdown_timeout (20s)", "write_timeout: 6s", two, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := "server:\n  " + tt.server + "\n"
			if strings.HasPrefix(tt.server, "{") {
				server = "server: " + tt.server + "\n"
			}
			_, err := parseConfig([]byte(server+tt.src), env(nil), overrides{})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("parseConfig: %v, want success", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error\n%v\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

// TestEverySectionReportedAtOnce: a mistake in one section hides none in
// another; routes are compiled against every declared upstream even when
// some upstream's settings are wrong.
func TestEverySectionReportedAtOnce(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    []string
		notWant []string
	}{
		{"server and routes", "server: {listen: nope}\n" + strings.Replace(validConfig, "upstream: users", "upstream: userz", 1),
			[]string{`server.listen: "nope" is not host:port`, `routes[0] (/api/users/{id}).calls[0] (user).upstream: unknown upstream "userz"`}, nil},
		{"a bad upstream still counts as declared", strings.Replace(validConfig, "${USERS_URL:-http://127.0.0.1:9101}", "ftp://x", 1) +
			"  - path: /x/{id}\n    calls:\n      - {name: a, upstream: users, path: '/a/{b.id}'}\n      - {name: b, upstream: users, path: '/b/{a.id}'}\n",
			[]string{`upstreams.users.url: must be an absolute http or https URL`, "routes[1] (/x/{id}).calls: dependency cycle"}, []string{"unknown upstream"}},
		{"every section", "server: {drain_delay: -1s}\nobservability: {tracing: {sampler: sometimes}}\ncache: {redis: {timeout: -1s}}\n" +
			strings.Replace(validConfig, "url:", "retry: {attempts: -1}\n    url:", 1) + "  - path: /api/{id\n    calls: [{name: a, upstream: users, path: /a}]\n",
			[]string{"server.drain_delay: must not be negative", "observability.tracing.sampler", "cache.redis.timeout", "upstreams.users.retry.attempts", "routes[1] (/api/{id).path"}, nil},
		{"no upstreams and a route", "routes:\n  - path: /x\n    calls: [{name: a, upstream: users, path: /a}]\n",
			[]string{"upstreams: at least one upstream is required", `routes[0] (/x).calls[0] (a).upstream: unknown upstream "users"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.src), env(nil), overrides{})
			if err == nil {
				t.Fatal("parseConfig succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ncontains %q", err, w)
				}
			}
		})
	}
}

// TestDrainDelaySetting: server.drain_delay defaults to 5s, may be 0, is
// never negative, and -drain-delay replaces it.
func TestDrainDelaySetting(t *testing.T) {
	zero, seven := time.Duration(0), 7*time.Second
	tests := []struct {
		name   string
		server string
		flag   *time.Duration
		want   time.Duration
		err    string
	}{
		{"default", "", nil, 5 * time.Second, ""},
		{"zero", "server: {drain_delay: 0s}\n", nil, 0, ""},
		{"set", "server: {drain_delay: 12s}\n", nil, 12 * time.Second, ""},
		{"negative", "server: {drain_delay: -1s}\n", nil, 0, "server.drain_delay: must not be negative"},
		{"not a duration", "server: {drain_delay: 5}\n", nil, 0, `server.drain_delay: "5" is not a duration`},
		{"flag replaces the default", "", &zero, 0, ""},
		{"flag replaces the file", "server: {drain_delay: 12s}\n", &seven, 7 * time.Second, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig([]byte(tt.server+validConfig), env(nil), overrides{drainDelay: tt.flag})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := *cfg.Server.DrainDelay; got != tt.want {
				t.Errorf("drain_delay = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMaxInflightResponseBytes: server.max_inflight_response_bytes is a
// byte size handed to the upstreams' memory budget: 0 is its default
// (256MiB), -1 turns it off, anything else negative is refused, and so is
// a budget that an upstream's largest response could not fit in.
func TestMaxInflightResponseBytes(t *testing.T) {
	tests := []struct {
		name   string
		server string
		budget int64 // upstream.Set's budget; 0 means off
		err    string
	}{
		{"default", "", 256 << 20, ""},
		{"size with a unit", "server: {max_inflight_response_bytes: 1GiB}\n", 1 << 30, ""},
		{"plain bytes", "server: {max_inflight_response_bytes: 16777216}\n", 16 << 20, ""},
		{"off", "server: {max_inflight_response_bytes: -1}\n", 0, ""},
		{"negative", "server: {max_inflight_response_bytes: -2}\n", 0, "server.max_inflight_response_bytes: -2: write a size such as 256MiB"},
		{"not a size", "server: {max_inflight_response_bytes: lots}\n", 0, "server.max_inflight_response_bytes: `lots` is not a byte size"},
		{"below max_response_bytes", "server: {max_inflight_response_bytes: 1MiB}\n", 0,
			"server.max_inflight_response_bytes: 1MiB is less than upstreams.users.max_response_bytes 8MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := buildFile(t, tt.server+validConfig, nil, tt.err)
			if gw == nil {
				return
			}
			if got := gw.upstreams.Memory().Budget; got != tt.budget {
				t.Errorf("memory budget = %d, want %d", got, tt.budget)
			}
		})
	}
}

// buildFile builds the gateway from config file text src with environment
// vars. With wantErr set it checks that building fails with an error
// containing it and returns nil; otherwise it fails the test on an error
// and closes the gateway when the test ends.
func buildFile(t *testing.T, src string, vars map[string]string, wantErr string) *gateway {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	gw, err := build(&options{config: path, configSet: true}, env(vars), slog.New(slog.DiscardHandler))
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("err = %v, want %q", err, wantErr)
		}
		if gw != nil {
			gw.close()
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.close)
	return gw
}
