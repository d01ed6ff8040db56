package upstream

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/braidgw/braid/observability"
)

// stackAllocBudget is what one successful call may allocate on the
// gateway's side through the default stack with metrics on (observe,
// tries, breaker, bulkhead, memory budget, client, lean transport): the
// request, its URL and headers, the answer's head and headers, its body,
// the interrupt registered with the context, the memory reservation (which
// is also the try's context). The call's outcome, a clean exchange's end
// and the budget header's value allocate nothing, nor does a query the
// caller encoded once (Request.EncodedQuery): 21 before those.
const stackAllocBudget = 15

// TestStackFetchAllocations: one successful call through the default
// stack, on the lean transport, stays within stackAllocBudget. The
// upstream is rawUpstream, which allocates nothing per request, so that
// only the client's allocations are counted.
func TestStackFetchAllocations(t *testing.T) {
	const body = `{"id":1,"name":"Ada"}`
	addr := rawUpstream(t, body)
	tel, err := observability.New(context.Background(), observability.Config{}, observability.Build{Service: "test", Version: "1"}, observability.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	fetch, _ := stackWith(t, Config{URL: "http://" + addr, Transport: "lean"}, SetOptions{Telemetry: tel})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // a route's deadline: the budget header's values recur
	defer cancel()
	q := url.Values{"limit": {"5"}}
	req := &Request{Path: "/users/1", Query: q, EncodedQuery: q.Encode()} // as aggregate's constant queries
	call := func() {
		resp, err := fetch(ctx, req)
		if err != nil || string(resp.Body) != body {
			t.Fatalf("fetch = %v, %v", resp, err)
		}
	}
	call() // dial once
	allocs := testing.AllocsPerRun(200, call)
	t.Logf("%.0f allocations per call (budget %d)", allocs, stackAllocBudget)
	if allocs > stackAllocBudget {
		t.Errorf("a call through the default stack costs %.0f allocations, over its budget of %d (see stackAllocBudget)", allocs, stackAllocBudget)
	}
}

// rawUpstream serves body as JSON to every request head it reads, on
// every connection, allocating nothing per request; it stops when the
// test ends. It returns its address.
func rawUpstream(t *testing.T, body string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 8<<10)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(answer); err != nil {
							return
						}
						n = copy(buf, buf[i+4:n])
					}
					if n == len(buf) {
						return // a head larger than the buffer: not for this test
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
