package e2e

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// suiteUse is how the e2e suite sets one of the gateway's environment
// variables.
type suiteUse int

const (
	// everyGateway: startGateway sets it for every gateway of the suite.
	everyGateway suiteUse = iota
	// someTests: the tests that need it set it (cache, tracing, the
	// hostile upstreams on each transport).
	someTests
	// flagInstead: the suite passes the flag (gatewayVar.flag) instead, to
	// listen on free loopback ports.
	flagInstead
	// composeOnly: the suite leaves it unset (the gateway's default);
	// the compose gateway, and the suite's copy of it, set it.
	composeOnly
)

// gatewayVar is one environment variable of the gateway.
type gatewayVar struct {
	name  string
	suite suiteUse
	flag  string // for flagInstead
}

// gatewayEnv is every environment variable the gateway reads — gateway.yaml's
// ${NAME} references and the standard OTEL_* ones — with how the suite sets
// it. It is the one list both sides are checked against
// (TestComposeGatewayEnvironment): the compose gateway sets exactly these
// names, gateway.yaml reads exactly its non-OTEL ones, the suite's gateways
// set them as marked, and composeGateway starts the real binary with the
// compose file's values of all of them.
var gatewayEnv = []gatewayVar{
	{name: "BRAID_LISTEN", suite: flagInstead, flag: "-listen"},
	{name: "BRAID_ADMIN_LISTEN", suite: flagInstead, flag: "-admin"},
	{name: "BRAID_ADMIN_TOKEN", suite: someTests},
	{name: "BRAID_CACHE_DISABLED", suite: everyGateway},
	{name: "BRAID_CACHE_PREFIX", suite: someTests},
	{name: "REDIS_URL", suite: someTests},
	{name: "USERS_URL", suite: everyGateway},
	{name: "ORDERS_URL", suite: everyGateway},
	{name: "PRODUCTS_URL", suite: everyGateway},
	{name: "NOTIFICATIONS_URL", suite: everyGateway},
	{name: "RECOMMENDATIONS_URL", suite: everyGateway},
	{name: "BRAID_UPSTREAM_TRANSPORT", suite: someTests},
	{name: "AUTH_JWKS_URL", suite: everyGateway},
	{name: "AUTH_ISSUER", suite: composeOnly},
	{name: "AUTH_AUDIENCE", suite: composeOnly},
	{name: "OTEL_EXPORTER_OTLP_ENDPOINT", suite: someTests},
	{name: "OTEL_SERVICE_NAME", suite: someTests},
	{name: "OTEL_TRACES_SAMPLER", suite: composeOnly},
	{name: "OTEL_TRACES_SAMPLER_ARG", suite: composeOnly},
}

// gatewayEnvNames returns the names of gatewayEnv whose suite use is one of
// uses, or all of them.
func gatewayEnvNames(uses ...suiteUse) []string {
	var names []string
	for _, v := range gatewayEnv {
		if len(uses) == 0 || slices.Contains(uses, v.suite) {
			names = append(names, v.name)
		}
	}
	return names
}

// wantSameNames reports the names in one list and not the other, both ways.
func wantSameNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	for _, n := range got {
		if !slices.Contains(want, n) {
			t.Errorf("%s: %s is not in gatewayEnv (e2e/compose_env_test.go): add it there, and to docker-compose.yml", what, n)
		}
	}
	for _, n := range want {
		if !slices.Contains(got, n) {
			t.Errorf("%s: lacks %s, which gatewayEnv (e2e/compose_env_test.go) lists", what, n)
		}
	}
}

func TestComposeGatewayEnvironment(t *testing.T) {
	p := loadCompose(t)

	// docker-compose.yml's gateway sets exactly the listed variables.
	var compose []string
	for name := range composeService(t, p, "gateway").Environment {
		compose = append(compose, name)
	}
	wantSameNames(t, "docker-compose.yml gateway environment", compose, gatewayEnvNames())

	// gateway.yaml reads exactly the listed variables that are not OTEL_*
	// (those the observability package reads from the environment itself).
	var refs []string
	ref := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)
	for _, line := range strings.Split(string(readFile(t, repoConfig)), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue // a comment, e.g. the one explaining ${VAR:-default}
		}
		for _, m := range ref.FindAllStringSubmatch(line, -1) {
			if !slices.Contains(refs, m[1]) {
				refs = append(refs, m[1])
			}
		}
	}
	var listed []string
	for _, n := range gatewayEnvNames() {
		if !strings.HasPrefix(n, "OTEL_") {
			listed = append(listed, n)
		}
	}
	wantSameNames(t, "gateway.yaml ${...} references", refs, listed)

	// The suite's shared gateway got exactly the everyGateway variables,
	// and a flag for each flagInstead one.
	added, ok := addedEnv(stack.gateway)
	if !ok {
		t.Fatalf("the shared gateway's environment does not start with this process's: cannot tell what the suite added")
	}
	wantSameNames(t, "the suite's shared gateway (startGateway)", added, gatewayEnvNames(everyGateway))
	for _, v := range gatewayEnv {
		if v.suite == flagInstead && !slices.Contains(stack.gateway.cmd.Args, v.flag) {
			t.Errorf("%s is marked flagInstead (%s), but the suite starts its gateways with %v", v.name, v.flag, stack.gateway.cmd.Args[1:])
		}
	}

	// Each someTests variable is set by a test of the suite, and no test
	// sets a composeOnly one.
	var src strings.Builder
	files, _ := filepath.Glob("*_test.go")
	for _, f := range files {
		if !strings.HasPrefix(f, "compose") {
			src.Write(readFile(t, f))
		}
	}
	for _, v := range gatewayEnv {
		set := strings.Contains(src.String(), `"`+v.name+`=`)
		switch {
		case v.suite == someTests && !set:
			t.Errorf("%s is marked someTests, but no e2e test sets it (\"%s=...\")", v.name, v.name)
		case v.suite == composeOnly && set:
			t.Errorf("%s is marked composeOnly, but an e2e test sets it: mark it someTests", v.name)
		}
	}
}

// TestComposeGatewayConfigValid: the gateway binary accepts the repo's
// gateway.yaml with the compose gateway's environment, verbatim and alone
// (the container gets nothing else): `gateway validate` expands, decodes
// and validates it without listening or connecting anywhere.
func TestComposeGatewayConfigValid(t *testing.T) {
	gw := composeService(t, loadCompose(t), "gateway")
	var vars []string
	for name, v := range gw.Environment {
		if v != nil {
			vars = append(vars, name+"="+*v)
		}
	}
	cmd := exec.Command(stack.gatewayBin, "validate", "-config", mustAbs(t, repoConfig))
	cmd.Env = vars
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("with %v, gateway validate -config gateway.yaml: %v\n%s", sortedCopy(vars), err, out)
	}
}

// addedEnv returns the names of the variables a process of the suite got
// on top of this process's environment.
func addedEnv(p *process) ([]string, bool) {
	base := os.Environ()
	if len(p.cmd.Env) < len(base) || !slices.Equal(p.cmd.Env[:len(base)], base) {
		return nil, false
	}
	var names []string
	for _, kv := range p.cmd.Env[len(base):] {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, true
}

// composeGateway starts a gateway of the test's own on the repo's
// gateway.yaml with the compose gateway's environment: every variable of
// gatewayEnv with its value in docker-compose.yml, except that local
// stands in for what names a compose service (the demo services, Redis,
// Jaeger) and the listen addresses are free loopback ports (-listen,
// -admin). A value naming a compose service with no local stand-in fails
// the test. It returns the public and admin base URLs.
func composeGateway(t *testing.T, local map[string]string) (public, admin string) {
	t.Helper()
	p := loadCompose(t)
	gw := composeService(t, p, "gateway")
	var vars []string
	for _, v := range gatewayEnv {
		if v.suite == flagInstead {
			continue
		}
		value, ok := local[v.name]
		if !ok {
			value = composeEnv(gw, v.name)
			if host := composeHost(value); host != "" && slices.Contains(p.ServiceNames(), host) {
				t.Fatalf("gateway %s = %q names the compose service %s: give composeGateway a local stand-in", v.name, value, host)
			}
		}
		vars = append(vars, fmt.Sprintf("%s=%s", v.name, value))
	}
	t.Logf("the compose gateway's environment, locally: %v", vars)
	return ownGatewayConfig(t, repoConfig, vars...)
}

// composeHost returns the host a URL or host:port value names, "" for
// anything else.
func composeHost(value string) string {
	if u, err := url.Parse(value); err == nil && u.Host != "" {
		return u.Hostname()
	}
	if host, _, err := net.SplitHostPort(value); err == nil {
		return host
	}
	return ""
}
