package aggregate

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/braidgw/braid/upstream"
)

// TestBatchMaxKeys: an answer with more distinct keys than batch.max_keys
// fails the batch call as bad data blaming the call that held the keys, and
// not one batch request is made.
func TestBatchMaxKeys(t *testing.T) {
	tests := []struct {
		name             string
		products         int
		maxKeys          int // 0: the default, 1000
		optional         bool
		wantErr          string // "" for success
		wantProductCalls int
	}{
		{name: "10000 keys over the default", products: 10000,
			wantErr: `call "products": 10000 distinct keys in orders' answer, over batch.max_keys 1000`},
		{name: "1000 keys at the default", products: 1000, wantProductCalls: 10},
		{name: "6 keys over 5", products: 6, maxKeys: 5,
			wantErr: `call "products": 6 distinct keys in orders' answer, over batch.max_keys 5`},
		{name: "5 keys at 5", products: 5, maxKeys: 5, wantProductCalls: 1},
		{name: "optional: degraded, stitched null", products: 6, maxKeys: 5, optional: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			var sizes batchSizes
			ups := map[string]upstream.Fetch{
				"orders":   serve(t, rec, "orders", static(ordersJSON(100, tt.products))),
				"products": serve(t, rec, "products", productsHandler(tt.products, &sizes)),
			}
			calls := ordersWithProducts(100)
			calls[1].Batch.MaxKeys, calls[1].Optional = tt.maxKeys, tt.optional
			p := mustCompile(t, calls, []string{"id"}, ups)
			res, body, err := execute(t, p, map[string]string{"id": "7"})
			if n := rec.total("products"); n != tt.wantProductCalls {
				t.Errorf("products calls = %d, want %d", n, tt.wantProductCalls)
			}
			switch {
			case tt.wantErr != "":
				checkBlamesOrders(t, err, tt.wantErr)
			case err != nil:
				t.Fatalf("Execute: %v", err)
			case tt.optional:
				if d := res.Degraded(); !slices.Equal(d, []string{"products"}) {
					t.Errorf("Degraded = %v, want [products]", d)
				}
				if strings.Contains(body, `"name"`) || !strings.Contains(body, `"product":null`) {
					t.Errorf("body has stitched products, want nulls: %.200s", body)
				}
			default:
				checkStitched(t, body)
			}
		})
	}
}

// checkBlamesOrders checks that err is the products batch call failing as
// bad data, with message want, blaming the orders call's upstream.
func checkBlamesOrders(t *testing.T, err error, want string) {
	t.Helper()
	var ce *CallError
	var de *DataError
	switch {
	case err == nil:
		t.Fatal("Execute succeeded, want an error")
	case !errors.Is(err, ErrBadData):
		t.Errorf("error %v does not match ErrBadData", err)
	case !errors.As(err, &ce) || ce.Call != "products":
		t.Errorf("error %v is not the products call's", err)
	case !errors.As(err, &de) || de.Call != "orders" || de.Upstream != "orders":
		t.Errorf("error %v does not blame call orders, upstream orders (DataError %+v)", err, de)
	case !strings.Contains(err.Error(), want):
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
}

// TestBatchRejectsUnfetchableKeys: a key that is empty or holds the
// separator would reach the upstream as no id or several; the batch call
// fails naming it, before any request.
func TestBatchRejectsUnfetchableKeys(t *testing.T) {
	tests := []struct {
		name, items, separator string
		wantErr                string
	}{
		{name: "comma in a key", items: `{"product_id":1},{"product_id":"2,3"}`,
			wantErr: `call "products": key "2,3" in orders' answer contains the separator ","`},
		{name: "custom separator", items: `{"product_id":"a|b"}`, separator: "|",
			wantErr: `call "products": key "a|b" in orders' answer contains the separator "|"`},
		{name: "empty key", items: `{"product_id":1},{"product_id":""}`,
			wantErr: `call "products": an empty key in orders' answer`},
		{name: "escaped comma", items: `{"product_id":"2\u002c3"}`,
			wantErr: `call "products": key "2,3" in orders' answer contains the separator ","`},
		{name: "object key", items: `{"product_id":{"id":1}}`,
			wantErr: `call "products": batch keys in orders' answer: value is not a string or number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			var sizes batchSizes
			ups := map[string]upstream.Fetch{
				"orders":   serve(t, rec, "orders", static(`[{"id":1,"items":[`+tt.items+`]}]`)),
				"products": serve(t, rec, "products", productsHandler(5, &sizes)),
			}
			calls := ordersWithProducts(100)
			calls[1].Batch.Separator = tt.separator
			p := mustCompile(t, calls, []string{"id"}, ups)
			_, _, err := execute(t, p, map[string]string{"id": "1"})
			checkBlamesOrders(t, err, tt.wantErr)
			if n := rec.total("products"); n != 0 {
				t.Errorf("products calls = %d, want none", n)
			}
		})
	}
}

// TestBatchKeyWithOtherSeparator: a comma is an ordinary character when
// the separator is "|": the upstream receives the key whole.
func TestBatchKeyWithOtherSeparator(t *testing.T) {
	rec := newRecorder()
	var got []string
	ups := map[string]upstream.Fetch{
		"orders": serve(t, rec, "orders", static(`[{"items":[{"product_id":"a,b"},{"product_id":"c"}]}]`)),
		"products": serve(t, rec, "products", func(w http.ResponseWriter, r *http.Request) {
			got = strings.Split(r.URL.Query().Get("ids"), "|")
			_, _ = w.Write([]byte(`[{"id":"a,b"},{"id":"c"}]`))
		}),
	}
	calls := ordersWithProducts(100)
	calls[1].Batch.Separator = "|"
	p := mustCompile(t, calls, []string{"id"}, ups)
	_, body, err := execute(t, p, map[string]string{"id": "1"})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if !slices.Equal(got, []string{"a,b", "c"}) {
		t.Errorf("upstream received ids %q, want [a,b c]", got)
	}
	if want := `{"orders":[{"items":[{"product_id":"a,b","product":{"id":"a,b"}},{"product_id":"c","product":{"id":"c"}}]}]}`; body != want {
		t.Errorf("body =\n%s\nwant\n%s", body, want)
	}
}

// TestBatchDuplicateAndUnaskedObjects: in a batch response the first
// object for a key wins; an object for a key that request did not ask for
// (here: asked for by another chunk) is ignored, so the key stays missing.
func TestBatchDuplicateAndUnaskedObjects(t *testing.T) {
	rec := newRecorder()
	answers := map[string]string{
		"1": `[{"id":1,"name":"first"},{"id":"1","name":"second"},{"id":99,"name":"not asked"}]`,
		"2": `[{"id":2,"name":"two"},{"id":3,"name":"three, from the wrong chunk"}]`,
		"3": `[]`,
	}
	ups := map[string]upstream.Fetch{
		"orders": serve(t, rec, "orders", static(`[{"items":[{"product_id":1},{"product_id":2},{"product_id":3},{"product_id":1}]}]`)),
		"products": serve(t, rec, "products", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(answers[r.URL.Query().Get("ids")]))
		}),
	}
	calls := ordersWithProducts(1) // one key per request
	p := mustCompile(t, calls, []string{"id"}, ups)
	res, body, err := execute(t, p, map[string]string{"id": "1"})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	want := `{"orders":[{"items":[` +
		`{"product_id":1,"product":{"id":1,"name":"first"}},` +
		`{"product_id":2,"product":{"id":2,"name":"two"}},` +
		`{"product_id":3,"product":null},` +
		`{"product_id":1,"product":{"id":1,"name":"first"}}]}]}`
	if body != want {
		t.Errorf("body =\n%s\nwant\n%s", body, want)
	}
	if m := res.MissingKeys(); len(m) != 1 || !slices.Equal(m[0].Keys, []string{"3"}) {
		t.Errorf("MissingKeys = %v, want products: [3]", m)
	}
	if n := rec.total("products"); n != 3 {
		t.Errorf("products calls = %d, want 3", n)
	}
}

// TestBatchStitchKeepsBytes: stitching copies every byte it does not set,
// white space included, follows the last of duplicate members (the one a
// decoder sees), and sets every occurrence of the stitched member.
func TestBatchStitchKeepsBytes(t *testing.T) {
	b := &batch{
		parent: []segment{{name: "orders"}, {iter: true}},
		rest:   []segment{{name: "product_id"}},
		member: "product",
	}
	res := &batchResult{objects: map[string][]byte{"1": []byte(`{"id":1}`), "2": []byte(`{"id":2}`)}}
	tests := []struct{ name, in, want string }{
		{"white space kept",
			"{ \"orders\" : [ {\"product_id\" : 1 } ,\n\t{ } ] }",
			"{ \"orders\" : [ {\"product_id\" : 1,\"product\":{\"id\":1} } ,\n\t{\"product\":null } ] }"},
		{"last duplicate followed",
			`{"orders":[{"product_id":2}],"orders":[{"product_id":1}]}`,
			`{"orders":[{"product_id":2}],"orders":[{"product_id":1,"product":{"id":1}}]}`},
		{"every occurrence set",
			`{"orders":[{"product":0,"product_id":1,"product": 5}]}`,
			`{"orders":[{"product":{"id":1},"product_id":1,"product": {"id":1}}]}`},
		{"last duplicate key read",
			`{"orders":[{"product_id":2,"product_id":1}]}`,
			`{"orders":[{"product_id":2,"product_id":1,"product":{"id":1}}]}`},
		{"surrounding white space", " \n{\"orders\":[]} \n", " \n{\"orders\":[]} \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.stitch([]byte(tt.in), res)
			if err != nil || string(got) != tt.want {
				t.Errorf("stitch(%q) =\n%q, %v\nwant\n%q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestBatchConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*BatchConfig)
		field string
		msg   string
	}{
		{"max_keys below 1", func(b *BatchConfig) { b.MaxKeys = -1 }, "route.calls[1] (products).batch.max_keys", "must be at least 1"},
		{"stitch into an array", func(b *BatchConfig) { b.Keys, b.Stitch = "orders[].id", "orders.products" },
			"route.calls[1] (products).batch.stitch", "not of an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := ordersWithProducts(100)
			tt.edit(calls[1].Batch)
			ups := map[string]upstream.Fetch{"orders": instant(nil), "products": instant(nil)}
			_, err := Compile(calls, Env{Field: "route", Params: []string{"id"}, Stack: upstream.Static(ups)})
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !strings.Contains(ce.Msg, tt.msg) {
				t.Errorf("Compile error = %v, want %s: ...%s", err, tt.field, tt.msg)
			}
		})
	}
}
