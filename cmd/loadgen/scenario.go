package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// scenarioNames lists the scenarios in the order -scenario all runs them.
var scenarioNames = []string{"dashboard", "dashboard-naive", "owp-batch", "owp-naive"}

// maxBody bounds every response body the harness reads.
const maxBody = 32 << 20

// scenario is one kind of client request.
type scenario struct {
	name string
	// naive is true when the client makes the upstream calls itself, so
	// the calls returned by do are the upstream calls of the request.
	naive bool
	// do makes one request for user id and returns how many HTTP calls
	// it made, including a failed one.
	do func(ctx context.Context, id int) (calls int, err error)
}

// newScenario returns the scenario called name, calling t through c, or
// nil if no scenario has that name (see scenarioNames).
func newScenario(name string, c *caller, t targets) *scenario {
	switch name {
	case "dashboard":
		return &scenario{name: name, do: func(ctx context.Context, id int) (int, error) {
			return 1, c.get(ctx, t.gateway+"/api/users/"+strconv.Itoa(id)+"/dashboard", nil)
		}}
	case "dashboard-naive":
		return &scenario{name: name, naive: true, do: func(ctx context.Context, id int) (int, error) {
			return c.dashboardNaive(ctx, t, strconv.Itoa(id))
		}}
	case "owp-batch":
		return &scenario{name: name, do: func(ctx context.Context, id int) (int, error) {
			return 1, c.get(ctx, t.gateway+"/api/users/"+strconv.Itoa(id)+"/orders-with-products", nil)
		}}
	case "owp-naive":
		return &scenario{name: name, naive: true, do: func(ctx context.Context, id int) (int, error) {
			return c.ordersWithProductsNaive(ctx, t, strconv.Itoa(id))
		}}
	}
	return nil
}

// dashboardNaive makes the four calls of the dashboard one after another,
// as a naive mobile client would.
func (c *caller) dashboardNaive(ctx context.Context, t targets, id string) (int, error) {
	urls := [...]string{
		t.users + "/users/" + id,
		t.orders + "/users/" + id + "/orders?limit=5",
		t.notifications + "/users/" + id + "/notifications?unread=true",
		t.recommendations + "/users/" + id + "/recommendations?limit=5",
	}
	for i, u := range urls {
		if err := c.get(ctx, u, nil); err != nil {
			return i + 1, err
		}
	}
	return len(urls), nil
}

// ordersWithProductsNaive fetches the user's orders, then every line
// item's product one at a time: 1 + items calls, the N+1 pattern.
func (c *caller) ordersWithProductsNaive(ctx context.Context, t targets, id string) (int, error) {
	var orders []struct {
		Items []struct {
			ProductID int64 `json:"product_id"`
		} `json:"items"`
	}
	if err := c.get(ctx, t.orders+"/users/"+id+"/orders", &orders); err != nil {
		return 1, err
	}
	calls := 1
	for _, o := range orders {
		for _, it := range o.Items {
			calls++
			if err := c.get(ctx, t.products+"/products/"+strconv.FormatInt(it.ProductID, 10), nil); err != nil {
				return calls, err
			}
		}
	}
	return calls, nil
}

// caller makes the harness's HTTP calls through one tuned client.
type caller struct {
	client *http.Client
}

// newCaller returns a caller whose own transport keeps up to concurrency
// idle connections per host, never uses a proxy, never follows redirects
// and dials loopback addresses only.
func newCaller(concurrency int, timeout time.Duration) *caller {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: loopbackOnly}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConns:        0, // no total limit: per host is the bound
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: timeout,
	}
	return &caller{client: &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is a non-2xx answer
		},
	}}
}

// close closes the caller's idle connections.
func (c *caller) close() {
	c.client.CloseIdleConnections()
}

// loopbackOnly is a net.Dialer Control function that refuses to connect
// to any address that is not loopback, whatever a name resolved to.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: dial %s", ErrNotLoopback, address)
	}
	return nil
}

// get GETs url, decodes a 2xx JSON body into into when it is not nil, and
// always reads the body to the end and closes it, so the connection is
// reused. A non-2xx status is a *statusError.
func (c *caller) get(ctx context.Context, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := &io.LimitedReader{R: resp.Body, N: maxBody + 1}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, body)
		return &statusError{URL: url, Code: resp.StatusCode}
	}
	if into != nil {
		if err := json.NewDecoder(body).Decode(into); err != nil {
			return &bodyError{URL: url, Err: err}
		}
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if body.N == 0 {
		return &bodyError{URL: url, Err: fmt.Errorf("body larger than %d bytes", maxBody)}
	}
	return nil
}

// statusError is a response with a non-2xx status.
type statusError struct {
	URL  string
	Code int
}

// Error describes the call and its status.
func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d %s", e.URL, e.Code, http.StatusText(e.Code))
}

// bodyError is a 2xx response whose body could not be used.
type bodyError struct {
	URL string
	Err error
}

// Error describes the call and what was wrong with the body.
func (e *bodyError) Error() string { return fmt.Sprintf("GET %s: bad body: %v", e.URL, e.Err) }

// Unwrap returns the underlying error.
func (e *bodyError) Unwrap() error { return e.Err }

// errorKind names the kind of err, to count errors by kind and print the
// first of each.
func errorKind(err error) string {
	var se *statusError
	var be *bodyError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return "HTTP " + strconv.Itoa(se.Code)
	case errors.As(err, &be):
		return "bad body"
	case errors.Is(err, ErrNotLoopback):
		return "not loopback"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection reset"
	}
	return "transport"
}
