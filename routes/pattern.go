package routes

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// pattern is a route path checked against what chi accepts.
type pattern struct {
	// params are the parameter names, in order.
	params []string
	// key is the pattern with every parameter's name left out and its
	// regexp written as chi compiles it: two patterns with the same key
	// land on the same node of chi's tree, and the later one silently
	// replaces the earlier.
	key string
}

// parsePattern checks a chi route pattern, returning what chi would panic
// on, or route ambiguously, as an error: a '{' never closed, a '}' never
// opened, a parameter name that is empty or not made of letters, digits, _
// and -, a name used twice, an empty or invalid regexp, two parameters with
// nothing between them, a wildcard '*' that is not the last character. The
// names found before an error are returned with it.
func parsePattern(p string) (*pattern, error) {
	pat := &pattern{}
	var key strings.Builder
	adjacent := "" // the parameter just before, with no text since
	for i := 0; i < len(p); {
		switch p[i] {
		case '{':
			end := closingBrace(p, i)
			if end < 0 {
				return pat, fmt.Errorf("%q: the '{' at byte %d is never closed", p, i)
			}
			name, re, isRe := strings.Cut(p[i+1:end], ":")
			switch {
			case !validParamName(name):
				return pat, fmt.Errorf("%q: parameter name %q: use letters, digits, _ or -", p, name)
			case slices.Contains(pat.params, name):
				return pat, fmt.Errorf("%q: parameter {%s} appears twice", p, name)
			case adjacent != "":
				return pat, fmt.Errorf("%q: parameters {%s} and {%s} need text between them, such as /", p, adjacent, name)
			}
			pat.params = append(pat.params, name)
			if !isRe {
				key.WriteString("{}")
			} else {
				if re == "" {
					return pat, fmt.Errorf("%q: parameter {%s} has an empty regexp; write {%s} to match any segment", p, name, name)
				}
				re = anchor(re)
				if _, err := regexp.Compile(re); err != nil {
					return pat, fmt.Errorf("%q: parameter {%s}: bad regexp: %v", p, name, err)
				}
				key.WriteString("{:" + re + "}")
			}
			adjacent = name
			i = end + 1
		case '}':
			return pat, fmt.Errorf("%q: the '}' at byte %d closes no '{'", p, i)
		case '*':
			if i != len(p)-1 {
				return pat, fmt.Errorf("%q: a wildcard '*' must be the last character; use a {parameter} inside the path", p)
			}
			if adjacent != "" {
				return pat, fmt.Errorf("%q: parameter {%s} and the wildcard '*' need text between them, such as /", p, adjacent)
			}
			key.WriteByte('*')
			i++
		default:
			key.WriteByte(p[i])
			adjacent = ""
			i++
		}
	}
	pat.key = key.String()
	return pat, nil
}

// closingBrace returns the index of the '}' that closes the '{' at
// p[open], counting nested braces as chi does (so that "{id:[0-9]{3}}" is
// one parameter), or -1.
func closingBrace(p string, open int) int {
	depth := 0
	for i := open; i < len(p); i++ {
		switch p[i] {
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// anchor anchors a parameter's regexp at both ends, as chi does before
// compiling it.
func anchor(re string) string {
	if !strings.HasPrefix(re, "^") {
		re = "^" + re
	}
	if !strings.HasSuffix(re, "$") {
		re += "$"
	}
	return re
}

// validParamName reports whether s can name a parameter: calls refer to it
// as {s}, so it takes the characters a call reference allows.
func validParamName(s string) bool {
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
