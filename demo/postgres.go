package demo

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/braidgw/braid/observability"
)

// PostgresStore is a Store reading the seed data from PostgreSQL through a
// pgx connection pool. It serves exactly the same data as MemoryStore.
type PostgresStore struct {
	pool *pgxpool.Pool
}

var _ Store = (*PostgresStore)(nil)

// OpenPostgres connects to the database named by dsn, creates the schema if
// needed and seeds it once (see OpenPostgresConfig). When tel traces, every
// query made for a traced request gets a span, a child of the request's
// (db.system.name postgresql, db.operation.name, db.query.text); nil or a
// Telemetry that does not trace adds nothing to a query.
func OpenPostgres(ctx context.Context, dsn string, tel *observability.Telemetry) (*PostgresStore, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("demo: parse postgres dsn: %w", err)
	}
	if tel.Tracing() {
		cfg.ConnConfig.Tracer = &queryTracer{tracer: tel.Tracer()}
	}
	return OpenPostgresConfig(ctx, cfg)
}

// OpenPostgresConfig is OpenPostgres for a prepared pool configuration, for
// callers that set a tracer or runtime parameters such as search_path. The
// tables are created in the first schema of the search_path with CREATE
// TABLE IF NOT EXISTS and seeded in one transaction only while empty, so
// opening the same database again changes nothing.
func OpenPostgresConfig(ctx context.Context, cfg *pgxpool.Config) (*PostgresStore, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("demo: connect to postgres: %w", err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return migrate(ctx, tx) }); err != nil {
		pool.Close()
		return nil, fmt.Errorf("demo: prepare postgres at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return &PostgresStore{pool: pool}, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (p *PostgresStore) Close() { p.pool.Close() }

// User implements UserStore.
func (p *PostgresStore) User(ctx context.Context, id int64) (User, error) {
	var u User
	err := p.pool.QueryRow(ctx,
		"SELECT id, name, email, tier, country, created_at FROM users WHERE id = $1", id,
	).Scan(&u.ID, &u.Name, &u.Email, &u.Tier, &u.Country, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, notFound("user", id)
	}
	if err != nil {
		return User{}, fmt.Errorf("query user %d: %w", id, err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// requireUser returns an error wrapping ErrNotFound unless the user exists.
// Listing queries call it only when they found no rows.
func (p *PostgresStore) requireUser(ctx context.Context, id int64) error {
	var ok bool
	if err := p.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)", id).Scan(&ok); err != nil {
		return fmt.Errorf("query user %d: %w", id, err)
	}
	if !ok {
		return notFound("user", id)
	}
	return nil
}

// Product implements ProductStore.
func (p *PostgresStore) Product(ctx context.Context, id int64) (Product, error) {
	rows, err := p.pool.Query(ctx, productSQL+" WHERE id = $1", id)
	if err != nil {
		return Product{}, fmt.Errorf("query product %d: %w", id, err)
	}
	ps, err := pgx.CollectRows(rows, scanProduct)
	if err != nil {
		return Product{}, fmt.Errorf("query product %d: %w", id, err)
	}
	if len(ps) == 0 {
		return Product{}, notFound("product", id)
	}
	return ps[0], nil
}

const productSQL = "SELECT id, name, category, price_cents, currency, in_stock FROM products"

// Products implements ProductStore with one query, id = ANY($1), and puts
// the rows in the order of ids.
func (p *PostgresStore) Products(ctx context.Context, ids []int64) ([]Product, error) {
	rows, err := p.pool.Query(ctx, productSQL+" WHERE id = ANY($1)", ids)
	if err != nil {
		return nil, fmt.Errorf("query %d products: %w", len(ids), err)
	}
	found, err := pgx.CollectRows(rows, scanProduct)
	if err != nil {
		return nil, fmt.Errorf("query %d products: %w", len(ids), err)
	}
	byID := make(map[int64]Product, len(found))
	for _, pr := range found {
		byID[pr.ID] = pr
	}
	out := make([]Product, 0, len(found))
	for _, id := range ids {
		if pr, ok := byID[id]; ok {
			out = append(out, pr)
			delete(byID, id)
		}
	}
	return out, nil
}

func scanProduct(row pgx.CollectableRow) (Product, error) {
	var pr Product
	err := row.Scan(&pr.ID, &pr.Name, &pr.Category, &pr.PriceCents, &pr.Currency, &pr.InStock)
	return pr, err
}

// Notifications implements NotificationStore.
func (p *PostgresStore) Notifications(ctx context.Context, userID int64, unreadOnly bool) ([]Notification, error) {
	rows, err := p.pool.Query(ctx, `SELECT id, user_id, kind, text, read, created_at FROM notifications
		WHERE user_id = $1 AND (NOT $2 OR NOT read) ORDER BY created_at DESC, id DESC`, userID, unreadOnly)
	if err != nil {
		return nil, fmt.Errorf("query notifications of user %d: %w", userID, err)
	}
	notes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Notification, error) {
		var n Notification
		err := row.Scan(&n.ID, &n.UserID, &n.Kind, &n.Text, &n.Read, &n.CreatedAt)
		n.CreatedAt = n.CreatedAt.UTC()
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("query notifications of user %d: %w", userID, err)
	}
	if len(notes) == 0 {
		return notes, p.requireUser(ctx, userID)
	}
	return notes, nil
}

// Recommendations implements RecommendationStore.
func (p *PostgresStore) Recommendations(ctx context.Context, userID int64, limit int) ([]Recommendation, error) {
	rows, err := p.pool.Query(ctx, `SELECT user_id, product_id, score, reason FROM recommendations
		WHERE user_id = $1 ORDER BY score DESC, product_id LIMIT $2`, userID, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("query recommendations of user %d: %w", userID, err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Recommendation, error) {
		var r Recommendation
		err := row.Scan(&r.UserID, &r.ProductID, &r.Score, &r.Reason)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("query recommendations of user %d: %w", userID, err)
	}
	if len(recs) == 0 {
		return recs, p.requireUser(ctx, userID)
	}
	return recs, nil
}

// sqlLimit maps "no limit" (limit <= 0) to a LIMIT that never bites.
func sqlLimit(limit int) int64 {
	if limit <= 0 {
		return math.MaxInt64
	}
	return int64(limit)
}
