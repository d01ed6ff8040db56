package routes

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
)

// maxParamLen bounds any parameter value; longer values are refused.
const maxParamLen = 1024

// param is a compiled ParamConfig.
type param struct {
	ParamConfig
	inPath bool
	re     *regexp.Regexp
}

// checkers validate a value of each type and return what is wrong, or "".
var checkers = map[string]func(string) string{
	"string": func(string) string { return "" },
	"int": func(s string) string {
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return "must be an integer"
		}
		return ""
	},
	"bool": func(s string) string {
		if _, err := strconv.ParseBool(s); err != nil {
			return "must be true or false"
		}
		return ""
	},
	"uuid": func(s string) string {
		if !uuidRE.MatchString(s) {
			return "must be a UUID"
		}
		return ""
	},
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// check returns what is wrong with v, or "" when it is valid.
func (p *param) check(v string) string {
	if len(v) > maxParamLen {
		return fmt.Sprintf("is longer than %d bytes", maxParamLen)
	}
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	if msg := checkers[p.Type](v); msg != "" {
		return msg
	}
	if p.Type == "int" {
		n, _ := strconv.ParseInt(v, 10, 64)
		if p.Min != nil && n < *p.Min {
			return fmt.Sprintf("must be at least %d", *p.Min)
		}
		if p.Max != nil && n > *p.Max {
			return fmt.Sprintf("must be at most %d", *p.Max)
		}
	}
	if p.re != nil && !p.re.MatchString(v) {
		return fmt.Sprintf("must match %s", p.Pattern)
	}
	return ""
}

// canonical returns valid value v of type typ as it is forwarded: an int in
// decimal without a "+" or leading zeros ("+1", "0001" become "1"), a bool
// as true or false ("1", "T" become "true"). Other types are forwarded as
// given.
func canonical(typ, v string) string {
	switch typ {
	case "int":
		n, _ := strconv.ParseInt(v, 10, 64)
		var buf [20]byte
		if c := strconv.AppendInt(buf[:0], n, 10); string(c) != v {
			return string(c)
		}
		return v // already canonical, as most are: not copied
	case "bool":
		b, _ := strconv.ParseBool(v)
		return strconv.FormatBool(b)
	}
	return v
}

// paramError is a request parameter that failed validation.
type paramError struct {
	where, name, value, msg string
}

func (e *paramError) Error() string {
	if e.name == "" {
		return fmt.Sprintf("%s %s, got %q", e.where, e.msg, truncate(e.value, 64))
	}
	if e.value == "" && e.msg == "is required" {
		return fmt.Sprintf("%s parameter %q is required", e.where, e.name)
	}
	return fmt.Sprintf("%s parameter %q %s, got %q", e.where, e.name, e.msg, truncate(e.value, 64))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// readParams extracts and validates the route's parameters from r; nil
// when there are none. A malformed query string is refused, whether or not
// the route reads it.
func readParams(r *http.Request, params []*param) (map[string]string, error) {
	var query url.Values // nil when there is no query string: nothing to parse
	var err error
	if raw := r.URL.RawQuery; raw != "" {
		if query, err = url.ParseQuery(raw); err != nil {
			return nil, &paramError{where: "query string", msg: "is malformed", value: raw}
		}
	}
	var out map[string]string // made for the first value
	for _, p := range params {
		where := "query"
		var v string
		var present bool
		if p.inPath {
			where = "path"
			raw := chi.URLParam(r, p.Name)
			if v, err = url.PathUnescape(raw); err != nil {
				return nil, &paramError{where: where, name: p.Name, value: raw, msg: "is not a valid escaped path segment"}
			}
			present = true
		} else if vs, ok := query[p.Name]; ok {
			v, present = vs[0], true
		}
		switch {
		case !present && p.Required:
			return nil, &paramError{where: where, name: p.Name, msg: "is required"}
		case !present && p.Default != "":
			v, present = p.Default, true
		case !present:
			continue
		}
		if msg := p.check(v); msg != "" {
			return nil, &paramError{where: where, name: p.Name, value: v, msg: msg}
		}
		if out == nil {
			out = make(map[string]string, len(params))
		}
		out[p.Name] = canonical(p.Type, v)
	}
	return out, nil
}
