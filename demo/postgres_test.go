package demo

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// defaultTestDSN is used unless BRAID_TEST_DATABASE_URL is set.
const defaultTestDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func testDSN() string {
	if dsn := os.Getenv("BRAID_TEST_DATABASE_URL"); dsn != "" {
		return dsn
	}
	return defaultTestDSN
}

// testSchema creates a uniquely named schema, dropped with CASCADE when the
// test ends, and returns its name. It fails the test, saying how to start
// PostgreSQL, when the server cannot be reached.
func testSchema(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDSN())
	if err != nil {
		t.Fatalf("cannot connect to PostgreSQL at %s: %v\n"+
			"Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"+
			"or point BRAID_TEST_DATABASE_URL at a server (trust auth, database test).", testDSN(), err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("braid_demo_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano(), schemaSeq.Add(1))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, testDSN())
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

var schemaSeq atomic.Int64

// queryCounter is a pgx.QueryTracer that counts queries and keeps their SQL.
type queryCounter struct {
	mu   sync.Mutex // guards sqls
	sqls []string
}

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sqls = append(q.sqls, d.SQL)
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the queries traced since the last take.
func (q *queryCounter) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	sqls := q.sqls
	q.sqls = nil
	return sqls
}

// openTestPostgres opens a PostgresStore in the schema, tracing its queries,
// and closes it when the test ends.
func openTestPostgres(t *testing.T, schema string) (*PostgresStore, *queryCounter) {
	t.Helper()
	tracer := &queryCounter{}
	pg, err := openInSchema(t.Context(), schema, tracer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	tracer.take()
	return pg, tracer
}

// openInSchema opens a PostgresStore whose search_path is schema.
func openInSchema(ctx context.Context, schema string, tracer pgx.QueryTracer) (*PostgresStore, error) {
	cfg, err := pgxpool.ParseConfig(testDSN())
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", testDSN(), err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.Tracer = tracer
	pg, err := OpenPostgresConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("OpenPostgresConfig in schema %s: %w", schema, err)
	}
	return pg, nil
}

// rowCounts returns the number of rows of every demo table.
func rowCounts(t *testing.T, pg *PostgresStore) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, table := range []string{"users", "products", "orders", "order_items", "notifications", "recommendations"} {
		var n int
		if err := pg.pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		counts[table] = n
	}
	return counts
}

func TestPostgresSchemaAndSeedAreIdempotent(t *testing.T) {
	schema := testSchema(t)
	first, _ := openTestPostgres(t, schema)
	want := rowCounts(t, first)
	d := seedData()
	items := 0
	for _, o := range d.orders {
		items += len(o.Items)
	}
	seeded := map[string]int{"users": NumUsers, "products": NumProducts, "orders": len(d.orders),
		"order_items": items, "notifications": len(d.notifications), "recommendations": len(d.recommendations)}
	for table, n := range seeded {
		if want[table] != n {
			t.Errorf("%s has %d rows after seeding, want %d", table, want[table], n)
		}
	}

	// Opening again, twice at once, creates and seeds nothing more.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			pg, err := openInSchema(t.Context(), schema, nil)
			if err != nil {
				t.Error(err)
				return
			}
			pg.Close()
		})
	}
	wg.Wait()
	if got := rowCounts(t, first); !maps.Equal(got, want) {
		t.Errorf("row counts after reopening = %v, want unchanged %v", got, want)
	}
}

// perUserList is the per-user list endpoint of the services that have one.
var perUserList = map[string]string{
	"orders":          "/users/%d/orders",
	"notifications":   "/users/%d/notifications",
	"recommendations": "/users/%d/recommendations?limit=50",
}

func TestPostgresServesSameJSONAsMemory(t *testing.T) {
	pg, _ := openTestPostgres(t, testSchema(t))
	for _, name := range ServiceNames {
		mem := newTestService(t, name, ServiceOptions{})
		sql, err := NewService(name, pg, ServiceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		targets := append(sampleTargets(name), "/products?ids="+idList(500), "/users/7/orders?limit=100")
		if list := perUserList[name]; list != "" {
			for id := 1; id <= NumUsers; id++ { // every user's list, the most involved mapping
				targets = append(targets, fmt.Sprintf(list, id))
			}
		}
		for _, target := range targets {
			m, p := get(t, mem, target), get(t, sql, target)
			if m != p {
				t.Errorf("%s %s:\nmemory   %d %s\npostgres %d %s", name, target, m.status, m.body, p.status, p.body)
			}
		}
	}
}

func TestPostgresBatchIsOneQuery(t *testing.T) {
	pg, tracer := openTestPostgres(t, testSchema(t))
	s, err := NewService("products", pg, ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ids := range []string{"3,1,2", idList(500), "1000,1,1,1"} {
		r := get(t, s, "/products?ids="+ids)
		wantStatus(t, r, http.StatusOK)
		sqls := tracer.take()
		if len(sqls) != 1 || !strings.Contains(sqls[0], "id = ANY($1)") {
			t.Errorf("batch of %.20s… issued %d queries %q, want one id = ANY($1)", ids, len(sqls), sqls)
		}
	}
}
