package demo

import "time"

// User is a customer account served by the users service.
type User struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Tier      string    `json:"tier"`
	Country   string    `json:"country"`
	CreatedAt time.Time `json:"created_at"`
}

// Product is a catalog entry served by the products service.
type Product struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	Category   string `json:"category"`
	PriceCents int    `json:"price_cents"`
	Currency   string `json:"currency"`
	InStock    bool   `json:"in_stock"`
}

// Order is a purchase by one user, served by the orders service.
type Order struct {
	ID         int64       `json:"id"`
	UserID     int64       `json:"user_id"`
	Status     string      `json:"status"`
	CreatedAt  time.Time   `json:"created_at"`
	TotalCents int         `json:"total_cents"`
	Items      []OrderItem `json:"items"`
}

// OrderItem is one line of an Order.
type OrderItem struct {
	ProductID      int64 `json:"product_id"`
	Quantity       int   `json:"quantity"`
	UnitPriceCents int   `json:"unit_price_cents"`
}

// Notification is a message to a user, served by the notifications service.
type Notification struct {
	ID        int64     `json:"id"`
	UserID    int64     `json:"user_id"`
	Kind      string    `json:"kind"`
	Text      string    `json:"text"`
	Read      bool      `json:"read"`
	CreatedAt time.Time `json:"created_at"`
}

// Recommendation is a product suggested to a user, served by the
// recommendations service. UserID is not part of the JSON form because the
// user is already named by the request path.
type Recommendation struct {
	UserID    int64   `json:"-"`
	ProductID int64   `json:"product_id"`
	Score     float64 `json:"score"`
	Reason    string  `json:"reason"`
}
