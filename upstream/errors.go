package upstream

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Sentinel errors that callers branch on with errors.Is. Fetch returns them
// wrapped in an *Error.
var (
	// ErrInvalidJSON means a 2xx body is not valid JSON, including one
	// without a Content-Length that ended early as if it were complete.
	ErrInvalidJSON = errors.New("response is not valid JSON")

	// ErrTruncated means reading a 2xx body failed part way: the
	// connection was closed before the Content-Length was reached, or
	// reset, or a chunked body broke off. The read's own error is wrapped
	// as well. A read stopped by the caller's context fails with the
	// context's error instead. A retry may fix it.
	ErrTruncated = errors.New("response body was cut short")

	// ErrTooLarge means the response body exceeds Config.MaxResponseBytes.
	ErrTooLarge = errors.New("response exceeds max_response_bytes")

	// ErrUnavailable means the upstream is refusing calls: it answered 503
	// or 429. Resilience middleware (breaker, bulkhead) wraps it as well.
	ErrUnavailable = errors.New("upstream is refusing calls")

	// ErrBadPath means Request.Path was rejected before any network I/O: it
	// does not start with "/", has a "." or ".." segment (raw or
	// percent-encoded), or holds a character that cannot appear in an
	// escaped path ("?", "#", backslash, space, control characters, ...).
	ErrBadPath = errors.New("request path is not allowed")

	// ErrBulkheadFull means the upstream already had its cap of calls in
	// flight and no slot freed within the bulkhead's wait: the call was not
	// made. It is the Err of a *RejectedError.
	ErrBulkheadFull = errors.New("too many calls in flight")

	// ErrUnknownUpstream is returned by a Factory asked for an upstream that
	// is not configured.
	ErrUnknownUpstream = errors.New("unknown upstream")
)

// statusBodyLimit is how much of a non-2xx body StatusError keeps for logs.
const statusBodyLimit = 512

// StatusError is a non-2xx answer from the upstream, including a redirect,
// which the client never follows.
type StatusError struct {
	Status int    // HTTP status code
	Body   []byte // first 512 bytes of the body, for logs
	// RetryAfter is the upstream's Retry-After header (delay seconds or an
	// HTTP date, as a delay from when the answer arrived); 0 when absent or
	// unparseable.
	RetryAfter time.Duration
}

// Error returns "status N".
func (e *StatusError) Error() string {
	return "status " + strconv.Itoa(e.Status)
}

// Unwrap returns ErrUnavailable for 503 and 429 answers, and nil otherwise.
func (e *StatusError) Unwrap() error {
	if e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests {
		return ErrUnavailable
	}
	return nil
}

// RejectedError is a call that the gateway refused to make, or to finish,
// to protect the upstream or itself: the circuit breaker is open (Err
// matches breaker.ErrOpen), the bulkhead is full (ErrBulkheadFull), or the
// memory budget cannot hold the answer (ErrMemoryBudget; refused before the
// call, or at its headers, in which case the upstream did receive it). It
// also matches ErrUnavailable.
type RejectedError struct {
	// Err is the reason: breaker.ErrOpen or ErrBulkheadFull.
	Err error
	// RetryAfter is when the call may be admitted again, as a delay; 0 when
	// unknown.
	RetryAfter time.Duration
}

// Error describes the reason, e.g. "circuit breaker is open (retry after 4s)".
func (e *RejectedError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%v (retry after %s)", e.Err, e.RetryAfter.Round(time.Millisecond))
	}
	return e.Err.Error()
}

// Unwrap returns the reason and ErrUnavailable.
func (e *RejectedError) Unwrap() []error { return []error{e.Err, ErrUnavailable} }

// Error is a failed upstream call. It names the upstream and the request and
// wraps the cause: a *StatusError, ErrInvalidJSON, ErrTooLarge, ErrBadPath,
// ErrTruncated (with the read error, e.g. io.ErrUnexpectedEOF), or a
// transport error such as a *url.Error carrying context.DeadlineExceeded.
type Error struct {
	Upstream string // the Client's name
	Method   string // request method
	Path     string // request path, as given
	Err      error  // the cause
}

// Error returns, for example, `upstream "users": GET /users/1: status 500`.
// A path holding unprintable characters is quoted.
func (e *Error) Error() string {
	path := e.Path
	if !printable(path) {
		path = strconv.Quote(path)
	}
	return fmt.Sprintf("upstream %q: %s %s: %v", e.Upstream, e.Method, path, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// newError wraps err, from a layer around the client, as an *Error naming
// the upstream and req.
func newError(upstream string, req *Request, err error) *Error {
	e := &Error{Upstream: upstream, Method: http.MethodGet, Err: err}
	if req != nil {
		e.Path = req.Path
		if req.Method != "" {
			e.Method = req.Method
		}
	}
	return e
}

// printable reports whether s is non-empty printable ASCII without spaces,
// so that it can be logged unquoted.
func printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
