package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// FuzzLeanHead: whatever bytes an answer is made of, read in whatever
// pieces and through whatever buffer size, parseHead either takes nothing
// or returns what http.ReadResponse returns for the same bytes: the same
// status, protocol, header, framing and body, read to the same end with
// the same error, leaving the same bytes behind. When it takes nothing,
// http.ReadResponse then reads the answer from the untouched reader as if
// parseHead had not looked.
func FuzzLeanHead(f *testing.F) {
	for _, seed := range leanHeadSeeds {
		f.Add([]byte(seed), false, uint16(0))
	}
	f.Add([]byte(goAnswer), true, uint16(0))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), true, uint16(0))
	f.Add([]byte(goAnswer), false, uint16(7))              // read 7 bytes at a time
	f.Add([]byte(goAnswer), false, uint16(3<<8))           // a 512-byte buffer
	f.Add([]byte(goAnswer+goAnswer), false, uint16(1<<11)) // closed before being read
	f.Add([]byte(goAnswer[:len(goAnswer)-3]), false, uint16(1<<11))

	f.Fuzz(func(t *testing.T, raw []byte, head bool, shape uint16) {
		req, _ := http.NewRequest(http.MethodGet, "http://upstream/x", nil)
		if head {
			req.Method = http.MethodHead
		}
		closeFirst := shape&(1<<11) != 0
		br1, br2 := shapedReader(raw, shape), shapedReader(raw, shape)

		br1.Peek(1) // as readHead does
		before := bytes.Clone(buffered(br1))
		resp1 := parseHead(br1, req)
		fast := resp1 != nil
		var err1 error
		if !fast {
			if got := buffered(br1); !bytes.Equal(got, before) {
				t.Fatalf("parseHead declined but left %q buffered of %q", got, before)
			}
			resp1, err1 = http.ReadResponse(br1, req)
		}
		resp2, err2 := http.ReadResponse(br2, req)
		if fast && err2 != nil {
			t.Fatalf("parseHead took an answer http.ReadResponse refuses: %v", err2)
		}
		sameAnswer(t, resp1, err1, br1, resp2, err2, br2, closeFirst)
	})
}

// goAnswer is an answer as a Go server writes it for a small JSON body.
const goAnswer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 14\r\n\r\n{\"id\":1,\"a\":2}"

// leanHeadSeeds are the seed answers of FuzzLeanHead, the fast path's
// and the fallback's.
var leanHeadSeeds = []string{
	goAnswer,
	goAnswer + goAnswer, // pipelined: a second answer already buffered
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":",
	"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.0 200 OK\r\n\r\n[1,2,3]",
	"HTTP/1.1 200 OK\r\n\r\n[1,2,3]",
	"HTTP/1.1 204 No Content\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\nContent-Length: 40\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\n X-Lead: a\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("x", 5000) + "\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nx-envoy-upstream-service-time: 3\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nX-Spaces:  a  b \t\r\nX-Tab:\tc\r\nX-Empty:\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nX-Obs: caf\xc3\xa9\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nX-Cr: a\rb\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\n{}",
	"HTTP/1.1 200 OK\r\nX-Bad Name: a\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\n: a\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 4\r\n\r\nbusy",
	"HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
	"garbage",
	"",
}

// shapedReader reads raw through a buffer of 4096 bytes, or fewer as
// shape's bits 8-10 say, from a source that gives at most shape's low
// byte of bytes per read (any number if 0).
func shapedReader(raw []byte, shape uint16) *bufio.Reader {
	var src io.Reader = bytes.NewReader(raw)
	if n := int(shape & 0xff); n > 0 {
		src = &pieceReader{r: src, n: n}
	}
	return bufio.NewReaderSize(src, 4096>>(shape>>8&7))
}

// pieceReader gives at most n bytes per Read.
type pieceReader struct {
	r io.Reader
	n int
}

func (r *pieceReader) Read(p []byte) (int, error) {
	if len(p) > r.n {
		p = p[:r.n]
	}
	return r.r.Read(p)
}

func buffered(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return b
}

// sameAnswer fails t unless the two reads of an answer, resp1 or err1
// from br1 and resp2 or err2 from br2, are alike, down to their bodies
// (read to their end, or closed first if closeFirst) and what is left
// in br1 and br2.
func sameAnswer(t *testing.T, resp1 *http.Response, err1 error, br1 *bufio.Reader,
	resp2 *http.Response, err2 error, br2 *bufio.Reader, closeFirst bool) {
	t.Helper()
	if !sameErr(err1, err2) {
		t.Fatalf("errors differ: %v and %v", err1, err2)
	}
	if err1 != nil {
		return
	}
	type head struct {
		Status                 string
		StatusCode             int
		Proto                  string
		ProtoMajor, ProtoMinor int
		Header                 http.Header
		ContentLength          int64
		TransferEncoding       []string
		Close, Uncompressed    bool
		Trailer                http.Header
		Request                *http.Request
		NoBody                 bool
	}
	h := func(r *http.Response) head {
		return head{r.Status, r.StatusCode, r.Proto, r.ProtoMajor, r.ProtoMinor, r.Header, r.ContentLength,
			r.TransferEncoding, r.Close, r.Uncompressed, r.Trailer, r.Request, r.Body == http.NoBody}
	}
	if h1, h2 := h(resp1), h(resp2); !reflect.DeepEqual(h1, h2) {
		t.Fatalf("heads differ:\n%+v\n%+v", h1, h2)
	}
	if closeFirst {
		if e1, e2 := resp1.Body.Close(), resp2.Body.Close(); !sameErr(e1, e2) {
			t.Fatalf("Body.Close() = %v and %v", e1, e2)
		}
	}
	b1, e1 := io.ReadAll(resp1.Body)
	b2, e2 := io.ReadAll(resp2.Body)
	if !bytes.Equal(b1, b2) || !sameErr(e1, e2) {
		t.Fatalf("bodies differ: %q, %v and %q, %v", b1, e1, b2, e2)
	}
	var p [1]byte
	n1, e1 := resp1.Body.Read(p[:])
	n2, e2 := resp2.Body.Read(p[:])
	if n1 != n2 || !sameErr(e1, e2) {
		t.Fatalf("Body.Read() after the end = %d, %v and %d, %v", n1, e1, n2, e2)
	}
	if e1, e2 := resp1.Body.Close(), resp2.Body.Close(); !sameErr(e1, e2) {
		t.Fatalf("Body.Close() = %v and %v", e1, e2)
	}
	if b1, b2 := buffered(br1), buffered(br2); !bytes.Equal(b1, b2) {
		t.Fatalf("left buffered: %q and %q", b1, b2)
	}
	r1, e1 := io.ReadAll(br1)
	r2, e2 := io.ReadAll(br2)
	if !bytes.Equal(r1, r2) || !sameErr(e1, e2) {
		t.Fatalf("left to read: %q, %v and %q, %v", r1, e1, r2, e2)
	}
}

// sameErr reports whether e1 and e2 are alike: both nil, or saying the
// same (net/http makes a new error for each malformed answer).
func sameErr(e1, e2 error) bool {
	return e1 == e2 || e1 != nil && e2 != nil && e1.Error() == e2.Error()
}
