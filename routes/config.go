package routes

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/auth"
	"github.com/braidgw/braid/ratelimit"
)

// Config is the set of composite endpoints.
type Config struct {
	// Routes are mounted in order; a method and path may appear once.
	Routes []RouteConfig `yaml:"routes"`
	// Defaults apply to every route that does not set its own.
	Defaults Defaults `yaml:"defaults"`
	// TrustedProxies are the addresses or CIDR ranges ("10.0.0.0/8") of
	// proxies in front of the gateway whose X-Forwarded-For is believed
	// when finding a client's IP for rate limiting: the client is the
	// rightmost address in it that is not a trusted proxy. Default none:
	// the client is the connection's peer and X-Forwarded-For is ignored
	// (anyone can send one).
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Defaults are the route settings that every route gets unless it sets
// its own.
type Defaults struct {
	// ForwardHeaders is the allow-list of client request headers that
	// calls forward to upstreams ("Authorization", "Accept-Language").
	// Hop-by-hop headers and Braid's own can never be listed; the request
	// id is always sent. Default none.
	ForwardHeaders []string `yaml:"forward_headers"`
	// RateLimit limits each client's requests per route; default none.
	RateLimit *RateLimitConfig `yaml:"rate_limit"`
	// CORS lets browser pages on other origins call the routes; default
	// none.
	CORS *CORSConfig `yaml:"cors"`
}

// RateLimitConfig limits each client's requests to a route: the token's
// subject on a route with auth, else the client's IP (see
// Config.TrustedProxies). Over the limit: 429 with Retry-After and
// RateLimit headers. With Redis configured the limit holds across every
// replica; Redis down, each replica limits on its own.
type RateLimitConfig struct {
	ratelimit.Config `yaml:",inline"`
	// Disabled turns a default rate limit off for one route.
	Disabled bool `yaml:"disabled"`
}

// ResponseHeader copies a header of one call's answer to the composite
// response (not from an answer served by the cache, which keeps bodies
// only). Values are bounded like every header Braid writes.
type ResponseHeader struct {
	// Call names the call; required.
	Call string `yaml:"call"`
	// Header is the header's name, e.g. Content-Language; required.
	Header string `yaml:"header"`
}

// RouteConfig declares one composite endpoint.
type RouteConfig struct {
	// Path is a chi pattern such as "/api/users/{id}/dashboard" or
	// "/api/items/{id:[0-9]+}". Required. A parameter name is made of
	// letters, digits, _ and -; two parameters need text between them; a
	// wildcard '*' may only end the pattern. Two routes of one method may
	// not match the same requests, even under different parameter names.
	Path string `yaml:"path"`
	// Method is GET (the default) or HEAD. A GET route also answers HEAD,
	// unless a HEAD route of its own matches the same requests.
	Method string `yaml:"method"`
	// Timeout is the whole request's deadline: every call runs inside it.
	// Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// Params declares the route's parameters. A parameter named in Path is a
	// path parameter (of type string unless declared); any other is a query
	// parameter.
	Params []ParamConfig `yaml:"params"`
	// Calls are the downstream calls; see aggregate.CallConfig. Required.
	Calls []aggregate.CallConfig `yaml:"calls"`
	// Auth, when set, requires a valid JWT bearer token (401 without one,
	// 403 without a required scope or claim) and lets templates read its
	// claims: {auth.sub}, {auth.claims.tenant}. Default none: anyone may
	// call the route.
	Auth *auth.Config `yaml:"auth"`
	// RateLimit replaces Defaults.RateLimit for this route.
	RateLimit *RateLimitConfig `yaml:"rate_limit"`
	// CORS replaces Defaults.CORS for this route.
	CORS *CORSConfig `yaml:"cors"`
	// ForwardHeaders, when set (even to []), replaces
	// Defaults.ForwardHeaders for this route's calls; an upstream's own
	// forward_headers replaces both for the calls to it.
	ForwardHeaders []string `yaml:"forward_headers"`
	// ResponseHeaders are copied from calls' answers to the response.
	ResponseHeaders []ResponseHeader `yaml:"response_headers"`
}

// ParamConfig declares a path or query parameter and how to validate it.
type ParamConfig struct {
	// Name is the parameter's name in the path pattern or query. Required.
	Name string `yaml:"name"`
	// Type is string (the default), int, bool or uuid.
	Type string `yaml:"type"`
	// Required makes a query parameter mandatory; path parameters always
	// are. Default false.
	Required bool `yaml:"required"`
	// Default is used when an optional query parameter is absent; it must
	// itself be valid. Default none: the parameter is left out.
	Default string `yaml:"default"`
	// Min and Max bound an int parameter; default unbounded.
	Min *int64 `yaml:"min"`
	Max *int64 `yaml:"max"`
	// Pattern is a regular expression the whole value must match; default
	// none.
	Pattern string `yaml:"pattern"`
}

const defaultTimeout = 2 * time.Second

// compileParams checks a route's parameters and returns them with the path
// parameters first, each resolved to where it is read from. inPath are the
// names in the route's pattern.
func compileParams(field string, rc RouteConfig, inPath []string) ([]*param, []error) {
	var errs []error
	errf := func(f, format string, args ...any) {
		errs = append(errs, &aggregate.ConfigError{Field: f, Msg: fmt.Sprintf(format, args...)})
	}
	declared := map[string]bool{}
	var params []*param
	for i, pc := range rc.Params {
		f := fmt.Sprintf("%s.params[%d]", field, i)
		if pc.Name == "" {
			errf(f+".name", "is required")
			continue
		}
		if declared[pc.Name] {
			errf(f+".name", "%q is declared twice", pc.Name)
			continue
		}
		declared[pc.Name] = true
		p, perrs := newParam(f, pc, slices.Contains(inPath, pc.Name))
		errs = append(errs, perrs...)
		if p != nil {
			params = append(params, p)
		}
	}
	for _, name := range inPath {
		if !declared[name] {
			params = append(params, &param{ParamConfig: ParamConfig{Name: name, Type: "string"}, inPath: true})
		}
	}
	slices.SortStableFunc(params, func(a, b *param) int {
		if a.inPath == b.inPath {
			return 0
		}
		if a.inPath {
			return -1
		}
		return 1
	})
	return params, errs
}

func newParam(field string, pc ParamConfig, inPath bool) (*param, []error) {
	var errs []error
	errf := func(f, format string, args ...any) {
		errs = append(errs, &aggregate.ConfigError{Field: field + "." + f, Msg: fmt.Sprintf(format, args...)})
	}
	p := &param{ParamConfig: pc, inPath: inPath}
	if p.Type == "" {
		p.Type = "string"
	}
	if _, ok := checkers[p.Type]; !ok {
		errf("type", "%q: want string, int, bool or uuid", pc.Type)
	}
	if inPath && pc.Default != "" {
		errf("default", "a path parameter cannot have a default")
	}
	if inPath && pc.Required {
		errf("required", "path parameters are always required; remove it")
	}
	if (pc.Min != nil || pc.Max != nil) && p.Type != "int" {
		errf("min", "min and max apply to int parameters only")
	}
	if pc.Min != nil && pc.Max != nil && *pc.Min > *pc.Max {
		errf("max", "%d is less than min %d", *pc.Max, *pc.Min)
	}
	if pc.Pattern != "" {
		re, err := regexp.Compile("^(?:" + pc.Pattern + ")$")
		if err != nil {
			errf("pattern", "%v", err)
		}
		p.re = re
	}
	if len(errs) == 0 && pc.Default != "" {
		if msg := p.check(pc.Default); msg != "" {
			errf("default", "%q %s", pc.Default, msg)
		}
	}
	return p, errs
}

func validMethod(m string) (string, bool) {
	switch m = strings.ToUpper(m); m {
	case "":
		return "GET", true
	case "GET", "HEAD":
		return m, true
	}
	return m, false
}
