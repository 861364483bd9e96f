// Package store keeps Glimpse's images, results and API keys in SQL.
//
// It uses database/sql with SQLite (modernc.org/sqlite, no cgo) embedded, or
// PostgreSQL (github.com/jackc/pgx/v5) when several processes share the
// store; Open picks the engine from the dsn. The queries are the same on
// both: what differs is gathered in dialect: placeholder style, how a time
// is passed as an argument and which goose dialect and migration directory
// apply. Upserts use ON CONFLICT, which both engines accept.
//
// Times are stored in UTC with microsecond precision (INTEGER unix
// microseconds in SQLite, timestamptz in PostgreSQL), so a time read back
// equals the time written after truncation to the microsecond.
//
// SQLite runs in WAL mode with synchronous=FULL: a write that returned nil
// survives power loss — except MarkProcessing, whose commit does not wait
// for the disk because the job's next delivery redoes it (see writeLazy).
// Opened with Config.Syncers, it runs synchronous=NORMAL instead and makes
// each write durable before it returns with a group-committed syncfs of the
// file system (see internal/durable), shared with concurrent writes and the
// other engines on the disk: the same promise for fewer flushes.
//
// All writes go through one connection (a *sql.DB with
// MaxOpenConns(1)) and begin IMMEDIATE transactions, so concurrent writers in
// one process queue in Go instead of failing with SQLITE_BUSY; reads use a
// separate pool and never wait for writers.
//
// PostgreSQL uses one pool for reads and writes, in READ COMMITTED
// transactions. The worker transitions stay safe across processes because
// each is a single UPDATE whose WHERE clause carries the guard: PostgreSQL
// re-checks it against the row once a concurrent writer's lock is released.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/glimpse-oss/glimpse/internal/durable"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationsFS embed.FS

// dialect is what differs between the SQL engines the store runs on.
type dialect struct {
	name       string        // "sqlite" or "postgres"
	goose      goose.Dialect // for the migration provider
	migrations string        // directory in migrationsFS
	// dollar reports whether placeholders are $1, $2, … instead of ?.
	dollar bool
	// nativeTime reports whether times are passed as time.Time
	// (timestamptz) instead of int64 unix microseconds.
	nativeTime bool
}

var sqliteDialect = dialect{
	name:       "sqlite",
	goose:      goose.DialectSQLite3,
	migrations: "migrations/sqlite",
}

var postgresDialect = dialect{
	name:       "postgres",
	goose:      goose.DialectPostgres,
	migrations: "migrations/postgres",
	dollar:     true,
	nativeTime: true,
}

// q rewrites a query written with ? placeholders for the dialect. Queries in
// this package never contain a literal question mark.
func (d *dialect) q(query string) string {
	if !d.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// t encodes a time as a query argument.
func (d *dialect) t(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d.nativeTime {
		return t
	}
	return t.UnixMicro()
}

// nt encodes an optional time as a query argument.
func (d *dialect) nt(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.t(*t)
}

// nullTime scans a time column written by dialect.t, in either encoding.
type nullTime struct {
	Time  time.Time
	Valid bool
}

// Scan implements sql.Scanner.
func (n *nullTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*n = nullTime{}
	case int64:
		*n = nullTime{Time: time.UnixMicro(v).UTC(), Valid: true}
	case time.Time:
		*n = nullTime{Time: v.UTC(), Valid: true}
	default:
		return fmt.Errorf("store: cannot scan %T as a time", v)
	}
	return nil
}

// ptr returns the time as a pointer, nil when NULL.
func (n nullTime) ptr() *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time
	return &t
}

// DB is the store. It is safe for concurrent use.
type DB struct {
	d dialect
	w *sql.DB // writes: a single connection in SQLite, the pool in PostgreSQL
	r *sql.DB // reads: a pool; the same as w for PostgreSQL and in-memory SQLite
	// now is the clock; tests replace it.
	now func() time.Time
	// lazySQLite says writeLazy switches SQLite's synchronous mode to
	// NORMAL around its transaction (file databases opened with FULL).
	lazySQLite bool
	// syncer, for a SQLite file running synchronous=NORMAL, makes each
	// durable write durable (see Config.Syncers).
	syncer *durable.Syncer
	// stmts caches the prepared statements of the per-image queries.
	stmts stmts
}

// Config tunes OpenConfig.
type Config struct {
	// Syncers, when set, makes the writes of a SQLite file database durable
	// through the group-committed flushes of its file system's
	// durable.Syncer (shared with the other engines on that disk) instead
	// of a fsync of the log by each commit. Where syncfs cannot be relied
	// on (durable.ErrUnsupported) the database runs synchronous=FULL as
	// without it. PostgreSQL ignores it: the server keeps its own log.
	Syncers *durable.Set
}

// sqliteConfig tunes openSQLite. Open uses the defaults; benchmarks compare
// synchronous modes.
type sqliteConfig struct {
	synchronous string // FULL unless set
	syncers     *durable.Set
}

// Open opens (creating if needed) and migrates the store named by dsn:
// "sqlite:///abs/path/glimpse.db", "sqlite://relative.db", "file:path.db",
// a bare path ending in .db, or ":memory:" for a private in-memory database;
// or a PostgreSQL URL, "postgres://user:password@host:5432/db?sslmode=…"
// ("postgresql://" too). A PostgreSQL URL's parameters are libpq's; any other
// is set on each connection, so "&search_path=glimpse" keeps the store in
// schema glimpse, created when missing.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return OpenConfig(ctx, dsn, Config{})
}

// OpenConfig is Open with cfg.
func OpenConfig(ctx context.Context, dsn string, cfg Config) (*DB, error) {
	kind, path, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if kind == "postgres" {
		return openPostgres(ctx, dsn)
	}
	return openSQLite(ctx, path, sqliteConfig{syncers: cfg.Syncers})
}

// parseDSN returns the engine a dsn names and, for SQLite, the file path.
func parseDSN(dsn string) (kind, path string, err error) {
	switch {
	case dsn == "":
		return "", "", errors.New("store: empty dsn")
	case dsn == ":memory:":
		return "sqlite", ":memory:", nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres", "", nil
	case strings.HasPrefix(dsn, "sqlite://"):
		path = strings.TrimPrefix(dsn, "sqlite://")
	case strings.HasPrefix(dsn, "file:"):
		path = strings.TrimPrefix(dsn, "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
	case strings.HasSuffix(dsn, ".db"):
		path = dsn
	default:
		return "", "", fmt.Errorf("store: unrecognised dsn %q (want sqlite://path.db, file:path.db, path.db, :memory: or postgres://…)", dsn)
	}
	if path == "" {
		return "", "", fmt.Errorf("store: dsn %q names no file", dsn)
	}
	if strings.ContainsAny(path, "?#") {
		return "", "", fmt.Errorf("store: sqlite path %q must not contain ? or #", path)
	}
	return "sqlite", path, nil
}

// openSQLite opens the SQLite database at path (or ":memory:") and migrates it.
func openSQLite(ctx context.Context, path string, cfg sqliteConfig) (*DB, error) {
	if cfg.synchronous == "" {
		cfg.synchronous = "FULL"
	}
	mem := path == ":memory:"
	var syncer *durable.Syncer
	if !mem {
		dir := filepath.Dir(path)
		if dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("store: create directory: %w", err)
			}
		}
		if cfg.syncers != nil && strings.EqualFold(cfg.synchronous, "FULL") {
			var err error
			if syncer, err = cfg.syncers.Find(dir); err != nil {
				return nil, fmt.Errorf("store: %w", err)
			}
			if syncer != nil {
				// NORMAL writes the log at each commit without syncing it
				// (and still syncs it around checkpoints); the syncer's
				// flush after the commit makes the commit durable.
				cfg.synchronous = "NORMAL"
			}
		}
	}

	common := url.Values{}
	// busy_timeout only matters against other processes sharing the file:
	// in this process all writes are serialised on one connection.
	common.Add("_pragma", "busy_timeout(10000)")
	common.Add("_pragma", "foreign_keys(1)")

	wq := url.Values{}
	for k, v := range common {
		wq[k] = append([]string(nil), v...)
	}
	if !mem {
		wq.Add("_pragma", "journal_mode(WAL)")
	}
	wq.Add("_pragma", "synchronous("+cfg.synchronous+")")
	// BEGIN IMMEDIATE takes the write lock up front, so a transaction never
	// fails half-way when upgrading from a read lock.
	wq.Set("_txlock", "immediate")

	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	db := &DB{d: sqliteDialect, w: w, r: w, now: time.Now, syncer: syncer,
		lazySQLite: !mem && strings.EqualFold(cfg.synchronous, "FULL")}
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := db.prepareWriter(ctx); err != nil {
		db.stmts.close()
		w.Close()
		return nil, fmt.Errorf("store: prepare: %w", err)
	}
	if err := db.sync(ctx); err != nil {
		db.stmts.close()
		w.Close()
		return nil, err
	}
	if mem {
		// Each connection to ":memory:" is its own database: share the one.
		return db, nil
	}

	rq := url.Values{}
	for k, v := range common {
		rq[k] = append([]string(nil), v...)
	}
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		db.stmts.close()
		w.Close()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		db.stmts.close()
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.r = r
	return db, nil
}

// migrate applies the embedded migrations that have not run yet. opts are
// added to the provider's, for a dialect's locking.
func (db *DB) migrate(ctx context.Context, opts ...goose.ProviderOption) error {
	sub, err := fs.Sub(migrationsFS, db.d.migrations)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	opts = append([]goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}, opts...)
	p, err := goose.NewProvider(db.d.goose, db.w, sub, opts...)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// Close closes the store's connections.
func (db *DB) Close() error {
	errs := []error{db.stmts.close()}
	if db.r != db.w {
		errs = append(errs, db.r.Close())
	}
	errs = append(errs, db.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Ping checks that the database answers, for readiness probes.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if db.r != db.w {
		if err := db.r.PingContext(ctx); err != nil {
			return fmt.Errorf("store: ping: %w", err)
		}
	}
	return nil
}

// write runs fn in a write transaction, committing when it returns nil.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := db.transact(ctx, fn); err != nil {
		return err
	}
	return db.sync(ctx)
}

// transact runs fn in a transaction on the writer and commits it when fn
// returns nil, without the syncer's flush.
func (db *DB) transact(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	return commitOrRollback(tx, fn)
}

// sync makes the commits made so far durable when a syncer stands in for
// SQLite's own fsyncs; otherwise they already are.
func (db *DB) sync(ctx context.Context) error {
	if db.syncer == nil {
		return nil
	}
	return db.syncer.Sync(ctx)
}

// commitOrRollback runs fn in tx, committing when fn returns nil and rolling
// back otherwise.
func commitOrRollback(tx *sql.Tx, fn func(tx *sql.Tx) error) error {
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// writeLazy is write for a transaction whose loss in a power cut is
// harmless because the next delivery of the job does it again (a worker
// marking its image processing): its commit does not wait for the disk.
// Commits stay in order, so the next durable commit makes it durable too.
// A process crash loses nothing either way; only an operating system crash
// or power cut can undo a lazy commit.
//
// SQLite (WAL) runs the transaction with synchronous=NORMAL, so its commit
// is not fsynced; the next FULL commit fsyncs the log, and with it this
// one. PostgreSQL runs it with synchronous_commit off.
func (db *DB) writeLazy(ctx context.Context, fn func(tx *sql.Tx) error) error {
	switch {
	case db.syncer != nil:
		// Already NORMAL: commit without the syncer's flush.
		return db.transact(ctx, fn)
	case db.d.name == "postgres":
		return db.write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
				return err
			}
			return fn(tx)
		})
	case !db.lazySQLite:
		return db.write(ctx, fn)
	}
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
		return err
	}
	defer func() {
		// Put the connection back as every other write expects it; one
		// that cannot be restored is discarded (and reopened FULL).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(rctx, "PRAGMA synchronous = FULL"); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	return commitOrRollback(tx, fn)
}

// nowUTC is the current time as stored: UTC, truncated to the microsecond.
func (db *DB) nowUTC() time.Time {
	return db.now().UTC().Truncate(time.Microsecond)
}
