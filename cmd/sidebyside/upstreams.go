package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// roleEnv, set to roleUpstreams in a child's environment, makes this
// binary (or the test binary, see TestMain) serve the fake upstreams
// instead of running the comparison.
const (
	roleEnv       = "SIDEBYSIDE_ROLE"
	roleUpstreams = "upstreams"
)

// serviceNames are the fake upstream services, one listener each, in the
// order their URLs are printed.
var serviceNames = []string{"users", "orders", "products", "notifications", "recommendations"}

// Static answers of the dashboard's calls: the demo's answers for user 7
// (135, 1341 and 315 bytes; notifications, empty for that user, get two
// made-up ones, 270 bytes). Every user gets the same ones: the fake
// upstreams should cost as little as possible and the same for both sides.
const (
	userBody            = `{"id":7,"name":"Leslie Hopper","email":"leslie.hopper7@example.com","tier":"bronze","country":"SE","created_at":"2024-08-13T09:03:39Z"}`
	ordersBody          = `[{"id":1050,"user_id":7,"status":"delivered","created_at":"2025-05-28T20:29:50Z","total_cents":27295,"items":[{"product_id":294,"quantity":1,"unit_price_cents":3399},{"product_id":55,"quantity":1,"unit_price_cents":13599},{"product_id":380,"quantity":1,"unit_price_cents":1299},{"product_id":44,"quantity":2,"unit_price_cents":4499}]},{"id":1049,"user_id":7,"status":"cancelled","created_at":"2025-05-24T12:01:36Z","total_cents":33736,"items":[{"product_id":58,"quantity":1,"unit_price_cents":9539},{"product_id":263,"quantity":1,"unit_price_cents":3999},{"product_id":187,"quantity":2,"unit_price_cents":10099}]},{"id":1048,"user_id":7,"status":"cancelled","created_at":"2025-05-03T23:36:40Z","total_cents":26495,"items":[{"product_id":121,"quantity":1,"unit_price_cents":14699},{"product_id":241,"quantity":3,"unit_price_cents":2199},{"product_id":172,"quantity":1,"unit_price_cents":5199}]},{"id":1047,"user_id":7,"status":"delivered","created_at":"2025-03-29T10:50:06Z","total_cents":10099,"items":[{"product_id":97,"quantity":1,"unit_price_cents":10099}]},{"id":1046,"user_id":7,"status":"delivered","created_at":"2025-03-04T03:59:50Z","total_cents":46396,"items":[{"product_id":190,"quantity":1,"unit_price_cents":8399},{"product_id":230,"quantity":1,"unit_price_cents":18199},{"product_id":280,"quantity":2,"unit_price_cents":9899}]}]`
	notificationsBody   = `[{"id":9001,"user_id":7,"kind":"order_shipped","text":"Your order 1050 has shipped","read":false,"created_at":"2025-05-29T08:00:00Z"},{"id":9002,"user_id":7,"kind":"price_drop","text":"A product on your list is 20% off","read":false,"created_at":"2025-05-30T10:15:00Z"}]`
	recommendationsBody = `[{"product_id":252,"score":0.91,"reason":"Trending in SE"},{"product_id":74,"score":0.82,"reason":"Popular in beauty"},{"product_id":255,"score":0.78,"reason":"Because you bought Aurora French Press"},{"product_id":355,"score":0.7,"reason":"Popular in home"},{"product_id":8,"score":0.68,"reason":"Trending in SE"}]`
)

// callsPath is where every fake service answers the total number of
// upstream requests served so far (by all services, this one excluded).
const callsPath = "/_calls"

// upstreams is the fake upstream process: static handlers and a counter.
type upstreams struct {
	calls atomic.Int64
	// batchOrders is the orders answer of the batch scenario: -keys line
	// items with distinct product ids 1..keys.
	batchOrders []byte
}

// runUpstreams is the child process's main: it serves the fake services
// on loopback ports of its choosing, prints "upstreams: name=URL …" on
// stdout, and serves until SIGINT or SIGTERM.
func runUpstreams(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("upstreams", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keys := fs.Int("keys", 10, "line items (distinct products) in the batch scenario's orders")
	if err := fs.Parse(args); err != nil || *keys < 1 {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	u := &upstreams{batchOrders: batchOrders(*keys)}
	var servers []*http.Server
	var urls []string
	var wg sync.WaitGroup
	defer wg.Wait()
	code := 0
	for _, name := range serviceNames {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintf(stderr, "upstreams: %v\n", err)
			code = 1
			stop()
			break
		}
		srv := &http.Server{Handler: u.handler(name), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		urls = append(urls, name+"=http://"+ln.Addr().String())
		wg.Go(func() { _ = srv.Serve(ln) })
	}
	if code == 0 {
		fmt.Fprintf(stdout, "upstreams: %s\n", strings.Join(urls, " "))
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(sctx)
	}
	return code
}

// handler serves one fake service.
func (u *upstreams) handler(service string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+callsPath, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, strconv.FormatInt(u.calls.Load(), 10))
	})
	static := func(pattern, body string) {
		b := []byte(body)
		mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) {
			u.calls.Add(1)
			writeJSON(w, b)
		})
	}
	switch service {
	case "users":
		static("GET /users/{id}", userBody)
	case "orders":
		mux.HandleFunc("GET /users/{id}/orders", func(w http.ResponseWriter, r *http.Request) {
			u.calls.Add(1)
			if r.URL.RawQuery == "" { // the batch scenario asks for all orders
				writeJSON(w, u.batchOrders)
				return
			}
			writeJSON(w, []byte(ordersBody))
		})
	case "products":
		mux.HandleFunc("GET /products", u.products)
	case "notifications":
		static("GET /users/{id}/notifications", notificationsBody)
	case "recommendations":
		static("GET /users/{id}/recommendations", recommendationsBody)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}

// products answers GET /products?ids=1,2,… with one product per id.
func (u *upstreams) products(w http.ResponseWriter, r *http.Request) {
	u.calls.Add(1)
	ids := strings.Split(r.URL.Query().Get("ids"), ",")
	b := make([]byte, 0, 112*len(ids)+2)
	b = append(b, '[')
	for i, s := range ids {
		id, err := strconv.Atoi(s)
		if err != nil {
			http.Error(w, "bad id "+strconv.Quote(s), http.StatusBadRequest)
			return
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendProduct(b, id)
	}
	writeJSON(w, append(b, ']'))
}

// appendProduct appends product id's JSON, about 110 bytes like the demo's.
func appendProduct(b []byte, id int) []byte {
	b = strconv.AppendInt(append(b, `{"id":`...), int64(id), 10)
	b = strconv.AppendInt(append(b, `,"name":"Product `...), int64(id), 10)
	b = append(b, `","category":"grocery","price_cents":1299,"currency":"USD","in_stock":true}`...)
	return b
}

// batchOrders returns orders holding keys line items in all, five items
// per order, with product ids 1..keys.
func batchOrders(keys int) []byte {
	b := []byte{'['}
	for o := 0; o*5 < keys; o++ {
		if o > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(append(b, `{"id":`...), int64(1000+o), 10)
		b = append(b, `,"user_id":7,"status":"delivered","created_at":"2025-05-28T20:29:50Z","total_cents":6495,"items":[`...)
		for i := o * 5; i < min(keys, o*5+5); i++ {
			if i > o*5 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(append(b, `{"product_id":`...), int64(i+1), 10)
			b = append(b, `,"quantity":1,"unit_price_cents":1299}`...)
		}
		b = append(b, "]}"...)
	}
	return append(b, ']')
}
