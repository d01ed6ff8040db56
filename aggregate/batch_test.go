package aggregate

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/braidgw/braid/upstream"
)

// ordersJSON builds nOrders orders whose line items cycle through nProducts
// distinct product ids (1..nProducts), three items per order at least.
func ordersJSON(nOrders, nProducts int) string {
	var b strings.Builder
	b.WriteString("[")
	pid := 0
	perOrder := max(3, (nProducts+nOrders-1)/max(nOrders, 1))
	for o := range nOrders {
		if o > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"items":[`, 100+o)
		for i := range perOrder {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"product_id":%d,"quantity":1}`, pid%nProducts+1)
			pid++
		}
		b.WriteString("]}")
	}
	b.WriteString("]")
	return b.String()
}

// productsHandler answers GET /products?ids=... with the known products
// (ids 1..known) among those asked for, and records each batch's size.
func productsHandler(known int, sizes *batchSizes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ids := strings.Split(r.URL.Query().Get("ids"), ",")
		if len(r.URL.Query()["id"]) > 0 {
			ids = strings.Split(r.URL.Query().Get("id"), "|")
		}
		sizes.add(len(ids))
		var out []string
		for _, s := range ids {
			if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= known {
				out = append(out, fmt.Sprintf(`{"id":%d,"name":"p%d"}`, n, n))
			}
		}
		_, _ = w.Write([]byte("[" + strings.Join(out, ",") + "]"))
	}
}

func ordersWithProducts(maxBatch int) []CallConfig {
	return []CallConfig{
		{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders"},
		{Name: "products", Upstream: "products", Path: "/products", Batch: &BatchConfig{
			Keys: "orders[].items[].product_id", Stitch: "orders[].items[].product", MaxBatch: maxBatch, Concurrency: 1,
		}},
	}
}

// TestBatchJoinCallCounts proves there is no N+1: one call for the orders
// and one call per chunk of max_batch distinct products.
func TestBatchJoinCallCounts(t *testing.T) {
	tests := []struct {
		orders, products, maxBatch int
		wantProductCalls           int
	}{
		{orders: 20, products: 50, maxBatch: 100, wantProductCalls: 1},
		{orders: 20, products: 250, maxBatch: 100, wantProductCalls: 3},
		{orders: 5, products: 100, maxBatch: 100, wantProductCalls: 1},
		{orders: 5, products: 101, maxBatch: 100, wantProductCalls: 2},
		{orders: 0, products: 1, maxBatch: 100, wantProductCalls: 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d orders over %d products, max %d", tt.orders, tt.products, tt.maxBatch), func(t *testing.T) {
			rec := newRecorder()
			var sizes batchSizes
			ups := map[string]upstream.Fetch{
				"orders":   serve(t, rec, "orders", static(ordersJSON(tt.orders, tt.products))),
				"products": serve(t, rec, "products", productsHandler(tt.products, &sizes)),
			}
			p := mustCompile(t, ordersWithProducts(tt.maxBatch), []string{"id"}, ups)
			res, body, err := execute(t, p, map[string]string{"id": "7"})
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if n := rec.total("orders"); n != 1 {
				t.Errorf("orders calls = %d, want 1", n)
			}
			if n := rec.total("products"); n != tt.wantProductCalls {
				t.Errorf("products calls = %d, want %d", n, tt.wantProductCalls)
			}
			total := 0
			for _, s := range sizes.get() {
				total += s
				if s > tt.maxBatch {
					t.Errorf("a batch asked for %d keys, max is %d", s, tt.maxBatch)
				}
			}
			if tt.orders > 0 && total != tt.products {
				t.Errorf("batches asked for %d keys in all, want %d distinct", total, tt.products)
			}
			checkStitched(t, body)
			if m := res.MissingKeys(); len(m) != 0 {
				t.Errorf("MissingKeys = %v, want none", m)
			}
		})
	}
}

// checkStitched decodes the response and checks every item carries the
// product whose id is its product_id.
func checkStitched(t *testing.T, body string) {
	t.Helper()
	var doc struct {
		Orders []struct {
			Items []struct {
				ProductID int `json:"product_id"`
				Product   *struct {
					ID   int    `json:"id"`
					Name string `json:"name"`
				} `json:"product"`
			} `json:"items"`
		} `json:"orders"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, body)
	}
	for _, o := range doc.Orders {
		for _, it := range o.Items {
			if it.Product == nil || it.Product.ID != it.ProductID || it.Product.Name != fmt.Sprintf("p%d", it.ProductID) {
				t.Fatalf("item with product_id %d has product %+v", it.ProductID, it.Product)
			}
		}
	}
}

func TestBatchMissingKeysStitchNull(t *testing.T) {
	rec := newRecorder()
	var sizes batchSizes
	ups := map[string]upstream.Fetch{
		"orders":   serve(t, rec, "orders", static(`[{"id":1,"items":[{"product_id":1},{"product_id":9},{"product_id":"1"}]}]`)),
		"products": serve(t, rec, "products", productsHandler(3, &sizes)),
	}
	p := mustCompile(t, ordersWithProducts(100), []string{"id"}, ups)
	res, body, err := execute(t, p, map[string]string{"id": "1"})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	want := `{"orders":[{"id":1,"items":[{"product_id":1,"product":{"id":1,"name":"p1"}},{"product_id":9,"product":null},{"product_id":"1","product":{"id":1,"name":"p1"}}]}]}`
	if body != want {
		t.Errorf("body =\n%s\nwant\n%s", body, want)
	}
	if got := res.MissingKeys(); len(got) != 1 || got[0].Call != "products" || !slices.Equal(got[0].Keys, []string{"9"}) {
		t.Errorf("MissingKeys = %v, want products: [9]", got)
	}
	if !slices.Equal(sizes.get(), []int{2}) {
		t.Errorf("batch sizes = %v, want one batch of the 2 distinct keys", sizes.get())
	}
}

// TestBatchStitchesArrays: when the keys below the stitch point are a list,
// the stitched member is the list of objects, in key order.
func TestBatchStitchesArrays(t *testing.T) {
	rec := newRecorder()
	var sizes batchSizes
	ups := map[string]upstream.Fetch{
		"users": serve(t, rec, "users", static(`{"id":1,"wishlist":{"product_ids":[3,1,7]}}`)),
		"products": serve(t, rec, "products", func(w http.ResponseWriter, r *http.Request) {
			// an enveloped response: {"data":{"items":[...]}}
			rw := &captureWriter{header: http.Header{}}
			productsHandler(5, &sizes)(rw, r)
			_, _ = fmt.Fprintf(w, `{"data":{"items":%s}}`, rw.body)
		}),
	}
	p := mustCompile(t, []CallConfig{
		{Name: "user", Upstream: "users", Path: "/users/{id}"},
		{Name: "wish", Upstream: "products", Path: "/products", Optional: true, Batch: &BatchConfig{
			Keys: "user.wishlist.product_ids[]", Stitch: "user.wishlist.products", Items: "data.items", Param: "id", Separator: "|",
		}},
	}, []string{"id"}, ups)
	_, body, err := execute(t, p, map[string]string{"id": "1"})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	want := `{"user":{"id":1,"wishlist":{"product_ids":[3,1,7],"products":[{"id":3,"name":"p3"},{"id":1,"name":"p1"},null]}}}`
	if body != want {
		t.Errorf("body =\n%s\nwant\n%s", body, want)
	}
	if _, calls, _ := rec.snapshot(); calls["products GET /products?id=3%7C1%7C7"] != 1 {
		t.Errorf("calls = %v, want one batch with id=3|1|7", calls)
	}
}

// batchSizes records the number of keys in each batch request.
type batchSizes struct {
	mu sync.Mutex
	s  []int
}

func (b *batchSizes) add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s = append(b.s, n)
}

func (b *batchSizes) get() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.s)
}

type captureWriter struct {
	header http.Header
	body   []byte
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	c.body = append(c.body, b...)
	return len(b), nil
}
func (c *captureWriter) WriteHeader(int) {}

// TestOptionalBatchFailureStitchesNull: the orders still answer; every
// product is null and the batch call is listed as degraded.
func TestOptionalBatchFailureStitchesNull(t *testing.T) {
	rec := newRecorder()
	ups := map[string]upstream.Fetch{
		"orders":   serve(t, rec, "orders", static(`[{"id":1,"items":[{"product_id":1}]}]`)),
		"products": serve(t, rec, "products", status(500, `{}`)),
	}
	calls := ordersWithProducts(10)
	calls[1].Optional = true
	p := mustCompile(t, calls, []string{"id"}, ups)
	res, body, err := execute(t, p, map[string]string{"id": "1"})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if want := `{"orders":[{"id":1,"items":[{"product_id":1,"product":null}]}]}`; body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
	if d := res.Degraded(); !slices.Equal(d, []string{"products"}) {
		t.Errorf("Degraded = %v, want [products]", d)
	}
}

// TestBatchKeepsCallQuery: the batch request carries the call's own query
// parameters next to the keys.
func TestBatchKeepsCallQuery(t *testing.T) {
	rec := newRecorder()
	var sizes batchSizes
	ups := map[string]upstream.Fetch{
		"orders":   serve(t, rec, "orders", static(`[{"id":1,"items":[{"product_id":2},{"product_id":1}]}]`)),
		"products": serve(t, rec, "products", productsHandler(5, &sizes)),
	}
	calls := ordersWithProducts(100)
	calls[1].Query = map[string]string{"fields": "name", "user": "{id}"}
	p := mustCompile(t, calls, []string{"id"}, ups)
	if _, _, err := execute(t, p, map[string]string{"id": "9"}); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if _, calls, _ := rec.snapshot(); calls["products GET /products?fields=name&ids=2%2C1&user=9"] != 1 {
		t.Errorf("calls = %v, want one batch with the call's query and ids=2,1", calls)
	}
}
