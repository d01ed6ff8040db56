package upstream

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Defaults applied by New to the zero fields of a Config.
const (
	defaultMaxIdleConns          = 64
	defaultMaxConns              = 256
	defaultIdleTimeout           = 90 * time.Second
	defaultDialTimeout           = 2 * time.Second
	defaultTLSHandshakeTimeout   = 3 * time.Second
	defaultResponseHeaderTimeout = 10 * time.Second
	defaultMaxResponseBytes      = 8 << 20
)

// The values of Config.Transport.
const (
	transportAuto    = "auto"
	transportLean    = "lean"
	transportNetHTTP = "net/http"
)

// autoPlainHTTP is the transport "auto" picks for a plain http:// upstream
// without h2c. The package's tests run their suite once with each.
var autoPlainHTTP = transportLean

// Config configures one upstream's Client. Zero values mean "use the
// default"; negative values are rejected by Validate.
type Config struct {
	// URL is the upstream's base URL: absolute, http or https, optionally
	// with a path prefix ("http://users:8080/api/v1"), never with a query or
	// fragment. Request paths are appended to it. Required.
	URL string `yaml:"url"`

	// ForwardHeaders, when set (even to []), is the allow-list of client
	// request headers this upstream receives on every route, replacing the
	// route's and the global list (see WithClientHeader). Default unset.
	ForwardHeaders []string `yaml:"forward_headers"`

	// MaxIdleConns is the number of idle keep-alive connections kept open
	// to the upstream host. Default 64.
	MaxIdleConns int `yaml:"max_idle_conns"`

	// MaxConns caps the connections to the upstream host, counting those
	// dialing, active and idle; callers beyond it wait for a free one (under
	// their deadline). Default 256.
	MaxConns int `yaml:"max_conns"`

	// IdleTimeout is how long an idle connection stays in the pool before
	// it is closed. Default 90s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`

	// DialTimeout bounds establishing a TCP connection. Default 2s.
	DialTimeout time.Duration `yaml:"dial_timeout"`

	// TLSHandshakeTimeout bounds the TLS handshake of https upstreams.
	// Default 3s.
	TLSHandshakeTimeout time.Duration `yaml:"tls_handshake_timeout"`

	// ResponseHeaderTimeout bounds the wait for the response headers once
	// the request is written. Default 10s; the route deadline carried by the
	// context usually cuts first.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`

	// MaxResponseBytes is the largest response body accepted; a larger one
	// fails with ErrTooLarge. Default 8 MiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`

	// H2C makes the client speak HTTP/2 with prior knowledge (no upgrade,
	// no HTTP/1 fallback) to a plain http:// upstream. Default false.
	// https upstreams always negotiate HTTP/2 via ALPN, so H2C requires an
	// http:// URL. H2C needs the net/http transport.
	H2C bool `yaml:"h2c"`

	// Transport is the HTTP client implementation: "lean", Braid's own
	// HTTP/1.1 client for plain http:// upstreams (see lean.go), which
	// works on the calling goroutine with no goroutine per connection;
	// "net/http", Go's http.Transport, which also speaks TLS (HTTP/2 via
	// ALPN) and h2c; or "auto", lean for an http:// url without h2c and
	// net/http otherwise. Default auto. lean with an https url or h2c is
	// an error.
	Transport string `yaml:"transport"`

	// TryTimeout bounds each try of a call (a retry or hedge is a new try
	// with a new TryTimeout), always inside the call's deadline. Default 0:
	// a try may use all of the call's remaining deadline.
	TryTimeout time.Duration `yaml:"try_timeout"`

	// Retry retries idempotent calls; on by default. See RetryConfig.
	Retry RetryConfig `yaml:"retry"`

	// RetryBudget bounds retries and hedges together. See BudgetConfig.
	RetryBudget BudgetConfig `yaml:"retry_budget"`

	// Hedge sends a second try of a slow call; off by default. See
	// HedgeConfig.
	Hedge HedgeConfig `yaml:"hedge"`

	// Breaker is the upstream's circuit breaker; on by default. See
	// BreakerConfig and breaker.Config.
	Breaker BreakerConfig `yaml:"breaker"`

	// Bulkhead caps the upstream's calls in flight; on by default. See
	// BulkheadConfig.
	Bulkhead BulkheadConfig `yaml:"bulkhead"`
}

// Validate reports every problem with c, each naming its YAML field, joined
// with errors.Join. It returns nil when c is usable.
func (c Config) Validate() error {
	errs := []error{validateURL(c.URL, c.H2C), validateTransport(c.Transport, c.URL, c.H2C)}
	for _, f := range []struct {
		name  string
		value int64
	}{
		{"max_idle_conns", int64(c.MaxIdleConns)},
		{"max_conns", int64(c.MaxConns)},
		{"max_response_bytes", c.MaxResponseBytes},
	} {
		if f.value < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %d", f.name, f.value))
		}
	}
	for _, f := range []struct {
		name  string
		value time.Duration
	}{
		{"idle_timeout", c.IdleTimeout},
		{"dial_timeout", c.DialTimeout},
		{"tls_handshake_timeout", c.TLSHandshakeTimeout},
		{"response_header_timeout", c.ResponseHeaderTimeout},
		{"try_timeout", c.TryTimeout},
	} {
		if f.value < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", f.name, f.value))
		}
	}
	errs = append(errs, CheckForwardHeaders("forward_headers", c.ForwardHeaders)...)
	errs = append(errs, prefixed("retry", c.Retry.Validate())...)
	errs = append(errs, prefixed("retry_budget", c.RetryBudget.Validate())...)
	errs = append(errs, prefixed("hedge", c.Hedge.Validate())...)
	errs = append(errs, prefixed("bulkhead", c.Bulkhead.Validate())...)
	if err := c.Breaker.Config.Validate(); err != nil {
		errs = append(errs, prefixed("breaker", flatten(err))...)
	}
	return errors.Join(errs...)
}

// prefixed names errs as fields of the section: "retry.attempts: ...".
func prefixed(section string, errs []error) []error {
	out := make([]error, len(errs))
	for i, err := range errs {
		out[i] = fmt.Errorf("%s.%w", section, err)
	}
	return out
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

// validateURL checks the url field (and h2c, which depends on its scheme).
func validateURL(raw string, h2c bool) error {
	if raw == "" {
		return errors.New("url: required")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("url: must be an absolute http or https URL, got %q", raw)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" {
		return fmt.Errorf("url: must not have a query or fragment, got %q", raw)
	}
	if h2c && u.Scheme != "http" {
		return fmt.Errorf("h2c: requires an http:// url (https negotiates HTTP/2 via ALPN), got %q", raw)
	}
	return nil
}

// validateTransport checks the transport field, which depends on the url's
// scheme and h2c. An unparsable url is left to validateURL.
func validateTransport(transport, raw string, h2c bool) error {
	switch transport {
	case "", transportAuto, transportNetHTTP:
		return nil
	case transportLean:
	default:
		return fmt.Errorf("transport: must be auto, lean or net/http, got %q", transport)
	}
	if u, err := url.Parse(raw); err == nil && u.Scheme == "https" {
		return fmt.Errorf("transport: lean speaks plain HTTP/1.1 only; an https url needs net/http (or auto), got %q", raw)
	}
	if h2c {
		return errors.New("transport: lean speaks HTTP/1.1 only; h2c needs net/http (or auto)")
	}
	return nil
}

// transportFor returns the transport New builds for c, whose url has the
// given (parsed, so lower-case) scheme: lean or net/http.
func (c Config) transportFor(scheme string) string {
	if c.Transport == transportLean || c.Transport == transportNetHTTP {
		return c.Transport
	}
	if c.H2C || scheme != "http" {
		return transportNetHTTP
	}
	return autoPlainHTTP
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = defaultMaxIdleConns
	}
	if c.MaxConns == 0 {
		c.MaxConns = defaultMaxConns
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = defaultDialTimeout
	}
	if c.TLSHandshakeTimeout == 0 {
		c.TLSHandshakeTimeout = defaultTLSHandshakeTimeout
	}
	if c.ResponseHeaderTimeout == 0 {
		c.ResponseHeaderTimeout = defaultResponseHeaderTimeout
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = defaultMaxResponseBytes
	}
	if c.Transport == "" {
		c.Transport = transportAuto
	}
	return c
}
