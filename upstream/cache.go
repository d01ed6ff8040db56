package upstream

import (
	"context"
	"net/http"
	"strings"

	"github.com/braidgw/braid/cache"
)

// cacheLayer answers a call from the cache when it can: L1, then L2, then
// the layers below (coalesced per key). What it stores is the body the
// upstream returned, so a hit splices the same bytes.
func cacheLayer(c *cache.Cache, upstream string, p cache.Policy) Middleware {
	return func(next Fetch) Fetch {
		return func(ctx context.Context, req *Request) (*Response, error) {
			if req == nil {
				return next(ctx, req)
			}
			e := cache.Entry{Key: EntryKey(upstream, req), Namespace: req.CacheNamespace, Tags: req.CacheTags}
			body, st, err := c.Get(ctx, e, p, func(ctx context.Context) ([]byte, error) {
				resp, err := next(ctx, req)
				if err != nil {
					return nil, err
				}
				return resp.Body, nil
			})
			if err != nil {
				return nil, err
			}
			return &Response{Status: http.StatusOK, Body: body, Cache: st}, nil
		}
	}
}

// EntryKey is the cache key of a request to an upstream: everything the
// answer depends on, "users GET /users/1?limit=5". Two routes making the
// same request share the entry.
func EntryKey(upstream string, req *Request) string {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	var b strings.Builder
	b.Grow(len(upstream) + len(method) + len(req.Path) + 16)
	b.WriteString(upstream)
	b.WriteByte(' ')
	b.WriteString(method)
	b.WriteByte(' ')
	b.WriteString(req.Path)
	if q := req.encodedQuery(); q != "" {
		b.WriteByte('?')
		b.WriteString(q)
	}
	return b.String()
}
