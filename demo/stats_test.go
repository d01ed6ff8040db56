package demo

import (
	"maps"
	"net/http"
	"slices"
	"testing"
)

func TestRequestCounting(t *testing.T) {
	s := newTestService(t, "products", ServiceOptions{})
	for _, target := range []string{"/products?ids=1,2", "/products?ids=3", "/products/1", "/products/x", "/healthz", "/elsewhere"} {
		get(t, s, target)
	}
	for _, target := range []string{"/_demo/stats", "/_demo/faults", "/_demo/nothing"} {
		get(t, s, target)
	}
	want := Stats{Service: "products", Requests: 6, ByRoute: map[string]int64{
		"GET /products": 2, "GET /products/{id}": 2, "GET /healthz": 1,
	}}
	got := decode[Stats](t, get(t, s, "/_demo/stats"))
	if got.Service != want.Service || got.Requests != want.Requests || !maps.Equal(got.ByRoute, want.ByRoute) {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
	if s.Requests() != 6 || s.RouteCount("GET /products") != 2 || s.RouteCount("GET /nope") != 0 {
		t.Errorf("Requests() = %d, RouteCount(GET /products) = %d", s.Requests(), s.RouteCount("GET /products"))
	}
	if routes := s.Routes(); !slices.Equal(routes, []string{"GET /healthz", "GET /products", "GET /products/{id}"}) {
		t.Errorf("Routes() = %v", routes)
	}

	// Requests answered by faults are counted too.
	if err := s.SetFaults(Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	get(t, s, "/products/1")
	if s.RouteCount("GET /products/{id}") != 3 {
		t.Errorf("a request answered 503 was not counted")
	}
}

func TestReset(t *testing.T) {
	s := newTestService(t, "users", ServiceOptions{Faults: Faults{ErrorRate: 1}})
	get(t, s, "/users/1")
	r := do(t, s, http.MethodPost, "/_demo/reset", "")
	wantStatus(t, r, http.StatusOK)
	if st := decode[Stats](t, r); st.Requests != 0 || st.ByRoute["GET /users/{id}"] != 0 {
		t.Errorf("after reset: %+v", st)
	}
	if s.Faults() != (Faults{}) {
		t.Errorf("reset left faults %+v", s.Faults())
	}
	wantStatus(t, get(t, s, "/users/1"), http.StatusOK)
	if s.Requests() != 1 {
		t.Errorf("Requests() = %d after one request since reset", s.Requests())
	}
	wantError(t, get(t, s, "/_demo/reset"), http.StatusNotFound, "GET /_demo/reset")
}
