package aggregate

import (
	"encoding/json"
	"errors"
	"fmt"
)

// This file reads and rewrites raw JSON without decoding it into Go values.
// Upstream bodies arrive validated (by encoding/json.Valid's rules), so the
// scanner only has to find where values start and end; everything it does
// not look into is copied byte for byte. The functions are pure: a call's
// body is shared read-only by every call that depends on it.

var errMalformed = errors.New("malformed JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errMalformed
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		return skipContainer(b, i)
	default:
		j := i
		for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != ']' && b[j] != '}' {
			j++
		}
		if j == i {
			return 0, errMalformed
		}
		return j, nil
	}
}

func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errMalformed
}

func skipContainer(b []byte, i int) (int, error) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			end, err := skipString(b, j)
			if err != nil {
				return 0, err
			}
			j = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, errMalformed
}

// trimValue returns raw without surrounding white space.
func trimValue(raw []byte) []byte {
	i := skipSpace(raw, 0)
	j := len(raw)
	for j > i && isSpace(raw[j-1]) {
		j--
	}
	return raw[i:j]
}

// kind reports the JSON type of a trimmed raw value: '{', '[', '"', 'n' for
// null, or 0 for numbers and booleans.
func kind(raw []byte) byte {
	if len(raw) == 0 {
		return 'n'
	}
	switch raw[0] {
	case '{', '[', '"', 'n':
		return raw[0]
	}
	return 0
}

// eachElem calls fn with each element of a raw JSON array.
func eachElem(arr []byte, fn func(elem []byte) error) error {
	return eachElemAt(arr, func(start, end int) error { return fn(arr[start:end]) })
}

// eachElemAt calls fn with where each element of a raw JSON array starts
// and ends, so that a caller can copy the bytes between elements verbatim.
func eachElemAt(arr []byte, fn func(start, end int) error) error {
	i := skipSpace(arr, 1)
	if i < len(arr) && arr[i] == ']' {
		return nil
	}
	for i < len(arr) {
		i = skipSpace(arr, i)
		end, err := skipValue(arr, i)
		if err != nil {
			return err
		}
		if err := fn(i, end); err != nil {
			return err
		}
		i = skipSpace(arr, end)
		if i >= len(arr) || arr[i] == ']' {
			return nil
		}
		if arr[i] != ',' {
			return errMalformed
		}
		i++
	}
	return errMalformed
}

// eachMember calls fn with each key (still quoted) and value of a raw JSON
// object, in document order.
func eachMember(obj []byte, fn func(key, val []byte) error) error {
	return eachMemberAt(obj, func(key []byte, start, end int) error { return fn(key, obj[start:end]) })
}

// eachMemberAt calls fn with each key (still quoted) of a raw JSON object
// and where its value starts and ends, in document order.
func eachMemberAt(obj []byte, fn func(key []byte, start, end int) error) error {
	i := skipSpace(obj, 1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for i < len(obj) {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return errMalformed
		}
		kend, err := skipString(obj, i)
		if err != nil {
			return err
		}
		key := obj[i:kend]
		i = skipSpace(obj, kend)
		if i >= len(obj) || obj[i] != ':' {
			return errMalformed
		}
		i = skipSpace(obj, i+1)
		vend, err := skipValue(obj, i)
		if err != nil {
			return err
		}
		if err := fn(key, i, vend); err != nil {
			return err
		}
		i = skipSpace(obj, vend)
		if i >= len(obj) || obj[i] == '}' {
			return nil
		}
		if obj[i] != ',' {
			return errMalformed
		}
		i++
	}
	return errMalformed
}

// keyIs reports whether the quoted JSON key equals name.
func keyIs(quoted []byte, name string) bool {
	inner := quoted[1 : len(quoted)-1]
	for _, c := range inner {
		if c == '\\' {
			var s string
			return json.Unmarshal(quoted, &s) == nil && s == name
		}
	}
	return string(inner) == name
}

// field returns the raw value of the named member of obj, or nil when obj is
// not an object or has no such member. When the name occurs more than once
// the last occurrence wins, as in encoding/json (and JavaScript): the value
// a client decoding the document would see.
func field(obj []byte, name string) []byte {
	if kind(obj) != '{' {
		return nil
	}
	var found []byte
	_ = eachMember(obj, func(key, val []byte) error {
		if keyIs(key, name) {
			found = val
		}
		return nil
	})
	return found
}

// scalarText returns the text of a JSON string (unquoted) or number or
// boolean, as used for template values and batch keys.
func scalarText(raw []byte) (string, error) {
	switch kind(raw) {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case 0:
		return string(raw), nil
	case 'n':
		return "", errors.New("value is null")
	default:
		return "", fmt.Errorf("value is not a string or number: %.40s", raw)
	}
}

// setMember appends to dst a copy of the object obj with member name set to
// val: every occurrence of name gets val (so that a parser keeping the first
// duplicate and one keeping the last agree), or, when there is none, the
// member is added after the last one. All other bytes, white space
// included, are copied unchanged.
func setMember(dst, obj []byte, name string, val []byte) ([]byte, error) {
	from, end := 0, -1 // from: copied up to here; end: just past the last value
	err := eachMemberAt(obj, func(key []byte, start, stop int) error {
		if keyIs(key, name) {
			dst = append(append(dst, obj[from:start]...), val...)
			from = stop
		}
		end = stop
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case from > 0: // replaced
		return append(dst, obj[from:]...), nil
	case end < 0: // an empty object: the member goes right after '{'
		dst = append(dst, '{')
		end = 1
	default:
		dst = append(append(dst, obj[:end]...), ',')
	}
	dst = append(appendQuoted(dst, name), ':')
	dst = append(dst, val...)
	return append(dst, obj[end:]...), nil
}

// appendQuoted appends s as a JSON string, quoted as json.Marshal quotes
// it. A name of plain printable ASCII, the usual member name, is copied as
// it is, without an allocation.
func appendQuoted(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
