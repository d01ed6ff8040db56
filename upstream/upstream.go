// Package upstream is Braid's client for one downstream service.
//
// Each configured upstream gets one *Client, created at start-up and reused
// for the life of the process: it owns a tuned, pooled transport (Braid's
// lean HTTP/1.1 client for plain http:// upstreams, Go's http.Transport for
// https and h2c; see Config.Transport), sends every request under the
// caller's deadline (and tells the upstream how much of it is left), bounds
// the response size and checks that the body is JSON.
//
// The core abstraction is Fetch, a context-first function; resilience
// (retries, breaker, bulkhead) is added by wrapping it with Middleware:
//
//	c, err := upstream.New("users", upstream.Config{URL: "http://users:8080"})
//	fetch := c.Fetch
//	resp, err := fetch(ctx, &upstream.Request{Method: "GET", Path: "/users/42"})
//
// Every failure is an *Error naming the upstream and the request; inspect it
// with errors.Is and errors.As: a non-2xx answer is a *StatusError (503 and
// 429 also match ErrUnavailable), a body that is not JSON matches
// ErrInvalidJSON, an oversize one ErrTooLarge, a refused path ErrBadPath,
// and a call cut by its deadline matches context.DeadlineExceeded.
package upstream

import (
	"context"
	"net/http"
	"net/url"

	"github.com/braidgw/braid/cache"
)

// BudgetHeader carries the caller's remaining deadline, in whole
// milliseconds, to the upstream so that it can give up when the gateway will.
const BudgetHeader = "Braid-Budget-Ms"

// Request is one call to an upstream. Path is already escaped (it is the raw
// path, as produced by the route template), and is resolved against the
// upstream's base URL; it never carries a scheme, host, query or fragment.
type Request struct {
	Method string     // GET when empty
	Path   string     // escaped path, starting with "/"
	Query  url.Values // encoded by the client; read-only (a call's constant query is shared by all its requests)
	// EncodedQuery is Query already encoded (Query.Encode()), for a
	// caller that has it: the client and the cache key then use it
	// instead of encoding Query again for every try. Empty: Query is
	// encoded.
	EncodedQuery string
	Header       http.Header // extra request headers; may be nil

	// CacheNamespace and CacheTags are the rendered namespace and tags of
	// a cached call's answer, for the cache layer; empty otherwise.
	CacheNamespace string
	CacheTags      []string

	// forward is the call's allow-list of client headers, set by the
	// call's stack (forwardLayer) and applied by the client to each try.
	forward []string
}

// encodedQuery returns the request's query, encoded.
func (r *Request) encodedQuery() string {
	if r.EncodedQuery != "" || len(r.Query) == 0 {
		return r.EncodedQuery
	}
	return r.Query.Encode()
}

// Response is an upstream's successful (2xx) answer. Body is valid JSON.
type Response struct {
	Status int
	Header http.Header // nil for an answer from the cache
	Body   []byte
	// Cache is where the answer came from, for a cached call: a hit in
	// L1 or L2, a stale answer, or a miss (fetched now).
	Cache cache.Status
}

// Fetch performs one upstream call.
type Fetch func(ctx context.Context, req *Request) (*Response, error)

// Middleware wraps a Fetch with more behaviour (retries, breaker, cache).
type Middleware func(Fetch) Fetch
