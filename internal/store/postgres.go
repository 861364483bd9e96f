package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// openPostgres connects to the PostgreSQL database dsn names and migrates it.
//
// The dsn's parameters are libpq's (sslmode, connect_timeout, …); any other
// parameter is set on every connection as a run-time setting. In particular
// "?search_path=glimpse" keeps the store's tables in schema glimpse, which
// openPostgres creates when it is missing, so that several stores (or test
// runs) can share a database.
//
// Processes opening the same store at once take turns to migrate it, under
// an advisory lock named after the schema.
// defaultConnectTimeout bounds dialling PostgreSQL when the URL sets no
// connect_timeout.
const defaultConnectTimeout = 5 * time.Second

// postgresConfig parses a PostgreSQL URL. Without connect_timeout it gets
// defaultConnectTimeout: a database host that drops packets instead of
// refusing them would otherwise hold each new connection for the operating
// system's connect timeout (minutes), and with it the request or job that
// needed one.
func postgresConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err) // pgconn leaves the password out
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	return cfg, nil
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := postgresConfig(dsn)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)

	pool := stdlib.OpenDB(*cfg)
	n := max(8, 4*runtime.GOMAXPROCS(0))
	pool.SetMaxOpenConns(n)
	pool.SetMaxIdleConns(n)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{d: postgresDialect, w: pool, r: pool, now: time.Now}
	fail := func(err error) (*DB, error) {
		pool.Close()
		return nil, fmt.Errorf("store: open postgres %s: %w", where, err)
	}
	if err := pool.PingContext(ctx); err != nil {
		return fail(err)
	}
	if schema := firstSchema(cfg.RuntimeParams["search_path"]); schema != "" {
		if err := createSchema(ctx, pool, schema); err != nil {
			return fail(err)
		}
	}
	var schema sql.NullString
	if err := pool.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fail(err)
	}
	if !schema.Valid {
		return fail(errors.New("no schema of the search_path exists to create tables in"))
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(migrationLockID(schema.String)),
		lock.WithLockTimeout(1, 300))
	if err != nil {
		return fail(err)
	}
	if err := db.migrate(ctx, goose.WithSessionLocker(locker)); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// createSchema creates schema unless it exists. It looks first, so that a
// role without the right to create schemas can use one made for it.
func createSchema(ctx context.Context, pool *sql.DB, schema string) error {
	var exists bool
	if err := pool.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := pool.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return nil
}

// firstSchema returns the schema in which a search_path setting creates
// tables: its first entry, unquoted, or folded to lower case as PostgreSQL
// does when it is not quoted. It returns "" for an empty path and for
// "$user", which names no fixed schema.
func firstSchema(path string) string {
	path = strings.TrimSpace(path)
	var name string
	if rest, ok := strings.CutPrefix(path, `"`); ok {
		var b strings.Builder
		for {
			i := strings.IndexByte(rest, '"')
			if i < 0 {
				return "" // unterminated: PostgreSQL refuses the setting
			}
			b.WriteString(rest[:i])
			rest = rest[i+1:]
			if !strings.HasPrefix(rest, `"`) {
				break
			}
			b.WriteByte('"') // "" inside quotes
			rest = rest[1:]
		}
		name = b.String()
	} else {
		name, _, _ = strings.Cut(path, ",")
		name = strings.ToLower(strings.TrimSpace(name))
	}
	if name == "$user" {
		return ""
	}
	return name
}

// migrationLockID is the advisory lock that serialises migrations of the
// store in schema: stores in other schemas of the database do not wait.
func migrationLockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("glimpse/store/migrations/" + schema))
	return int64(h.Sum64())
}
