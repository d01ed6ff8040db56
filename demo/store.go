package demo

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotFound is wrapped by every Store error about an id that does not exist.
// Services answer it with 404.
var ErrNotFound = errors.New("not found")

// notFound returns the error both stores use for an unknown id, so that the
// JSON error bodies are identical whichever store serves them.
func notFound(kind string, id int64) error {
	return fmt.Errorf("%s %d: %w", kind, id, ErrNotFound)
}

// UserStore reads users.
type UserStore interface {
	// User returns the user with the given id or an error wrapping ErrNotFound.
	User(ctx context.Context, id int64) (User, error)
}

// OrderStore reads orders.
type OrderStore interface {
	// UserOrders returns the user's orders, newest first, at most limit of
	// them when limit > 0. An unknown user is an error wrapping ErrNotFound;
	// a known user without orders yields an empty slice.
	UserOrders(ctx context.Context, userID int64, limit int) ([]Order, error)
	// Order returns one order or an error wrapping ErrNotFound.
	Order(ctx context.Context, id int64) (Order, error)
}

// ProductStore reads products.
type ProductStore interface {
	// Product returns one product or an error wrapping ErrNotFound.
	Product(ctx context.Context, id int64) (Product, error)
	// Products returns the products with the given ids, in the order of ids,
	// each at most once; unknown ids are omitted.
	Products(ctx context.Context, ids []int64) ([]Product, error)
}

// NotificationStore reads notifications.
type NotificationStore interface {
	// Notifications returns the user's notifications, newest first, only the
	// unread ones when unreadOnly is set. An unknown user is an error
	// wrapping ErrNotFound.
	Notifications(ctx context.Context, userID int64, unreadOnly bool) ([]Notification, error)
}

// RecommendationStore reads recommendations.
type RecommendationStore interface {
	// Recommendations returns at most limit of the user's recommendations,
	// best score first (ties by product id). An unknown user is an error
	// wrapping ErrNotFound.
	Recommendations(ctx context.Context, userID int64, limit int) ([]Recommendation, error)
}

// Store is everything the five services read. Each service uses only the
// part named after it.
type Store interface {
	UserStore
	OrderStore
	ProductStore
	NotificationStore
	RecommendationStore
}
