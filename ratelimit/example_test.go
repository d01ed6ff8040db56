package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/braidgw/braid/ratelimit"
)

// A route allowing 2 requests a second per client: the third request at
// the same instant is denied, and the fields tell the client when to come
// back.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lim := ratelimit.New("orders", ratelimit.Config{Rate: 2}, ratelimit.WithClock(func() time.Time { return now }))
	defer lim.Close()

	for range 3 {
		d := lim.Allow(context.Background(), "203.0.113.7")
		h := http.Header{}
		d.Headers(h)
		fmt.Printf("allowed=%t\n", d.Allowed)
		for _, k := range []string{"RateLimit-Policy", "RateLimit", "Retry-After"} {
			if v := h.Get(k); v != "" {
				fmt.Printf("  %s: %s\n", k, v)
			}
		}
	}
	// Output:
	// allowed=true
	//   RateLimit-Policy: "orders";q=2;w=1
	//   RateLimit: "orders";r=1;t=1
	// allowed=true
	//   RateLimit-Policy: "orders";q=2;w=1
	//   RateLimit: "orders";r=0;t=1
	// allowed=false
	//   RateLimit-Policy: "orders";q=2;w=1
	//   RateLimit: "orders";r=0;t=1
	//   Retry-After: 1
}
