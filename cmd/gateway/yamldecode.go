package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The configuration is decoded in three steps, so that every mistake names
// its field and its line:
//
//  1. The file is parsed into a yaml.Node tree. A syntax error is placed on
//     the line where the file stops being readable (see syntaxError).
//  2. The file is decoded into the config strictly (KnownFields): this is
//     the decoding the gateway uses.
//  3. Only if step 2 fails, the node tree is walked alongside the config's
//     Go type (see checker). The walk knows, at every node, the path of the
//     field it is on ("routes[0].calls[1].timeout") and the node's line, so
//     each error is built from what is wrong, never recovered from the
//     decoder's message: yaml.v3's *TypeError is a list of strings carrying
//     a line only.

// FieldError is a mistake in the configuration file, at a known line.
// Path is the field's path from the file's root ("upstreams.users.retry.attempts");
// it is empty for a mistake about the whole document.
type FieldError struct {
	Path string
	Line int
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s (line %d)", e.Path, e.Msg, e.Line)
}

// decodeYAML decodes the YAML document src into out, a pointer to a
// struct, refusing unknown fields. An empty document leaves out as it is.
// Errors are *FieldErrors, joined.
func decodeYAML(src []byte, out any) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return syntaxError(src, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return syntaxError(src, err)
	default:
		return &FieldError{Line: next.Line, Msg: "a second YAML document (after ---): the configuration is one document"}
	}
	strict := yaml.NewDecoder(bytes.NewReader(src))
	strict.KnownFields(true)
	err := strict.Decode(out)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	c := &checker{}
	c.check(&doc, reflect.TypeOf(out).Elem(), "")
	if len(c.errs) == 0 {
		// The walk found nothing the decoder did (yaml.v3 refuses, for
		// one, a document whose aliases expand too much): say what the
		// decoder said.
		return &FieldError{Line: doc.Line, Msg: "not a valid configuration: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	return errors.Join(c.errs...)
}

// syntaxError places a YAML syntax error on its line. yaml.v3 reports a
// parser error at the line where the enclosing block started (its context
// mark, counted from 0), and one on the first line with no line at all, so
// the line is found instead as the shortest start of the file, in whole
// lines, that fails to parse with the same error: the file stops being
// readable there. The search is a bisection (a start that includes the
// mistake fails the same way; a shorter one parses or fails otherwise,
// typically at its end).
func syntaxError(src []byte, err error) error {
	want := err.Error()
	ends := lineEnds(src)
	lo, hi := 1, len(ends) // the answer is in [lo, hi]; the whole file fails
	for lo < hi {
		mid := lo + (hi-lo)/2
		if e := parseAll(src[:ends[mid-1]]); e != nil && e.Error() == want {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return &FieldError{Line: lo, Msg: "not valid YAML: " + yamlProblem(want)}
}

// lineEnds returns the offset just past each line of src.
func lineEnds(src []byte) []int {
	var ends []int
	for i, b := range src {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] < len(src) {
		ends = append(ends, len(src))
	}
	return ends
}

// parseAll parses every document of src into nodes, returning the first
// error.
func parseAll(src []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// yamlProblem is a yaml.v3 syntax error without its "yaml: line N: "
// prefix, whose line is not the problem's (see syntaxError).
func yamlProblem(msg string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, text, ok := strings.Cut(rest, ": "); ok {
			if _, err := strconv.Atoi(n); err == nil {
				return text
			}
		}
	}
	return msg
}

// Bounds of the checker's walk, whatever the document.
const (
	maxVisits = 100_000 // nodes visited
	maxErrors = 50      // errors reported
)

// checker walks a node tree alongside the Go type it decodes into,
// collecting a *FieldError for each node that does not fit. A node reached
// again through an alias (*name) is checked once per type: aliases may
// expand a small document into a huge one, and its mistakes are reported
// once, at their first path.
type checker struct {
	errs    []error
	visits  int
	aliased map[aliasUse]bool
	stopped bool
}

// aliasUse is an anchored node checked against a type.
type aliasUse struct {
	n *yaml.Node
	t reflect.Type
}

func (c *checker) errf(n *yaml.Node, path, format string, args ...any) {
	if c.stopped {
		return
	}
	if len(c.errs) == maxErrors {
		c.stopped = true
		c.errs = append(c.errs, &FieldError{Line: n.Line, Msg: fmt.Sprintf("more mistakes from here on: fix the %d above first", maxErrors)})
		return
	}
	c.errs = append(c.errs, &FieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
)

// check checks that n decodes into a t at path.
func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	if c.stopped {
		return
	}
	if c.visits++; c.visits > maxVisits {
		c.errf(n, path, "the document has too many values to check; stopped here")
		c.stopped = true
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, m := range n.Content {
			c.check(m, t, path)
		}
		return
	case yaml.AliasNode:
		if n.Alias != nil {
			c.check(n.Alias, t, path)
		}
		return
	}
	if n.Anchor != "" {
		use := aliasUse{n, t}
		if c.aliased[use] {
			return
		}
		if c.aliased == nil {
			c.aliased = map[aliasUse]bool{}
		}
		c.aliased[use] = true
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // null leaves the field at its zero value: its default
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		c.custom(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		c.check(n, t.Elem(), path)
	case reflect.Struct, reflect.Map:
		c.mapping(n, t, path)
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			c.errf(n, path, "%s is not a list", describe(n))
			return
		}
		for i, item := range n.Content {
			c.check(item, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		}
	case reflect.Interface:
		// anything decodes into an interface
	default:
		c.scalar(n, t, path)
	}
}

// mapping checks a mapping decoded into a struct (whose fields are known)
// or a map (whose keys are free).
func (c *checker) mapping(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		c.errf(n, path, "%s is not a mapping (key: value)", describe(n))
		return
	}
	var fields *structFields
	if t.Kind() == reflect.Struct {
		fields = fieldsOf(t)
	}
	seen := map[string]int{} // key -> its line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			c.merge(v, t, path)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			c.errf(k, path, "a key must be a name, not %s", describe(k))
			continue
		}
		p := joinPath(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			c.errf(k, p, "is set twice, first on line %d", line)
			continue
		}
		seen[k.Value] = k.Line
		switch {
		case fields == nil:
			if t.Key().Kind() != reflect.String {
				c.scalar(k, t.Key(), p)
			}
			c.check(v, t.Elem(), p)
		case fields.byName[k.Value] != nil:
			c.check(v, fields.byName[k.Value], p)
		case fields.rest != nil:
			c.check(v, fields.rest, p)
		default:
			c.errf(k, p, "unknown field %q%s", k.Value, suggest(k.Value, fields.names()))
		}
	}
}

// merge checks the value of a merge key (<<: *base): a mapping, or a list
// of them, whose fields join the mapping holding the key.
func (c *checker) merge(v *yaml.Node, t reflect.Type, path string) {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		for _, m := range v.Content {
			c.check(m, t, path)
		}
		return
	}
	c.check(v, t, path)
}

// scalar checks a value decoded into a number, string, bool or duration.
func (c *checker) scalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.ScalarNode && n.Decode(reflect.New(t).Interface()) == nil {
		return
	}
	if k := t.Kind(); n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" && k >= reflect.Int && k <= reflect.Uint64 && t != durationType {
		c.errf(n, path, "%s is out of range", describe(n))
		return
	}
	c.errf(n, path, "%s is not %s", describe(n), expected(t))
}

// custom checks a value of a type with its own UnmarshalYAML (such as
// cache.ByteSize), whose errors say what is wrong.
func (c *checker) custom(n *yaml.Node, t reflect.Type, path string) {
	err := n.Decode(reflect.New(t).Interface())
	var te *yaml.TypeError
	switch {
	case err == nil:
	case errors.As(err, &te):
		for _, msg := range te.Errors {
			c.errf(n, path, "%s", strings.TrimPrefix(msg, fmt.Sprintf("line %d: ", n.Line)))
		}
	default:
		c.errf(n, path, "%v", err)
	}
}

// describe names a node's value in an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	v := n.Value
	if r := []rune(v); len(r) > 60 {
		v = string(r[:57]) + "..."
	}
	return strconv.Quote(v)
}

// expected says, in a user's words, what a field of type t holds.
func expected(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration (write e.g. 2s or 500ms)"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

// structFields are the YAML keys of a struct, its inline structs' included.
type structFields struct {
	byName map[string]reflect.Type
	rest   reflect.Type // the value type of an inline map, which takes any other key
}

func (f *structFields) names() []string {
	out := make([]string, 0, len(f.byName))
	for name := range f.byName {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// fieldsOf lists t's fields as yaml.v3 names them: the yaml tag's name, or
// the field's name in lower case; "-" is skipped; ",inline" structs and
// maps are flattened into t.
func fieldsOf(t reflect.Type) *structFields {
	f := &structFields{byName: map[string]reflect.Type{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == "-" || (!sf.IsExported() && !sf.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				inner := fieldsOf(ft)
				for k, v := range inner.byName {
					f.byName[k] = v
				}
				if inner.rest != nil {
					f.rest = inner.rest
				}
			case reflect.Map:
				f.rest = ft.Elem()
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		f.byName[name] = sf.Type
	}
	return f
}

// joinPath appends a mapping key to a field path. Keys that are not plain
// names are quoted, so that the path stays readable: upstreams["a.b"].
func joinPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

// suggest returns ` (did you mean "x"?)` for the known name closest to an
// unknown one, when one is close.
func suggest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" || bestDist >= len(name) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
