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
// members and nulls reach nothing; a value of the wrong type is an error.
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

// rewrite returns raw with every object that segs reaches replaced by
// fn(object). Everything off the path is copied unchanged.
func rewrite(dst, raw []byte, segs []segment, fn func(dst, obj []byte) ([]byte, error)) ([]byte, error) {
	raw = trimValue(raw)
	k := kind(raw)
	if len(segs) == 0 {
		if k != '{' {
			return append(dst, raw...), nil
		}
		return fn(dst, raw)
	}
	s := segs[0]
	switch {
	case s.iter && k == '[':
		dst = append(dst, '[')
		n := 0
		err := eachElem(raw, func(elem []byte) error {
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			var err error
			dst, err = rewrite(dst, elem, segs[1:], fn)
			return err
		})
		return append(dst, ']'), err
	case !s.iter && k == '{':
		dst = append(dst, '{')
		n := 0
		err := eachMember(raw, func(key, val []byte) error {
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			dst = append(append(dst, key...), ':')
			if !keyIs(key, s.name) {
				dst = append(dst, val...)
				return nil
			}
			var err error
			dst, err = rewrite(dst, val, segs[1:], fn)
			return err
		})
		return append(dst, '}'), err
	default:
		return append(dst, raw...), nil
	}
}
