package routes

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/upstream"
)

// TestRoutePatterns: every pattern chi would panic on, or would route
// ambiguously, is a config error naming the route's path field; patterns
// chi handles well are accepted.
func TestRoutePatterns(t *testing.T) {
	route := func(method, path string) RouteConfig {
		return RouteConfig{Method: method, Path: path, Calls: []aggregate.CallConfig{{Name: "x", Upstream: "users", Path: "/x"}}}
	}
	tests := []struct {
		name   string
		routes []RouteConfig
		want   []string // substrings of the error; none: New must succeed
	}{
		{name: "unclosed brace", routes: []RouteConfig{route("", "/api/{id")},
			want: []string{`routes[0] (/api/{id).path: "/api/{id": the '{' at byte 5 is never closed`}},
		{name: "unopened brace", routes: []RouteConfig{route("", "/api/}{")},
			want: []string{`routes[0] (/api/}{).path: "/api/}{": the '}' at byte 5 closes no '{'`}},
		{name: "duplicate parameter", routes: []RouteConfig{route("", "/api/{id}/{id}")},
			want: []string{`routes[0] (/api/{id}/{id}).path: "/api/{id}/{id}": parameter {id} appears twice`}},
		{name: "wildcard in the middle", routes: []RouteConfig{route("", "/a/*/b")},
			want: []string{`routes[0] (/a/*/b).path: "/a/*/b": a wildcard '*' must be the last character`}},
		{name: "wildcard before a parameter", routes: []RouteConfig{route("", "/a/*/{id}")},
			want: []string{`routes[0] (/a/*/{id}).path: "/a/*/{id}": a wildcard '*' must be the last character`}},
		{name: "bad regexp", routes: []RouteConfig{route("", "/a/{id:[}")},
			want: []string{`routes[0] (/a/{id:[}).path: "/a/{id:[}": parameter {id}: bad regexp: error parsing regexp: missing closing ]`}},
		{name: "empty regexp", routes: []RouteConfig{route("", "/a/{id:}")},
			want: []string{`routes[0] (/a/{id:}).path: "/a/{id:}": parameter {id} has an empty regexp`}},
		{name: "empty name", routes: []RouteConfig{route("", "/a/{}")},
			want: []string{`routes[0] (/a/{}).path: "/a/{}": parameter name "": use letters, digits, _ or -`}},
		{name: "name with a slash", routes: []RouteConfig{route("", "/a/{a/b}")},
			want: []string{`parameter name "a/b": use letters, digits, _ or -`}},
		{name: "adjacent parameters", routes: []RouteConfig{route("", "/a/{x}{y}")},
			want: []string{`routes[0] (/a/{x}{y}).path: "/a/{x}{y}": parameters {x} and {y} need text between them`}},
		{name: "parameter then wildcard", routes: []RouteConfig{route("", "/a/{x}*")},
			want: []string{`parameter {x} and the wildcard '*' need text between them`}},
		{name: "same requests, other parameter name",
			routes: []RouteConfig{route("", "/api/users/{id}"), route("GET", "/api/users/{uid}")},
			want:   []string{`routes[1] (/api/users/{uid}).path: GET /api/users/{uid} matches the same requests as routes[0] (/api/users/{id}): only the parameter names differ`}},
		{name: "same requests, regexp anchored or not",
			routes: []RouteConfig{route("HEAD", "/a/{id:[0-9]+}/x"), route("HEAD", "/a/{n:^[0-9]+$}/x")},
			want:   []string{`routes[1] (/a/{n:^[0-9]+$}/x).path: HEAD /a/{n:^[0-9]+$}/x matches the same requests as routes[0] (/a/{id:[0-9]+}/x)`}},
		{name: "every route's mistake is listed",
			routes: []RouteConfig{route("", "/a/*/b"), route("", "/b/{id"), route("", "/c/{x}"), route("", "/c/{y}")},
			want:   []string{"routes[0] (/a/*/b).path", "routes[1] (/b/{id).path", "routes[3] (/c/{y}).path"}},

		{name: "nested braces in a regexp", routes: []RouteConfig{route("", "/a/{id:[0-9]{3}}")}},
		{name: "parameters separated by text", routes: []RouteConfig{route("", "/{a}-{b}")}},
		{name: "wildcard at the end", routes: []RouteConfig{route("", "/files/*")}},
		{name: "same shape, different regexps", routes: []RouteConfig{route("", "/a/{id:[0-9]+}"), route("", "/a/{slug:[a-z]+}")}},
		{name: "same pattern, GET and HEAD", routes: []RouteConfig{route("GET", "/a/{id}"), route("HEAD", "/a/{x}")}},
		{name: "one pattern a prefix of another", routes: []RouteConfig{route("", "/api/users/{id}"), route("", "/api/users/{id}/x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Routes: tt.routes}, Options{Stack: upstream.Static(map[string]upstream.Fetch{"users": nil}), Logger: discard()})
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
			var ce *aggregate.ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %v holds no *aggregate.ConfigError", err)
			}
		})
	}
}

// TestMountRecoversChiPanics: a pattern that reaches chi and makes it
// panic (compile refuses these; mount is the defence) is an error naming
// the route.
func TestMountRecoversChiPanics(t *testing.T) {
	tests := []struct {
		name, path, want string
	}{
		{name: "unclosed brace", path: "/api/{id", want: "closing delimiter '}' is missing"},
		{name: "duplicate parameter", path: "/api/{id}/{id}", want: "duplicate param key"},
		{name: "wildcard in the middle", path: "/a/*/b", want: "wildcard '*' must be the last"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &route{field: "routes[3] (" + tt.path + ")", method: "GET", path: tt.path}
			err := mount(chi.NewRouter(), "GET", rt, http.NotFoundHandler())
			var ce *aggregate.ConfigError
			if !errors.As(err, &ce) || ce.Field != rt.field+".path" || !strings.Contains(ce.Msg, tt.want) {
				t.Errorf("mount() = %v, want a ConfigError for %s.path saying %q", err, rt.field, tt.want)
			}
		})
	}
}

// FuzzParsePattern: a pattern parsePattern accepts never makes chi panic.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"/api/users/{id}/dashboard", "/a/{id:[0-9]{3}}", "/{a}-{b}", "/files/*", "/api/{id", "/a/*/b",
		"/a/{id:[}", "/a/{x}{y}", "/a/}{", "/a/{id:^x$}", "/a/{{x}}", "/a*", "/a/{x:a/b}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if p == "" || p[0] != '/' {
			return
		}
		pat, err := parsePattern(p)
		if err != nil {
			return
		}
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("parsePattern(%q) accepted it (key %q), chi panicked: %v", p, pat.key, v)
			}
		}()
		chi.NewRouter().Method("GET", p, http.NotFoundHandler())
	})
}
