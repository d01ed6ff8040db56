package demo

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Sizes of the seed data and the fixture users documented in the package doc.
const (
	NumUsers    = 300 // users have ids 1..NumUsers
	NumProducts = 400 // products have ids 1..NumProducts

	// RichUserID is a gold-tier user with at least 5 orders, unread
	// notifications and at least 12 recommendations.
	RichUserID int64 = 1
	// BatchUserID is a user with exactly BatchUserOrders orders whose line
	// items reference exactly BatchUserProducts distinct products.
	BatchUserID       int64 = 7
	BatchUserOrders         = 20
	BatchUserProducts       = 50

	firstOrderID = 1001 // order ids start here so they never look like user or product ids
)

// The seed of the generator and the fixed period the data covers. Every
// timestamp is derived from these, never from the wall clock.
const seed1, seed2 = 0x62726169, 20240101

var (
	seedStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	seedNow   = time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)
)

// dataset is the complete seed data, each slice sorted by id (recommendations
// by user, then rank).
type dataset struct {
	users           []User
	products        []Product
	orders          []Order
	notifications   []Notification
	recommendations []Recommendation
}

// seeder generates a dataset from one fixed-seed random stream.
type seeder struct {
	r         *rand.Rand
	d         dataset
	nextOrder int64 // next order id
	nextNote  int64 // next notification id
}

// seedData returns the deterministic seed data; every call returns equal data.
func seedData() *dataset {
	s := &seeder{r: rand.New(rand.NewPCG(seed1, seed2)), nextOrder: firstOrderID, nextNote: 1}
	for id := int64(1); id <= NumProducts; id++ {
		s.d.products = append(s.d.products, s.product(id))
	}
	for id := int64(1); id <= NumUsers; id++ {
		u := s.user(id)
		s.d.users = append(s.d.users, u)
		orders := s.orders(u)
		s.d.orders = append(s.d.orders, orders...)
		s.d.notifications = append(s.d.notifications, s.notifications(u, orders)...)
		s.d.recommendations = append(s.d.recommendations, s.recommendations(u, orders)...)
	}
	return &s.d
}

func (s *seeder) product(id int64) Product {
	c := categories[s.r.IntN(len(categories))]
	name := productBrands[s.r.IntN(len(productBrands))] + " " + c.nouns[s.r.IntN(len(c.nouns))]
	dollars := c.minPrice + s.r.IntN(c.maxPrice-c.minPrice+1)
	return Product{
		ID:         id,
		Name:       name,
		Category:   c.name,
		PriceCents: dollars*100 + 99,
		Currency:   "USD",
		InStock:    s.r.IntN(100) < 85,
	}
}

func (s *seeder) user(id int64) User {
	first := firstNames[s.r.IntN(len(firstNames))]
	last := lastNames[s.r.IntN(len(lastNames))]
	tier, roll := "", s.r.IntN(100)
	for _, t := range tiers {
		if roll < t.cumulative {
			tier = t.name
			break
		}
	}
	if id == RichUserID {
		tier = "gold"
	}
	local := strings.ToLower(first + "." + strings.ReplaceAll(last, "-", ""))
	return User{
		ID:        id,
		Name:      first + " " + last,
		Email:     fmt.Sprintf("%s%d@example.com", local, id),
		Tier:      tier,
		Country:   countries[s.r.IntN(len(countries))],
		CreatedAt: s.between(seedStart, seedStart.Add(300*24*time.Hour)),
	}
}

// between returns a whole-second time in [from, to).
func (s *seeder) between(from, to time.Time) time.Time {
	secs := int64(to.Sub(from) / time.Second)
	return from.Add(time.Duration(s.r.Int64N(secs)) * time.Second)
}

// orders generates the user's orders, oldest first, with ascending ids.
func (s *seeder) orders(u User) []Order {
	var items [][]int64
	switch u.ID {
	case BatchUserID:
		items = s.batchUserItems()
	case RichUserID:
		items = s.randomItems(5 + s.r.IntN(4))
	default:
		items = s.randomItems(s.r.IntN(13))
	}
	times := make([]time.Time, len(items))
	for i := range times {
		times[i] = s.between(u.CreatedAt, seedNow)
	}
	slices.SortFunc(times, time.Time.Compare)
	orders := make([]Order, len(items))
	for i, ids := range items {
		orders[i] = s.order(u.ID, times[i], ids)
	}
	return orders
}

// randomItems returns the product ids of n orders, each 1–6 distinct
// products drawn from the whole catalog.
func (s *seeder) randomItems(n int) [][]int64 {
	items := make([][]int64, n)
	for i := range items {
		k := 1 + s.r.IntN(6)
		for len(items[i]) < k {
			id := 1 + s.r.Int64N(NumProducts)
			if !slices.Contains(items[i], id) {
				items[i] = append(items[i], id)
			}
		}
	}
	return items
}

// batchUserItems returns BatchUserOrders orders of 1–6 items that together
// reference exactly BatchUserProducts distinct products. The products are
// dealt from a cycle, so the items of one order are always distinct and the
// at least BatchUserProducts items cover every product.
func (s *seeder) batchUserItems() [][]int64 {
	perm := s.r.Perm(NumProducts)[:BatchUserProducts]
	counts := make([]int, BatchUserOrders)
	total := 0
	for i := range counts {
		counts[i] = 1 + s.r.IntN(6)
		total += counts[i]
	}
	for total < BatchUserProducts {
		if i := s.r.IntN(len(counts)); counts[i] < 6 {
			counts[i]++
			total++
		}
	}
	items, next := make([][]int64, len(counts)), 0
	for i, n := range counts {
		for range n {
			items[i] = append(items[i], int64(perm[next%len(perm)]+1))
			next++
		}
	}
	return items
}

func (s *seeder) order(userID int64, at time.Time, productIDs []int64) Order {
	o := Order{ID: s.nextOrder, UserID: userID, Status: s.status(at), CreatedAt: at}
	s.nextOrder++
	for _, id := range productIDs {
		price := s.d.products[id-1].PriceCents
		if s.r.IntN(100) < 15 {
			price = price * 9 / 10 // a discounted line
		}
		qty := 1
		if roll := s.r.IntN(10); roll >= 9 {
			qty = 3
		} else if roll >= 7 {
			qty = 2
		}
		o.Items = append(o.Items, OrderItem{ProductID: id, Quantity: qty, UnitPriceCents: price})
		o.TotalCents += qty * price
	}
	return o
}

// status derives an order's status from its age at seedNow.
func (s *seeder) status(at time.Time) string {
	cancelled := s.r.IntN(100) < 5
	age := seedNow.Sub(at)
	switch {
	case cancelled:
		return "cancelled"
	case age < 2*24*time.Hour:
		return "pending"
	case age < 5*24*time.Hour:
		return "paid"
	case age < 12*24*time.Hour:
		return "shipped"
	default:
		return "delivered"
	}
}

// round2 rounds a score to two decimals.
func round2(x float64) float64 { return math.Round(x*100) / 100 }

// sortRecommendations orders recommendations best score first, ties by product id.
func sortRecommendations(recs []Recommendation) {
	slices.SortFunc(recs, func(a, b Recommendation) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ProductID, b.ProductID)
	})
}
