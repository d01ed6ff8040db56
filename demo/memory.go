package demo

import (
	"context"
	"slices"
)

// MemoryStore is a Store holding the seed data in memory. It is read-only
// after construction and safe for concurrent use.
type MemoryStore struct {
	users         map[int64]User
	products      map[int64]Product
	orders        map[int64]Order
	userOrders    map[int64][]Order          // newest first
	notifications map[int64][]Notification   // newest first
	recs          map[int64][]Recommendation // best first
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns a MemoryStore holding the deterministic seed data.
func NewMemoryStore() *MemoryStore {
	d := seedData()
	m := &MemoryStore{
		users:         make(map[int64]User, len(d.users)),
		products:      make(map[int64]Product, len(d.products)),
		orders:        make(map[int64]Order, len(d.orders)),
		userOrders:    make(map[int64][]Order, len(d.users)),
		notifications: make(map[int64][]Notification, len(d.users)),
		recs:          make(map[int64][]Recommendation, len(d.users)),
	}
	for _, u := range d.users {
		m.users[u.ID] = u
	}
	for _, p := range d.products {
		m.products[p.ID] = p
	}
	for _, o := range d.orders {
		m.orders[o.ID] = o
		m.userOrders[o.UserID] = append(m.userOrders[o.UserID], o)
	}
	for _, n := range d.notifications {
		m.notifications[n.UserID] = append(m.notifications[n.UserID], n)
	}
	for _, r := range d.recommendations {
		m.recs[r.UserID] = append(m.recs[r.UserID], r)
	}
	// The seed lists orders and notifications oldest first with ascending
	// ids and times, so reversing yields newest first (created_at desc, id desc).
	for _, os := range m.userOrders {
		slices.Reverse(os)
	}
	for _, ns := range m.notifications {
		slices.Reverse(ns)
	}
	return m
}

// User implements UserStore.
func (m *MemoryStore) User(_ context.Context, id int64) (User, error) {
	u, ok := m.users[id]
	if !ok {
		return User{}, notFound("user", id)
	}
	return u, nil
}

// UserOrders implements OrderStore.
func (m *MemoryStore) UserOrders(_ context.Context, userID int64, limit int) ([]Order, error) {
	if _, ok := m.users[userID]; !ok {
		return nil, notFound("user", userID)
	}
	os := m.userOrders[userID]
	if limit > 0 && len(os) > limit {
		os = os[:limit]
	}
	out := make([]Order, len(os))
	for i, o := range os {
		out[i] = cloneOrder(o)
	}
	return out, nil
}

// Order implements OrderStore.
func (m *MemoryStore) Order(_ context.Context, id int64) (Order, error) {
	o, ok := m.orders[id]
	if !ok {
		return Order{}, notFound("order", id)
	}
	return cloneOrder(o), nil
}

// cloneOrder copies an order so that callers cannot change the store's items.
func cloneOrder(o Order) Order {
	o.Items = slices.Clone(o.Items)
	return o
}

// Product implements ProductStore.
func (m *MemoryStore) Product(_ context.Context, id int64) (Product, error) {
	p, ok := m.products[id]
	if !ok {
		return Product{}, notFound("product", id)
	}
	return p, nil
}

// Products implements ProductStore.
func (m *MemoryStore) Products(_ context.Context, ids []int64) ([]Product, error) {
	out := make([]Product, 0, len(ids))
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if p, ok := m.products[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// Notifications implements NotificationStore.
func (m *MemoryStore) Notifications(_ context.Context, userID int64, unreadOnly bool) ([]Notification, error) {
	if _, ok := m.users[userID]; !ok {
		return nil, notFound("user", userID)
	}
	out := make([]Notification, 0, len(m.notifications[userID]))
	for _, n := range m.notifications[userID] {
		if !unreadOnly || !n.Read {
			out = append(out, n)
		}
	}
	return out, nil
}

// Recommendations implements RecommendationStore.
func (m *MemoryStore) Recommendations(_ context.Context, userID int64, limit int) ([]Recommendation, error) {
	if _, ok := m.users[userID]; !ok {
		return nil, notFound("user", userID)
	}
	recs := m.recs[userID]
	if limit > 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	return slices.Clone(recs), nil
}
