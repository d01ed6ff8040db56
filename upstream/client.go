package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/braidgw/braid/observability"
)

const (
	// drainLimit bounds how much of a non-2xx body is read so that its
	// connection can go back to the pool; a longer body costs the connection.
	drainLimit = 4 << 10

	// tcpKeepAlive is the interval of TCP keep-alive probes on upstream
	// connections.
	tcpKeepAlive = 30 * time.Second
)

var _ Fetch = (*Client)(nil).Fetch

// Client calls one upstream over its own pooled transport. It is created
// once per upstream at start-up and is safe for concurrent use.
type Client struct {
	name      string
	cfg       Config          // validated, defaults applied
	host      string          // host[:port] of cfg.URL
	basePath  string          // escaped path prefix, no trailing "/"
	scheme    string          // of cfg.URL
	transport pooledTransport // *leanTransport or *http.Transport, see Config.Transport
	// rt is what a try is sent through: transport, wrapped by the Set for
	// the memory budget and tracing. It is set before the first call.
	rt http.RoundTripper
}

// pooledTransport is a transport that owns a pool of connections: an
// *http.Transport or a *leanTransport.
type pooledTransport interface {
	http.RoundTripper
	CloseIdleConnections()
}

var (
	_ pooledTransport = (*http.Transport)(nil)
	_ pooledTransport = (*leanTransport)(nil)
)

// New returns a Client for the upstream called name (used in errors), or an
// error naming the offending Config field.
func New(name string, cfg Config) (*Client, error) {
	if name == "" {
		return nil, errors.New("upstream: name is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("upstream %q: %w", name, err)
	}
	cfg = cfg.withDefaults()
	u, err := url.Parse(cfg.URL)
	if err != nil { // unreachable: Validate parsed it
		return nil, fmt.Errorf("upstream %q: url: %w", name, err)
	}
	basePath := strings.TrimSuffix(u.EscapedPath(), "/")
	c := &Client{
		name:     name,
		cfg:      cfg,
		host:     u.Host,
		basePath: basePath,
		scheme:   u.Scheme,
	}
	if cfg.transportFor(u.Scheme) == transportLean {
		c.transport = newLeanTransport(cfg, u)
	} else {
		c.transport = newTransport(cfg)
	}
	c.rt = c.transport
	return c, nil
}

// newTransport builds the tuned, pooled net/http transport for one
// upstream. It never consults the environment: an edge gateway must not
// pick up HTTP_PROXY.
func newTransport(cfg Config) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: tcpKeepAlive}
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		MaxIdleConns:           cfg.MaxIdleConns,
		MaxIdleConnsPerHost:    cfg.MaxIdleConns,
		MaxConnsPerHost:        cfg.MaxConns,
		IdleConnTimeout:        cfg.IdleTimeout,
		TLSHandshakeTimeout:    cfg.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  cfg.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		ExpectContinueTimeout:  time.Second,
		ForceAttemptHTTP2:      true,
	}
	if cfg.H2C {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true) // and HTTP1 off: prior knowledge, no fallback
		t.Protocols = &p
	}
	return t
}

// Name returns the upstream's name.
func (c *Client) Name() string { return c.name }

// Close closes the Client's idle connections. Calls in flight are not
// affected; the Client stays usable.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Fetch calls the upstream and returns its 2xx answer with a JSON body (a
// 204 or empty body becomes "null"). Every failure is an *Error naming the
// upstream. Method c.Fetch is an upstream.Fetch.
func (c *Client) Fetch(ctx context.Context, req *Request) (*Response, error) {
	if req == nil {
		req = &Request{}
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	resp, err := c.fetch(ctx, method, req)
	if err != nil {
		return nil, &Error{Upstream: c.name, Method: method, Path: req.Path, Err: err}
	}
	return resp, nil
}

// fetch is Fetch without the error wrapping.
func (c *Client) fetch(ctx context.Context, method string, req *Request) (*Response, error) {
	hreq, err := c.newRequest(ctx, method, req)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, statusError(resp)
	}
	body, err := c.readBody(resp)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// send makes one round trip through the Client's transport. It does what
// an http.Client with no Timeout, no Jar and redirects not followed would
// do, without that http.Client's per-call copies: a transport error comes
// back as a *url.Error. A 3xx is an answer like any other.
func (c *Client) send(hreq *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(hreq)
	if err != nil {
		if tlsErr, ok := err.(tls.RecordHeaderError); ok && string(tlsErr.RecordHeader[:]) == "HTTP/" {
			err = http.ErrSchemeMismatch // as http.Client says it
		}
		return nil, &url.Error{Op: urlErrorOp(hreq.Method), URL: hreq.URL.String(), Err: err}
	}
	return resp, nil
}

// urlErrorOp is the Op of a *url.Error for method, as http.Client names
// it: "Get", "Post".
func urlErrorOp(method string) string {
	if method == "" {
		return "Get"
	}
	return method[:1] + strings.ToLower(method[1:])
}

// newRequest checks the path and the context, then builds the outgoing
// request: URL under the base path, default and caller headers, budget.
func (c *Client) newRequest(ctx context.Context, method string, req *Request) (*http.Request, error) {
	if err := checkPath(req.Path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	budget := time.Duration(-1)
	if deadline, ok := ctx.Deadline(); ok {
		if budget = time.Until(deadline); budget <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	// The URL is built from its parts: the base was parsed at start-up
	// and checkPath vouches for the path, so parsing the whole URL again
	// per try would only allocate.
	hreq, err := http.NewRequestWithContext(ctx, method, "", nil)
	if err != nil {
		return nil, err
	}
	full := c.basePath + req.Path
	path, err := url.PathUnescape(full)
	if err != nil { // unreachable: checkPath refuses bad escapes
		return nil, ErrBadPath
	}
	u := hreq.URL
	u.Scheme, u.Host, u.Path = c.scheme, c.host, path
	if path != full {
		u.RawPath = full
	}
	u.RawQuery = req.encodedQuery()
	hreq.Host = c.host
	if ep := u.EscapedPath(); ep != full {
		return nil, ErrBadPath // defence in depth: checkPath should make this impossible
	}
	// One backing array for the values of Braid's own headers instead of
	// a slice per header.
	h := hreq.Header
	vals := make([]string, 0, 4)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set("Accept", "application/json")
	set("User-Agent", "braid")
	forwardHeaders(ctx, h, req.forward)
	if id := observability.RequestID(ctx); id != "" {
		set(requestIDHeader, id)
	}
	for k, vs := range req.Header {
		h[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
	}
	delete(h, BudgetHeader) // only the context decides the budget
	if budget > 0 {
		set(BudgetHeader, budgetValue(max(budget.Milliseconds(), 1)))
	}
	return hreq, nil
}

// readBody reads a 2xx body, bounded by MaxResponseBytes, and checks that it
// is JSON. A read cut short by the context fails with the context's error;
// any other read error (fewer bytes than the Content-Length, a reset
// connection) with ErrTruncated.
func (c *Client) readBody(resp *http.Response) ([]byte, error) {
	limit := c.cfg.MaxResponseBytes
	if resp.ContentLength > limit {
		return nil, ErrTooLarge // refused unread; closing costs the connection
	}
	body, err := readLimited(resp.Body, resp.ContentLength, limit)
	switch {
	case err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return nil, fmt.Errorf("reading body: %w", err)
	case err != nil && resp.Request.Context().Err() != nil: // the read failed as the context ended
		return nil, fmt.Errorf("reading body: %w: %w", resp.Request.Context().Err(), err)
	case err != nil:
		return nil, fmt.Errorf("reading body: %w: %w", ErrTruncated, err)
	case int64(len(body)) > limit:
		return nil, ErrTooLarge
	case len(body) == 0:
		return []byte("null"), nil
	case !validJSON(body):
		return nil, ErrInvalidJSON
	}
	return body, nil
}

// statusError drains a bounded part of a non-2xx body, so that the
// connection can be reused, and describes the answer.
func statusError(resp *http.Response) *StatusError {
	body, _ := readLimited(resp.Body, resp.ContentLength, drainLimit)
	return &StatusError{
		Status:     resp.StatusCode,
		Body:       slices.Clone(body[:min(len(body), statusBodyLimit)]),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
}

// maxRetryAfter bounds a Retry-After an upstream may announce; a larger one
// is taken as this.
const maxRetryAfter = time.Hour

// parseRetryAfter reads a Retry-After value, delay-seconds or an HTTP date
// (RFC 9110 10.2.3), as a delay from now. Absent, unparseable or past
// values are 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return min(time.Duration(min(secs, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// readLimited reads r to EOF or until it has read more than limit bytes,
// whichever comes first; a result longer than limit means r had more. size
// is the expected length (-1 if unknown) and sizes the buffer up front.
func readLimited(r io.Reader, size, limit int64) ([]byte, error) {
	capacity := int64(512)
	if size >= 0 && size <= limit {
		capacity = size + 1 // room to read EOF without growing
	}
	b := make([]byte, 0, capacity)
	lr := io.LimitedReader{R: r, N: limit + 1} // a value: io.LimitReader would allocate
	for {
		if len(b) == cap(b) && int64(cap(b)) <= limit {
			// Double, up to the one byte past the limit that tells a
			// body too large: a body of unknown length costs at most
			// about twice its size in copies, not append's 1.25x steps.
			grown := make([]byte, len(b), min(2*int64(cap(b)), limit+1))
			copy(grown, b)
			b = grown
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// budgetStrings holds the decimal text of the budgets below its length,
// each made the first time it is needed: a budget is a route's timeout
// counting down, so the same few thousand values recur on every request,
// and strconv would allocate each of them anew.
var budgetStrings [8192]atomic.Pointer[string]

// budgetValue is ms in decimal, the value of the budget header.
func budgetValue(ms int64) string {
	if ms < 0 || ms >= int64(len(budgetStrings)) {
		return strconv.FormatInt(ms, 10)
	}
	if s := budgetStrings[ms].Load(); s != nil {
		return *s
	}
	s := strconv.FormatInt(ms, 10)
	budgetStrings[ms].Store(&s)
	return s
}
