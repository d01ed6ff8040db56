package demo

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// schemaSQL creates the demo tables in the first schema of the search_path.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS users (
	id         bigint PRIMARY KEY,
	name       text NOT NULL,
	email      text NOT NULL,
	tier       text NOT NULL,
	country    text NOT NULL,
	created_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
	id          bigint PRIMARY KEY,
	name        text NOT NULL,
	category    text NOT NULL,
	price_cents integer NOT NULL,
	currency    text NOT NULL,
	in_stock    boolean NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
	id          bigint PRIMARY KEY,
	user_id     bigint NOT NULL REFERENCES users (id),
	status      text NOT NULL,
	created_at  timestamptz NOT NULL,
	total_cents bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_user_idx ON orders (user_id, created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS order_items (
	order_id         bigint NOT NULL REFERENCES orders (id),
	position         integer NOT NULL,
	product_id       bigint NOT NULL REFERENCES products (id),
	quantity         integer NOT NULL,
	unit_price_cents integer NOT NULL,
	PRIMARY KEY (order_id, position)
);
CREATE TABLE IF NOT EXISTS notifications (
	id         bigint PRIMARY KEY,
	user_id    bigint NOT NULL REFERENCES users (id),
	kind       text NOT NULL,
	text       text NOT NULL,
	read       boolean NOT NULL,
	created_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_user_idx ON notifications (user_id, created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS recommendations (
	user_id    bigint NOT NULL REFERENCES users (id),
	product_id bigint NOT NULL REFERENCES products (id),
	score      double precision NOT NULL,
	reason     text NOT NULL,
	PRIMARY KEY (user_id, product_id)
);
CREATE INDEX IF NOT EXISTS recommendations_rank_idx ON recommendations (user_id, score DESC, product_id);
`

// migrate creates the schema and, when the users table is empty, loads the
// seed data, all in one transaction. A transaction-scoped advisory lock keyed
// by the schema name serialises concurrent starts, so running it any number
// of times, even at once, leaves exactly one copy of the seed.
func migrate(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('braid-demo:' || current_schema()))"); err != nil {
		return fmt.Errorf("lock schema: %w", err)
	}
	if _, err := tx.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	var seeded bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users)").Scan(&seeded); err != nil {
		return fmt.Errorf("check seed: %w", err)
	}
	if seeded {
		return nil
	}
	return copySeed(ctx, tx, seedData())
}

// copySeed loads the dataset with COPY, parents before children.
func copySeed(ctx context.Context, tx pgx.Tx, d *dataset) error {
	var items [][]any
	for _, o := range d.orders {
		for i, it := range o.Items {
			items = append(items, []any{o.ID, i, it.ProductID, it.Quantity, it.UnitPriceCents})
		}
	}
	tables := []struct {
		name string
		cols []string
		rows [][]any
	}{
		{"users", []string{"id", "name", "email", "tier", "country", "created_at"}, rowsOf(d.users, func(u User) []any {
			return []any{u.ID, u.Name, u.Email, u.Tier, u.Country, u.CreatedAt}
		})},
		{"products", []string{"id", "name", "category", "price_cents", "currency", "in_stock"}, rowsOf(d.products, func(p Product) []any {
			return []any{p.ID, p.Name, p.Category, p.PriceCents, p.Currency, p.InStock}
		})},
		{"orders", []string{"id", "user_id", "status", "created_at", "total_cents"}, rowsOf(d.orders, func(o Order) []any {
			return []any{o.ID, o.UserID, o.Status, o.CreatedAt, o.TotalCents}
		})},
		{"order_items", []string{"order_id", "position", "product_id", "quantity", "unit_price_cents"}, items},
		{"notifications", []string{"id", "user_id", "kind", "text", "read", "created_at"}, rowsOf(d.notifications, func(n Notification) []any {
			return []any{n.ID, n.UserID, n.Kind, n.Text, n.Read, n.CreatedAt}
		})},
		{"recommendations", []string{"user_id", "product_id", "score", "reason"}, rowsOf(d.recommendations, func(r Recommendation) []any {
			return []any{r.UserID, r.ProductID, r.Score, r.Reason}
		})},
	}
	for _, t := range tables {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, pgx.CopyFromRows(t.rows)); err != nil {
			return fmt.Errorf("seed %s: %w", t.name, err)
		}
	}
	return nil
}

// rowsOf converts records to COPY rows.
func rowsOf[T any](records []T, row func(T) []any) [][]any {
	rows := make([][]any, len(records))
	for i, r := range records {
		rows[i] = row(r)
	}
	return rows
}
