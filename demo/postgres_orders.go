package demo

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

const orderSQL = "SELECT id, user_id, status, created_at, total_cents FROM orders"

// UserOrders implements OrderStore with one query for the orders and one for
// all of their items.
func (p *PostgresStore) UserOrders(ctx context.Context, userID int64, limit int) ([]Order, error) {
	rows, err := p.pool.Query(ctx, orderSQL+" WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
		userID, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("query orders of user %d: %w", userID, err)
	}
	orders, err := pgx.CollectRows(rows, scanOrder)
	if err != nil {
		return nil, fmt.Errorf("query orders of user %d: %w", userID, err)
	}
	if len(orders) == 0 {
		return orders, p.requireUser(ctx, userID)
	}
	if err := p.loadItems(ctx, orders); err != nil {
		return nil, fmt.Errorf("query orders of user %d: %w", userID, err)
	}
	return orders, nil
}

// Order implements OrderStore.
func (p *PostgresStore) Order(ctx context.Context, id int64) (Order, error) {
	var o Order
	err := p.pool.QueryRow(ctx, orderSQL+" WHERE id = $1", id).
		Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt, &o.TotalCents)
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, notFound("order", id)
	}
	if err != nil {
		return Order{}, fmt.Errorf("query order %d: %w", id, err)
	}
	o.CreatedAt = o.CreatedAt.UTC()
	orders := []Order{o}
	if err := p.loadItems(ctx, orders); err != nil {
		return Order{}, fmt.Errorf("query order %d: %w", id, err)
	}
	return orders[0], nil
}

func scanOrder(row pgx.CollectableRow) (Order, error) {
	var o Order
	err := row.Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt, &o.TotalCents)
	o.CreatedAt = o.CreatedAt.UTC()
	return o, err
}

// loadItems fills in the items of the given orders with one query.
func (p *PostgresStore) loadItems(ctx context.Context, orders []Order) error {
	ids := make([]int64, len(orders))
	index := make(map[int64]int, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
		index[o.ID] = i
	}
	rows, err := p.pool.Query(ctx, `SELECT order_id, product_id, quantity, unit_price_cents FROM order_items
		WHERE order_id = ANY($1) ORDER BY order_id, position`, ids)
	if err != nil {
		return fmt.Errorf("query items: %w", err)
	}
	var orderID int64
	var it OrderItem
	_, err = pgx.ForEachRow(rows, []any{&orderID, &it.ProductID, &it.Quantity, &it.UnitPriceCents}, func() error {
		o := &orders[index[orderID]]
		o.Items = append(o.Items, it)
		return nil
	})
	if err != nil {
		return fmt.Errorf("query items: %w", err)
	}
	return nil
}
