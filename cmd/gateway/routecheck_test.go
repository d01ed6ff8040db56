package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/routes"
	"github.com/braidgw/braid/upstream"
)

// TestBadRoutePatternsNeverPanic: patterns that make chi panic are
// reported by "gateway validate" as mistakes of the route's path field,
// with exit code 1 and no Go panic.
func TestBadRoutePatternsNeverPanic(t *testing.T) {
	tests := []struct {
		name, path string
	}{
		{"unclosed parameter", "/api/{id"},
		{"parameter twice", "/api/{id}/{id}"},
		{"wildcard in the middle", "/a/*/b"},
		{"wildcard then text", "/a/*x"},
		{"bad regexp", "/a/{id:[}"},
		{"bad regexp after a good one", "/a/{id:[0-9]+}/{name:(}"},
		{"brace inside a regexp", "/a/{a:{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(validConfig, "/api/users/{id}", tt.path, 1)
			src = strings.Replace(src, "    params: [{name: id, type: int}]\n", "", 1)
			file := filepath.Join(t.TempDir(), "gw.yaml")
			if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := run([]string{"validate", "-config", file}, &out, &errOut)
			if code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", code, errOut.String())
			}
			if want := "routes[0] (" + tt.path + ").path: "; !strings.Contains(errOut.String(), want) {
				t.Errorf("stderr does not name %q:\n%s", want, errOut.String())
			}
			for _, bad := range []string{"panic:", "goroutine "} {
				if strings.Contains(errOut.String(), bad) {
					t.Errorf("stderr shows a Go panic:\n%s", errOut.String())
				}
			}
		})
	}
}

// TestCompileRoutesRecovers: whatever panics inside routes.New becomes an
// error; a pattern chi refuses is named by its route's path field unless
// routes reported that field already.
func TestCompileRoutesRecovers(t *testing.T) {
	cfg := routes.Config{Routes: []routes.RouteConfig{{Path: "/ok", Calls: []aggregate.CallConfig{{Name: "a", Upstream: "users", Path: "/a"}}}}}
	panics := func(upstream.Call) (upstream.Fetch, error) { panic("boom") }
	_, err := compileRoutes(cfg, routes.Options{Stack: panics})
	if err == nil || err.Error() != "routes: could not be compiled: boom" {
		t.Errorf("a panicking routes.New: err = %v, want an error naming routes", err)
	}

	rcs := []routes.RouteConfig{{Path: "/api/{id"}, {Path: "/fine/{id}"}, {Path: "/a/*/b"}, {Path: "/fine/{id}/x/{id:[}"}}
	tests := []struct {
		name     string
		reported error
		want     []string
	}{
		{"none reported", nil, []string{"routes[0] (/api/{id).path", "routes[2] (/a/*/b).path", "routes[3] (/fine/{id}/x/{id:[}).path"}},
		{"one reported by routes", errors.Join(errors.New("other"), &aggregate.ConfigError{Field: "routes[2] (/a/*/b).path", Msg: "x"}),
			[]string{"routes[0] (/api/{id).path", "routes[3] (/fine/{id}/x/{id:[}).path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range patternErrors(rcs, tt.reported) {
				var ce *aggregate.ConfigError
				if !errors.As(e, &ce) || !strings.HasPrefix(ce.Msg, "the router refuses the pattern: ") {
					t.Errorf("error %v, want a *ConfigError saying the router refuses the pattern", e)
					continue
				}
				got = append(got, ce.Field)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("fields\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
