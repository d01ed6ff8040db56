package aggregate

import (
	"fmt"
	"strings"
)

// A keyPath addresses values inside a call's JSON result. Its text form
// starts with the call's name, then fields separated by dots; "[]" after a
// name walks every element of an array:
//
//	user.address.city
//	orders[].items[].product_id
type keyPath struct {
	call string
	segs []segment
}

// segment is one step of a keyPath: a member name, or every element of an
// array when iter is set.
type segment struct {
	name string
	iter bool
}

func parseKeyPath(s string) (keyPath, error) {
	if s == "" {
		return keyPath{}, fmt.Errorf("empty key path")
	}
	var p keyPath
	for i, part := range strings.Split(s, ".") {
		name, iters := part, 0
		for strings.HasSuffix(name, "[]") {
			name = strings.TrimSuffix(name, "[]")
			iters++
		}
		if !validName(name) {
			return keyPath{}, fmt.Errorf("key path %q: bad segment %q (want letters, digits, _ or -, optionally followed by [])", s, part)
		}
		if i == 0 {
			p.call = name
		} else {
			p.segs = append(p.segs, segment{name: name})
		}
		for range iters {
			p.segs = append(p.segs, segment{iter: true})
		}
	}
	return p, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (p keyPath) String() string {
	var b strings.Builder
	b.WriteString(p.call)
	for _, s := range p.segs {
		if s.iter {
			b.WriteString("[]")
		} else {
			b.WriteString(".")
			b.WriteString(s.name)
		}
	}
	return b.String()
}

// iterates reports whether walking segs can reach more than one value.
func iterates(segs []segment) bool {
	for _, s := range segs {
		if s.iter {
			return true
		}
	}
	return false
}

// collect calls fn with every value that segs reaches from raw. Missing
// members and nulls reach nothing; a value of the wrong type is an error. Of
// a member named more than once, the last is followed (see field).
func collect(raw []byte, segs []segment, fn func(leaf []byte) error) error {
	raw = trimValue(raw)
	if len(segs) == 0 {
		if kind(raw) == 'n' {
			return nil
		}
		return fn(raw)
	}
	s := segs[0]
	switch k := kind(raw); {
	case k == 'n':
		return nil
	case s.iter && k == '[':
		return eachElem(raw, func(elem []byte) error { return collect(elem, segs[1:], fn) })
	case !s.iter && k == '{':
		v := field(raw, s.name)
		if v == nil {
			return nil
		}
		return collect(v, segs[1:], fn)
	case s.iter:
		return fmt.Errorf("want an array, got %.40s", raw)
	default:
		return fmt.Errorf("want an object with member %q, got %.40s", s.name, raw)
	}
}

// rewrite appends to dst raw with every object that segs reaches replaced
// by fn(object). Every other byte, white space included, is copied
// unchanged. Like collect, it follows the last occurrence of a member named
// more than once, the one a client decoding the document sees; values of
// the wrong type are copied as they are.
func rewrite(dst, raw []byte, segs []segment, fn func(dst, obj []byte) ([]byte, error)) ([]byte, error) {
	start, end := skipSpace(raw, 0), len(raw)
	for end > start && isSpace(raw[end-1]) {
		end--
	}
	dst = append(dst, raw[:start]...)
	dst, err := rewriteValue(dst, raw[start:end], segs, fn)
	if err != nil {
		return nil, err
	}
	return append(dst, raw[end:]...), nil
}

// rewriteValue is rewrite of a value without surrounding white space.
func rewriteValue(dst, raw []byte, segs []segment, fn func(dst, obj []byte) ([]byte, error)) ([]byte, error) {
	k := kind(raw)
	switch {
	case len(segs) == 0 && k == '{':
		return fn(dst, raw)
	case len(segs) == 0:
		return append(dst, raw...), nil
	case segs[0].iter && k == '[':
		from := 0
		err := eachElemAt(raw, func(start, end int) error {
			var err error
			dst, err = rewriteValue(append(dst, raw[from:start]...), raw[start:end], segs[1:], fn)
			from = end
			return err
		})
		if err != nil {
			return nil, err
		}
		return append(dst, raw[from:]...), nil
	case !segs[0].iter && k == '{':
		start, end := -1, -1
		err := eachMemberAt(raw, func(key []byte, s, e int) error {
			if keyIs(key, segs[0].name) {
				start, end = s, e
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if start < 0 {
			return append(dst, raw...), nil
		}
		dst, err = rewriteValue(append(dst, raw[:start]...), raw[start:end], segs[1:], fn)
		if err != nil {
			return nil, err
		}
		return append(dst, raw[end:]...), nil
	default:
		return append(dst, raw...), nil
	}
}
