package upstream

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// TestParseHead: which answers the fast path takes, and that for those it
// takes, the Response is http.ReadResponse's.
func TestParseHead(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		method string // "": GET
		fast   bool
	}{
		{name: "Go server answer", raw: goAnswer, fast: true},
		{name: "pipelined second answer", raw: goAnswer + goAnswer, fast: true},
		{name: "Content-Length 0", raw: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", fast: true},
		{name: "status without reason", raw: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}", fast: true},
		{name: "error status", raw: "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 4\r\n\r\nbusy", fast: true},
		{name: "lowercase names", raw: "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nx-envoy-upstream-service-time: 3\r\n\r\n{}", fast: true},
		{name: "spaces and tabs in values", raw: "HTTP/1.1 200 OK\r\nX-Spaces:  a  b \t\r\nX-Tab:\tc\r\nX-Empty:\r\nContent-Length: 2\r\n\r\n{}", fast: true},
		{name: "repeated name", raw: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 2\r\n\r\n{}", fast: true},
		{name: "Connection: close", raw: "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\n{}", fast: true},
		{name: "Pragma: no-cache", raw: "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\n{}", fast: true},
		{name: "obs-text in value", raw: "HTTP/1.1 200 OK\r\nX-Obs: caf\xc3\xa9\r\nContent-Length: 2\r\n\r\n{}", fast: true},
		{name: "truncated body", raw: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":", fast: true},
		{name: "largest Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n{}", fast: true},
		{name: "204 without Content-Length", raw: "HTTP/1.1 204 No Content\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n\r\n", fast: true},
		{name: "304 with Content-Length", raw: "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\nContent-Length: 40\r\n\r\n", fast: true},
		{name: "HEAD with Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", method: http.MethodHead, fast: true},
		{name: "HEAD without Content-Length", raw: "HTTP/1.1 200 OK\r\nDate: x\r\n\r\n", method: http.MethodHead, fast: true},

		{name: "HTTP/1.0", raw: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"},
		{name: "chunked with Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"},
		{name: "no Content-Length", raw: "HTTP/1.1 200 OK\r\n\r\n[1,2,3]"},
		{name: "same Content-Length twice", raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "conflicting Content-Lengths", raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 3\r\n\r\n{}"},
		{name: "negative Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}"},
		{name: "empty Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n{}"},
		{name: "Content-Length too large", raw: "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n{}"},
		{name: "100 Continue", raw: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "101", raw: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"},
		{name: "status 600", raw: "HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "four-digit status", raw: "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "two spaces before status", raw: "HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "obs-fold", raw: "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "first header line indented", raw: "HTTP/1.1 200 OK\r\n X-Lead: a\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "bare LF", raw: "HTTP/1.1 200 OK\nContent-Length: 2\n\n{}"},
		{name: "one bare LF", raw: "HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 2\r\n\r\n{}"},
		{name: "bare CR in value", raw: "HTTP/1.1 200 OK\r\nX-Cr: a\rb\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "NUL in value", raw: "HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "space in name", raw: "HTTP/1.1 200 OK\r\nX-Bad Name: a\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "space before colon", raw: "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}"},
		{name: "empty name", raw: "HTTP/1.1 200 OK\r\n: a\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "no colon", raw: "HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "head not whole", raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"},
		{name: "head larger than the buffer", raw: "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("x", 5000) + "\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "garbage", raw: "garbage"},
		{name: "nothing", raw: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(cmp.Or(tt.method, http.MethodGet), "http://upstream/x", nil)
			br1, br2 := shapedReader([]byte(tt.raw), 0), shapedReader([]byte(tt.raw), 0)
			br1.Peek(1)
			before := bytes.Clone(buffered(br1))
			resp1 := parseHead(br1, req)
			if got := resp1 != nil; got != tt.fast {
				t.Fatalf("parseHead() took the answer: %v, want %v", got, tt.fast)
			}
			var err1 error
			if resp1 == nil {
				if got := buffered(br1); !bytes.Equal(got, before) {
					t.Fatalf("parseHead() declined but left %q buffered of %q", got, before)
				}
				resp1, err1 = http.ReadResponse(br1, req)
			}
			resp2, err2 := http.ReadResponse(br2, req)
			sameAnswer(t, resp1, err1, br1, resp2, err2, br2, false)
		})
	}
}

// TestReadHeadReadError: a read that fails before any byte of the answer
// fails readHead as it fails http.ReadResponse (which Peek would otherwise
// hide from it), and readHead reads heads that arrive a byte at a time.
func TestReadHeadReadError(t *testing.T) {
	boom := errors.New("boom")
	for _, src := range []struct {
		name string
		r    func() io.Reader
	}{
		{"EOF", func() io.Reader { return strings.NewReader("") }},
		{"error", func() io.Reader { return iotest.ErrReader(boom) }},
		{"error after a 1xx", func() io.Reader {
			return io.MultiReader(strings.NewReader("HTTP/1.1 100 Continue\r\n\r\n"), iotest.ErrReader(boom))
		}},
	} {
		t.Run(src.name, func(t *testing.T) {
			_, err := readResponse(bufio.NewReader(src.r()), nil)
			br := bufio.NewReader(src.r())
			var want error
			for want == nil { // past the 1xx
				_, want = http.ReadResponse(br, nil)
			}
			if err != want {
				t.Errorf("readResponse() error = %v, want %v", err, want)
			}
		})
	}
	resp, err := readHead(bufio.NewReader(iotest.OneByteReader(strings.NewReader(goAnswer))), nil)
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 14 {
		t.Errorf("readHead() of a head arriving byte by byte = %v, %v", resp, err)
	}
}

// TestParseHeadAllocs counts the allocations of the fast path for a
// typical Go server's answer: the head's string, the header map and its
// slots, and the Response with its body and the values' array
// (http.ReadResponse makes ten).
func TestParseHeadAllocs(t *testing.T) {
	const want = 4
	req, _ := http.NewRequest(http.MethodGet, "http://upstream/x", nil)
	src := strings.NewReader(goAnswer)
	br := bufio.NewReaderSize(src, leanBufferSize)
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(goAnswer)
		br.Reset(src)
		br.Peek(1)
		if resp := parseHead(br, req); resp == nil {
			t.Fatal("parseHead() declined a typical answer")
		}
	})
	if allocs > want {
		t.Errorf("parseHead() made %v allocations, want at most %d", allocs, want)
	}
}

// BenchmarkReadHead compares reading a typical Go server's answer head
// with parseHead and with http.ReadResponse.
func BenchmarkReadHead(b *testing.B) {
	req, _ := http.NewRequest(http.MethodGet, "http://upstream/x", nil)
	for _, bc := range []struct {
		name string
		read func(*bufio.Reader, *http.Request) (*http.Response, error)
	}{
		{"parseHead", readHead},
		{"ReadResponse", http.ReadResponse},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := strings.NewReader(goAnswer)
			br := bufio.NewReaderSize(src, leanBufferSize)
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(goAnswer)
				br.Reset(src)
				if _, err := bc.read(br, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
