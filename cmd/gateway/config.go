package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/observability"
	"github.com/braidgw/braid/routes"
	"github.com/braidgw/braid/upstream"
)

// fileConfig is the gateway.yaml file format: each package's own config,
// composed.
type fileConfig struct {
	Server        serverConfig               `yaml:"server"`
	Admin         adminConfig                `yaml:"admin"`
	Observability observability.Config       `yaml:"observability"`
	Cache         cache.Config               `yaml:"cache"`
	Upstreams     map[string]upstream.Config `yaml:"upstreams"`
	routes.Config `yaml:",inline"`
}

// adminConfig configures the admin listener's protected endpoints.
type adminConfig struct {
	// Token is the bearer token of the admin cache API (POST
	// /cache/invalidate). Default "": the API is off (404).
	Token string `yaml:"token"`
}

// serverConfig holds the listeners and HTTP server limits.
type serverConfig struct {
	// Listen is the public address; default ":8080".
	Listen string `yaml:"listen"`
	// AdminListen serves /healthz and /readyz; default "127.0.0.1:9090".
	// It must differ from Listen: admin endpoints are never public.
	AdminListen string `yaml:"admin_listen"`
	// ReadHeaderTimeout bounds reading request headers; default 5s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request; default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response, counted from the end of the
	// request headers; default 60s. Keep it above every route timeout.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle client keep-alive connections; default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout is how long in-flight requests get to finish after
	// SIGTERM; default 20s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxHeaderBytes bounds request headers; default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds request bodies (413 over it); default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

func (s serverConfig) withDefaults() serverConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if s.Listen == "" {
		s.Listen = ":8080"
	}
	if s.AdminListen == "" {
		s.AdminListen = "127.0.0.1:9090"
	}
	def(&s.ReadHeaderTimeout, 5*time.Second)
	def(&s.ReadTimeout, 30*time.Second)
	def(&s.WriteTimeout, 60*time.Second)
	def(&s.IdleTimeout, 120*time.Second)
	def(&s.ShutdownTimeout, 20*time.Second)
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 64 << 10
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = 1 << 20
	}
	return s
}

// Validate checks the server section, naming each bad field.
func (s serverConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &aggregate.ConfigError{Field: "server." + field, Msg: fmt.Sprintf(format, args...)})
	}
	_, pub, err := net.SplitHostPort(s.Listen)
	if err != nil {
		bad("listen", "%q is not host:port", s.Listen)
	}
	_, adm, err := net.SplitHostPort(s.AdminListen)
	if err != nil {
		bad("admin_listen", "%q is not host:port", s.AdminListen)
	} else if adm == pub && adm != "0" {
		bad("admin_listen", "%q uses the public port; the admin API is never served on it", s.AdminListen)
	}
	for field, d := range map[string]time.Duration{
		"read_header_timeout": s.ReadHeaderTimeout, "read_timeout": s.ReadTimeout, "write_timeout": s.WriteTimeout,
		"idle_timeout": s.IdleTimeout, "shutdown_timeout": s.ShutdownTimeout,
	} {
		if d < 0 {
			bad(field, "must not be negative")
		}
	}
	if s.MaxHeaderBytes < 0 {
		bad("max_header_bytes", "must not be negative")
	}
	if s.MaxBodyBytes < 0 {
		bad("max_body_bytes", "must not be negative")
	}
	return errors.Join(errs...)
}

// lookupEnv reads the process environment; tests replace it per call.
var lookupEnv = os.LookupEnv

// patternParamRE matches {name} and {name:regexp} in a route path.
var patternParamRE = regexp.MustCompile(`\{[^{}]+\}`)

// envRef is ${NAME} or ${NAME:-default}.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv replaces ${NAME} and ${NAME:-default} in the file. A variable
// that is unset (or empty) with no default is an error naming it and its
// line.
func expandEnv(src []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var errs []error
	lines := bytes.SplitAfter(src, []byte("\n"))
	for i, line := range lines {
		lines[i] = envRef.ReplaceAllFunc(line, func(m []byte) []byte {
			sub := envRef.FindSubmatch(m)
			if v, ok := lookup(string(sub[1])); ok && v != "" {
				return []byte(v)
			}
			if sub[2] != nil {
				return sub[3]
			}
			errs = append(errs, fmt.Errorf("line %d: environment variable %s is not set and has no default (write ${%s:-default})", i+1, sub[1], sub[1]))
			return m
		})
	}
	return bytes.Join(lines, nil), errors.Join(errs...)
}

// parseConfig expands, decodes (strictly: unknown fields are errors) and
// validates a configuration file. Non-empty listen addresses in override
// (from flags) replace the file's.
func parseConfig(src []byte, lookup func(string) (string, bool), override serverConfig) (*fileConfig, error) {
	src, err := expandEnv(src, lookup)
	if err != nil {
		return nil, err
	}
	var cfg fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, explainYAML(err, src)
	}
	if override.Listen != "" {
		cfg.Server.Listen = override.Listen
	}
	if override.AdminListen != "" {
		cfg.Server.AdminListen = override.AdminListen
	}
	cfg.Server = cfg.Server.withDefaults()
	cfg.Observability.ApplyEnv(lookup)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// validate checks everything that does not need upstream clients; routes
// are checked when they are compiled against the clients.
func (c *fileConfig) validate() error {
	errs := []error{c.Server.Validate()}
	errs = append(errs, flatten(c.Observability.Validate())...)
	errs = append(errs, flatten(c.Cache.Validate())...)
	if len(c.Upstreams) == 0 {
		errs = append(errs, &aggregate.ConfigError{Field: "upstreams", Msg: "at least one upstream is required"})
	}
	names := make([]string, 0, len(c.Upstreams))
	for name := range c.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := c.Upstreams[name].Validate(); err != nil {
			for _, e := range flatten(err) {
				errs = append(errs, fmt.Errorf("upstreams.%s.%w", name, e))
			}
		}
	}
	return errors.Join(errs...)
}

// flatten lists the errors inside an errors.Join.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// describeErrors renders a (joined) configuration error one per line.
func describeErrors(err error) string {
	var b strings.Builder
	for _, e := range flatten(err) {
		b.WriteString("  - ")
		b.WriteString(e.Error())
		b.WriteString("\n")
	}
	return b.String()
}
