package upstream

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"net/http"
	"strings"
)

// The lean transport reads most answers' heads itself. http.ReadResponse
// is general: it reads line by line through net/textproto and allocates
// the status line, each header value, a transfer reader, and the body and
// the io.LimitedReader under it apart: ten objects for a Go server's
// answer of three headers. Yet the answers of the upstreams Braid calls
// are nearly all alike: HTTP/1.1, a final status, a few well-formed
// headers and a Content-Length, the whole head in the first read from the
// connection. parseHead takes those from what is already buffered, in
// four objects: one string holding the whole head, of which keys and
// values are parts; the header map (with its slots); and one object
// holding the Response, its body and the values' array. It returns what
// http.ReadResponse would return for the same bytes, down to how the body
// ends (FuzzLeanHead compares the two). A header value kept keeps the
// head's string.
//
// It declines, taking nothing from the reader, and http.ReadResponse reads
// the answer as before, when the head is not whole in the buffer, or is
// anything but the simple case: a protocol other than HTTP/1.1; a status
// below 200 or above 599; a Transfer-Encoding; no Content-Length (unless
// the answer has no body: 204, 304 or the answer to a HEAD), more than one,
// or one that is not a plain number; a line not ending in CRLF; a header
// line continued on the next (obs-fold); a header name that is not a token;
// or a byte in a value or the status text that RFC 9110 does not allow
// there.

// readHead reads the next answer's head from br, as http.ReadResponse
// does: by parseHead when it can, else by http.ReadResponse.
func readHead(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	if br.Buffered() == 0 {
		// A Peek that gets nothing returns the read's error, which bufio
		// then forgets: http.ReadResponse would not see it but read
		// again. Return it as http.ReadResponse would have.
		if _, err := br.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	if resp := parseHead(br, req); resp != nil {
		return resp, nil
	}
	return http.ReadResponse(br, req)
}

// headScan is what scanHead learns of a head that parseHead can take.
type headScan struct {
	end    int   // the head's length, its blank line included
	lines  int   // header lines
	length int64 // the Content-Length, -1 if there is none
	close  bool  // a Connection header has the "close" option
}

// headResponse holds a Response, its body and the values of a header of
// up to len(vals) lines in one allocation: four lines cover a Go server's
// answer (Content-Type, Date, Content-Length) and more than one object
// would; the array costs 16 bytes over a separate one of three values.
type headResponse struct {
	resp http.Response
	body headBody
	vals [4]string
}

// parseHead returns the answer to req whose head is buffered in br, with
// the head taken from br, or nil, having taken nothing, if the head is not
// whole in the buffer or not the simple case (see above).
func parseHead(br *bufio.Reader, req *http.Request) *http.Response {
	buf, _ := br.Peek(br.Buffered())
	hs, ok := scanHead(buf)
	if !ok {
		return nil
	}
	isHead := req != nil && req.Method == http.MethodHead
	code := buf[len("HTTP/1.1 "):len("HTTP/1.1 200")]
	noBody := isHead || string(code) == "204" || string(code) == "304"
	if !noBody && hs.length < 0 {
		return nil // the body ends when the connection does
	}

	s := string(buf[:hs.end-2]) // the lines, each ending in CRLF
	status, s, _ := strings.Cut(s, "\r\n")
	hr := &headResponse{resp: http.Response{
		Status:     status[len("HTTP/1.1 "):],
		StatusCode: int(status[9]-'0')*100 + int(status[10]-'0')*10 + int(status[11]-'0'),
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Close:      hs.close,
		Request:    req,
	}}
	resp := &hr.resp
	var vals []string
	if hs.lines <= len(hr.vals) {
		vals = hr.vals[:hs.lines]
	} else {
		vals = make([]string, hs.lines)
	}
	resp.Header = parseHeader(s, vals)
	if hs.close {
		delete(resp.Header, "Connection") // as http.ReadResponse does on HTTP/1.1
	}
	if p := resp.Header["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := resp.Header["Cache-Control"]; !ok {
			resp.Header["Cache-Control"] = []string{"no-cache"}
		}
	}
	switch {
	case isHead: // the length the body would have had, if any (-1)
		resp.ContentLength = hs.length
		resp.Body = http.NoBody
	case noBody, hs.length == 0:
		resp.Body = http.NoBody
	default:
		resp.ContentLength = hs.length
		hr.body = headBody{r: br, n: hs.length, close: hs.close}
		resp.Body = &hr.body
	}
	br.Discard(hs.end)
	return resp
}

// parseHeader makes the header of lines, header lines that scanHead
// checked, each ending in CRLF, with vals, one per line, to hold the
// values. Keys and values are parts of lines unless a key needs
// canonicalizing.
func parseHeader(lines string, vals []string) http.Header {
	h := make(http.Header, len(vals))
	for i := 0; lines != ""; i++ {
		var line string
		line, lines, _ = strings.Cut(lines, "\r\n")
		k, v, _ := strings.Cut(line, ":")
		if !canonicalKey(k) {
			k = http.CanonicalHeaderKey(k)
		}
		v = trimOWS(v)
		if vv, ok := h[k]; ok {
			h[k] = append(vv, v)
			continue
		}
		vals[i] = v
		h[k] = vals[i : i+1 : i+1]
	}
	return h
}

// scanHead checks, allocating nothing, that buf begins with a whole head
// whose lines parseHead can take, and learns what parseHead needs to know
// of it. Whether the answer may lack a Content-Length is parseHead's to
// decide.
func scanHead(buf []byte) (hs headScan, ok bool) {
	line, rest, ok := cutLine(buf)
	if !ok || !statusLine(line) {
		return hs, false
	}
	hs.length = -1
	for {
		if line, rest, ok = cutLine(rest); !ok {
			return hs, false
		}
		if len(line) == 0 {
			break
		}
		k, v, ok := headerLine(line)
		if !ok {
			return hs, false
		}
		switch {
		case equalFoldASCII(k, "Content-Length"):
			if hs.length >= 0 {
				return hs, false
			}
			if hs.length, ok = parseLength(v); !ok {
				return hs, false
			}
		case equalFoldASCII(k, "Transfer-Encoding"):
			return hs, false
		case equalFoldASCII(k, "Connection"):
			hs.close = hs.close || hasToken(v, "close")
		}
		hs.lines++
	}
	hs.end = len(buf) - len(rest)
	return hs, true
}

// cutLine cuts b's first line, which must end in CRLF, from the rest.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 1 || b[nl-1] != '\r' {
		return nil, nil, false
	}
	return b[:nl-1], b[nl+1:], true
}

// statusLine reports whether line, without its CRLF, is an HTTP/1.1
// status line with a final status parseHead takes, 200 to 599, and a
// reason of valid bytes.
func statusLine(line []byte) bool {
	if len(line) < len("HTTP/1.1 200") || string(line[:9]) != "HTTP/1.1 " ||
		line[9] < '2' || line[9] > '5' || !isDigit(line[10]) || !isDigit(line[11]) {
		return false
	}
	if len(line) > 12 && line[12] != ' ' {
		return false
	}
	return validHeaderValue(line[12:])
}

// headerLine splits line, a header line without its CRLF, into its name
// and its value (with spaces and tabs around it trimmed), reporting
// whether the name is a token and the value's bytes are valid.
func headerLine(line []byte) (k, v []byte, ok bool) {
	k, v, ok = bytes.Cut(line, []byte(":"))
	if !ok || len(k) == 0 || !validHeaderValue(v) {
		return nil, nil, false
	}
	for _, c := range k {
		if !tokenBytes[c] {
			return nil, nil, false
		}
	}
	return k, trimOWS(v), true
}

// parseLength parses a Content-Length value as net/http does: decimal
// digits, at most 2⁶³-1.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// hasToken reports whether v, a comma-separated list, has token among its
// elements, ASCII case-insensitively, as net/http's test for
// "Connection: close".
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var elem []byte
		elem, v, _ = bytes.Cut(v, []byte(","))
		if equalFoldASCII(trimOWS(elem), token) {
			return true
		}
	}
	return false
}

// equalFoldASCII reports whether b and s are equal, ASCII
// case-insensitively.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lowerASCII(b[i]) != lowerASCII(s[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// tokenBytes tells which bytes may be in a token, such as a header name.
var tokenBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = validToken(string(rune(c)))
	}
	return t
}()

// trimOWS returns s without the spaces and tabs around it.
func trimOWS[S []byte | string](s S) S {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// canonicalKey reports whether k, a token, is in canonical form: each
// letter upper case at the start or after a hyphen, lower case elsewhere.
func canonicalKey(k string) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// headBody is the body of an answer parseHead read: the Content-Length's
// n bytes from r, read as net/http's body of such an answer reads: an
// early end is io.ErrUnexpectedEOF, and the last bytes come with io.EOF.
type headBody struct {
	r      *bufio.Reader
	n      int64 // bytes of the body not yet read
	close  bool  // the connection closes after the answer: Close need not drain
	sawEOF bool
	closed bool
}

func (b *headBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.sawEOF {
		return 0, io.EOF
	}
	if b.n <= 0 {
		b.sawEOF = true
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	switch {
	case err == io.EOF:
		b.sawEOF = true
		if b.n > 0 {
			err = io.ErrUnexpectedEOF
		}
	case err == nil && n > 0 && b.n == 0:
		b.sawEOF = true
		err = io.EOF
	}
	return n, err
}

// Close reads the rest of the body, unless the connection is to close, as
// net/http's does.
func (b *headBody) Close() error {
	if b.closed {
		return nil
	}
	var err error
	if !b.sawEOF && !b.close {
		_, err = io.Copy(io.Discard, b)
	}
	b.closed = true
	return err
}
