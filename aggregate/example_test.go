package aggregate_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/upstream"
)

// fakeUpstream answers from a map of path to body; a real gateway uses an
// *upstream.Client's Fetch.
func fakeUpstream(bodies map[string]string) upstream.Fetch {
	return func(_ context.Context, req *upstream.Request) (*upstream.Response, error) {
		key := req.Path
		if len(req.Query) > 0 {
			key += "?" + req.Query.Encode()
		}
		return &upstream.Response{Status: 200, Body: []byte(bodies[key])}, nil
	}
}

// Example shows a batch join: one call for the orders, one for all of their
// products, stitched back into each line item.
func Example() {
	plan, err := aggregate.Compile([]aggregate.CallConfig{
		{Name: "user", Upstream: "users", Path: "/users/{id}"},
		{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders"},
		{Name: "products", Upstream: "products", Path: "/products", Batch: &aggregate.BatchConfig{
			Keys:   "orders[].items[].product_id",
			Stitch: "orders[].items[].product",
		}},
	}, aggregate.Env{
		Params: []string{"id"},
		Stack: upstream.Static(map[string]upstream.Fetch{
			"users":    fakeUpstream(map[string]string{"/users/7": `{"id":7,"name":"Grace"}`}),
			"orders":   fakeUpstream(map[string]string{"/users/7/orders": `[{"id":1,"items":[{"product_id":3},{"product_id":4}]},{"id":2,"items":[{"product_id":3}]}]`}),
			"products": fakeUpstream(map[string]string{"/products?ids=3%2C4": `[{"id":3,"name":"lamp"},{"id":4,"name":"desk"}]`}),
		}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := plan.Execute(context.Background(), map[string]string{"id": "7"})
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := res.AppendJSON(nil)
	fmt.Println(strings.ReplaceAll(string(body), `},{"id"`, "},\n{\"id\""))
	// Output:
	// {"user":{"id":7,"name":"Grace"},"orders":[{"id":1,"items":[{"product_id":3,"product":{"id":3,"name":"lamp"}},{"product_id":4,"product":{"id":4,"name":"desk"}}]},
	// {"id":2,"items":[{"product_id":3,"product":{"id":3,"name":"lamp"}}]}]}
}
