package demo

import (
	"fmt"
	"slices"
	"time"
)

// notifications generates 2–8 notifications for the user, ids ascending with
// time. The first is always a welcome; the rich user's three newest are unread.
func (s *seeder) notifications(u User, orders []Order) []Notification {
	n := 2 + s.r.IntN(7)
	if u.ID == RichUserID {
		n = max(n, 6)
	}
	times := make([]time.Time, n)
	times[0] = u.CreatedAt.Add(time.Minute)
	for i := 1; i < n; i++ {
		times[i] = s.between(times[0], seedNow)
	}
	slices.SortFunc(times, time.Time.Compare)
	notes := make([]Notification, n)
	for i, at := range times {
		kind, text := s.message(u, orders, at, i == 0)
		readChance := 40
		if seedNow.Sub(at) > 30*24*time.Hour {
			readChance = 90
		}
		read := s.r.IntN(100) < readChance
		if u.ID == RichUserID && i >= n-3 {
			read = false
		}
		notes[i] = Notification{ID: s.nextNote, UserID: u.ID, Kind: kind, Text: text, Read: read, CreatedAt: at}
		s.nextNote++
	}
	return notes
}

// message picks the kind and text of one notification sent at the given time.
func (s *seeder) message(u User, orders []Order, at time.Time, welcome bool) (kind, text string) {
	if welcome {
		return "welcome", fmt.Sprintf("Welcome to Braid Shop, %s!", firstName(u.Name))
	}
	p := s.d.products[s.r.IntN(len(s.d.products))]
	var placed []Order
	for _, o := range orders {
		if !o.CreatedAt.After(at) {
			placed = append(placed, o)
		}
	}
	switch roll := s.r.IntN(5); {
	case roll < 2 && len(placed) > 0:
		o := placed[s.r.IntN(len(placed))]
		if roll == 0 {
			return "order_shipped", fmt.Sprintf("Your order #%d has shipped.", o.ID)
		}
		return "order_delivered", fmt.Sprintf("Your order #%d was delivered.", o.ID)
	case roll == 2:
		cents := p.PriceCents * 85 / 100
		return "price_drop", fmt.Sprintf("Price drop: %s is now $%d.%02d.", p.Name, cents/100, cents%100)
	case roll == 3:
		return "back_in_stock", fmt.Sprintf("%s is back in stock.", p.Name)
	default:
		return "promo", fmt.Sprintf("Weekend sale: 15%% off everything in %s.", p.Category)
	}
}

// firstName returns the first word of a full name.
func firstName(full string) string {
	for i, c := range full {
		if c == ' ' {
			return full[:i]
		}
	}
	return full
}

// recommendations generates the user's recommendations: products the user
// has not bought, scored 0.35–0.99, sorted best first. One user in ten gets
// none; the rich user gets at least 12.
func (s *seeder) recommendations(u User, orders []Order) []Recommendation {
	n := 3 + s.r.IntN(28)
	switch {
	case u.ID == RichUserID:
		n = 12 + s.r.IntN(8)
	case s.r.IntN(10) == 0:
		n = 0
	}
	bought := map[int64]bool{}
	for _, o := range orders {
		for _, it := range o.Items {
			bought[it.ProductID] = true
		}
	}
	recs := make([]Recommendation, 0, n)
	for len(recs) < n {
		id := 1 + s.r.Int64N(NumProducts)
		if bought[id] {
			continue
		}
		bought[id] = true
		recs = append(recs, Recommendation{
			UserID:    u.ID,
			ProductID: id,
			Score:     round2(0.35 + 0.64*s.r.Float64()),
			Reason:    s.reason(u, orders, s.d.products[id-1]),
		})
	}
	sortRecommendations(recs)
	return recs
}

// reason explains a recommendation.
func (s *seeder) reason(u User, orders []Order, p Product) string {
	switch roll := s.r.IntN(3); {
	case roll == 0 && len(orders) > 0:
		o := orders[s.r.IntN(len(orders))]
		bought := s.d.products[o.Items[0].ProductID-1]
		return "Because you bought " + bought.Name
	case roll == 1:
		return "Trending in " + u.Country
	default:
		return "Popular in " + p.Category
	}
}
