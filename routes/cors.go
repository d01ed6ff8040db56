package routes

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/cors"

	"github.com/braidgw/braid/aggregate"
)

// CORSConfig is a cors section, for every route or for one
// (RouteConfig.CORS, replacing the one for every route). It lets browser
// scripts on the listed origins call the routes and read their responses;
// without it a route sends no CORS headers, and browsers keep its responses
// from cross-origin scripts.
//
//	cors:
//	  allowed_origins: ["https://app.example.com", "https://*.example.org"]
//	  allow_credentials: true
type CORSConfig struct {
	// AllowedOrigins are the origins whose scripts may read the responses,
	// each scheme://host[:port] as a browser sends it in Origin (http or
	// https; no path, not even a trailing /; no default port), compared
	// without regard to case. "https://*.example.com" allows every
	// subdomain of example.com, at any depth, but not example.com itself. A
	// lone "*" allows any origin. Required, unless Disabled.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedMethods are the methods a preflight may ask for, upper case,
	// and the methods whose actual requests get CORS headers. Default GET,
	// HEAD.
	AllowedMethods []string `yaml:"allowed_methods"`
	// AllowedHeaders are the request headers a browser may send beyond the
	// CORS-safelisted ones; a lone "*" allows any. Default Authorization,
	// Content-Type, X-Request-Id.
	AllowedHeaders []string `yaml:"allowed_headers"`
	// ExposedHeaders are the response headers beyond the CORS-safelisted
	// ones that scripts may read. Default X-Request-Id, Braid-Degraded,
	// Braid-Missing-Keys, Cache-Status, Server-Timing, RateLimit,
	// RateLimit-Policy, Retry-After.
	ExposedHeaders []string `yaml:"exposed_headers"`
	// AllowCredentials lets scripts send cookies and HTTP authentication
	// and read the response: Access-Control-Allow-Credentials: true, with
	// the request's own origin in Access-Control-Allow-Origin. Browsers
	// refuse it with "*", so it cannot be combined with allowed_origins
	// "*". Default false.
	AllowCredentials bool `yaml:"allow_credentials"`
	// MaxAge is how long a browser may cache a preflight's answer
	// (Access-Control-Max-Age), whole seconds from 1s to 24h. Browsers cap
	// it themselves (Chromium at 2h, Firefox at 24h). Default 10m.
	MaxAge time.Duration `yaml:"max_age"`
	// Disabled turns CORS off: on a route, it sends no CORS headers even
	// though a global cors section is present. The other fields are then
	// ignored and not checked. Default false.
	Disabled bool `yaml:"disabled"`
}

// CORS defaults; see CORSConfig.
var (
	defaultCORSMethods = []string{http.MethodGet, http.MethodHead}
	defaultCORSHeaders = []string{"Authorization", "Content-Type", "X-Request-Id"}
	defaultCORSExposed = []string{
		"X-Request-Id", DegradedHeader, MissingKeysHeader, CacheStatusHeader,
		"Server-Timing", "RateLimit", "RateLimit-Policy", "Retry-After",
	}
)

const (
	defaultCORSMaxAge = 10 * time.Minute
	maxCORSMaxAge     = 24 * time.Hour
)

// validate checks c, naming each mistake's field under field ("cors",
// "routes[2] (/api/x).cors"). A nil or disabled c is valid.
func (c *CORSConfig) validate(field string) []error {
	if c == nil || c.Disabled {
		return nil
	}
	var errs []error
	errf := func(f, format string, args ...any) {
		errs = append(errs, &aggregate.ConfigError{Field: field + "." + f, Msg: fmt.Sprintf(format, args...)})
	}
	anyOrigin := c.validateOrigins(errf)
	checkNames(errf, "allowed_methods", c.AllowedMethods, checkMethod)
	checkNames(errf, "allowed_headers", c.AllowedHeaders, checkHeader)
	checkNames(errf, "exposed_headers", c.ExposedHeaders, checkHeader)
	if c.AllowCredentials && anyOrigin {
		errf("allow_credentials", `cannot be true with allowed_origins "*": browsers refuse credentialed responses to any origin; list the origins instead`)
	}
	if c.AllowCredentials && slices.Contains(c.ExposedHeaders, "*") {
		errf("exposed_headers", `"*" exposes every header only without credentials; with allow_credentials, list the headers`)
	}
	switch {
	case c.MaxAge < 0 || c.MaxAge > maxCORSMaxAge:
		errf("max_age", "%v is out of range: want 1s to 24h (default 10m)", c.MaxAge)
	case c.MaxAge%time.Second != 0:
		errf("max_age", "%v: Access-Control-Max-Age is in whole seconds", c.MaxAge)
	}
	return errs
}

// validateOrigins checks c.AllowedOrigins through errf and reports whether
// they are the lone "*".
func (c *CORSConfig) validateOrigins(errf func(f, format string, args ...any)) bool {
	if len(c.AllowedOrigins) == 0 {
		errf("allowed_origins", `is required: list the origins, e.g. "https://app.example.com", or "*"`)
		return false
	}
	if slices.Contains(c.AllowedOrigins, "*") {
		if len(c.AllowedOrigins) > 1 {
			errf("allowed_origins", `"*" allows every origin and must be alone`)
		}
		return true
	}
	seen := map[string]bool{}
	for i, o := range c.AllowedOrigins {
		f := fmt.Sprintf("allowed_origins[%d]", i)
		if msg := checkOrigin(o); msg != "" {
			errf(f, "%q %s", o, msg)
			continue
		}
		if key := strings.ToLower(o); seen[key] {
			errf(f, "%q is listed twice", o)
		} else {
			seen[key] = true
		}
	}
	return false
}

// checkNames checks each of a list of methods or header names with check,
// which returns what is wrong with one, and refuses duplicates, ignoring
// case. A "*" must be alone.
func checkNames(errf func(f, format string, args ...any), field string, names []string, check func(string) string) {
	seen := map[string]bool{}
	for i, n := range names {
		f := fmt.Sprintf("%s[%d]", field, i)
		if msg := check(n); msg != "" {
			errf(f, "%q %s", n, msg)
			continue
		}
		key := strings.ToLower(n) // methods that pass check are upper case
		switch {
		case seen[key]:
			errf(f, "%q is listed twice", n)
		case n == "*" && len(names) > 1:
			errf(f, `"*" stands for every header and must be alone`)
		}
		seen[key] = true
	}
}

func checkMethod(m string) string {
	switch {
	case m == "*":
		return "is not a method: list them"
	case !isToken(m):
		return "is not a valid method name"
	case m != strings.ToUpper(m):
		return fmt.Sprintf("must be upper case: methods are case-sensitive (%q)", strings.ToUpper(m))
	}
	return ""
}

func checkHeader(h string) string {
	if !isToken(h) {
		return "is not a valid header name"
	}
	return ""
}

// isToken reports whether s is an RFC 9110 token, the syntax of method and
// header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// checkOrigin says what is wrong with o as an allowed origin, or "" if
// nothing is: it must be written the way a browser serializes the Origin
// header, or it would never match one.
func checkOrigin(o string) string {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok {
		return `is not an origin: want scheme://host[:port], e.g. "https://app.example.com"`
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return "has an unsupported scheme: want http or https"
	}
	if i := strings.IndexAny(rest, "/?#@\\"); i >= 0 {
		return fmt.Sprintf("has more than scheme://host[:port] (%q): an origin has no user, path, query or fragment, not even a trailing /", rest[i:])
	}
	host, port, hasPort := rest, "", false
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "has an unclosed [ in its host"
		}
		host = rest[:end+1]
		if after := rest[end+1:]; after != "" {
			port, hasPort = strings.CutPrefix(after, ":")
			if !hasPort {
				return "has text after its IPv6 address: want [address]:port"
			}
		}
	} else {
		host, port, hasPort = strings.Cut(rest, ":")
	}
	if msg := checkOriginHost(host); msg != "" {
		return msg
	}
	if !hasPort {
		return ""
	}
	n, err := strconv.Atoi(port)
	switch {
	case err != nil || n < 1 || n > 65535 || port[0] == '0':
		return fmt.Sprintf("has an invalid port %q: want 1 to 65535", port)
	case scheme == "http" && n == 80 || scheme == "https" && n == 443:
		return fmt.Sprintf("names the default port %d, which browsers leave out of Origin: remove it", n)
	}
	return ""
}

// checkOriginHost checks the host of an origin: a DNS name, which may start
// with a "*." wildcard label, an IPv4 address, or a bracketed IPv6 address
// written as browsers serialize it.
func checkOriginHost(host string) string {
	if strings.HasPrefix(host, "[") {
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		switch {
		case err != nil || !a.Is6() || a.Zone() != "":
			return fmt.Sprintf("has an invalid IPv6 address %s", host)
		case "["+a.String()+"]" != strings.ToLower(host):
			return fmt.Sprintf("must write its IPv6 address as browsers do: [%s]", a)
		}
		return ""
	}
	name, _ := strings.CutPrefix(host, "*.")
	if strings.Contains(name, "*") {
		return `may only have a wildcard as its first label, for subdomains: "https://*.example.com"`
	}
	if len(name) > 253 {
		return "has a host name over 253 characters"
	}
	for label := range strings.SplitSeq(name, ".") {
		if !validLabel(label) {
			return fmt.Sprintf("has an invalid host %q: want ASCII letters, digits, - and . (punycode for international names)", host)
		}
	}
	return ""
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// options is c as rs/cors options, defaults applied. c must be valid.
func (c *CORSConfig) options() cors.Options {
	or := func(v, def []string) []string {
		if len(v) == 0 {
			v = def
		}
		return slices.Clone(v)
	}
	maxAge := c.MaxAge
	if maxAge == 0 {
		maxAge = defaultCORSMaxAge
	}
	return cors.Options{
		AllowedOrigins:     slices.Clone(c.AllowedOrigins),
		AllowedMethods:     or(c.AllowedMethods, defaultCORSMethods),
		AllowedHeaders:     or(c.AllowedHeaders, defaultCORSHeaders),
		ExposedHeaders:     or(c.ExposedHeaders, defaultCORSExposed),
		AllowCredentials:   c.AllowCredentials,
		MaxAge:             int(maxAge / time.Second),
		OptionsPassthrough: false,
	}
}

// middleware builds, once, the CORS handling for c, which must have passed
// validate; for a nil or disabled c it returns nils.
//
// wrap decorates a route's handler. Every request it serves gets
// Vary: Origin. One whose Origin is allowed, with an allowed method, also
// gets Access-Control-Allow-Origin (the origin itself, or "*" when any
// origin is allowed without credentials), Access-Control-Expose-Headers
// and, with credentials, Access-Control-Allow-Credentials: true. Any other
// request gets no other CORS header, and is served all the same: enforcing
// CORS is the browser's job. A preflight reaching wrap is answered as
// preflight answers it, without calling the route's handler.
//
// preflight answers OPTIONS without calling any route handler or upstream,
// always with 204 No Content and an empty body:
//
//   - a preflight (Origin and Access-Control-Request-Method) from an
//     allowed origin asking for an allowed method and allowed headers gets
//     Access-Control-Allow-Origin, -Allow-Methods (the method asked for),
//     -Allow-Headers (the headers asked for), -Max-Age and, with
//     credentials, -Allow-Credentials;
//   - a preflight asking for anything else gets none of them, only
//     Vary: Origin, Access-Control-Request-Method,
//     Access-Control-Request-Headers, so the browser fails it;
//   - a plain OPTIONS (no Access-Control-Request-Method) is an actual
//     request whose response is empty: it gets what wrap adds.
//
// Both are what rs/cors does with OptionsPassthrough off.
func (c *CORSConfig) middleware() (wrap func(http.Handler) http.Handler, preflight http.Handler) {
	if c == nil || c.Disabled {
		return nil, nil
	}
	cc := cors.New(c.options())
	return cc.Handler, cc.Handler(http.HandlerFunc(noContent))
}

func noContent(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
}
