package routes

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
)

// paramRequest is a GET of target as the router hands it to a route: with
// the path parameters (name, value, ...) in its chi route context.
func paramRequest(target string, pathParams ...string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	rctx := chi.NewRouteContext()
	for i := 0; i+1 < len(pathParams); i += 2 {
		rctx.URLParams.Add(pathParams[i], pathParams[i+1])
	}
	return r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
}

// testParams compiles the parameters of a route with pattern path.
func testParams(t testing.TB, path string, pcs ...ParamConfig) []*param {
	t.Helper()
	pat, err := parsePattern(path)
	if err != nil {
		t.Fatal(err)
	}
	params, errs := compileParams("routes[0]", RouteConfig{Path: path, Params: pcs}, pat.params)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return params
}

func TestReadParams(t *testing.T) {
	dashboard := testParams(t, "/api/users/{id}/dashboard",
		ParamConfig{Name: "id", Type: "int"},
		ParamConfig{Name: "limit", Type: "int", Default: "5"},
		ParamConfig{Name: "flag", Type: "bool"})
	pathOnly := testParams(t, "/api/users/{id}/dashboard", ParamConfig{Name: "id", Type: "int"})
	none := testParams(t, "/api/home")
	tests := []struct {
		name    string
		params  []*param
		req     *http.Request
		want    map[string]string
		wantErr string
	}{
		{name: "path, query default", params: dashboard, req: paramRequest("/api/users/123456789/dashboard", "id", "123456789"),
			want: map[string]string{"id": "123456789", "limit": "5"}},
		{name: "path and query, made canonical", params: dashboard, req: paramRequest("/api/users/0042/dashboard?limit=%2B7&flag=T&limit=9&x", "id", "0042"),
			want: map[string]string{"id": "42", "limit": "7", "flag": "true"}},
		{name: "negative zero", params: pathOnly, req: paramRequest("/api/users/-0/dashboard", "id", "-0"), want: map[string]string{"id": "0"}},
		{name: "unknown query parameters are ignored", params: pathOnly, req: paramRequest("/api/users/1/dashboard?limit=7", "id", "1"), want: map[string]string{"id": "1"}},
		{name: "malformed query", params: dashboard, req: paramRequest("/api/users/1/dashboard?limit=%zz", "id", "1"),
			wantErr: `query string is malformed, got "limit=%zz"`},
		{name: "malformed query, not read by the route", params: pathOnly, req: paramRequest("/api/users/1/dashboard?a=1;b=2", "id", "1"),
			wantErr: `query string is malformed, got "a=1;b=2"`},
		{name: "malformed query, route without parameters", params: none, req: paramRequest("/api/home?%zz"),
			wantErr: `query string is malformed, got "%zz"`},
		{name: "no parameters", params: none, req: paramRequest("/api/home?a=1"), want: nil},
		{name: "bad value", params: dashboard, req: paramRequest("/api/users/1/dashboard?flag=maybe", "id", "1"),
			wantErr: `query parameter "flag" must be true or false, got "maybe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readParams(tt.req, tt.params)
			switch {
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("readParams() error = %v, want %s", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("readParams() error = %v", err)
			case !maps.Equal(got, tt.want) || (got == nil) != (tt.want == nil):
				t.Errorf("readParams() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestReadParamsAllocs: reading a route's parameters allocates the map
// that holds them and nothing else when the request has no query string
// and its values are canonical, and nothing at all for a route without
// parameters.
func TestReadParamsAllocs(t *testing.T) {
	dashboard := testParams(t, "/api/users/{id}/dashboard",
		ParamConfig{Name: "id", Type: "int", Min: int64p(1)},
		ParamConfig{Name: "recs", Type: "int", Default: "5"})
	tests := []struct {
		name   string
		params []*param
		req    *http.Request
		want   float64
	}{
		{name: "dashboard", params: dashboard, req: paramRequest("/api/users/123456789/dashboard", "id", "123456789"), want: 2}, // the map and its table
		{name: "dashboard with a query", params: dashboard, req: paramRequest("/api/users/123456789/dashboard?recs=10", "id", "123456789"), want: 3},
		{name: "no parameters", params: testParams(t, "/api/home"), req: paramRequest("/api/home"), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() {
				if _, err := readParams(tt.req, tt.params); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > tt.want {
				t.Errorf("readParams: %v allocs, want at most %v", allocs, tt.want)
			}
		})
	}
}
