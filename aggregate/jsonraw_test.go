package aggregate

import (
	"encoding/json"
	"testing"
)

func TestSkipValueMatchesDocument(t *testing.T) {
	docs := []string{
		`{}`, `[]`, `"a\"b\\"`, `12.5e3`, `true`, `null`,
		`{"a":[1,{"b":"}]"}],"c":{"d":null}}`,
		`[ "x" , [ ] , { } , -0.1 ]`,
	}
	for _, d := range docs {
		end, err := skipValue([]byte(d), 0)
		if err != nil || end != len(d) {
			t.Errorf("skipValue(%s) = %d, %v; want %d", d, end, err, len(d))
		}
	}
	for _, bad := range []string{`{"a":1`, `"abc`, `[1,2`, ``} {
		if _, err := skipValue([]byte(bad), 0); err == nil {
			t.Errorf("skipValue(%q) succeeded, want an error", bad)
		}
	}
}

func TestFieldAndScalarText(t *testing.T) {
	obj := []byte(`{"a":1,"b\u0061":"x\ny","c":{"d":[1]},"n":null}`)
	tests := []struct {
		name, want string
		err        bool
	}{
		{"a", "1", false}, {"ba", "x\ny", false}, {"c", "", true}, {"n", "", true},
	}
	for _, tt := range tests {
		got, err := scalarText(field(obj, tt.name))
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("scalarText(field(%s)) = %q, %v; want %q (error %v)", tt.name, got, err, tt.want, tt.err)
		}
	}
	if field(obj, "zz") != nil || field([]byte(`[1]`), "a") != nil {
		t.Error("field found a member that is not there")
	}
}

func TestSetMember(t *testing.T) {
	tests := []struct{ obj, name, val, want string }{
		{`{}`, "p", `1`, `{"p":1}`},
		{`{"a":1}`, "p", `{"x":2}`, `{"a":1,"p":{"x":2}}`},
		{`{"p":0, "a":1}`, "p", `null`, `{"p":null, "a":1}`}, // white space kept
	}
	for _, tt := range tests {
		got, err := setMember(nil, []byte(tt.obj), tt.name, []byte(tt.val))
		if err != nil || string(got) != tt.want {
			t.Errorf("setMember(%s, %s) = %s, %v; want %s", tt.obj, tt.name, got, err, tt.want)
		}
	}
}

// FuzzStitchKeepsJSONValid: whatever a (valid) upstream sends, stitching
// produces valid JSON and never panics.
func FuzzStitchKeepsJSONValid(f *testing.F) {
	f.Add(`[{"items":[{"product_id":1},{"product_id":"2"}]}]`)
	f.Add(`[{"items":null},{"items":[{"x":1}]},{}]`)
	f.Add(`{"items":[]}`)
	f.Add(`[[1],{"items":[{"product_id":{"a":1}}]}]`)
	b := &batch{
		parent: []segment{{iter: true}, {name: "items"}, {iter: true}},
		rest:   []segment{{name: "product_id"}},
		member: "product",
	}
	res := &batchResult{objects: map[string][]byte{"1": []byte(`{"id":1}`)}}
	f.Fuzz(func(t *testing.T, doc string) {
		if !json.Valid([]byte(doc)) {
			return
		}
		_, _ = b.collectKeys([]byte(doc))
		out, err := b.stitch([]byte(doc), res)
		if err == nil && !json.Valid(out) {
			t.Fatalf("stitch(%s) = %s, not valid JSON", doc, out)
		}
	})
}
