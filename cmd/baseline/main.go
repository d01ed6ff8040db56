// Command baseline is the aggregator any Go developer could write in an
// afternoon, kept as the yardstick Braid is measured against
// (cmd/sidebyside): a net/http server, one pooled http.Client, a goroutine
// per downstream call joined by a sync.WaitGroup, the answers spliced into
// one JSON document without decoding them, and a 2 s deadline.
//
//	baseline -listen 127.0.0.1:8081 -users http://127.0.0.1:9101 -orders http://127.0.0.1:9102 \
//	         -notifications http://127.0.0.1:9104 -recommendations http://127.0.0.1:9105
//
// It serves GET /api/users/{id}/dashboard with the same calls as the
// dashboard route of gateway.yaml: user and orders required (an upstream
// 404 is a 404, a missed deadline a 504, anything else a 502),
// notifications and recommendations optional (null when they fail).
// -fanout N makes N calls, the four repeated in turn and named user,
// orders, …, user_2, orders_2, …. GET /api/users/{id}/orders-with-products
// is the batch join written the usual way: decode the orders, collect the
// distinct product ids, fetch them 100 per request, 4 requests at once,
// and encode the orders again with each item's product (3 s deadline).
//
// It prints "baseline: serving on URL" and serves until SIGINT or SIGTERM.
// It has no retries, breaker, cache, metrics, logs or tracing: that is
// what "baseline" means.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// maxBody bounds each upstream answer, as Braid's default does.
const maxBody = 8 << 20

// call is one downstream call of the dashboard: GET base/users/{id}+suffix.
type call struct {
	name, base, suffix string
	optional           bool
}

// aggregator serves the two composite endpoints.
type aggregator struct {
	client       *http.Client
	calls        []call        // the dashboard's
	timeout      time.Duration // the dashboard's deadline
	orders       string        // orders service base URL
	products     string        // products service base URL
	batchTimeout time.Duration // orders-with-products' deadline
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run serves until ctx ends and returns the exit status: 2 for bad flags,
// 1 if serving failed.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a, listen, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "baseline: %v\n", err)
		return 2
	}
	if err := serve(ctx, listen, a, stdout); err != nil {
		fmt.Fprintf(stderr, "baseline: %v\n", err)
		return 1
	}
	return 0
}

// parseFlags returns the aggregator the flags describe and the listen
// address.
func parseFlags(args []string, stderr io.Writer) (*aggregator, string, error) {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "listen address")
	users := fs.String("users", "http://127.0.0.1:9101", "users service base URL")
	orders := fs.String("orders", "http://127.0.0.1:9102", "orders service base URL")
	products := fs.String("products", "http://127.0.0.1:9103", "products service base URL")
	notifications := fs.String("notifications", "http://127.0.0.1:9104", "notifications service base URL")
	recommendations := fs.String("recommendations", "http://127.0.0.1:9105", "recommendations service base URL")
	fanout := fs.Int("fanout", 4, "downstream calls per dashboard (the four, repeated)")
	idle := fs.Int("max-idle-per-host", 64, "idle connections kept per upstream (Braid's default)")
	timeout := fs.Duration("timeout", 2*time.Second, "the dashboard's deadline")
	if err := fs.Parse(args); err != nil {
		return nil, "", err
	}
	if *fanout < 1 || *idle < 1 || *timeout <= 0 {
		return nil, "", errors.New("-fanout, -max-idle-per-host and -timeout must be positive")
	}
	a := &aggregator{client: newClient(*idle), timeout: *timeout, orders: *orders, products: *products, batchTimeout: 3 * time.Second}
	dashboard := []call{{"user", *users, "", false}, {"orders", *orders, "/orders?limit=5", false},
		{"notifications", *notifications, "/notifications?unread=true", true},
		{"recommendations", *recommendations, "/recommendations?limit=5", true}}
	for i := range *fanout {
		c := dashboard[i%len(dashboard)]
		if i >= len(dashboard) {
			c.name += "_" + strconv.Itoa(i/len(dashboard)+1)
		}
		a.calls = append(a.calls, c)
	}
	return a, *listen, nil
}

// newClient returns the one client every call shares: its own transport,
// pooled, with dial and header timeouts (never http.DefaultClient).
func newClient(idlePerHost int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          0, // no total cap: per host is the bound
		MaxIdleConnsPerHost:   idlePerHost,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
	}}
}

// serve serves the dashboard on addr until ctx ends, then shuts down.
func serve(ctx context.Context, addr string, a *aggregator, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	fmt.Fprintf(stdout, "baseline: serving on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-errc
	a.client.CloseIdleConnections()
	return err
}

// handler routes the two endpoints.
func (a *aggregator) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/users/{id}/dashboard", a.dashboard)
	mux.HandleFunc("GET /api/users/{id}/orders-with-products", a.ordersWithProducts)
	return mux
}

// dashboard makes every call at once, waits for all, and splices the
// answers into {"user":…,"orders":…,…}.
func (a *aggregator) dashboard(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "id must be a positive integer")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	path := "/users/" + strconv.Itoa(id)
	bodies := make([][]byte, len(a.calls))
	errs := make([]error, len(a.calls))
	var wg sync.WaitGroup
	for i, c := range a.calls {
		wg.Go(func() { bodies[i], errs[i] = a.get(ctx, c.base+path+c.suffix) })
	}
	wg.Wait()
	size := 2
	for i, c := range a.calls {
		if errs[i] != nil && !c.optional {
			fail(w, c.name, errs[i])
			return
		}
		if errs[i] != nil {
			bodies[i] = []byte("null")
		}
		size += len(c.name) + 4 + len(bodies[i])
	}
	doc := append(make([]byte, 0, size), '{')
	for i, c := range a.calls {
		if i > 0 {
			doc = append(doc, ',')
		}
		doc = append(doc, '"')
		doc = append(doc, c.name...)
		doc = append(doc, '"', ':')
		doc = append(doc, bodies[i]...)
	}
	doc = append(doc, '}')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
	_, _ = w.Write(doc)
}

// statusError is an upstream answer other than 200.
type statusError struct{ code int }

func (e *statusError) Error() string { return "upstream answered " + strconv.Itoa(e.code) }

// get returns the body of a 200 answer to GET url, if it is valid JSON.
func (a *aggregator) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	switch {
	case err != nil:
		return nil, err
	case resp.StatusCode != http.StatusOK:
		return nil, &statusError{resp.StatusCode}
	case len(body) > maxBody:
		return nil, errors.New("upstream answer too large")
	case !json.Valid(body):
		return nil, errors.New("upstream answer is not JSON")
	}
	return body, nil
}

// fail answers for a required call that failed: 404 for an upstream 404,
// 504 for the deadline, 502 otherwise.
func fail(w http.ResponseWriter, name string, err error) {
	status := http.StatusBadGateway
	var se *statusError
	switch {
	case errors.As(err, &se) && se.code == http.StatusNotFound:
		status = http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	}
	writeError(w, status, "call "+name+": "+err.Error())
}

func writeError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
