package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"testing"
)

// FuzzKeyPath checks the raw key-path walk differentially against
// encoding/json. For a valid JSON document and a key path built from a
// small grammar (the document's member names and []):
//
//   - collect reaches the same leaves, in the same order, as walking the
//     decoded document, and fails exactly when that walk meets a value of
//     the wrong type;
//   - a batch over that path collects the same keys, and its stitch
//     decodes to the decoded document with the objects set as the model
//     sets them;
//   - stitching changes no other byte: the output minus the inserted
//     members is the input.
//
// Each document is checked as given and indented. Malformed documents must
// not make anything panic.
//
// path's first byte picks where the key path splits into the stitch
// parent and the rest, its second the stitched member's name, and each
// further byte a segment: [] or a member name.
func FuzzKeyPath(f *testing.F) {
	for _, s := range []struct {
		doc  string
		path []byte
	}{
		{`[{"id":1,"items":[{"product_id":1},{"product_id":"2"}]}]`, []byte{3, 0, 0, 9, 0, 13}},
		{`{"orders":[{"items":[{"product_id":7,"product":null}]}],"orders":[]}`, []byte{1, 1, 5, 0, 9, 0, 13}},
		{` { "user" : { "wishlist" : { "product_ids" : [ 3 , 1 , 3 ] } } } `, []byte{2, 0, 9, 5, 13, 0}},
		{`{"a":{"b":1,"b":2},"\u0061":{"b":3}}`, []byte{1, 0, 1, 5}},
		{`[[1,2],[3,[4]],null,{}]`, []byte{0, 0, 0, 0}},
		{`{"k":"x\u002cy","k2":"","k3":true,"k4":1e2}`, []byte{0, 2, 1}},
		{`[{},{"id":null},{"id":{"x":1}}]`, []byte{1, 0, 0, 1}},
		{`{"id":1,"stitched":{},"stitched":2}`, []byte{0, 0, 1}},
		{`[{"id":1}`, []byte{0, 0, 0, 1}}, // malformed
	} {
		f.Add(s.doc, s.path)
	}
	f.Fuzz(func(t *testing.T, doc string, path []byte) {
		raw := []byte(doc)
		if !json.Valid(raw) {
			noPanicOnMalformed(raw, fuzzPath([]string{"id", "a"}, path))
			return
		}
		tree := decodeNumbers(t, raw)
		segs := fuzzPath(memberNames(tree), path)
		var indented bytes.Buffer
		_ = json.Indent(&indented, raw, " ", "\t") // white space everywhere, to be kept
		for _, raw := range [][]byte{raw, indented.Bytes()} {
			checkCollect(t, raw, tree, segs)
			if len(path) >= 2 && len(segs) > 0 {
				if b := fuzzBatch(segs, int(path[0]), memberName(tree, path[1])); b != nil {
					checkStitch(t, raw, b)
				}
			}
		}
	})
}

// fuzzPath builds a key path from b: a byte divisible by 4 is [], any
// other names a member.
func fuzzPath(names []string, b []byte) []segment {
	var segs []segment
	for i, c := range b {
		switch {
		case i < 2: // control bytes, see FuzzKeyPath
		case len(segs) == 8:
			return segs
		case c%4 == 0:
			segs = append(segs, segment{iter: true})
		default:
			segs = append(segs, segment{name: names[int(c/4)%len(names)]})
		}
	}
	return segs
}

// fuzzBatch splits segs at split into the stitch parent and the rest (which
// must start with a member, as the compiler requires), or returns nil.
func fuzzBatch(segs []segment, split int, member string) *batch {
	split %= len(segs)
	if segs[split].iter {
		return nil
	}
	cfg := BatchConfig{Separator: "\x00", MaxKeys: 1 << 30}.withDefaults()
	rest := segs[split:]
	return &batch{cfg: cfg, parent: segs[:split], rest: rest, member: member, many: iterates(rest)}
}

// memberNames returns the member names in tree that a key path can
// express, sorted, plus "id".
func memberNames(tree any) []string {
	set := map[string]bool{"id": true}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if validName(k) {
					set[k] = true
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(tree)
	names := make([]string, 0, len(set))
	for k := range set {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// memberName picks the stitched member: mostly one no document is likely
// to hold (so that the byte check applies), else one of the document's.
func memberName(tree any, c byte) string {
	if c%2 == 0 {
		return "stitched"
	}
	names := memberNames(tree)
	return names[int(c/2)%len(names)]
}

func decodeNumbers(t *testing.T, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %q: %v", raw, err)
	}
	return v
}

var errWrongType = errors.New("wrong type")

// walkDecoded is collect over a decoded document: missing members and
// nulls reach nothing, a value of the wrong type is an error.
func walkDecoded(v any, segs []segment, fn func(leaf any) error) error {
	if v == nil {
		return nil
	}
	if len(segs) == 0 {
		return fn(v)
	}
	switch x := v.(type) {
	case []any:
		if !segs[0].iter {
			return errWrongType
		}
		for _, e := range x {
			if err := walkDecoded(e, segs[1:], fn); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if segs[0].iter {
			return errWrongType
		}
		return walkDecoded(x[segs[0].name], segs[1:], fn)
	default:
		return errWrongType
	}
}

// decodedText is scalarText over a decoded value.
func decodedText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return string(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	default:
		return "", errWrongType
	}
}

func checkCollect(t *testing.T, raw []byte, tree any, segs []segment) {
	t.Helper()
	var got, want []any
	gotErr := collect(raw, segs, func(leaf []byte) error {
		got = append(got, decodeNumbers(t, leaf))
		return nil
	})
	wantErr := walkDecoded(tree, segs, func(leaf any) error {
		want = append(want, leaf)
		return nil
	})
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("collect(%s, %s): error %v, encoding/json walk: error %v", raw, pathText(segs), gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("collect(%s, %s) = %#v, encoding/json walk = %#v", raw, pathText(segs), got, want)
	}
}

// checkStitch collects b's keys and stitches objects for them into raw,
// comparing both with the model over the decoded document, then checks
// that no byte outside the inserted members changed.
func checkStitch(t *testing.T, raw []byte, b *batch) {
	t.Helper()
	tree := decodeNumbers(t, raw)
	// Only a member the input lacks is inserted, so only then is the output
	// minus that member the input.
	inserted := !bytes.Contains(raw, []byte(b.member)) && !slices.Contains(memberNames(tree), b.member)
	wantKeys, modelErr := modelKeys(tree, b)
	keys, err := b.collectKeys(raw)
	if (err != nil) != (modelErr != nil) {
		t.Fatalf("collectKeys(%s) over %s|%s: error %v, model: error %v", raw, pathText(b.parent), pathText(b.rest), err, modelErr)
	}
	if err != nil {
		if out, err := b.stitch(raw, nil); err == nil && !json.Valid(out) {
			t.Fatalf("stitch(%s) = %s, not valid JSON", raw, out)
		}
		return
	}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("collectKeys(%s) = %q, model %q", raw, keys, wantKeys)
	}
	// Every third key has no object: it stitches as null.
	res := &batchResult{objects: map[string][]byte{}}
	for i, k := range keys {
		if i%3 != 2 {
			res.objects[k] = fmt.Appendf(nil, `{"k$":%s,"i$":%d}`, appendQuoted(nil, k), i)
		}
	}
	out, err := b.stitch(raw, res)
	if err != nil {
		t.Fatalf("stitch(%s): %v", raw, err)
	}
	if !json.Valid(out) {
		t.Fatalf("stitch(%s) = %s, not valid JSON", raw, out)
	}
	want := modelStitch(t, tree, b, res)
	if got := decodeNumbers(t, out); !reflect.DeepEqual(got, want) {
		t.Fatalf("stitch(%s) over %s|%s.%s =\n%s\ndecodes to %#v\nmodel: %#v", raw, pathText(b.parent), pathText(b.rest), b.member, out, got, want)
	}
	if inserted {
		if back := withoutMember(t, out, b.member); !bytes.Equal(back, raw) {
			t.Fatalf("stitch(%q) = %q; without the inserted %q members: %q, want the input", raw, out, b.member, back)
		}
	}
}

// modelKeys is collectKeys over the decoded document.
func modelKeys(tree any, b *batch) ([]string, error) {
	var keys []string
	seen := map[string]bool{}
	err := walkDecoded(tree, b.parent, func(obj any) error {
		return walkDecoded(obj, b.rest, func(leaf any) error {
			k, err := decodedText(leaf)
			if err != nil {
				return err
			}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k == "" || bytes.Contains([]byte(k), []byte(b.cfg.Separator)) {
			return nil, errors.New("unfetchable key")
		}
	}
	return keys, nil
}

// modelStitch sets, in the decoded document tree, b's member of every
// parent object to the object(s) fetched for its key(s), and returns tree.
func modelStitch(t *testing.T, tree any, b *batch, res *batchResult) any {
	t.Helper()
	err := walkDecoded(tree, b.parent, func(v any) error {
		obj, ok := v.(map[string]any)
		if !ok {
			return errWrongType
		}
		vals := []any{}
		err := walkDecoded(obj, b.rest, func(leaf any) error {
			k, err := decodedText(leaf)
			if err != nil {
				return err
			}
			var o any
			if raw, ok := res.objects[k]; ok {
				o = decodeNumbers(t, raw)
			}
			vals = append(vals, o)
			return nil
		})
		switch {
		case err != nil:
			return err
		case b.many:
			obj[b.member] = vals
		case len(vals) == 0:
			obj[b.member] = nil
		default:
			obj[b.member] = vals[0]
		}
		return nil
	})
	if err != nil {
		t.Fatalf("model stitch failed where collectKeys did not: %v", err)
	}
	return tree
}

// withoutMember removes from out every member named name (which the input
// did not contain) and the comma inserted before it.
func withoutMember(t *testing.T, out []byte, name string) []byte {
	t.Helper()
	key := appendQuoted(nil, name)
	key = append(key, ':')
	var back []byte
	for {
		i := bytes.Index(out, key)
		if i < 0 {
			return append(back, out...)
		}
		dec := json.NewDecoder(bytes.NewReader(out[i+len(key):]))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("no value after inserted %s in %s", key, out)
		}
		end := i + len(key) + int(dec.InputOffset())
		if i > 0 && out[i-1] == ',' {
			i--
		}
		back = append(back, out[:i]...)
		out = out[end:]
	}
}

// noPanicOnMalformed runs the raw walks over a document that is not valid
// JSON; upstream bodies are validated first, so any outcome but a panic
// will do.
func noPanicOnMalformed(raw []byte, segs []segment) {
	_ = collect(raw, segs, func(leaf []byte) error { _, _ = scalarText(leaf); return nil })
	_, _ = rewrite(nil, raw, segs, func(dst, obj []byte) ([]byte, error) { return setMember(dst, obj, "m", []byte("1")) })
	if len(segs) > 0 && !segs[len(segs)-1].iter {
		b := &batch{cfg: BatchConfig{MaxKeys: 10}.withDefaults(), rest: segs, member: "m"}
		_, _ = b.collectKeys(raw)
		_, _ = b.stitch(raw, &batchResult{objects: map[string][]byte{"1": []byte("{}")}})
	}
}

func pathText(segs []segment) string { return keyPath{call: "$", segs: segs}.String() }
