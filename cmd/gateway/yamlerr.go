package main

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML decoder reports mistakes by line ("line 5: cannot unmarshal !!str
// `fast` into time.Duration"). These helpers name the field instead:
// "routes[0].timeout: `fast` is not a duration".

var (
	lineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	durationRE = regexp.MustCompile("^cannot unmarshal !!str `([^`]*)` into time.Duration$")
	typeRE     = regexp.MustCompile("^cannot unmarshal !!(\\w+) `([^`]*)` into (\\S+)$")
	unknownRE  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	quotedRE   = regexp.MustCompile("`([^`]*)`|^field (\\S+) ")
)

// placed is a node of the document and the path of the field it belongs to.
type placed struct {
	path  string // e.g. "routes[0].timeout"
	value string // the scalar's text, "" for mappings and sequences
}

// fieldPaths maps each line of a YAML document to the nodes on it, in
// document order.
func fieldPaths(src []byte) map[int][]placed {
	var doc yaml.Node
	if yaml.NewDecoder(bytes.NewReader(src)).Decode(&doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	lines := map[int][]placed{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if path != "" {
			lines[n.Line] = append(lines[n.Line], placed{path: path, value: n.Value})
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i].Value
				if path != "" {
					key = path + "." + key
				}
				walk(n.Content[i], key)
				walk(n.Content[i+1], key)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, path+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(doc.Content[0], "")
	return lines
}

// fieldAt names the field a complaint about line is about: the node on the
// line holding the quoted value when there is one, else the line's first.
func fieldAt(nodes []placed, msg string) string {
	if m := quotedRE.FindStringSubmatch(msg); m != nil {
		want := m[1] + m[2] // one of the two is empty
		for _, n := range nodes {
			if n.value == want {
				return n.path
			}
		}
	}
	if len(nodes) > 0 {
		return nodes[0].path
	}
	return ""
}

// explainYAML rewrites a decoding error so that each problem names its
// field and says what was expected.
func explainYAML(err error, src []byte) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	paths := fieldPaths(src)
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		m := lineRE.FindStringSubmatch(msg)
		if m == nil {
			errs = append(errs, errors.New(msg))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		field := fieldAt(paths[line], m[2])
		if field == "" {
			field = "line " + m[1]
		}
		errs = append(errs, fmt.Errorf("%s: %s (line %d)", field, plainYAML(m[2]), line))
	}
	return errors.Join(errs...)
}

// plainYAML says a decoder complaint in a user's words.
func plainYAML(msg string) string {
	if m := durationRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%q is not a duration (write e.g. 2s or 500ms)", m[1])
	}
	if m := unknownRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unknown field %q", m[1])
	}
	if m := typeRE.FindStringSubmatch(msg); m != nil {
		want := m[3]
		switch {
		case strings.HasPrefix(want, "int"), strings.HasPrefix(want, "uint"):
			want = "a whole number"
		case want == "bool":
			want = "true or false"
		case strings.HasPrefix(want, "[]"):
			want = "a list"
		case strings.HasPrefix(want, "map["), strings.Contains(want, "."):
			want = "a mapping (key: value)"
		}
		return fmt.Sprintf("%q is not %s", m[2], want)
	}
	return msg
}
