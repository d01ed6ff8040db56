package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The lean transport is Braid's own HTTP/1.1 client for plain http://
// upstreams, the common case inside a cluster (Config.Transport "lean",
// and what "auto" picks for them). Go's http.Transport runs two goroutines
// per connection, a reader and a writer, and hands every request and
// answer between them and the caller over channels; against a nearby
// upstream those hand-offs, with their wake-ups and stack growth, cost more
// CPU than the exchange itself. The lean transport makes the whole
// exchange on the calling goroutine:
//
//   - it takes a connection from its pool (see leanPool: idle ones last in,
//     first out; at most max_conns open, callers beyond that waiting under
//     their context) or dials one;
//   - writes the request head into the connection's buffer and sends it
//     with one write;
//   - reads the answer's head with http.ReadResponse, so the framing rules
//     (Content-Length, chunked, close-delimited, HEAD, 1xx, 204 and 304)
//     are net/http's own, bounded by maxHeaderBytes and, when the context
//     allows longer, response_header_timeout; a simple head already whole
//     in the buffer it reads itself, to the same Response (see readHead);
//   - returns a body that reads straight from the connection's buffer and
//     puts the connection back in the pool once it is read to its end, if
//     the answer allows keep-alive; a body closed before its end closes the
//     connection, as does any error.
//
// A context that ends interrupts the exchange at once, wherever it is: a
// context.AfterFunc sets a past deadline on the connection, which is then
// never reused. With no goroutine reading idle connections, one that the
// upstream closed is found when it is next used: a replayable request
// (GET, HEAD, OPTIONS, TRACE, or one with an Idempotency-Key) that fails on
// a reused connection before any byte of the answer arrives is sent once
// more on a new connection, as net/http does; a request that cannot be
// replayed, or one about to use a connection idle for staleCheckAfter or
// longer, first peeks at it (one non-blocking read).
//
// Unlike net/http it sends no request body (the Client never does) and
// asks for no compression (net/http asks for gzip and undoes it, so the
// JSON the Client reads is the same). Like it, it never consults the
// environment for a proxy.

// maxHeaderBytes bounds an answer's head, the status line and headers, on
// either transport: a larger one fails the try.
const maxHeaderBytes = 64 << 10

// leanBufferSize is the size of each lean connection's read buffer and of
// its write buffer.
const leanBufferSize = 4 << 10

// max1xx is how many informational (1xx) answers are skipped before the
// final one; more fail the try, as in net/http.
const max1xx = 5

var (
	errLeanBody       = errors.New("upstream: the lean transport sends no request body")
	errHeaderTooLarge = fmt.Errorf("upstream: response headers exceed %d bytes", maxHeaderBytes)
	errTooMany1xx     = errors.New("upstream: too many 1xx informational responses")
	errHeaderTimeout  = headerTimeoutError{}
)

// headerTimeoutError is a try whose answer's head did not arrive within
// response_header_timeout. Like net/http's, it is a net.Error that timed
// out and it matches context.DeadlineExceeded.
type headerTimeoutError struct{}

func (headerTimeoutError) Error() string     { return "upstream: timeout awaiting response headers" }
func (headerTimeoutError) Timeout() bool     { return true }
func (headerTimeoutError) Temporary() bool   { return true }
func (headerTimeoutError) Is(err error) bool { return err == context.DeadlineExceeded }

var _ net.Error = headerTimeoutError{}

// aLongTimeAgo is a deadline in the past: set on a connection, it makes
// every blocked and later read and write fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// leanTransport is the lean http.RoundTripper of one upstream.
type leanTransport struct {
	headerTimeout time.Duration // response_header_timeout
	pool          leanPool
}

// newLeanTransport builds the lean transport for the http:// upstream at u,
// with cfg's defaults applied.
func newLeanTransport(cfg Config, u *url.URL) *leanTransport {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return &leanTransport{
		headerTimeout: cfg.ResponseHeaderTimeout,
		pool: leanPool{
			dialer:      net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: tcpKeepAlive},
			addr:        net.JoinHostPort(u.Hostname(), port),
			maxConns:    cfg.MaxConns,
			maxIdle:     cfg.MaxIdleConns,
			idleTimeout: cfg.IdleTimeout,
		},
	}
}

// CloseIdleConnections closes the idle connections; those in use are not
// affected.
func (t *leanTransport) CloseIdleConnections() { t.pool.closeIdle() }

// RoundTrip sends req, which must have no body, and returns the answer with
// its head read.
func (t *leanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req.Body.Close()
		return nil, errLeanBody
	}
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	ctx := req.Context()
	replayable := isReplayable(req)
	for retried := false; ; retried = true {
		pc, err := t.pool.get(ctx, !replayable)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(ctx, pc, req)
		if err == nil {
			return resp, nil
		}
		stale := asStale(err)
		if stale == nil {
			return nil, err
		}
		if retried || !replayable {
			return nil, stale.err
		}
		// The upstream closed a connection that sat idle; those that sat
		// idle longer are likely closed too. Try again on a new one.
		t.pool.closeIdleSince(stale.idleAt)
	}
}

// staleConnError is an exchange on a reused connection that failed before
// any byte of the answer arrived: most likely the upstream had closed the
// connection while it was idle.
type staleConnError struct {
	err    error
	idleAt time.Time // when the connection was put in the pool
}

func (e *staleConnError) Error() string { return e.err.Error() }
func (e *staleConnError) Unwrap() error { return e.err }

// asStale returns err as a *staleConnError, or nil. It is apart from
// RoundTrip so that errors.As's target, which escapes, is allocated only
// when an exchange failed.
func asStale(err error) *staleConnError {
	var stale *staleConnError
	if errors.As(err, &stale) {
		return stale
	}
	return nil
}

// noStop stands in for an AfterFunc's stop when the context cannot end.
func noStop() bool { return true }

// exchange sends req on pc and reads the answer's head. The body it
// returns owns pc; on failure pc is closed.
func (t *leanTransport) exchange(ctx context.Context, pc *leanConn, req *http.Request) (*http.Response, error) {
	stop := noStop
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, pc.interrupt)
	}
	pc.r.read = 0
	resp, err := t.send(ctx, pc, req)
	if err != nil {
		stop()
		t.pool.discard(pc)
		switch {
		case ctx.Err() != nil:
			return nil, context.Cause(ctx)
		case pc.reused && pc.r.read == 0 && err != errHeaderTimeout:
			return nil, &staleConnError{err: err, idleAt: pc.idleAt}
		}
		return nil, err
	}
	keep := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols && !closeRequested(req.Header)
	if resp.Body == http.NoBody { // HEAD, 204, 304, Content-Length: 0
		t.release(pc, stop, keep)
		return resp, nil
	}
	resp.Body = &leanBody{t: t, ctx: ctx, body: resp.Body, pc: pc, stop: stop, keep: keep}
	return resp, nil
}

// send writes req on pc and reads the answer's head.
func (t *leanTransport) send(ctx context.Context, pc *leanConn, req *http.Request) (*http.Response, error) {
	if err := pc.writeRequest(req); err != nil {
		return nil, err
	}
	// The context's deadline, by way of interrupt, usually cuts first; the
	// header timeout needs a deadline of its own only when it comes sooner.
	timed := false
	if d := t.headerTimeout; d > 0 {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > d {
			pc.conn.SetReadDeadline(time.Now().Add(d))
			timed = true
			if ctx.Err() != nil { // interrupt may have run before: its deadline was just replaced
				return nil, context.Cause(ctx)
			}
		}
	}
	pc.r.limit = maxHeaderBytes
	resp, err := readResponse(pc.br, req)
	headTooLarge := pc.r.limit <= 0
	pc.r.limit = math.MaxInt64
	if timed {
		pc.conn.SetReadDeadline(time.Time{})
		var ne net.Error
		if err != nil && ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
			return nil, errHeaderTimeout
		}
		if err == nil && ctx.Err() != nil { // as above: interrupt's deadline may be gone
			return nil, context.Cause(ctx) // the body is left unread: closing it would drain it
		}
	}
	if err != nil && headTooLarge {
		return nil, errHeaderTooLarge
	}
	return resp, err
}

// readResponse reads the final answer to req from br, skipping up to
// max1xx informational ones.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for n := 0; ; n++ {
		resp, err := readHead(br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if n == max1xx {
			return nil, errTooMany1xx
		}
	}
}

// release gives pc back to the pool when its exchange is over: for reuse
// if keep and nothing is left in its buffer (an upstream that sent more
// than its answer cannot be trusted with the next one), else closed.
func (t *leanTransport) release(pc *leanConn, stop func() bool, keep bool) {
	// stop first: if the interrupt ran or is running, pc has (or will
	// have) a past deadline and must not be reused.
	if stop() && keep && pc.br.Buffered() == 0 {
		t.pool.put(pc)
		return
	}
	t.pool.discard(pc)
}

// leanBody is the body of a lean answer. Its connection goes back to the
// pool when the body is read to its end, and is closed if the body is
// closed before that or a read fails. It is read and closed from one
// goroutine at a time.
type leanBody struct {
	t    *leanTransport
	ctx  context.Context
	body io.ReadCloser // framed by readHead; never closed (that would drain it)
	pc   *leanConn     // nil once released
	stop func() bool   // stops the interrupt
	keep bool          // the connection may be reused after the body's end
	err  error         // what reads return once pc is released
}

func (b *leanBody) Read(p []byte) (int, error) {
	if b.pc == nil {
		return 0, b.err
	}
	n, err := b.body.Read(p)
	if err != nil {
		b.t.release(b.pc, b.stop, err == io.EOF && b.keep)
		b.pc = nil
		if cause := context.Cause(b.ctx); err != io.EOF && cause != nil {
			err = cause // the read was interrupted
		}
		b.err = err
	}
	return n, err
}

func (b *leanBody) Close() error {
	if b.pc != nil {
		b.t.release(b.pc, b.stop, false)
		b.pc = nil
	}
	b.err = http.ErrBodyReadAfterClose
	return nil
}

// leanConn is one lean connection.
type leanConn struct {
	conn net.Conn
	r    connReader
	br   *bufio.Reader // reads from r
	bw   *bufio.Writer // writes to conn
	// interrupt makes every read and write on conn fail at once: the
	// exchange's context ended. Made once per connection.
	interrupt func()
	idleAt    time.Time // when it was last put in the pool
	reused    bool      // it was put in the pool at least once
}

func newLeanConn(conn net.Conn) *leanConn {
	pc := &leanConn{conn: conn, r: connReader{conn: conn, limit: math.MaxInt64}}
	pc.br = bufio.NewReaderSize(&pc.r, leanBufferSize)
	pc.bw = bufio.NewWriterSize(conn, leanBufferSize)
	pc.interrupt = func() { conn.SetDeadline(aLongTimeAgo) }
	return pc
}

// connReader reads from a connection, counting the bytes of the current
// exchange and refusing to read past a limit (the head's bound while the
// head is read).
type connReader struct {
	conn  net.Conn
	limit int64 // bytes that may still be read
	read  int64 // bytes read in this exchange
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.limit <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > r.limit {
		p = p[:r.limit]
	}
	n, err := r.conn.Read(p)
	r.limit -= int64(n)
	r.read += int64(n)
	return n, err
}

// reqExcludeHeader are the headers writeRequest writes itself or never,
// as net/http's Request.Write.
var reqExcludeHeader = map[string]bool{
	"Host": true, "User-Agent": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true,
}

// defaultUserAgent is what net/http sends when a request has no
// User-Agent header.
const defaultUserAgent = "Go-http-client/1.1"

// writeRequest writes req's head, and flushes it.
func (pc *leanConn) writeRequest(req *http.Request) error {
	w := pc.bw
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	w.WriteString(method)
	w.WriteByte(' ')
	if p := req.URL.EscapedPath(); p != "" {
		w.WriteString(p)
	} else {
		w.WriteByte('/')
	}
	if req.URL.RawQuery != "" || req.URL.ForceQuery {
		w.WriteByte('?')
		w.WriteString(req.URL.RawQuery)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	w.WriteString(removeZone(host))
	w.WriteString("\r\n")
	ua := defaultUserAgent
	if vs, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(vs) > 0 {
			ua = vs[0]
		}
	}
	if ua != "" {
		writeHeaderLine(w, "User-Agent", ua)
	}
	for k, vs := range req.Header {
		if reqExcludeHeader[k] {
			continue
		}
		for _, v := range vs {
			writeHeaderLine(w, k, v)
		}
	}
	if req.Close && !closeRequested(req.Header) {
		w.WriteString("Connection: close\r\n")
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		w.WriteString("Content-Length: 0\r\n") // as net/http does for these without a body
	}
	w.WriteString("\r\n")
	return w.Flush()
}

func writeHeaderLine(w *bufio.Writer, k, v string) {
	w.WriteString(k)
	w.WriteString(": ")
	w.WriteString(strings.Trim(v, " \t"))
	w.WriteString("\r\n")
}

// checkRequest refuses, before any I/O, a request whose method or headers
// could not be written as they are, as net/http does.
func checkRequest(req *http.Request) error {
	if req.Method != "" && !validToken(req.Method) {
		return fmt.Errorf("upstream: invalid method %q", req.Method)
	}
	for k, vs := range req.Header {
		if !validToken(k) {
			return fmt.Errorf("upstream: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return fmt.Errorf("upstream: invalid header field value for %q", k)
			}
		}
	}
	return nil
}

// validToken reports whether s is an RFC 9110 token, as a method or a
// header name must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v, a header value being written or
// read, holds no control character other than horizontal tab: nothing
// that could end the header line.
func validHeaderValue[S []byte | string](v S) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isReplayable reports whether req may be sent again after a stale
// connection failed it, by net/http's rule.
func isReplayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	_, xok := req.Header["X-Idempotency-Key"]
	return ok || xok
}

// closeRequested reports whether h asks for the connection to be closed
// ("Connection: close").
func closeRequested(h http.Header) bool {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "close") {
				return true
			}
		}
	}
	return false
}

// removeZone drops the zone of an IPv6 literal host ("[fe80::1%en0]:80"),
// which does not belong in a Host header, as net/http does.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}
