package demo

import (
	"context"
	"fmt"
	"reflect"
	"testing"
)

func TestSeedSizes(t *testing.T) {
	d := seedData()
	if len(d.users) != NumUsers || len(d.products) != NumProducts {
		t.Fatalf("seed has %d users and %d products, want %d and %d", len(d.users), len(d.products), NumUsers, NumProducts)
	}
	for i, u := range d.users {
		if u.ID != int64(i+1) || u.Name == "" || u.Email == "" || u.Tier == "" || len(u.Country) != 2 {
			t.Fatalf("user %d is incomplete: %+v", i+1, u)
		}
	}
	for i, p := range d.products {
		if p.ID != int64(i+1) || p.Name == "" || p.Category == "" || p.PriceCents <= 0 || p.Currency != "USD" {
			t.Fatalf("product %d is incomplete: %+v", i+1, p)
		}
	}
}

func TestSeedOrders(t *testing.T) {
	d := seedData()
	perUser := map[int64]int{}
	products := map[int64]bool{}
	for _, o := range d.orders {
		perUser[o.UserID]++
		if n := len(o.Items); n < 1 || n > 6 {
			t.Errorf("order %d has %d items, want 1..6", o.ID, n)
		}
		total, seen := 0, map[int64]bool{}
		for _, it := range o.Items {
			if it.ProductID < 1 || it.ProductID > NumProducts || seen[it.ProductID] || it.Quantity < 1 {
				t.Errorf("order %d has a bad or repeated item %+v", o.ID, it)
			}
			seen[it.ProductID] = true
			products[it.ProductID] = true
			total += it.Quantity * it.UnitPriceCents
		}
		if total != o.TotalCents {
			t.Errorf("order %d total_cents = %d, items sum to %d", o.ID, o.TotalCents, total)
		}
		if o.CreatedAt.Before(d.users[o.UserID-1].CreatedAt) || o.CreatedAt.After(seedNow) {
			t.Errorf("order %d created at %v, outside the user's lifetime", o.ID, o.CreatedAt)
		}
	}
	for id, n := range perUser {
		if id != BatchUserID && n > 12 {
			t.Errorf("user %d has %d orders, want at most 12", id, n)
		}
	}
	if len(products) < NumProducts/2 {
		t.Errorf("orders reference only %d products; want them spread across the catalog", len(products))
	}
}

func TestSeedFixtureUsers(t *testing.T) {
	ctx := t.Context()
	m := sharedMemory()

	orders, err := m.UserOrders(ctx, BatchUserID, 0)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[int64]bool{}
	for _, o := range orders {
		for _, it := range o.Items {
			distinct[it.ProductID] = true
		}
	}
	if len(orders) != BatchUserOrders || len(distinct) != BatchUserProducts {
		t.Errorf("user %d has %d orders over %d distinct products, want %d over %d",
			BatchUserID, len(orders), len(distinct), BatchUserOrders, BatchUserProducts)
	}

	u, err := m.User(ctx, RichUserID)
	if err != nil {
		t.Fatal(err)
	}
	rich := richness(ctx, t, m, RichUserID)
	if u.Tier != "gold" || rich.orders < 5 || rich.unread < 1 || rich.recs < 12 {
		t.Errorf("user %d (tier %s) has %d orders, %d unread notifications, %d recommendations; want gold, >=5, >=1, >=12",
			RichUserID, u.Tier, rich.orders, rich.unread, rich.recs)
	}
}

type userRichness struct{ orders, read, unread, recs int }

func richness(ctx context.Context, t *testing.T, m *MemoryStore, id int64) userRichness {
	t.Helper()
	orders, err1 := m.UserOrders(ctx, id, 0)
	notes, err2 := m.Notifications(ctx, id, false)
	recs, err3 := m.Recommendations(ctx, id, 0)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("user %d: %v %v %v", id, err1, err2, err3)
	}
	r := userRichness{orders: len(orders), recs: len(recs)}
	for _, n := range notes {
		if n.Read {
			r.read++
		} else {
			r.unread++
		}
	}
	return r
}

func TestSeedVariety(t *testing.T) {
	ctx := t.Context()
	m := sharedMemory()
	var total userRichness
	noOrders, noRecs := 0, 0
	for id := int64(1); id <= NumUsers; id++ {
		r := richness(ctx, t, m, id)
		total.read += r.read
		total.unread += r.unread
		if r.orders == 0 {
			noOrders++
		}
		if r.recs == 0 {
			noRecs++
		}
		if r.read+r.unread < 2 {
			t.Errorf("user %d has %d notifications, want several", id, r.read+r.unread)
		}
	}
	if total.read == 0 || total.unread == 0 || noOrders == 0 || noRecs == 0 {
		t.Errorf("seed lacks variety: %d read, %d unread notifications, %d users without orders, %d without recommendations",
			total.read, total.unread, noOrders, noRecs)
	}
}

func TestSeedDeterministic(t *testing.T) {
	a, b := seedData(), seedData()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two seeds differ")
	}
	sa, sb := NewMemoryStore(), NewMemoryStore()
	for _, name := range ServiceNames {
		ha, _ := NewService(name, sa, ServiceOptions{})
		hb, _ := NewService(name, sb, ServiceOptions{})
		for _, target := range sampleTargets(name) {
			if ra, rb := get(t, ha, target), get(t, hb, target); ra != rb {
				t.Errorf("%s %s differs between two memory stores:\n%v\n%v", name, target, ra, rb)
			}
		}
	}
}

// sampleTargets returns request targets covering the named service's API
// for a sample of ids, including unknown ones.
func sampleTargets(name string) []string {
	users := []int64{1, 2, 7, 42, 150, 299, 300, 301, 9999}
	var ts []string
	for _, id := range users {
		switch name {
		case "users":
			ts = append(ts, fmt.Sprintf("/users/%d", id))
		case "orders":
			ts = append(ts, fmt.Sprintf("/users/%d/orders", id), fmt.Sprintf("/users/%d/orders?limit=2", id), fmt.Sprintf("/orders/%d", firstOrderID+id*3))
		case "products":
			ts = append(ts, fmt.Sprintf("/products/%d", id), fmt.Sprintf("/products?ids=%d,3,%d,3,1", id, id+17))
		case "notifications":
			ts = append(ts, fmt.Sprintf("/users/%d/notifications", id), fmt.Sprintf("/users/%d/notifications?unread=true", id))
		case "recommendations":
			ts = append(ts, fmt.Sprintf("/users/%d/recommendations", id), fmt.Sprintf("/users/%d/recommendations?limit=50", id))
		}
	}
	return append(ts, "/healthz")
}
