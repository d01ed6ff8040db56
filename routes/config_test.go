package routes

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/upstream"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestCompileErrors(t *testing.T) {
	ups := map[string]upstream.Fetch{"users": nil}
	call := []aggregate.CallConfig{{Name: "user", Upstream: "users", Path: "/users/{id}"}}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"no routes", Config{}, []string{"routes: at least one route is required"}},
		{"relative path", Config{Routes: []RouteConfig{{Path: "api/x", Calls: call}}}, []string{`routes[0] (api/x).path: "api/x" must start with /`}},
		{"duplicate route", Config{Routes: []RouteConfig{{Path: "/u/{id}", Calls: call}, {Path: "/u/{id}", Method: "get", Calls: call}}}, []string{"routes[1] (/u/{id}).path: GET /u/{id} is declared twice"}},
		{"bad method", Config{Routes: []RouteConfig{{Path: "/u/{id}", Method: "DELETE", Calls: call}}}, []string{`routes[0] (/u/{id}).method: "DELETE"`}},
		{"negative timeout", Config{Routes: []RouteConfig{{Path: "/u/{id}", Timeout: -1, Calls: call}}}, []string{"routes[0] (/u/{id}).timeout: must not be negative"}},
		{"bad type", Config{Routes: []RouteConfig{{Path: "/u/{id}", Params: []ParamConfig{{Name: "id", Type: "float"}}, Calls: call}}}, []string{`routes[0] (/u/{id}).params[0].type: "float": want string, int, bool or uuid`}},
		{"path default", Config{Routes: []RouteConfig{{Path: "/u/{id}", Params: []ParamConfig{{Name: "id", Default: "1"}}, Calls: call}}}, []string{"routes[0] (/u/{id}).params[0].default: a path parameter cannot have a default"}},
		{"bad default", Config{Routes: []RouteConfig{{Path: "/u/{id}", Params: []ParamConfig{{Name: "limit", Type: "int", Default: "ten"}}, Calls: call}}}, []string{`routes[0] (/u/{id}).params[0].default: "ten" must be an integer`}},
		{"min on string", Config{Routes: []RouteConfig{{Path: "/u/{id}", Params: []ParamConfig{{Name: "q", Min: int64p(1)}}, Calls: call}}}, []string{"routes[0] (/u/{id}).params[0].min: min and max apply to int parameters only"}},
		{"max below min", Config{Routes: []RouteConfig{{Path: "/u/{id}", Params: []ParamConfig{{Name: "n", Type: "int", Min: int64p(5), Max: int64p(1)}}, Calls: call}}}, []string{"routes[0] (/u/{id}).params[0].max: 1 is less than min 5"}},
		{"bad pattern", Config{Routes: []RouteConfig{{Path: "/u/{id}", Params: []ParamConfig{{Name: "id", Pattern: "("}}, Calls: call}}}, []string{"routes[0] (/u/{id}).params[0].pattern:"}},
		{"duplicate param", Config{Routes: []RouteConfig{{Path: "/u/{id}", Params: []ParamConfig{{Name: "id"}, {Name: "id"}}, Calls: call}}}, []string{`routes[0] (/u/{id}).params[1].name: "id" is declared twice`}},
		{"unknown param in call", Config{Routes: []RouteConfig{{Path: "/u/{uid}", Calls: call}}}, []string{"routes[0] (/u/{uid}).calls[0] (user).path: unknown parameter {id} (declared: uid)"}},
		{"unknown upstream", Config{Routes: []RouteConfig{{Path: "/u/{id}", Calls: []aggregate.CallConfig{{Name: "x", Upstream: "nope", Path: "/x"}}}}}, []string{`routes[0] (/u/{id}).calls[0] (x).upstream: unknown upstream "nope"`}},
		{"no calls", Config{Routes: []RouteConfig{{Path: "/u/{id}"}}}, []string{"routes[0] (/u/{id}).calls: at least one call is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, Options{Stack: upstream.Static(ups), Logger: discard()})
			if err == nil {
				t.Fatalf("New succeeded, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestPathParamsAreDeclaredImplicitly(t *testing.T) {
	rts, err := compile(Config{Routes: []RouteConfig{{
		Path:   "/api/{org}/users/{id:[0-9]+}",
		Params: []ParamConfig{{Name: "verbose", Type: "bool"}, {Name: "id", Type: "int"}},
		Calls:  []aggregate.CallConfig{{Name: "u", Upstream: "users", Path: "/o/{org}/u/{id}", Query: map[string]string{"v": "{verbose}"}}},
	}}}, Options{Stack: upstream.Static(map[string]upstream.Fetch{"users": nil})})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range rts[0].params {
		got = append(got, p.Name+":"+p.Type)
	}
	if strings.Join(got, " ") != "id:int org:string verbose:bool" {
		t.Errorf("params = %v, want path params first: id:int org:string verbose:bool", got)
	}
}
