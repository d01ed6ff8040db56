// Package aggregate is Braid's execution engine: it turns a composite
// endpoint's declared calls into the smallest set of downstream requests and
// assembles their results into one JSON document.
//
// A route's calls are compiled once into a Plan. References between calls
// ({user.team_id} in a path, or a batch join's key path) form a dependency
// graph: independent calls run in parallel, and a call waits only for the
// calls it references. A batch join collects keys from another call's result
// (orders[].items[].product_id), deduplicates them, fetches them with one
// request per chunk of max_batch keys and stitches each object back beside its
// key. Bodies are handled as raw JSON: a part that nothing looks into is
// spliced into the response byte for byte.
//
//	plan, err := aggregate.Compile(calls, aggregate.Env{
//		Field:  "routes[0]",
//		Params: []string{"id"},
//		Stack:  upstream.Static(map[string]upstream.Fetch{"users": users.Fetch, "orders": orders.Fetch}),
//	})
//	res, err := plan.Execute(ctx, map[string]string{"id": "42"})
//	body, err := res.AppendJSON(nil)
package aggregate
