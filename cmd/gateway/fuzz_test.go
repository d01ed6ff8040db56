package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// fieldOrLine is how every configuration error starts when it names a
// field ("routes[0] (/x).path: ", "server.listen: ", "upstreams: ",
// `upstreams["a b"].url: `).
var fieldOrLine = regexp.MustCompile(`^[a-z_]+(\[(\d+|"(\\.|[^"\\])*")\])?(\.| |:)`)

// FuzzParseConfig: whatever the file, loading it never panics, and every
// error names a field or a line. Seeds: testdata/fuzz/FuzzParseConfig (the
// repo's gateway.yaml and broken variants of it) and the current
// gateway.yaml.
func FuzzParseConfig(f *testing.F) {
	if src, err := os.ReadFile("../../gateway.yaml"); err == nil {
		f.Add(src)
	}
	vars := env(map[string]string{"SET_VAR": "http://127.0.0.1:9"})
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := parseConfig(src, vars, overrides{})
		if err == nil {
			if cfg == nil {
				t.Fatal("parseConfig returned neither a configuration nor an error")
			}
			return
		}
		for _, e := range flatten(err) {
			msg := e.Error()
			if strings.Contains(msg, "internal error") {
				t.Errorf("panic inside parseConfig: %s", msg)
			}
			if !fieldOrLine.MatchString(msg) && !strings.Contains(msg, "line ") {
				t.Errorf("error names no field and no line: %q", msg)
			}
		}
	})
}
