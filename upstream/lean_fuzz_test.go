package upstream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// FuzzLeanResponse: whatever bytes an upstream answers with (it then
// closes the connection), a call on the lean transport returns a 2xx
// answer with a JSON body or an *Error whose cause is typed — a
// *StatusError, ErrInvalidJSON, ErrTooLarge, ErrTruncated, or a transport
// error as a *url.Error — without panicking or waiting for its deadline,
// and leaves no connection checked out of the pool.
func FuzzLeanResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nX-Trailer: t\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 4\r\n\r\nbusy",
		"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{}",
		"HTTP/1.0 200 OK\r\n\r\n[1,2,3]",
		"HTTP/1.1 200 OK\r\n\r\n<html>not json</html>",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("x", 4000) + "\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n{}",
		"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",
		"garbage",
		"",
	} {
		f.Add([]byte(seed))
	}

	var (
		mu     sync.Mutex // guards answer
		answer []byte
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
					return
				}
				mu.Lock()
				b := answer
				mu.Unlock()
				conn.Write(b)
			})
		}
	})
	f.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	c, err := New("test", Config{URL: "http://" + ln.Addr().String(), Transport: transportLean, MaxResponseBytes: 1 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(c.Close)
	tr := c.transport.(*leanTransport)

	f.Fuzz(func(t *testing.T, raw []byte) {
		mu.Lock()
		answer = raw
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.Fetch(ctx, &Request{Path: "/x"})
		if ctx.Err() != nil {
			t.Fatalf("Fetch() waited for its deadline: %v", err)
		}
		if err == nil {
			if resp.Status < 200 || resp.Status > 299 || !json.Valid(resp.Body) {
				t.Fatalf("Fetch() = %d %q, want a 2xx JSON answer", resp.Status, resp.Body)
			}
		} else {
			var (
				e  *Error
				se *StatusError
				ue *url.Error
			)
			if !errors.As(err, &e) {
				t.Fatalf("Fetch() error = %v (%T), want an *Error", err, err)
			}
			if !errors.As(err, &se) && !errors.As(err, &ue) && !errors.Is(err, ErrInvalidJSON) &&
				!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("Fetch() error = %v, whose cause is not a typed one", err)
			}
		}
		if open, idle, waiters := poolCounts(tr); open != idle || waiters != 0 {
			t.Fatalf("pool after the call: %d open, %d idle, %d waiting: a connection is still checked out", open, idle, waiters)
		}
	})
}
