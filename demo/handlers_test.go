package demo

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestUsersAPI(t *testing.T) {
	s := newTestService(t, "users", ServiceOptions{})
	r := get(t, s, "/users/1")
	wantStatus(t, r, http.StatusOK)
	u := decode[User](t, r)
	if u.ID != 1 || u.Tier != "gold" || u.CreatedAt.Location().String() != "UTC" {
		t.Errorf("GET /users/1 = %+v", u)
	}
	if !strings.Contains(r.body, `"created_at":"2024-`) {
		t.Errorf("created_at is not a 2024 UTC timestamp: %s", r.body)
	}
	wantError(t, get(t, s, "/users/301"), http.StatusNotFound, "user 301")
	for _, bad := range []string{"abc", "0", "-1", "1.5", "99999999999999999999"} {
		wantError(t, get(t, s, "/users/"+bad), http.StatusBadRequest, "user id", bad)
	}
	wantError(t, get(t, s, "/users/1/orders"), http.StatusNotFound, "no route", "/users/1/orders")
	wantError(t, do(t, s, http.MethodPost, "/users/1", ""), http.StatusNotFound, "POST /users/1")
}

func TestOrdersAPI(t *testing.T) {
	s := newTestService(t, "orders", ServiceOptions{})
	orders := decode[[]Order](t, get(t, s, "/users/7/orders"))
	if len(orders) != BatchUserOrders {
		t.Fatalf("user 7 has %d orders, want %d", len(orders), BatchUserOrders)
	}
	for i := 1; i < len(orders); i++ {
		if orders[i].CreatedAt.After(orders[i-1].CreatedAt) {
			t.Fatalf("orders are not newest first: %v before %v", orders[i-1].CreatedAt, orders[i].CreatedAt)
		}
	}
	limited := decode[[]Order](t, get(t, s, "/users/7/orders?limit=3"))
	if !slices.EqualFunc(limited, orders[:3], func(a, b Order) bool { return a.ID == b.ID }) {
		t.Errorf("limit=3 returned %d orders, not the 3 newest", len(limited))
	}
	one := get(t, s, fmt.Sprintf("/orders/%d", orders[0].ID))
	if got := decode[Order](t, one); got.ID != orders[0].ID || got.UserID != 7 || len(got.Items) == 0 {
		t.Errorf("GET /orders/%d = %+v", orders[0].ID, got)
	}

	empty := emptyUser(t, func(id int64) bool {
		os, _ := sharedMemory().UserOrders(t.Context(), id, 0)
		return len(os) == 0
	})
	if r := get(t, s, fmt.Sprintf("/users/%d/orders", empty)); r.status != http.StatusOK || r.body != "[]\n" {
		t.Errorf("orders of user %d without orders = %d %s, want 200 []", empty, r.status, r.body)
	}
	wantError(t, get(t, s, "/users/400/orders"), http.StatusNotFound, "user 400")
	wantError(t, get(t, s, "/orders/1"), http.StatusNotFound, "order 1")
	wantError(t, get(t, s, "/orders/x"), http.StatusBadRequest, "order id", `"x"`)
	for _, bad := range []string{"0", "101", "-3", "x", ""} {
		wantError(t, get(t, s, "/users/1/orders?limit="+bad), http.StatusBadRequest, "limit", fmt.Sprintf("%q", bad))
	}
	if got := decode[[]Order](t, get(t, s, "/users/7/orders?limit=100")); len(got) != BatchUserOrders {
		t.Errorf("limit=100 returned %d orders", len(got))
	}
}

// emptyUser returns the first user for which empty reports true.
func emptyUser(t *testing.T, empty func(int64) bool) int64 {
	t.Helper()
	for id := int64(1); id <= NumUsers; id++ {
		if empty(id) {
			return id
		}
	}
	t.Fatal("no user matches")
	return 0
}

func TestProductsAPI(t *testing.T) {
	s := newTestService(t, "products", ServiceOptions{})
	p := decode[Product](t, get(t, s, "/products/17"))
	if p.ID != 17 || p.Currency != "USD" || p.PriceCents <= 0 {
		t.Errorf("GET /products/17 = %+v", p)
	}
	wantError(t, get(t, s, "/products/401"), http.StatusNotFound, "product 401")
	wantError(t, get(t, s, "/products/abc"), http.StatusBadRequest, "product id", "abc")

	batch := decode[[]Product](t, get(t, s, "/products?ids=30,2,999,30,17,2"))
	var ids []int64
	for _, p := range batch {
		ids = append(ids, p.ID)
	}
	if want := []int64{30, 2, 17}; !slices.Equal(ids, want) {
		t.Errorf("batch ids = %v, want %v (request order, duplicates collapsed, unknown omitted)", ids, want)
	}
	if r := get(t, s, "/products?ids=1000,2000"); r.status != http.StatusOK || r.body != "[]\n" {
		t.Errorf("batch of unknown ids = %d %s, want 200 []", r.status, r.body)
	}

	for _, tc := range []struct{ query, mention string }{
		{"", "ids"},
		{"?ids=", "ids"},
		{"?ids=1,x,3", `"x"`},
		{"?ids=1,,3", `""`},
		{"?ids=1,2,", `""`},
		{"?ids=0", `"0"`},
		{"?ids=1;2", "semicolon"},
		{"?ids=1%zz", "%zz"},
	} {
		wantError(t, get(t, s, "/products"+tc.query), http.StatusBadRequest, tc.mention)
	}
	wantError(t, get(t, s, "/products?ids="+idList(501)), http.StatusBadRequest, "too many ids", "501", "500")
	if got := decode[[]Product](t, get(t, s, "/products?ids="+idList(500))); len(got) != NumProducts {
		t.Errorf("batch of 500 ids returned %d products, want all %d", len(got), NumProducts)
	}
}

// idList returns "1,2,...,n".
func idList(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprint(i + 1)
	}
	return strings.Join(parts, ",")
}

func TestNotificationsAPI(t *testing.T) {
	s := newTestService(t, "notifications", ServiceOptions{})
	all := decode[[]Notification](t, get(t, s, "/users/1/notifications"))
	unread := decode[[]Notification](t, get(t, s, "/users/1/notifications?unread=true"))
	if len(unread) == 0 || len(unread) >= len(all) {
		t.Fatalf("user 1 has %d notifications, %d unread; want some read and some unread", len(all), len(unread))
	}
	for _, n := range unread {
		if n.Read || n.UserID != 1 || n.Kind == "" || n.Text == "" {
			t.Errorf("unread filter returned %+v", n)
		}
	}
	if again := decode[[]Notification](t, get(t, s, "/users/1/notifications?unread=false")); len(again) != len(all) {
		t.Errorf("unread=false returned %d, want all %d", len(again), len(all))
	}
	wantError(t, get(t, s, "/users/1/notifications?unread=maybe"), http.StatusBadRequest, "unread", "maybe")
	wantError(t, get(t, s, "/users/0/notifications"), http.StatusBadRequest, "user id")
	wantError(t, get(t, s, "/users/302/notifications"), http.StatusNotFound, "user 302")
}

func TestRecommendationsAPI(t *testing.T) {
	s := newTestService(t, "recommendations", ServiceOptions{})
	recs := decode[[]Recommendation](t, get(t, s, "/users/1/recommendations"))
	if len(recs) != defaultRecommendations {
		t.Fatalf("default limit returned %d, want %d", len(recs), defaultRecommendations)
	}
	for i, r := range recs {
		if r.ProductID < 1 || r.ProductID > NumProducts || r.Score <= 0 || r.Score > 1 || r.Reason == "" {
			t.Errorf("recommendation %+v", r)
		}
		if i > 0 && r.Score > recs[i-1].Score {
			t.Errorf("recommendations not best first: %v after %v", r.Score, recs[i-1].Score)
		}
	}
	if got := decode[[]Recommendation](t, get(t, s, "/users/1/recommendations?limit=2")); len(got) != 2 || got[0] != recs[0] {
		t.Errorf("limit=2 returned %+v", got)
	}
	none := emptyUser(t, func(id int64) bool {
		rs, _ := sharedMemory().Recommendations(t.Context(), id, 0)
		return len(rs) == 0
	})
	if r := get(t, s, fmt.Sprintf("/users/%d/recommendations", none)); r.body != "[]\n" {
		t.Errorf("user %d without recommendations got %s, want []", none, r.body)
	}
	for _, bad := range []string{"0", "51", "ten"} {
		wantError(t, get(t, s, "/users/1/recommendations?limit="+bad), http.StatusBadRequest, "limit", bad, "50")
	}
	wantError(t, get(t, s, "/users/777/recommendations"), http.StatusNotFound, "user 777")
}

func TestHealthz(t *testing.T) {
	for _, name := range ServiceNames {
		r := get(t, newTestService(t, name, ServiceOptions{}), "/healthz")
		wantStatus(t, r, http.StatusOK)
		if h := decode[health](t, r); h != (health{Status: "ok", Service: name}) {
			t.Errorf("%s /healthz = %+v", name, h)
		}
	}
}

func TestNewServiceRejects(t *testing.T) {
	if _, err := NewService("payments", sharedMemory(), ServiceOptions{}); err == nil || !strings.Contains(err.Error(), "payments") {
		t.Errorf("unknown service: err = %v", err)
	}
	if _, err := NewService("users", nil, ServiceOptions{}); err == nil {
		t.Error("nil store: no error")
	}
	if _, err := NewService("users", sharedMemory(), ServiceOptions{Faults: Faults{ErrorRate: 2}}); err == nil || !strings.Contains(err.Error(), "error_rate") {
		t.Errorf("bad faults: err = %v", err)
	}
}
