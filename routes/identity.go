package routes

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/auth"
	"github.com/braidgw/braid/ratelimit"
	"github.com/braidgw/braid/upstream"
)

// Who is calling: a route with auth verifies the bearer token before
// anything else (401/403 without touching an upstream); a route with a
// rate limit then counts the request against the caller's key, the
// token's subject or else the client's IP (429 over the limit). The
// verified claims a plan reads ({auth.sub}) are added to its parameters.

// AuthFactory builds the verifier of a route's auth section. The gateway's
// shares one verifier (one key cache) between routes with the same
// section and closes them all on shutdown.
type AuthFactory func(auth.Config) (*auth.Verifier, error)

// LimiterFactory builds a route's rate limiter; name identifies the route
// ("GET /api/me/dashboard") and keys its counters in Redis.
type LimiterFactory func(name string, cfg ratelimit.Config) *ratelimit.Limiter

// compileEdge checks and builds rt's auth, rate limit, forwarded and
// copied headers from rc and the defaults.
func (rt *route) compileEdge(rc RouteConfig, cfg Config, opts Options, proxies []netip.Prefix) []error {
	var errs []error
	rt.proxies = proxies
	if rc.Auth != nil {
		if err := rc.Auth.Validate(); err != nil {
			errs = append(errs, prefixErrs(rt.field+".auth", err)...)
		} else {
			newVerifier := opts.Auth
			if newVerifier == nil {
				newVerifier = func(c auth.Config) (*auth.Verifier, error) { return auth.New(c) }
			}
			v, err := newVerifier(*rc.Auth)
			if err != nil {
				errs = append(errs, &aggregate.ConfigError{Field: rt.field + ".auth", Msg: err.Error()})
			}
			rt.verifier = v
		}
	}
	rl := cfg.Defaults.RateLimit
	if rc.RateLimit != nil {
		rl = rc.RateLimit
	}
	if rl != nil && !rl.Disabled {
		field := "defaults.rate_limit"
		if rc.RateLimit != nil {
			field = rt.field + ".rate_limit"
		}
		if err := rl.Config.Validate(); err != nil {
			errs = append(errs, prefixErrs(field, err)...)
		} else {
			newLimiter := opts.RateLimiter
			if newLimiter == nil {
				newLimiter = func(name string, c ratelimit.Config) *ratelimit.Limiter { return ratelimit.New(name, c) }
			}
			rt.limiter = newLimiter(rt.method+" "+rt.path, rl.Config)
		}
	}
	rt.forward = cfg.Defaults.ForwardHeaders
	field := "defaults.forward_headers"
	if rc.ForwardHeaders != nil {
		rt.forward, field = rc.ForwardHeaders, rt.field+".forward_headers"
	}
	errs = append(errs, configErrs(upstream.CheckForwardHeaders(field, rt.forward))...)
	for i, h := range rc.ResponseHeaders {
		f := fmt.Sprintf("%s.response_headers[%d]", rt.field, i)
		found := false
		for _, c := range rc.Calls {
			found = found || c.Name == h.Call
		}
		switch {
		case h.Call == "":
			errs = append(errs, &aggregate.ConfigError{Field: f + ".call", Msg: "is required"})
		case !found:
			errs = append(errs, &aggregate.ConfigError{Field: f + ".call", Msg: fmt.Sprintf("unknown call %q", h.Call)})
		}
		if !isToken(h.Header) {
			errs = append(errs, &aggregate.ConfigError{Field: f + ".header", Msg: fmt.Sprintf("%q is not a header name", h.Header)})
		}
		rt.copyHeaders = append(rt.copyHeaders, ResponseHeader{Call: h.Call, Header: http.CanonicalHeaderKey(h.Header)})
	}
	return errs
}

// prefixErrs splits a joined error into ConfigErrors under field.
func prefixErrs(field string, err error) []error {
	var out []error
	for _, e := range flatten(err) {
		out = append(out, &aggregate.ConfigError{Field: field, Msg: e.Error()})
	}
	return out
}

// configErrs turns "field: msg" errors into ConfigErrors.
func configErrs(errs []error) []error {
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		f, msg, _ := strings.Cut(e.Error(), ": ")
		out = append(out, &aggregate.ConfigError{Field: f, Msg: msg})
	}
	return out
}

// flatten lists the errors joined in err.
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

// parseProxies reads Config.TrustedProxies.
func parseProxies(list []string) ([]netip.Prefix, []error) {
	var out []netip.Prefix
	var errs []error
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				errs = append(errs, &aggregate.ConfigError{Field: fmt.Sprintf("trusted_proxies[%d]", i), Msg: fmt.Sprintf("%q is not an IP address or CIDR range", s)})
				continue
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, errs
}

// admit verifies the caller and counts the request against its rate
// limit. It answers the request itself and returns false when the request
// may not go on; otherwise it returns the verified identity (nil on a
// route without auth).
func (h *handler) admit(w http.ResponseWriter, r *http.Request) (*auth.Identity, bool) {
	rt := h.route
	var id *auth.Identity
	if rt.verifier != nil {
		var err error
		if id, err = rt.verifier.VerifyRequest(r); err != nil {
			h.refuse(w, r, err)
			return nil, false
		}
	}
	if rt.limiter != nil {
		var key string
		if id != nil {
			key = "sub:" + id.Subject
		} else {
			key = "ip:" + clientIP(r, rt.proxies)
		}
		d := rt.limiter.Allow(r.Context(), key)
		d.Headers(w.Header())
		if !d.Allowed {
			writeError(w, apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
				Message: fmt.Sprintf("too many requests to %s %s: the limit is %d, try again later", rt.method, rt.path, d.Limit), RetryAfter: d.RetryAfter})
			return nil, false
		}
	}
	return id, true
}

// refuse answers a failed token check: 401 with a Bearer challenge, or 403
// for a valid token that lacks a required scope or claim.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	e := apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "a valid bearer token is required"}
	if errors.Is(err, auth.ErrForbidden) {
		e = apiError{Status: http.StatusForbidden, Code: "forbidden", Message: "the token does not grant access to this route"}
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		w.Header().Set("WWW-Authenticate", ae.Challenge())
		if ae.Reason != nil {
			e.Message += ": " + ae.Reason.Error()
		} else if errors.Is(err, auth.ErrMissingToken) {
			e.Message += ": the request has no Authorization: Bearer header"
		}
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+auth.Realm+`"`)
	}
	h.log.InfoContext(r.Context(), "token refused", "route", h.route.path, "status", e.Status, "err", err)
	writeError(w, e)
}

// claimParams adds the claims the plan reads to params, made when nil, and
// returns it. A claim the token does not have is a 403: the token does not
// identify the caller the way the route needs.
func (h *handler) claimParams(w http.ResponseWriter, id *auth.Identity, params map[string]string) (map[string]string, bool) {
	refs := h.route.plan.AuthRefs()
	if params == nil && len(refs) > 0 {
		params = make(map[string]string, len(refs))
	}
	for _, name := range refs {
		v, ok := id.Lookup(strings.TrimPrefix(name, "auth."))
		if !ok {
			writeError(w, apiError{Status: http.StatusForbidden, Code: "forbidden", Message: fmt.Sprintf("the token has no usable %s claim, which this route needs", strings.TrimPrefix(name, "auth."))})
			return nil, false
		}
		params[name] = v
	}
	return params, true
}

// clientIP is the address rate limits key on: the connection's peer, or,
// when the peer is a trusted proxy, the rightmost X-Forwarded-For address
// that is not one.
func clientIP(r *http.Request, proxies []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !trusted(peer, proxies) {
		return host
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return peer.String() // a garbled hop: trust nothing before it
			}
			if !trusted(a, proxies) {
				return a.Unmap().String()
			}
		}
	}
	return peer.String()
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
