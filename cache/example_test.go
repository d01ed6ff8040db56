package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/braidgw/braid/cache"
)

// A product is fetched once, then served from L1 until its tag is
// invalidated. This Cache has no Redis URL, so it is L1 only.
func Example() {
	ctx := context.Background()
	c, err := cache.New(ctx, cache.Config{}, cache.Options{})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	e := cache.Entry{Key: "products GET /products/87", Namespace: "products", Tags: []string{"product:87"}}
	p := cache.Policy{TTL: time.Minute}
	fetches := 0
	fetch := func(ctx context.Context) ([]byte, error) {
		fetches++
		return []byte(fmt.Sprintf(`{"id":87,"version":%d}`, fetches)), nil
	}

	for range 2 {
		body, status, _ := c.Get(ctx, e, p, fetch)
		fmt.Println(string(body), status.CacheStatus())
	}
	if _, err := c.Invalidate(ctx, cache.Invalidation{Tags: []string{"product:87"}}); err != nil {
		panic(err)
	}
	body, status, _ := c.Get(ctx, e, p, fetch)
	fmt.Println(string(body), status.CacheStatus())

	// Output:
	// {"id":87,"version":1} fwd=miss
	// {"id":87,"version":1} hit; detail=l1
	// {"id":87,"version":2} fwd=miss
}
