package e2e

import (
	"bytes"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// The files docker-compose.yml mounts from deploy/: the Prometheus config,
// Grafana's provisioning and the Jaeger config. Each is decoded strictly
// into the fields these checks rely on (a misspelt key fails), and every
// address in it must name a service of the compose file and a port that
// service listens on. promtool and the Jaeger binary check them too.

// mountSource returns the host path the service sees at path: the source
// of the bind mount holding it. It fails the test if no mount holds it.
func mountSource(t *testing.T, s types.ServiceConfig, path string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if path == v.Target {
			return v.Source
		}
		if rest, ok := strings.CutPrefix(path, v.Target+"/"); ok {
			return filepath.Join(v.Source, rest)
		}
	}
	t.Fatalf("%s reads %s, which no bind mount of it provides", s.Name, path)
	return ""
}

// flagValue returns the value of -name=value or -name value in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// decodeStrict decodes the YAML file at path into v, unknown keys being
// errors.
func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, path)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// promConfig is what these checks rely on of a Prometheus configuration.
type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		ScrapeTimeout      string `yaml:"scrape_timeout"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		Scheme        string `yaml:"scheme"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// prometheusConfig returns the Prometheus configuration the compose
// Prometheus reads (its --config.file, through its mount) and its path.
func prometheusConfig(t *testing.T, p *types.Project) (*promConfig, string) {
	t.Helper()
	prom := composeService(t, p, "prometheus")
	file, ok := flagValue(prom.Command, "--config.file")
	if !ok {
		t.Fatalf("prometheus command %v: want --config.file", prom.Command)
	}
	path := mountSource(t, prom, file)
	var cfg promConfig
	decodeStrict(t, path, &cfg)
	return &cfg, path
}

func TestComposePrometheus(t *testing.T) {
	p := loadCompose(t)
	listen := listening(t, p)
	cfg, path := prometheusConfig(t, p)
	if rel, _ := filepath.Rel(mustAbs(t, ".."), path); rel != "deploy/prometheus/prometheus.yml" {
		t.Errorf("prometheus reads %s, want deploy/prometheus/prometheus.yml", rel)
	}

	// promtool, when installed (Debian package prometheus), checks the
	// whole file; these checks run either way.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(promtool, "check", "config", path).CombinedOutput(); err != nil {
			t.Errorf("promtool check config: %v\n%s", err, out)
		}
	} else {
		t.Logf("promtool is not on PATH (apt-get install prometheus): %s is checked structurally only", path)
	}

	interval, err := model.ParseDuration(cfg.Global.ScrapeInterval)
	if err != nil {
		t.Errorf("global.scrape_interval: %v", err)
	}
	if timeout, err := model.ParseDuration(cfg.Global.ScrapeTimeout); err != nil || timeout > interval {
		t.Errorf("global.scrape_timeout %q: want a duration no longer than scrape_interval %q (%v)", cfg.Global.ScrapeTimeout, cfg.Global.ScrapeInterval, err)
	}
	if _, err := model.ParseDuration(cfg.Global.EvaluationInterval); err != nil {
		t.Errorf("global.evaluation_interval: %v", err)
	}

	gw := composeService(t, p, "gateway")
	admin := net.JoinHostPort("gateway", portString(portOf(t, "BRAID_ADMIN_LISTEN", composeEnv(gw, "BRAID_ADMIN_LISTEN"))))
	demoPorts := map[uint32]string{} // container port -> the demo service listening on it
	for name, addr := range demoAddrs(t) {
		demoPorts[portOf(t, "demo -"+name+"-addr", addr)] = name
	}
	var jobs []string
	scrapesGateway := false
	scrapesDemo := map[string]int{} // demo service -> scrape targets naming it
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "" || slices.Contains(jobs, sc.JobName) {
			t.Errorf("scrape job name %q: empty or repeated", sc.JobName)
		}
		jobs = append(jobs, sc.JobName)
		if sc.Scheme != "" && sc.Scheme != "http" {
			t.Errorf("job %s: scheme %q; the compose services speak plain http", sc.JobName, sc.Scheme)
		}
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s: metrics_path %q, want /metrics", sc.JobName, sc.MetricsPath)
		}
		if len(sc.StaticConfigs) == 0 {
			t.Errorf("job %s has no static_configs", sc.JobName)
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				wantServiceAddr(t, listen, "prometheus job "+sc.JobName+" target", target)
				scrapesGateway = scrapesGateway || target == admin
				if host, _, _ := net.SplitHostPort(target); host == "demo" {
					if name := demoPorts[portOf(t, "prometheus target", target)]; name != "" {
						scrapesDemo[name]++
						wantDemoMetrics(t, "prometheus job "+sc.JobName+" target "+target, name, sc.MetricsPath)
					}
				}
			}
		}
	}
	if !scrapesGateway {
		t.Errorf("no scrape job targets the gateway's admin listener %s", admin)
	}
	for port, name := range demoPorts {
		if n := scrapesDemo[name]; n != 1 {
			t.Errorf("the demo's %s service (demo:%d) is %d scrape targets, want exactly 1", name, port, n)
		}
	}
}

// wantDemoMetrics fails unless the suite's demo service of the name, the
// binary a compose target points to, serves at path (default /metrics)
// Prometheus text whose series are all braid_demo_* and all labelled
// service=name: the target is the service it is meant to be.
func wantDemoMetrics(t *testing.T, what, name, path string) {
	t.Helper()
	if path == "" {
		path = "/metrics"
	}
	series := scrapeSeries(t, stack.services[name]+path)
	if len(series) == 0 {
		t.Errorf("%s: the demo's %s service exposes no series at %s", what, name, path)
	}
	for metric, labels := range series {
		if !strings.HasPrefix(metric, "braid_demo_") || !slices.Equal(labels["service"], []string{name}) {
			t.Errorf("%s: %s{service=%q}: want braid_demo_* series of the %s service only", what, metric, labels["service"], name)
		}
	}
}

// portString formats a port number.
func portString(port uint32) string { return strconv.FormatUint(uint64(port), 10) }

// grafanaDatasource is a provisioned Grafana datasource.
type grafanaDatasource struct {
	Name      string         `yaml:"name"`
	UID       string         `yaml:"uid"`
	Type      string         `yaml:"type"`
	Access    string         `yaml:"access"`
	URL       string         `yaml:"url"`
	IsDefault bool           `yaml:"isDefault"`
	Editable  bool           `yaml:"editable"`
	JSONData  map[string]any `yaml:"jsonData"`
}

// grafanaProvisioning returns the host directory Grafana provisions from
// (its default /etc/grafana/provisioning, through its mount).
func grafanaProvisioning(t *testing.T, p *types.Project) string {
	t.Helper()
	g := composeService(t, p, "grafana")
	if v := composeEnv(g, "GF_PATHS_PROVISIONING"); v != "" {
		return mountSource(t, g, v)
	}
	return mountSource(t, g, "/etc/grafana/provisioning")
}

// grafanaDatasources returns every provisioned datasource, by uid.
func grafanaDatasources(t *testing.T, p *types.Project) map[string]grafanaDatasource {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(grafanaProvisioning(t, p), "datasources", "*.y*ml"))
	if len(files) == 0 {
		t.Fatalf("no datasource files under %s/datasources", grafanaProvisioning(t, p))
	}
	byUID := map[string]grafanaDatasource{}
	for _, f := range files {
		var file struct {
			APIVersion  int                 `yaml:"apiVersion"`
			Datasources []grafanaDatasource `yaml:"datasources"`
		}
		decodeStrict(t, f, &file)
		if file.APIVersion != 1 {
			t.Errorf("%s: apiVersion %d, want 1", f, file.APIVersion)
		}
		for _, ds := range file.Datasources {
			if _, dup := byUID[ds.UID]; ds.UID == "" || dup {
				t.Errorf("%s: datasource %q: uid %q empty or repeated; dashboards refer to datasources by uid", f, ds.Name, ds.UID)
			}
			byUID[ds.UID] = ds
		}
	}
	return byUID
}

func TestComposeGrafana(t *testing.T) {
	p := loadCompose(t)
	listen := listening(t, p)
	prom, _ := prometheusConfig(t, p)

	// Datasources: Prometheus (the default) and Jaeger, each reached by
	// Grafana's server (access proxy) at a compose service.
	kinds := map[string]int{}
	defaults := 0
	for uid, ds := range grafanaDatasources(t, p) {
		kinds[ds.Type]++
		if ds.IsDefault {
			defaults++
		}
		if ds.Access != "proxy" {
			t.Errorf("datasource %s: access %q, want proxy: browsers cannot resolve compose service names", uid, ds.Access)
		}
		wantServiceURL(t, listen, "grafana datasource "+uid, ds.URL)
		u, _ := url.Parse(ds.URL)
		switch ds.Type {
		case "prometheus":
			if u.Hostname() != "prometheus" {
				t.Errorf("datasource %s: %s is not the prometheus service", uid, ds.URL)
			}
			if ti, _ := ds.JSONData["timeInterval"].(string); ti != prom.Global.ScrapeInterval {
				t.Errorf("datasource %s: jsonData.timeInterval %q, want Prometheus's scrape_interval %q", uid, ti, prom.Global.ScrapeInterval)
			}
		case "jaeger":
			if want := jaegerEndpointPort(t, "extensions", "jaeger_query", "http"); u.Hostname() != "jaeger" || u.Port() != portString(want) {
				t.Errorf("datasource %s: %s, want http://jaeger:%d (jaeger_query's HTTP endpoint)", uid, ds.URL, want)
			}
		default:
			t.Errorf("datasource %s: type %q, want prometheus or jaeger", uid, ds.Type)
		}
	}
	if kinds["prometheus"] != 1 || kinds["jaeger"] != 1 || defaults != 1 {
		t.Errorf("datasources by type %v with %d default: want one prometheus (the default) and one jaeger", kinds, defaults)
	}

	// Dashboards: every provider reads a mounted directory of dashboard
	// JSON files; the home dashboard is one of them.
	files, _ := filepath.Glob(filepath.Join(grafanaProvisioning(t, p), "dashboards", "*.y*ml"))
	g := composeService(t, p, "grafana")
	var dirs []string
	for _, f := range files {
		var file struct {
			APIVersion int `yaml:"apiVersion"`
			Providers  []struct {
				Name                  string `yaml:"name"`
				Folder                string `yaml:"folder"`
				Type                  string `yaml:"type"`
				DisableDeletion       bool   `yaml:"disableDeletion"`
				AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
				UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
				Options               struct {
					Path                      string `yaml:"path"`
					FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		decodeStrict(t, f, &file)
		for _, pr := range file.Providers {
			if pr.Type != "file" {
				t.Errorf("%s: provider %s: type %q, want file", f, pr.Name, pr.Type)
				continue
			}
			dir := mountSource(t, g, pr.Options.Path)
			if jsons, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(jsons) == 0 {
				t.Errorf("%s: provider %s reads %s (%s on the host), which holds no dashboard", f, pr.Name, pr.Options.Path, dir)
			}
			dirs = append(dirs, pr.Options.Path)
		}
	}
	if len(dirs) == 0 {
		t.Fatalf("no dashboard provider under %s/dashboards", grafanaProvisioning(t, p))
	}
	home := composeEnv(g, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
	if !slices.Contains(dirs, filepath.Dir(home)) {
		t.Errorf("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH %q is not a provisioned dashboard (%v)", home, dirs)
	} else if _, err := os.Stat(mountSource(t, g, home)); err != nil {
		t.Errorf("home dashboard: %v", err)
	}
}

// jaegerConfigFile returns the host path of the configuration the compose
// Jaeger reads (its --config, through its mount).
func jaegerConfigFile(t *testing.T) string {
	t.Helper()
	p := loadCompose(t)
	j := composeService(t, p, "jaeger")
	file, ok := flagValue(j.Command, "--config")
	if !ok {
		t.Fatalf("jaeger command %v: want --config", j.Command)
	}
	return mountSource(t, j, strings.TrimPrefix(file, "file:"))
}

// jaegerEndpointPort returns the port of the endpoint at the path (under
// the top-level section, e.g. "receivers", "otlp", "protocols", "http") of
// the compose Jaeger's configuration, which must listen on every interface.
func jaegerEndpointPort(t *testing.T, path ...string) uint32 {
	t.Helper()
	var node any
	if err := yaml.Unmarshal(readFile(t, jaegerConfigFile(t)), &node); err != nil {
		t.Fatalf("jaeger config: %v", err)
	}
	for _, key := range path {
		m, _ := node.(map[string]any)
		node = m[key]
	}
	m, _ := node.(map[string]any)
	endpoint, _ := m["endpoint"].(string)
	if host, _, err := net.SplitHostPort(endpoint); err != nil || host != "0.0.0.0" {
		t.Fatalf("jaeger config %s.endpoint = %q: want 0.0.0.0:port, reachable from the other containers", strings.Join(path, "."), endpoint)
	}
	return portOf(t, "jaeger "+strings.Join(path, "."), endpoint)
}

// jaegerPorts returns the ports the compose Jaeger listens on.
func jaegerPorts(t *testing.T) []uint32 {
	t.Helper()
	return []uint32{
		jaegerEndpointPort(t, "receivers", "otlp", "protocols", "grpc"),
		jaegerEndpointPort(t, "receivers", "otlp", "protocols", "http"),
		jaegerEndpointPort(t, "extensions", "jaeger_query", "http"),
		jaegerEndpointPort(t, "extensions", "jaeger_query", "grpc"),
		jaegerEndpointPort(t, "extensions", "healthcheckv2", "http"),
	}
}

func TestComposeJaeger(t *testing.T) {
	p := loadCompose(t)
	file := jaegerConfigFile(t)
	if rel, _ := filepath.Rel(mustAbs(t, ".."), file); rel != "deploy/jaeger/config.yaml" {
		t.Errorf("jaeger reads %s, want deploy/jaeger/config.yaml", rel)
	}
	// The real Jaeger of the suite (the release of the image) validates it.
	cmd := exec.Command(jaegerBinary(t), "validate", "--config", file)
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("jaeger validate --config %s: %v\n%s", file, err, out)
	}

	// Traces go to the OTLP/HTTP receiver.
	otlp := jaegerEndpointPort(t, "receivers", "otlp", "protocols", "http")
	for _, svc := range []string{"gateway", "demo"} {
		raw := composeEnv(composeService(t, p, svc), "OTEL_EXPORTER_OTLP_ENDPOINT")
		if u, err := url.Parse(raw); err != nil || u.Scheme != "http" || u.Hostname() != "jaeger" || u.Port() != portString(otlp) || strings.Trim(u.Path, "/") != "" {
			t.Errorf("%s OTEL_EXPORTER_OTLP_ENDPOINT = %q, want the OTLP/HTTP base URL http://jaeger:%d", svc, raw, otlp)
		}
	}
	// The UI is published; the healthcheck asks healthcheckv2.
	j := composeService(t, p, "jaeger")
	ui := jaegerEndpointPort(t, "extensions", "jaeger_query", "http")
	if !slices.ContainsFunc(j.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == ui && pc.Published == portString(ui) }) {
		t.Errorf("jaeger publishes %v, want the UI's port %d on the same host port", j.Ports, ui)
	}
	health := "http://127.0.0.1:" + portString(jaegerEndpointPort(t, "extensions", "healthcheckv2", "http")) + "/status"
	if j.HealthCheck == nil || !slices.Contains(j.HealthCheck.Test, health) {
		t.Errorf("jaeger healthcheck %+v, want it to GET %s", j.HealthCheck, health)
	}
}
