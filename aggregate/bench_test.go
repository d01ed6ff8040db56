package aggregate

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/braidgw/braid/upstream"
)

// instant is an in-process upstream that answers at once with body.
func instant(body []byte) upstream.Fetch {
	return func(context.Context, *upstream.Request) (*upstream.Response, error) {
		return &upstream.Response{Status: 200, Body: body}, nil
	}
}

func fanOutPlan(tb testing.TB, width int) *Plan {
	body := []byte(`{"id":1,"name":"Ada Lovelace","email":"ada@example.com","tags":["a","b","c"],"score":0.97}`)
	ups := map[string]upstream.Fetch{"u": instant(body)}
	calls := make([]CallConfig, width)
	for i := range calls {
		calls[i] = CallConfig{Name: "c" + strconv.Itoa(i), Upstream: "u", Path: "/things/{id}", Query: map[string]string{"limit": "10"}}
	}
	p, err := Compile(calls, Env{Params: []string{"id"}, Stack: upstream.Static(ups)})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkExecute measures planning overhead: execution plus assembly of
// a plan of independent calls against instant in-process upstreams.
func BenchmarkExecute(b *testing.B) {
	for _, width := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("fanout=%d", width), func(b *testing.B) {
			p := fanOutPlan(b, width)
			runRequests(b, p, "42")
		})
	}
}

// BenchmarkAssemble measures response assembly alone (raw splicing).
func BenchmarkAssemble(b *testing.B) {
	p := fanOutPlan(b, 16)
	res, err := p.Execute(context.Background(), map[string]string{"id": "42"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf, _ = res.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkBatch measures key collection and stitching over n line items
// spread across n/2 distinct products.
func BenchmarkBatch(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		orders := []byte(ordersJSON(max(1, n/3), max(1, n/2)))
		bt := &batch{
			cfg:    BatchConfig{}.withDefaults(),
			parent: []segment{{iter: true}, {name: "items"}, {iter: true}},
			rest:   []segment{{name: "product_id"}},
			member: "product",
		}
		res := &batchResult{objects: map[string][]byte{}}
		for i := 1; i <= n; i++ {
			res.objects[strconv.Itoa(i)] = fmt.Appendf(nil, `{"id":%d,"name":"product %d","price_cents":%d}`, i, i, i*100)
		}
		b.Run(fmt.Sprintf("collect/items=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bt.collectKeys(orders); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("stitch/items=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bt.stitch(orders, res); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExecuteBatch measures a batch join end to end against instant
// in-process upstreams: the orders call, one batch call fetching n/2
// distinct products in chunks of 100, and assembly with stitching.
func BenchmarkExecuteBatch(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			products := []byte("[")
			for i := 1; i <= max(1, n/2); i++ {
				if i > 1 {
					products = append(products, ',')
				}
				products = fmt.Appendf(products, `{"id":%d,"name":"product %d","price_cents":%d}`, i, i, i*100)
			}
			products = append(products, ']')
			ups := map[string]upstream.Fetch{
				"orders":   instant([]byte(ordersJSON(max(1, n/3), max(1, n/2)))),
				"products": instant(products), // every chunk gets them all; unasked ones are ignored
			}
			p, err := Compile(ordersWithProducts(100), Env{Params: []string{"id"}, Stack: upstream.Static(ups)})
			if err != nil {
				b.Fatal(err)
			}
			runRequests(b, p, "7")
		})
	}
}

// BenchmarkExecuteChain measures a chain of depth calls, each referencing
// the one before it: no two calls can run at once.
func BenchmarkExecuteChain(b *testing.B) {
	const depth = 4
	ups := map[string]upstream.Fetch{"u": instant([]byte(`{"id":42,"name":"Ada"}`))}
	calls := []CallConfig{{Name: "c0", Upstream: "u", Path: "/things/{id}"}}
	for i := 1; i < depth; i++ {
		calls = append(calls, CallConfig{Name: "c" + strconv.Itoa(i), Upstream: "u", Path: "/things/{c" + strconv.Itoa(i-1) + ".id}"})
	}
	p, err := Compile(calls, Env{Params: []string{"id"}, Stack: upstream.Static(ups)})
	if err != nil {
		b.Fatal(err)
	}
	runRequests(b, p, "42")
}

// runRequests is the timed loop of the Execute benchmarks: one request of
// plan p with parameter id, executed and assembled, per iteration.
func runRequests(b *testing.B, p *Plan, id string) {
	params := map[string]string{"id": id}
	ctx := context.Background()
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		res, err := p.Execute(ctx, params)
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = res.AppendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
