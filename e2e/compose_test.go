package e2e

import (
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// There is no Docker engine where the tests run, so the compose file is
// checked statically: it must wire the gateway to the demo services the way
// gateway.yaml expects.

type composeFile struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Image       string            `yaml:"image"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		DependsOn   any               `yaml:"depends_on"`
		Healthcheck any               `yaml:"healthcheck"`
	} `yaml:"services"`
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestComposeFileWiresTheDemo(t *testing.T) {
	var cf composeFile
	dec := yaml.NewDecoder(strings.NewReader(string(readFile(t, "../docker-compose.yml"))))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"gateway", "demo", "postgres"} {
		if _, ok := cf.Services[name]; !ok {
			t.Fatalf("service %q missing", name)
		}
	}
	gw, dm := cf.Services["gateway"], cf.Services["demo"]

	// Every upstream URL variable of gateway.yaml points at the demo service.
	var vars [][]string
	for _, v := range regexp.MustCompile(`\$\{([A-Z_]+_URL)`).FindAllStringSubmatch(string(readFile(t, "../gateway.yaml")), -1) {
		if v[1] != "REDIS_URL" { // the cache's, not an upstream's
			vars = append(vars, v)
		}
	}
	if len(vars) != 5 {
		t.Fatalf("gateway.yaml references %d upstream URL variables, want 5", len(vars))
	}
	demoPorts := map[string]string{"USERS_URL": "9101", "ORDERS_URL": "9102", "PRODUCTS_URL": "9103", "NOTIFICATIONS_URL": "9104", "RECOMMENDATIONS_URL": "9105"}
	for _, v := range vars {
		raw, ok := gw.Environment[v[1]]
		if !ok {
			t.Errorf("gateway environment lacks %s", v[1])
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() != "demo" || u.Port() != demoPorts[v[1]] {
			t.Errorf("%s = %q, want http://demo:%s (the demo binary's default port)", v[1], raw, demoPorts[v[1]])
		}
	}
	if !slices.Contains(dm.Command, "0.0.0.0") || !slices.Contains(dm.Entrypoint, "/usr/local/bin/demo") {
		t.Errorf("demo must run /usr/local/bin/demo listening on all interfaces: %v %v", dm.Entrypoint, dm.Command)
	}
	if i := slices.Index(dm.Command, "-db"); i < 0 || !strings.Contains(dm.Command[i+1], "@postgres:5432/") {
		t.Errorf("demo must use the postgres service: %v", dm.Command)
	}
	for _, p := range gw.Ports {
		if strings.HasSuffix(p, ":9090") && !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("admin port published as %q: it must stay on the host's loopback", p)
		}
	}
	if !slices.Contains(gw.Ports, "8080:8080") {
		t.Errorf("gateway ports = %v, want 8080:8080", gw.Ports)
	}
	df := string(readFile(t, "../Dockerfile"))
	for _, want := range []string{"./cmd/gateway", "./cmd/demo", "/usr/local/bin/", "gateway.yaml"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile does not mention %s", want)
		}
	}
}
