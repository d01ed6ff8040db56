package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/auth"
	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/observability"
	"github.com/braidgw/braid/ratelimit"
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
	// request headers; default 60s. It must be longer than every route's
	// timeout: a response still being made when it passes is lost (the
	// client gets an empty reply).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle client keep-alive connections; default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// DrainDelay is how long requests are still served after SIGTERM,
	// while /readyz already answers 503, so that load balancers stop
	// sending before the listener closes; default 5s, 0 closes at once.
	// The -drain-delay flag overrides it.
	DrainDelay *time.Duration `yaml:"drain_delay"`
	// ShutdownTimeout is how long in-flight requests get to finish once
	// the listener is closed; default 20s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxHeaderBytes bounds request headers; default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds request bodies (413 over it); default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxInflightResponseBytes bounds the upstream response bodies held in
	// memory at once, over all upstreams and requests (such as "256MiB"); a
	// call whose body does not fit fails fast (503, or a degraded optional
	// part). Default 0 means 256MiB; -1 turns the bound off. See
	// upstream.SetOptions.MemoryBudget.
	MaxInflightResponseBytes cache.ByteSize `yaml:"max_inflight_response_bytes"`
	// MemoryLimit is the Go runtime's soft memory limit
	// (runtime/debug.SetMemoryLimit): past it the garbage collector runs
	// harder instead of letting the heap double, so that the bytes the
	// budgets admit are about what the process takes. Default 0 means
	// automatic: max_inflight_response_bytes + cache.l1.max_bytes + 64MiB
	// of head room, unless $GOMEMLIMIT is set (then it rules); -1 leaves
	// the runtime's setting alone. It is soft: the process may exceed it
	// rather than stall.
	MemoryLimit cache.ByteSize `yaml:"memory_limit"`
	// GCPercent is the Go runtime's GC percent (runtime/debug.SetGCPercent,
	// what $GOGC sets): a collection starts when the heap has grown this
	// much over what the last one left live. Default 0 means automatic:
	// 400 when a memory limit is in force (the limit, not the percent,
	// bounds the heap; a gateway's live heap is small and its allocation
	// rate high, so at Go's 100 it collects several times a second),
	// unless $GOGC is set (then it rules), else the runtime's. -1 leaves
	// the runtime's setting alone.
	GCPercent int `yaml:"gc_percent"`
}

// defaultDrainDelay is server.drain_delay's default.
const defaultDrainDelay = 5 * time.Second

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
	if s.DrainDelay == nil {
		d := defaultDrainDelay
		s.DrainDelay = &d
	}
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
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"read_header_timeout", s.ReadHeaderTimeout}, {"read_timeout", s.ReadTimeout}, {"write_timeout", s.WriteTimeout},
		{"idle_timeout", s.IdleTimeout}, {"shutdown_timeout", s.ShutdownTimeout},
	} {
		if f.d < 0 {
			bad(f.name, "must not be negative")
		}
	}
	if s.DrainDelay != nil && *s.DrainDelay < 0 {
		bad("drain_delay", "must not be negative (0 closes the listener at once)")
	}
	if s.MaxHeaderBytes < 0 {
		bad("max_header_bytes", "must not be negative")
	}
	if s.MaxBodyBytes < 0 {
		bad("max_body_bytes", "must not be negative")
	}
	if s.MemoryLimit < -1 {
		bad("memory_limit", "%d: write a size such as 512MiB, 0 for automatic or -1 to leave the Go runtime's limit alone", int64(s.MemoryLimit))
	}
	if s.GCPercent < -1 {
		bad("gc_percent", "%d: write a percentage such as 200, 0 for automatic or -1 to leave the Go runtime's setting alone", s.GCPercent)
	}
	if s.MaxInflightResponseBytes < -1 {
		bad("max_inflight_response_bytes", "%d: write a size such as 256MiB, 0 for the default (256MiB) or -1 for no bound", int64(s.MaxInflightResponseBytes))
	}
	return errors.Join(errs...)
}

// overrides are the command-line flags that replace settings of the file.
type overrides struct {
	listen, adminListen string         // non-empty: replaces server.listen, server.admin_listen
	drainDelay          *time.Duration // non-nil: replaces server.drain_delay
}

func (o overrides) apply(s *serverConfig) {
	if o.listen != "" {
		s.Listen = o.listen
	}
	if o.adminListen != "" {
		s.AdminListen = o.adminListen
	}
	if o.drainDelay != nil {
		d := *o.drainDelay
		s.DrainDelay = &d
	}
}

// lookupEnv reads the process environment; tests replace it per call.
var lookupEnv = os.LookupEnv

// patternParamRE matches {name} and {name:regexp} in a route path.
var patternParamRE = regexp.MustCompile(`\{[^{}]+\}`)

// envRef is ${NAME} or ${NAME:-default}.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv replaces ${NAME} and ${NAME:-default} in the file. A variable
// that is unset (or empty) with no default is an error naming it and its
// line, and so is a value holding a line break: it would add lines to the
// file (moving every later line's number) and could add fields.
func expandEnv(src []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var errs []error
	lines := bytes.SplitAfter(src, []byte("\n"))
	for i, line := range lines {
		lines[i] = envRef.ReplaceAllFunc(line, func(m []byte) []byte {
			sub := envRef.FindSubmatch(m)
			v, ok := lookup(string(sub[1]))
			switch {
			case ok && strings.ContainsAny(v, "\r\n"):
				errs = append(errs, fmt.Errorf("line %d: environment variable %s holds a line break; a value is one line", i+1, sub[1]))
				return m
			case ok && v != "":
				return []byte(v)
			case sub[2] != nil:
				return sub[3]
			}
			errs = append(errs, fmt.Errorf("line %d: environment variable %s is not set and has no default (write ${%s:-default})", i+1, sub[1], sub[1]))
			return m
		})
	}
	return bytes.Join(lines, nil), errors.Join(errs...)
}

// parseConfig expands, decodes (strictly: unknown fields are errors) and
// validates a configuration file, every section, reporting every mistake
// at once; flags in over replace the file's settings. It never panics: a
// panic inside becomes an error saying so.
func parseConfig(src []byte, lookup func(string) (string, bool), over overrides) (cfg *fileConfig, err error) {
	defer func() {
		if v := recover(); v != nil {
			cfg, err = nil, fmt.Errorf("internal error reading the configuration (please report it): %v", v)
		}
	}()
	src, envErr := expandEnv(src, lookup)
	var c fileConfig
	if err := errors.Join(envErr, decodeYAML(src, &c)); err != nil {
		// A partly decoded file would only add follow-on mistakes.
		return nil, err
	}
	over.apply(&c.Server)
	c.Server = c.Server.withDefaults()
	c.Observability.ApplyEnv(lookup)
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// validate checks every section, listing every mistake: the server,
// observability, cache and upstream sections, the settings that must agree
// across sections, and the routes, compiled against stand-ins for every
// declared upstream (valid or not) so that nothing hides a route's
// mistakes.
func (c *fileConfig) validate() error {
	names := upstreamNames(c.Upstreams)
	errs := flatten(c.Server.Validate())
	errs = append(errs, c.checkWriteTimeout(), c.checkMemoryBudget(names))
	errs = append(errs, flatten(c.Observability.Validate())...)
	errs = append(errs, flatten(c.Cache.Validate())...)
	if len(c.Upstreams) == 0 {
		errs = append(errs, &aggregate.ConfigError{Field: "upstreams", Msg: "at least one upstream is required"})
	}
	for _, name := range names {
		if err := c.Upstreams[name].Validate(); err != nil {
			for _, e := range flatten(err) {
				errs = append(errs, fmt.Errorf("%s.%w", joinPath("upstreams", name), e))
			}
		}
	}
	// Checked, not built: no verifier fetches keys, no limiter starts.
	_, err := compileRoutes(c.Config, routes.Options{Stack: stubStack(names),
		Auth:        func(auth.Config) (*auth.Verifier, error) { return nil, nil },
		RateLimiter: func(string, ratelimit.Config) *ratelimit.Limiter { return nil }})
	errs = append(errs, flatten(err)...)
	return errors.Join(errs...)
}

// upstreamNames returns the declared upstreams' names, sorted.
func upstreamNames(m map[string]upstream.Config) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// defaultRouteTimeout is routes.RouteConfig.Timeout's default.
const defaultRouteTimeout = 2 * time.Second

// checkWriteTimeout refuses a server.write_timeout that is not longer than
// the longest route timeout.
//
// net/http sets a connection's write deadline when it has read a request's
// headers, WriteTimeout later; a response still being made then is lost
// (the client sees the connection close with no reply) while the handler
// and the access log saw it succeed. A route's handler starts at once and
// answers within its timeout, so write_timeout must exceed every route
// timeout. read_timeout is counted from the request's first byte and bounds
// reading its body; a handler that read the body would spend that time out
// of the same write window, so the safe bound would then be read_timeout +
// timeout. Routes read no body, and only a client that is slow to send its
// own body could spend it anyway: comparing with the route timeout alone is
// the check that matters, and it does not push operators to loosen the
// bound on slow readers.
func (c *fileConfig) checkWriteTimeout() error {
	return errors.Join(c.checkAgainstRoutes("write_timeout", c.Server.WriteTimeout,
		"a response could not be written (make write_timeout longer than every route's timeout)"),
		c.checkAgainstRoutes("shutdown_timeout", c.Server.ShutdownTimeout,
			"requests in flight at SIGTERM would be cut off (make shutdown_timeout longer than every route's timeout)"))
}

// checkAgainstRoutes refuses a server timeout d (field) that is not longer
// than the longest route timeout, saying why in consequence.
func (c *fileConfig) checkAgainstRoutes(field string, d time.Duration, consequence string) error {
	wt := d
	if wt <= 0 {
		return nil // negative: reported by Validate; 0 is defaulted before
	}
	longest, at := time.Duration(0), -1
	for i, rc := range c.Routes {
		t := rc.Timeout
		if t == 0 {
			t = defaultRouteTimeout
		}
		if t > longest {
			longest, at = t, i
		}
	}
	if at < 0 || wt > longest {
		return nil
	}
	how := "is shorter than"
	if wt == longest {
		how = "is not longer than"
	}
	return &aggregate.ConfigError{Field: "server." + field, Msg: fmt.Sprintf("%s %s %s.timeout %s; %s",
		wt, how, routeField(at, c.Routes[at]), longest, consequence)}
}

// defaultMaxResponseBytes is upstream.Config.MaxResponseBytes's default.
const defaultMaxResponseBytes = 8 << 20

// checkMemoryBudget refuses a server.max_inflight_response_bytes smaller
// than an upstream's max_response_bytes: a response that upstream may send
// could never be held, and every call getting one would fail.
func (c *fileConfig) checkMemoryBudget(names []string) error {
	budget := int64(c.Server.MaxInflightResponseBytes)
	if budget <= 0 {
		return nil // the default (256MiB) or off; below -1 is reported by Validate
	}
	var errs []error
	for _, name := range names {
		max := c.Upstreams[name].MaxResponseBytes
		if max == 0 {
			max = defaultMaxResponseBytes
		}
		if budget < max {
			errs = append(errs, &aggregate.ConfigError{Field: "server.max_inflight_response_bytes", Msg: fmt.Sprintf("%s is less than %s.max_response_bytes %s: a response that large could never be held",
				c.Server.MaxInflightResponseBytes, joinPath("upstreams", name), cache.ByteSize(max))})
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
