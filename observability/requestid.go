package observability

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
)

// DefaultRequestIDHeader is ServerOptions.RequestIDHeader's default.
const DefaultRequestIDHeader = "X-Request-Id"

// maxRequestIDLen is the longest incoming request id accepted, in bytes.
const maxRequestIDLen = 64

// attrRequestID is the server span's request id attribute. A plain string
// attribute rather than semconv's http.request.header.x-request-id, which
// is a string array of the header as received: the id may be Braid's own.
const attrRequestID = attribute.Key("braid.request_id")

// requestIDKey is the context key of the request id.
type requestIDKey struct{}

// requestIDContext carries a request id. It is context.WithValue's
// valueCtx made to measure: one allocation holds the parent, the id and
// the one-value slice the response header gets, where WithValue would take
// three (the context, the boxed string, the slice).
type requestIDContext struct {
	context.Context
	id     string
	header [1]string // id, for the response header; the header's own copy
}

// Value returns c itself for requestIDKey, so that reading the id boxes
// nothing, and asks the parent for any other key.
func (c *requestIDContext) Value(key any) any {
	if key == (requestIDKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// WithRequestID returns a context carrying id as the request id, for
// RequestID to find: the server middleware puts every request's there, and
// work done on behalf of a request elsewhere can do the same. id is not
// checked; it is sent and logged as given.
func WithRequestID(ctx context.Context, id string) context.Context {
	return &requestIDContext{Context: ctx, id: id}
}

// withRequestID is WithRequestID that also sets id as the value of the
// canonical header name in h, from the same allocation.
func withRequestID(ctx context.Context, id string, h http.Header, name string) context.Context {
	c := &requestIDContext{Context: ctx, id: id, header: [1]string{id}}
	h[name] = c.header[:]
	return c
}

// RequestID returns the request id in ctx, "" when there is none. Under
// the server middleware it is the id the response carries: the client's
// own when it sent an acceptable one, one generated otherwise.
func RequestID(ctx context.Context) string {
	if c, ok := ctx.Value(requestIDKey{}).(*requestIDContext); ok {
		return c.id
	}
	return ""
}

// requestID is a request's id and what became of the one it came with.
type requestID struct {
	id      string
	refused int // bytes of the incoming value(s) refused; -1 when none was
}

// newRequestID picks the id of a request with headers h, name being the
// canonical header name: the incoming id when there is exactly one value
// and it is acceptable, a new one otherwise. Nothing of a refused value is
// kept but its length.
func newRequestID(h http.Header, name string) requestID {
	vs := h[name]
	if len(vs) == 1 && validRequestID(vs[0]) {
		return requestID{id: vs[0], refused: -1}
	}
	n := -1
	if len(vs) > 0 {
		n = 0
		for _, v := range vs {
			n += len(v)
		}
	}
	return requestID{id: randomRequestID(), refused: n}
}

// validRequestID reports whether s is short and safe to echo, log and
// forward: 1 to 64 bytes of [A-Za-z0-9._:-].
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// randomRequestID returns 16 random bytes as 32 lowercase hex digits,
// from math/rand/v2's runtime source (ChaCha8 per thread, seeded by the
// system): an id correlates a request's log lines and calls, it guards
// nothing, and crypto/rand was 0.7 % of the gateway's CPU.
func randomRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	var s [32]byte
	hexTo(s[:], b[:])
	return string(s[:])
}
