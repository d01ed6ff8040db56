package upstream

import (
	"encoding/json"
	"strings"
	"testing"
)

// jsonCases are inputs at every edge of the grammar; each must get the
// answer encoding/json.Valid gives (want is that answer, written out).
var jsonCases = []struct {
	in   string
	want bool
}{
	{``, false}, {` `, false}, {`null`, true}, {` true `, true}, {"\t\r\nfalse\n", true}, {`nul`, false}, {`nulls`, false}, {`True`, false},
	{`0`, true}, {`-0`, true}, {`-`, false}, {`01`, false}, {`1.`, false}, {`.5`, false}, {`1.5`, true}, {`-12.50e+10`, true}, {`1e`, false},
	{`1E-0`, true}, {`1e+`, false}, {`+1`, false}, {`1 2`, false}, {`0x10`, false}, {`1.2.3`, false}, {`123456789012345678901234567890`, true},
	{`""`, true}, {`"a`, false}, {`"\"\\\/\b\f\n\r\t"`, true}, {`"\u00e9\uD83D\uDE00"`, true}, {`"\u12"`, false}, {`"\u12G4"`, false},
	{`"\x"`, false}, {`"\`, false}, {"\"a\x00b\"", false}, {"\"a\x1fb\"", false}, {"\"tab\tinside\"", false}, {"\"\x7f\"", true},
	{"\"\xff\xfe invalid UTF-8\"", true}, {"\"é\"", true},
	{`[]`, true}, {`[ ]`, true}, {`[1,]`, false}, {`[,1]`, false}, {`[1 2]`, false}, {`[1,2 , 3 ]`, true}, {`[`, false}, {`]`, false}, {`[}`, false},
	{`{}`, true}, {`{ }`, true}, {`{"a":1}`, true}, {`{"a" : [ {"b" : null} ] , "c":{}}`, true}, {`{"a"}`, false}, {`{"a":}`, false},
	{`{a:1}`, false}, {`{"a":1,}`, false}, {`{"a":1 "b":2}`, false}, {`{"a":1]`, false}, {`[1}`, false}, {`{1:2}`, false}, {`{"a":1}}`, false},
	{`{"a":1} x`, false}, {`[] []`, false}, {"\ufeff{}", false}, {`[[[[[]]]]]`, true}, {`[[[[[]]]]`, false},
	{strings.Repeat("[", 10000) + strings.Repeat("]", 10000), true},
	{strings.Repeat("[", 10001) + strings.Repeat("]", 10001), false},
	{strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000), true},
	{strings.Repeat(`{"a":`, 10000) + "{}" + strings.Repeat("}", 10000), false},
	{strings.Repeat("[", 9999) + "{}" + strings.Repeat("]", 9999), true},
}

func TestValidJSON(t *testing.T) {
	for _, c := range jsonCases {
		if std := json.Valid([]byte(c.in)); std != c.want {
			t.Fatalf("the table is wrong for %.40q: encoding/json says %v", c.in, std)
		}
		if got := validJSON([]byte(c.in)); got != c.want {
			t.Errorf("validJSON(%.60q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// FuzzValidJSON: validJSON and encoding/json.Valid agree on every input.
func FuzzValidJSON(f *testing.F) {
	for _, c := range jsonCases {
		if len(c.in) < 200 {
			f.Add([]byte(c.in))
		}
	}
	f.Add([]byte(`{"user":{"id":7,"name":"Leslie","tags":["a","b"],"score":-1.5e3,"ok":true,"x":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Errorf("validJSON(%q) = %v, encoding/json.Valid says %v", data, got, want)
		}
	})
}

// BenchmarkValidJSON: a dashboard part's body (an orders list, 1.3 KB).
func BenchmarkValidJSON(b *testing.B) {
	body := []byte(`[{"id":1050,"user_id":7,"status":"delivered","created_at":"2025-05-28T20:29:50Z","total_cents":27295,"items":[{"product_id":294,"quantity":1,"unit_price_cents":3399},{"product_id":55,"quantity":1,"unit_price_cents":13599},{"product_id":380,"quantity":1,"unit_price_cents":1299},{"product_id":44,"quantity":2,"unit_price_cents":4499}]},{"id":1049,"user_id":7,"status":"cancelled","created_at":"2025-05-24T12:01:36Z","total_cents":33736,"items":[{"product_id":58,"quantity":1,"unit_price_cents":9539},{"product_id":263,"quantity":1,"unit_price_cents":3999},{"product_id":187,"quantity":2,"unit_price_cents":10099}]},{"id":1048,"user_id":7,"status":"cancelled","created_at":"2025-05-03T23:36:40Z","total_cents":26495,"items":[{"product_id":121,"quantity":1,"unit_price_cents":14699},{"product_id":241,"quantity":3,"unit_price_cents":2199},{"product_id":172,"quantity":1,"unit_price_cents":5199}]},{"id":1047,"user_id":7,"status":"delivered","created_at":"2025-03-29T10:50:06Z","total_cents":10099,"items":[{"product_id":97,"quantity":1,"unit_price_cents":10099}]}]`)
	b.Run("braid", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if !validJSON(body) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if !json.Valid(body) {
				b.Fatal("invalid")
			}
		}
	})
}
