package aggregate

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/braidgw/braid/upstream"
)

func noFetch(context.Context, *upstream.Request) (*upstream.Response, error) {
	return nil, errors.New("not called in compile tests")
}

func TestCompileErrors(t *testing.T) {
	ups := map[string]upstream.Fetch{"users": noFetch, "orders": noFetch, "products": noFetch}
	batch := func(b BatchConfig) []CallConfig {
		return []CallConfig{
			{Name: "orders", Upstream: "orders", Path: "/orders"},
			{Name: "products", Upstream: "products", Path: "/products", Batch: &b},
		}
	}
	okBatch := BatchConfig{Keys: "orders[].items[].product_id", Stitch: "orders[].items[].product"}
	tests := []struct {
		name  string
		calls []CallConfig
		want  []string // each must appear in the error
	}{
		{"no calls", nil, []string{"r.calls: at least one call is required"}},
		{"missing name", []CallConfig{{Upstream: "users", Path: "/u"}}, []string{"r.calls[0].name: is required"}},
		{"bad name", []CallConfig{{Name: "a b", Upstream: "users", Path: "/u"}}, []string{`r.calls[0] (a b).name: "a b"`}},
		{"duplicate name", []CallConfig{{Name: "u", Upstream: "users", Path: "/u"}, {Name: "u", Upstream: "users", Path: "/v"}}, []string{`r.calls[1] (u).name: "u" is declared twice`}},
		{"unknown upstream", []CallConfig{{Name: "u", Upstream: "nope", Path: "/u"}}, []string{`r.calls[0] (u).upstream: unknown upstream "nope"`}},
		{"missing upstream", []CallConfig{{Name: "u", Path: "/u"}}, []string{`r.calls[0] (u).upstream: is required`}},
		{"bad method", []CallConfig{{Name: "u", Upstream: "users", Path: "/u", Method: "POST"}}, []string{`r.calls[0] (u).method: "POST"`}},
		{"missing path", []CallConfig{{Name: "u", Upstream: "users"}}, []string{`r.calls[0] (u).path: is required`}},
		{"relative path", []CallConfig{{Name: "u", Upstream: "users", Path: "u/{id}"}}, []string{`r.calls[0] (u).path: "u/{id}" must start with /`}},
		{"query in path", []CallConfig{{Name: "u", Upstream: "users", Path: "/u?x=1"}}, []string{`r.calls[0] (u).path: "/u?x=1": put query parameters under query`}},
		{"unclosed brace", []CallConfig{{Name: "u", Upstream: "users", Path: "/u/{id"}}, []string{`r.calls[0] (u).path: "/u/{id": unclosed '{'`}},
		{"unknown param", []CallConfig{{Name: "u", Upstream: "users", Path: "/u/{uid}"}}, []string{`r.calls[0] (u).path: unknown parameter {uid} (declared: id)`}},
		{"unknown param in query", []CallConfig{{Name: "u", Upstream: "users", Path: "/u", Query: map[string]string{"l": "{lim}"}}}, []string{`r.calls[0] (u).query.l: unknown parameter {lim}`}},
		{"unknown call", []CallConfig{{Name: "u", Upstream: "users", Path: "/u/{team.id}"}}, []string{`r.calls[0] (u).path: references unknown call "team"`}},
		{"self reference", []CallConfig{{Name: "u", Upstream: "users", Path: "/u/{u.id}"}}, []string{`r.calls[0] (u).path: call "u" references itself`}},
		{"reference walks array", []CallConfig{{Name: "a", Upstream: "users", Path: "/a"}, {Name: "u", Upstream: "users", Path: "/u/{a.items[].id}"}}, []string{`must name one value`}},
		{"cycle", []CallConfig{
			{Name: "a", Upstream: "users", Path: "/a/{c.id}"},
			{Name: "b", Upstream: "users", Path: "/b/{a.id}"},
			{Name: "c", Upstream: "users", Path: "/c/{b.id}"},
		}, []string{"r.calls: dependency cycle: a -> c -> b -> a"}},
		{"duplicate output key", []CallConfig{{Name: "a", Upstream: "users", Path: "/a"}, {Name: "b", As: "a", Upstream: "users", Path: "/b"}}, []string{`r.calls[1] (b).as: response key "a" is used twice`}},
		{"negative timeout", []CallConfig{{Name: "a", Upstream: "users", Path: "/a", Timeout: -1}}, []string{`r.calls[0] (a).timeout: must not be negative`}},
		{"batch keys from unknown call", batch(BatchConfig{Keys: "carts[].product_id", Stitch: "carts[].product"}), []string{`r.calls[1] (products).batch.keys: references unknown call "carts"`}},
		{"batch stitch into another call", batch(BatchConfig{Keys: "orders[].items[].product_id", Stitch: "user.product"}), []string{`r.calls[1] (products).batch.stitch: "user.product" must start with the call holding the keys, "orders"`}},
		{"batch stitch per order as a list", batch(BatchConfig{Keys: "orders[].items[].product_id", Stitch: "orders[].product"}), nil},
		{"batch stitch elsewhere", batch(BatchConfig{Keys: "orders[].items[].product_id", Stitch: "orders[].lines[].product"}), []string{`must sit beside the keys`}},
		{"batch stitch ends in []", batch(BatchConfig{Keys: "orders[].items[].product_id", Stitch: "orders[].items[]"}), []string{`must end with a member name`}},
		{"batch missing keys", batch(BatchConfig{Stitch: "orders[].items[].product"}), []string{`r.calls[1] (products).batch.keys: empty key path`}},
		{"batch bad max", batch(BatchConfig{Keys: okBatch.Keys, Stitch: okBatch.Stitch, MaxBatch: -1, Concurrency: -2}), []string{
			`r.calls[1] (products).batch.max_batch: must be at least 1`, `r.calls[1] (products).batch.concurrency: must be at least 1`,
		}},
		{"batch bad key field", batch(BatchConfig{Keys: okBatch.Keys, Stitch: okBatch.Stitch, KeyField: "ids[]"}), []string{`batch.key_field: "ids[]" must be a member path`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.calls, Env{Field: "r", Params: []string{"id"}, Stack: upstream.Static(ups)})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Compile: %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Compile succeeded, want errors %q", tt.want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %v holds no *ConfigError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestCompileDerivesDependencies(t *testing.T) {
	ups := map[string]upstream.Fetch{"u": noFetch}
	p := mustCompile(t, []CallConfig{
		{Name: "user", Upstream: "u", Path: "/u/{id}"},
		{Name: "team", Upstream: "u", Path: "/t/{user.team_id}", Query: map[string]string{"org": "{user.org.id}", "x": "{id}"}},
		{Name: "orders", Upstream: "u", Path: "/o/{id}"},
		{Name: "products", Upstream: "u", Path: "/p", Batch: &BatchConfig{Keys: "orders[].pid", Stitch: "orders[].product"}},
	}, []string{"id"}, ups)
	deps := map[string][]string{}
	for _, c := range p.calls {
		for _, d := range c.deps {
			deps[c.Name] = append(deps[c.Name], p.calls[d].Name)
		}
	}
	want := map[string]string{"user": "", "team": "user", "orders": "", "products": "orders"}
	for name, w := range want {
		if got := strings.Join(deps[name], ","); got != w {
			t.Errorf("deps[%s] = %q, want %q", name, got, w)
		}
	}
}

func TestPathEscapesMustBeComplete(t *testing.T) {
	for _, p := range []string{"/files/%2{x}", "/a%", "/a%zz/{x}", "/a/%4"} {
		_, err := Compile([]CallConfig{{Name: "c", Upstream: "u", Path: p}}, Env{Field: "r", Params: []string{"x"}, Stack: upstream.Static(map[string]upstream.Fetch{"u": nil})})
		if err == nil || !strings.Contains(err.Error(), "must start an escape of two hex digits") {
			t.Errorf("Compile(path %q) = %v, want the broken escape refused", p, err)
		}
	}
	if _, err := Compile([]CallConfig{{Name: "c", Upstream: "u", Path: "/a%2Fb/{x}"}}, Env{Field: "r", Params: []string{"x"}, Stack: upstream.Static(map[string]upstream.Fetch{"u": nil})}); err != nil {
		t.Errorf("a complete escape was refused: %v", err)
	}
}
