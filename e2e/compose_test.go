package e2e

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// There is no Docker engine where the tests run, so docker-compose.yml is
// checked without one: loaded with the compose-spec loader (the library
// docker compose itself uses), then every address in it is followed to a
// service of the file and a port that service listens on, and the files it
// mounts from deploy/ are checked (compose_observability_test.go). The
// gateway's environment is checked against the suite's own gateways in
// compose_env_test.go.

// composeFile is the compose file, relative to the e2e directory.
const composeFile = "../docker-compose.yml"

// composeServices are the services the demo needs.
var composeServices = []string{"postgres", "redis", "jaeger", "demo", "gateway", "prometheus", "grafana"}

// loadCompose loads docker-compose.yml as `docker compose` would, with an
// empty environment: what a newcomer gets, whatever the shell of the
// person running the tests exports. The loader validates the file against
// the compose specification's schema and checks its consistency (every
// depends_on names a service, and so on).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(context.Background(), details)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// composeService returns the named service, failing the test if there is none.
func composeService(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return s
}

// composeEnv returns the value of a service's environment variable, "" if unset.
func composeEnv(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// portOf returns the port of a host:port address, failing on anything else.
func portOf(t *testing.T, what, hostport string) uint32 {
	t.Helper()
	_, port, err := net.SplitHostPort(hostport)
	n, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil {
		t.Fatalf("%s: %q is not host:port", what, hostport)
	}
	return uint32(n)
}

// listening returns, per service, the container ports it listens on, each
// from where it is decided: the gateway's from its environment (read by
// gateway.yaml), the demo's from the demo binary's own flag defaults, and
// Jaeger's from deploy/jaeger/config.yaml; the images' defaults for the
// others, checked not to be overridden.
func listening(t *testing.T, p *types.Project) map[string][]uint32 {
	t.Helper()
	gw := composeService(t, p, "gateway")
	ports := map[string][]uint32{
		"gateway": {portOf(t, "gateway BRAID_LISTEN", composeEnv(gw, "BRAID_LISTEN")), portOf(t, "gateway BRAID_ADMIN_LISTEN", composeEnv(gw, "BRAID_ADMIN_LISTEN"))},
		"jaeger":  jaegerPorts(t),
		// The images' defaults: nothing in the file may move them.
		"postgres":   {5432},
		"redis":      {6379},
		"prometheus": {9090},
		"grafana":    {3000},
	}
	for name, addr := range demoAddrs(t) {
		ports["demo"] = append(ports["demo"], portOf(t, "demo -"+name+"-addr", addr))
	}
	for svc, moved := range map[string][]string{
		"postgres": {"PGPORT", "-p"}, "redis": {"--port"},
		"prometheus": {"--web.listen-address"}, "grafana": {"GF_SERVER_HTTP_PORT"},
	} {
		s := composeService(t, p, svc)
		for _, m := range moved {
			if _, ok := s.Environment[m]; ok || slices.ContainsFunc(s.Command, func(a string) bool { return strings.HasPrefix(a, m) }) {
				t.Errorf("%s: %s moves its port from the image's default, which these checks assume", svc, m)
			}
		}
	}
	return ports
}

// demoAddrs returns the listen address of each demo service, as the demo
// binary's -<service>-addr flags default them (demo -h), with the compose
// demo command's own -<service>-addr flags applied.
func demoAddrs(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command(stack.demoBin, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("demo -h: %v\n%s", err, out)
	}
	addrs := map[string]string{}
	re := regexp.MustCompile(`-(\w+)-addr string\s+listen address of the \w+ service \(default "([^"]+)"\)`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		addrs[m[1]] = m[2]
	}
	if len(addrs) != len(stack.services) {
		t.Fatalf("demo -h lists %d service addresses (%v), the suite runs %d services:\n%s", len(addrs), addrs, len(stack.services), out)
	}
	return addrs
}

// wantServiceAddr fails unless hostport names a service of the file and a
// port that service listens on.
func wantServiceAddr(t *testing.T, listen map[string][]uint32, what, hostport string) {
	t.Helper()
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Errorf("%s: %q is not host:port", what, hostport)
		return
	}
	ports, ok := listen[host]
	if !ok {
		t.Errorf("%s: host %q of %q is not a service of docker-compose.yml", what, host, hostport)
		return
	}
	if port := portOf(t, what, hostport); !slices.Contains(ports, port) {
		t.Errorf("%s: %q: service %s listens on %v, not on %d", what, hostport, host, ports, port)
	}
}

// wantServiceURL is wantServiceAddr for a URL, with the scheme's default
// port when it has none.
func wantServiceURL(t *testing.T, listen map[string][]uint32, what, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Errorf("%s: %q is not an absolute URL", what, raw)
		return
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "redis": "6379", "postgres": "5432"}[u.Scheme]
	}
	wantServiceAddr(t, listen, what, net.JoinHostPort(u.Hostname(), port))
}

func TestComposeFileLoads(t *testing.T) {
	p := loadCompose(t)
	if got := p.ServiceNames(); !slices.Equal(sortedCopy(got), sortedCopy(composeServices)) {
		t.Errorf("services %v, want %v", sortedCopy(got), sortedCopy(composeServices))
	}
	// Pinned images: an exact version, never latest or a bare major.
	pinned := regexp.MustCompile(`^[\w./-]+:v?\d+\.\d+[\w.-]*$`)
	for _, s := range p.Services {
		switch {
		case s.Build != nil:
			if s.Build.Dockerfile != "Dockerfile" || s.Build.Context != filepath.Dir(mustAbs(t, composeFile)) {
				t.Errorf("%s: build %+v, want the repo's Dockerfile", s.Name, s.Build)
			}
		case !pinned.MatchString(s.Image):
			t.Errorf("%s: image %q is not pinned to a version", s.Name, s.Image)
		}
	}
	// Every bind mount is a file or directory of the repo.
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: mounts %s, which does not exist: %v", s.Name, v.Source, err)
			}
			if !v.ReadOnly {
				t.Errorf("%s: %s is mounted writable; the containers only read deploy/", s.Name, v.Source)
			}
		}
	}
}

func TestComposeAddressesAreServices(t *testing.T) {
	p := loadCompose(t)
	listen := listening(t, p)
	gw, demo := composeService(t, p, "gateway"), composeService(t, p, "demo")

	// Every URL the gateway and the demo are given names a service and a
	// port it listens on; each upstream URL the demo service of its name.
	addrs := demoAddrs(t)
	for _, s := range []types.ServiceConfig{gw, demo} {
		for name, v := range s.Environment {
			if v == nil || !strings.Contains(*v, "://") {
				continue
			}
			wantServiceURL(t, listen, s.Name+" "+name, *v)
			if up := strings.TrimSuffix(name, "_URL"); s.Name == "gateway" && addrs[strings.ToLower(up)] != "" {
				u, _ := url.Parse(*v)
				if want := portOf(t, "demo", addrs[strings.ToLower(up)]); u.Hostname() != "demo" || u.Port() != portString(want) {
					t.Errorf("gateway %s = %q, want http://demo:%d, the %s service", name, *v, want, strings.ToLower(up))
				}
			}
		}
	}
	// The demo: its binary, on every interface, on the postgres service.
	if !slices.Equal(demo.Entrypoint, []string{"/usr/local/bin/demo"}) {
		t.Errorf("demo entrypoint %v, want [/usr/local/bin/demo]", demo.Entrypoint)
	}
	if i := slices.Index(demo.Command, "-host"); i < 0 || i+1 >= len(demo.Command) || demo.Command[i+1] != "0.0.0.0" {
		t.Errorf("demo command %v: want -host 0.0.0.0, or the gateway cannot reach it", demo.Command)
	}
	if i := slices.Index(demo.Command, "-db"); i < 0 || i+1 >= len(demo.Command) {
		t.Errorf("demo command %v: want -db on the postgres service", demo.Command)
	} else {
		wantServiceURL(t, listen, "demo -db", demo.Command[i+1])
		if u, _ := url.Parse(demo.Command[i+1]); u == nil || u.Path != "/"+composeEnv(composeService(t, p, "postgres"), "POSTGRES_DB") {
			t.Errorf("demo -db %q: want the database POSTGRES_DB of the postgres service", demo.Command[i+1])
		}
	}

	// Published ports: each one a port its service listens on, no host port
	// twice, and only the gateway's public port beyond the host's loopback.
	hostPorts := map[string]string{}
	for _, s := range p.Services {
		for _, port := range s.Ports {
			if !slices.Contains(listen[s.Name], port.Target) {
				t.Errorf("%s publishes container port %d, where it does not listen (%v)", s.Name, port.Target, listen[s.Name])
			}
			if other, dup := hostPorts[port.Published]; dup {
				t.Errorf("host port %s published by %s and %s", port.Published, other, s.Name)
			}
			hostPorts[port.Published] = s.Name
			public := s.Name == "gateway" && port.Target == portOf(t, "BRAID_LISTEN", composeEnv(gw, "BRAID_LISTEN"))
			if loopback := port.HostIP == "127.0.0.1"; public == loopback {
				t.Errorf("%s publishes %d on host address %q: want all interfaces for the gateway's public port, 127.0.0.1 for the rest", s.Name, port.Target, port.HostIP)
			}
		}
	}
	for _, v := range []string{"BRAID_LISTEN", "BRAID_ADMIN_LISTEN"} {
		// Inside the container every interface, so that the host (public)
		// and Prometheus (admin) reach it.
		if host, _, _ := net.SplitHostPort(composeEnv(gw, v)); host != "" && host != "0.0.0.0" {
			t.Errorf("gateway %s = %q: inside the container it must listen on every interface", v, composeEnv(gw, v))
		}
	}
	// gateway.yaml's listen and admin_listen, from the environment, are
	// each published on the same host port (the README's 8080 and 9090).
	for _, v := range []string{"BRAID_LISTEN", "BRAID_ADMIN_LISTEN"} {
		port := portOf(t, "gateway "+v, composeEnv(gw, v))
		if !slices.ContainsFunc(gw.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == port && pc.Published == portString(port) }) {
			t.Errorf("gateway %s = %q: port %d is not published on host port %d (%+v)", v, composeEnv(gw, v), port, port, gw.Ports)
		}
	}
}

func TestComposeStartOrder(t *testing.T) {
	p := loadCompose(t)
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			target := composeService(t, p, dep)
			if d.Condition == types.ServiceConditionHealthy && (target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0) {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", s.Name, dep)
			}
		}
	}
	want := map[string]map[string]string{
		"demo":    {"postgres": types.ServiceConditionHealthy},
		"gateway": {"redis": types.ServiceConditionHealthy},
		"grafana": {"prometheus": types.ServiceConditionHealthy},
	}
	for svc, deps := range want {
		for dep, cond := range deps {
			if got := composeService(t, p, svc).DependsOn[dep].Condition; got != cond {
				t.Errorf("%s depends on %s with condition %q, want %q", svc, dep, got, cond)
			}
		}
	}
	for _, svc := range []string{"postgres", "redis", "jaeger", "gateway", "prometheus", "grafana"} {
		if hc := composeService(t, p, svc).HealthCheck; hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
			t.Errorf("%s: healthcheck %+v, want an exec-form test (CMD ...)", svc, hc)
		}
	}
}

// gatewayHealthcheck is the gateway's healthcheck command, in the compose
// file and the image (distroless: no shell, no curl). Its behaviour is
// pinned by TestComposeGatewayHealthcheck.
var gatewayHealthcheck = []string{"/usr/local/bin/gateway", "healthcheck"}

func TestComposeImage(t *testing.T) {
	p := loadCompose(t)
	gw := composeService(t, p, "gateway")
	if gw.HealthCheck == nil || !slices.Equal(gw.HealthCheck.Test, append([]string{"CMD"}, gatewayHealthcheck...)) {
		t.Errorf("gateway healthcheck %+v, want CMD %v", gw.HealthCheck, gatewayHealthcheck)
	}
	df := string(readFile(t, "../Dockerfile"))
	for _, want := range []string{
		"./cmd/gateway", "./cmd/demo", "CGO_ENABLED=0", "distroless/static", ":nonroot",
		"COPY --from=build /out/gateway /out/demo /usr/local/bin/",
		`HEALTHCHECK`, `CMD ["` + strings.Join(gatewayHealthcheck, `", "`) + `"]`,
		`ENTRYPOINT ["/usr/local/bin/gateway", "-config", "/etc/braid/gateway.yaml"]`,
		"COPY gateway.yaml /etc/braid/gateway.yaml",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	// .dockerignore keeps out of the build context nothing the build reads:
	// the Go files of both commands' packages, go.mod, go.sum and the
	// embedded gateway.yaml.
	out, err := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`, "../cmd/gateway", "../cmd/demo").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	root := filepath.Dir(mustAbs(t, composeFile))
	needed := []string{"go.mod", "go.sum", "gateway.yaml"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		rel, err := filepath.Rel(root, f[0])
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module dependency, downloaded by the build
		}
		for _, name := range f[1:] {
			needed = append(needed, filepath.ToSlash(filepath.Join(rel, name)))
		}
	}
	for _, pat := range dockerignore(t) {
		if i := slices.IndexFunc(needed, func(f string) bool { return ignored(pat, f) }); i >= 0 {
			t.Errorf(".dockerignore pattern %q keeps %s (and maybe more), which the build needs, out of the context", pat, needed[i])
		}
	}
}

// dockerignore returns the patterns of ../.dockerignore.
func dockerignore(t *testing.T) []string {
	t.Helper()
	var pats []string
	for _, line := range strings.Split(string(readFile(t, "../.dockerignore")), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: exceptions (%s) are not understood by this check", line)
		}
		pats = append(pats, strings.TrimPrefix(filepath.Clean(line), "/"))
	}
	return pats
}

// ignored reports whether a .dockerignore pattern matches path or one of
// its parent directories.
func ignored(pattern, path string) bool {
	for p := path; p != "." && p != "/"; p = filepath.Dir(p) {
		if ok, _ := filepath.Match(pattern, p); ok {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAbs(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
