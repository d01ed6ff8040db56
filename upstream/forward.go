package upstream

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Forwarding client headers. A call copies the client request headers on
// its allow-list (Call.Forward, or its upstream's Config.ForwardHeaders
// when set) from the request the route handler is serving — handed over
// with WithClientHeader — to every try it makes. Nothing is forwarded by
// default. The request id (observability.RequestID) goes on every call
// whatever the list says. Hop-by-hop headers and the headers Braid sets
// itself can never be forwarded: CheckForwardHeaders refuses them.

// requestIDHeader carries the request id (observability.RequestID) on
// every call.
const requestIDHeader = "X-Request-Id"

// clientHeaderKey is the context key of the client request's headers.
type clientHeaderKey struct{}

// WithClientHeader returns a context under which calls forward the
// allow-listed headers of h, the client request's headers. h is read, never
// modified, and must not be modified while calls run.
func WithClientHeader(ctx context.Context, h http.Header) context.Context {
	return context.WithValue(ctx, clientHeaderKey{}, h)
}

// notForwarded are the headers no allow-list may name, canonical: the
// hop-by-hop headers of RFC 9110 7.6.1 and those the transport computes,
// and Braid's own (its budget, the trace context it propagates, the
// request id it always sends, the Accept it always asks for).
var notForwarded = map[string]string{
	"Connection":          "hop-by-hop",
	"Keep-Alive":          "hop-by-hop",
	"Proxy-Connection":    "hop-by-hop",
	"Proxy-Authenticate":  "hop-by-hop",
	"Proxy-Authorization": "hop-by-hop",
	"Te":                  "hop-by-hop",
	"Trailer":             "hop-by-hop",
	"Transfer-Encoding":   "hop-by-hop",
	"Upgrade":             "hop-by-hop",
	"Host":                "set by the client from the upstream's url",
	"Content-Length":      "set by the transport",
	"Accept-Encoding":     "set by the transport",
	"Accept":              "Braid asks upstreams for application/json",
	BudgetHeader:          "Braid's own: the call's remaining budget",
	"Traceparent":         "Braid's own: trace context is propagated, not copied",
	"Tracestate":          "Braid's own: trace context is propagated, not copied",
	"Baggage":             "Braid's own: trace context is propagated, not copied",
	requestIDHeader:       "always sent: every call carries the request id",
}

// CheckForwardHeaders checks an allow-list of header names to forward,
// field naming it ("upstreams.users.forward_headers"); every error names
// the entry.
func CheckForwardHeaders(field string, names []string) []error {
	var errs []error
	seen := map[string]bool{}
	for i, n := range names {
		f := fmt.Sprintf("%s[%d]", field, i)
		c := http.CanonicalHeaderKey(n)
		switch {
		case !validHeaderName(n):
			errs = append(errs, fmt.Errorf("%s: %q is not a header name", f, n))
		case notForwarded[c] != "":
			errs = append(errs, fmt.Errorf("%s: %s cannot be forwarded (%s)", f, c, notForwarded[c]))
		case seen[c]:
			errs = append(errs, fmt.Errorf("%s: %s is listed twice", f, c))
		}
		seen[c] = true
	}
	return errs
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// canonicalHeaders returns names in canonical form, nil for an empty list.
func canonicalHeaders(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = http.CanonicalHeaderKey(n)
	}
	return out
}

// forwardLayer sets the call's allow-list on each of its requests, for the
// client to apply on every try. It is the outermost layer: it runs once per
// call, before any try exists, so the request is not yet shared.
func forwardLayer(names []string) Middleware {
	return func(next Fetch) Fetch {
		return func(ctx context.Context, req *Request) (*Response, error) {
			req.forward = names
			return next(ctx, req)
		}
	}
}

// forwardHeaders copies onto h the headers of the client request in ctx
// that names allow. Values are cloned: the outgoing request owns them.
func forwardHeaders(ctx context.Context, h http.Header, names []string) {
	if len(names) == 0 {
		return
	}
	in, _ := ctx.Value(clientHeaderKey{}).(http.Header)
	for _, n := range names {
		if vs := in[n]; len(vs) > 0 {
			h[n] = slices.Clone(vs)
		}
	}
}
