package aggregate

import (
	"fmt"
	"net/url"
	"strings"
)

// A template is a path or query value with references in braces:
//
//	/users/{id}/orders          {id} is a route parameter
//	/teams/{user.team_id}       {user.team_id} is a field of call "user"
//
// Every value is escaped into its place when the template is rendered; a
// value can never add a path segment, a query or a fragment.
type template struct {
	text  string
	lits  []string // lits[i] precedes refs[i]; len(lits) == len(refs)+1
	refs  []ref
	alone bool // the template is exactly one reference
}

// ref is one reference: a route parameter, or a path into a call's result.
type ref struct {
	param string  // set for a route parameter
	path  keyPath // set for a call reference
}

func (r ref) String() string {
	if r.param != "" {
		return r.param
	}
	return r.path.String()
}

func parseTemplate(s string) (*template, error) {
	t := &template{text: s}
	rest := s
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return nil, fmt.Errorf("%q: unmatched '}'", s)
			}
			t.lits = append(t.lits, rest)
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%q: unclosed '{'", s)
		}
		lit, name := rest[:open], rest[open+1:open+end]
		if strings.IndexByte(lit, '}') >= 0 {
			return nil, fmt.Errorf("%q: unmatched '}'", s)
		}
		r, err := parseRef(name)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		t.lits = append(t.lits, lit)
		t.refs = append(t.refs, r)
		rest = rest[open+end+1:]
	}
	t.alone = len(t.refs) == 1 && t.lits[0] == "" && t.lits[1] == ""
	return t, nil
}

// authRef is the name that starts references to the verified token's
// claims: {auth.sub}, {auth.claims.tenant}. No call may take it.
const authRef = "auth"

// auth reports whether r reads the verified token.
func (r ref) auth() bool { return strings.HasPrefix(r.param, authRef+".") }

func parseRef(name string) (ref, error) {
	if rest, ok := strings.CutPrefix(name, authRef+"."); ok {
		if rest != "sub" && !validClaimPath(rest) {
			return ref{}, fmt.Errorf("bad reference {%s}: write {auth.sub} or {auth.claims.NAME}", name)
		}
		return ref{param: name}, nil
	}
	if !strings.Contains(name, ".") {
		if !validName(name) {
			return ref{}, fmt.Errorf("bad reference {%s}", name)
		}
		return ref{param: name}, nil
	}
	p, err := parseKeyPath(name)
	if err != nil {
		return ref{}, err
	}
	if iterates(p.segs) {
		return ref{}, fmt.Errorf("reference {%s} must name one value, not walk an array", name)
	}
	return ref{path: p}, nil
}

// values resolves references while a call is being built.
type values interface {
	// value returns the text of r and whether it is present.
	value(r ref) (string, bool, error)
	// refuse returns the error for a value of r that cannot be used, msg
	// saying why: an *InputError for a route parameter (the client's
	// fault), a *DataError for a field of a call's result (its upstream's).
	refuse(r ref, msg string) error
}

// renderPath renders the template as an escaped URL path. A value that is
// empty or holds a "." or ".." segment, with a backslash counted as a
// separator as well as a slash, is refused before any call is made: the
// upstream client would refuse the escaped path anyway (see
// upstream.ErrBadPath), and this way the error names the value and blames
// whoever sent it.
func (t *template) renderPath(v values) (string, error) {
	if len(t.refs) == 0 {
		return t.text, nil
	}
	var b strings.Builder
	b.Grow(len(t.text) + 16) // the values replace their references: usually one allocation
	for i, r := range t.refs {
		b.WriteString(t.lits[i])
		s, ok, err := v.value(r)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", v.refuse(r, "is required")
		}
		if s == "" || hasDotSegment(s) {
			return "", v.refuse(r, fmt.Sprintf("%q cannot be used as a path segment", s))
		}
		b.WriteString(url.PathEscape(s))
	}
	b.WriteString(t.lits[len(t.refs)])
	return b.String(), nil
}

// hasDotSegment reports whether s, split at slashes and backslashes, has a
// "." or ".." part: escaped into a path, such a value could climb out of
// the template on a server that decodes %2F or %5C as a separator.
func hasDotSegment(s string) bool {
	for part := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == "." || part == ".." {
			return true
		}
	}
	return false
}

// renderValue renders the template as an unescaped query value. ok is false
// when the template is a lone reference to an absent optional parameter, so
// that the query parameter is left out.
func (t *template) renderValue(v values) (s string, ok bool, err error) {
	switch {
	case len(t.refs) == 0:
		return t.text, true, nil
	case t.alone:
		val, present, err := v.value(t.refs[0])
		if err != nil || !present {
			return "", false, err
		}
		return val, true, nil
	}
	var b strings.Builder
	b.Grow(len(t.text) + 16)
	for i, r := range t.refs {
		b.WriteString(t.lits[i])
		val, present, err := v.value(r)
		if err != nil {
			return "", false, err
		}
		if !present && t.alone {
			return "", false, nil
		}
		b.WriteString(val)
	}
	b.WriteString(t.lits[len(t.refs)])
	return b.String(), true, nil
}

// validClaimPath reports whether p is "claims.NAME[.NAME...]", each NAME
// a valid name.
func validClaimPath(p string) bool {
	rest, ok := strings.CutPrefix(p, "claims.")
	if !ok {
		return false
	}
	for seg := range strings.SplitSeq(rest, ".") {
		if !validName(seg) {
			return false
		}
	}
	return true
}
