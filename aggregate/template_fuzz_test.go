package aggregate

import (
	"strings"
	"testing"
)

// FuzzTemplate: parseTemplate never panics, and for a template it accepts
// and any values, renderPath either fails or renders a path that keeps the
// template's literal parts, in order, with each value in between escaped
// into a piece that decodes back to exactly that value and holds nothing
// but path characters and %XX escapes: no "/", "?", "#" or backslash. Once
// decoded (a decoded slash or backslash counting as a separator), no "."
// or ".." segment contains a byte of a value: a value can neither add a
// segment nor climb out of the template, even together with a literal
// next to it. renderValue never panics either.
func FuzzTemplate(f *testing.F) {
	for _, s := range [][4]string{
		{"/users/{id}/orders", "42", "", ""},
		{"/teams/{user.team_id}", "../../admin", "", ""},
		{"/a/{x}/{y}", "..", ".", ""},
		{"/a/{x}{y}", ".", ".", ""},
		{"/a/.{x}", ".", "", ""},
		{"/files/%2{x}", "e", "", ""},
		{"/files/%{x}%{y}", "2e", "2E", ""},
		{"/{x}", `..\..\etc`, "", ""},
		{"/{x}", "a/../b", "", ""},
		{"/{x}", "a?b#c d%2F..", "", ""},
		{"/q/{x}", "é\x00\xff", "", ""},
		{"/{a}/{b}/{c}", "%2e%2e", "..%2f", "%252e"},
		{"/{x", "", "", ""},
		{"/x}", "", "", ""},
		{"/{a.b[]}", "", "", ""},
		{"/{}", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, text, v0, v1, v2 string) {
		tmpl, err := parseTemplate(text)
		if err != nil {
			return
		}
		if len(tmpl.lits) != len(tmpl.refs)+1 {
			t.Fatalf("parseTemplate(%q): %d literals for %d references", text, len(tmpl.lits), len(tmpl.refs))
		}
		if checkPathEscapes(tmpl) != nil {
			// Found by this target: a path literal ending in a cut-off
			// escape ("/files/%2{x}") let a value finish it ("e" made
			// "%2e", a dot segment). compilePath refuses such templates
			// at start-up, so they never render.
			return
		}
		vals := fuzzValues{vals: [3]string{v0, v1, v2}, idx: map[string]int{}}
		_, _, _ = tmpl.renderValue(vals)
		p, err := tmpl.renderPath(vals)
		if err != nil {
			return
		}
		checkRenderedPath(t, tmpl, vals, p)
	})
}

// fuzzValues gives the i-th distinct reference of a template the value
// vals[i%3]; every reference is present.
type fuzzValues struct {
	vals [3]string
	idx  map[string]int // reference -> index, in order of first use
}

func (v fuzzValues) get(r ref) string {
	i, ok := v.idx[r.String()]
	if !ok {
		i = len(v.idx)
		v.idx[r.String()] = i
	}
	return v.vals[i%3]
}

func (v fuzzValues) value(r ref) (string, bool, error) { return v.get(r), true, nil }

func (v fuzzValues) refuse(r ref, msg string) error { return &InputError{Param: r.String(), Msg: msg} }

// checkRenderedPath checks p against the template and the values, without
// relying on how renderPath escapes: it finds each literal in order and
// decodes just enough of what follows to get the value back.
func checkRenderedPath(t *testing.T, tmpl *template, vals fuzzValues, p string) {
	t.Helper()
	var out []byte
	var fromValue []bool // fromValue[i]: p[i] was written for a value
	rest := p
	for i, r := range tmpl.refs {
		lit, v := tmpl.lits[i], vals.get(r)
		if !strings.HasPrefix(rest, lit) {
			t.Fatalf("renderPath(%q) = %q: literal %d %q lost", tmpl.text, p, i, lit)
		}
		out, fromValue = append(out, lit...), append(fromValue, make([]bool, len(lit))...)
		rest = rest[len(lit):]
		n, dec := decodePrefix(rest, len(v))
		if dec != v {
			t.Fatalf("renderPath(%q) with {%s}=%q = %q: the value decodes as %q", tmpl.text, r, v, p, dec)
		}
		for j := range n {
			if c := rest[j]; c != '%' && !pathByte(c) {
				t.Fatalf("renderPath(%q) with {%s}=%q = %q: unescaped %q in the value", tmpl.text, r, v, p, c)
			}
			out, fromValue = append(out, rest[j]), append(fromValue, true)
		}
		rest = rest[n:]
	}
	if last := tmpl.lits[len(tmpl.refs)]; rest != last {
		t.Fatalf("renderPath(%q) = %q: ends in %q, want the last literal %q", tmpl.text, p, rest, last)
	}
	checkNoDotSegmentFromValue(t, tmpl.text, p, out, fromValue)
}

// decodePrefix percent-decodes s until it has want bytes, returning how
// many bytes of s that took and what they decode to.
func decodePrefix(s string, want int) (int, string) {
	var dec []byte
	i := 0
	for i < len(s) && len(dec) < want {
		if s[i] == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]) {
			dec = append(dec, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 3
			continue
		}
		dec = append(dec, s[i])
		i++
	}
	return i, string(dec)
}

// checkNoDotSegmentFromValue decodes p once, keeping track of which
// decoded bytes come (even in part) from a value, and fails if a "." or
// ".." segment holds one.
func checkNoDotSegmentFromValue(t *testing.T, text, p string, raw []byte, fromValue []bool) {
	t.Helper()
	var seg []byte
	segFromValue := false
	flush := func() {
		if (string(seg) == "." || string(seg) == "..") && segFromValue {
			t.Fatalf("renderPath(%q) = %q: a value makes the dot segment %q", text, p, seg)
		}
		seg, segFromValue = seg[:0], false
	}
	for i := 0; i < len(raw); i++ {
		c, v := raw[i], fromValue[i]
		if c == '%' && i+2 < len(raw) && isHexDigit(raw[i+1]) && isHexDigit(raw[i+2]) {
			c, v = unhex(raw[i+1])<<4|unhex(raw[i+2]), v || fromValue[i+1] || fromValue[i+2]
			i += 2
		}
		if c == '/' || c == '\\' {
			flush()
			continue
		}
		seg, segFromValue = append(seg, c), segFromValue || v
	}
	flush()
}

// pathByte reports whether c may appear unescaped in a URL path segment
// (RFC 3986 pchar without "%").
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
