package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// The queries every image runs through (upload, mark, save, read back),
// written with ? placeholders. On SQLite they run as prepared statements
// cached for the store's life (see stmts).
const (
	qInsertImage = `INSERT INTO images
		(id, tenant, filename, content_type, size, sha256, width, height, features,
		 status, error, attempts, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	qImageByID      = `SELECT ` + imageCols + ` FROM images i WHERE i.id = ?`
	qImageExists    = `SELECT 1 FROM images WHERE id = ?`
	qMarkProcessing = `UPDATE images SET
		status = 'processing',
		started_at = CASE WHEN status = 'processing' AND attempts = ? THEN started_at ELSE ? END,
		attempts = ?,
		updated_at = ?
		WHERE id = ? AND status IN ('queued', 'processing') AND attempts <= ? AND (? = '' OR features = ?)`
	qSaveResult = `UPDATE images SET
		status = 'done',
		error = '',
		result = ?,
		qr_url = ?, taken_at = ?, lat = ?, lon = ?, faces = ?, phash = ?,
		width = CASE WHEN ? > 0 THEN ? ELSE width END,
		height = CASE WHEN ? > 0 THEN ? ELSE height END,
		attempts = ?,
		started_at = COALESCE(started_at, ?),
		finished_at = ?,
		updated_at = ?
		WHERE id = ? AND status IN ('queued', 'processing') AND attempts <= ? AND (? = '' OR features = ?)`
	qDeleteLabels = `DELETE FROM image_labels WHERE image_id = ?`
	qDeleteQRURLs = `DELETE FROM image_qr_urls WHERE image_id = ?`
	qInsertQRURL  = `INSERT INTO image_qr_urls (image_id, rank, url) VALUES (?, ?, ?)`
	qInsertLabel  = `INSERT INTO image_labels
		(image_id, label, score, rank, tenant, created_at)
		SELECT id, ?, ?, ?, tenant, created_at FROM images WHERE id = ?`
)

// writerQueries are prepared on the writer when a SQLite store opens.
var writerQueries = []string{qInsertImage, qImageByID, qImageExists, qMarkProcessing, qSaveResult, qDeleteLabels, qInsertLabel,
	qDeleteQRURLs, qInsertQRURL}

// stmts caches prepared statements, per handle and query. Preparing is a
// large share of a small statement's cost in SQLite: it parses the SQL and
// compiles it into a program on every call (about a quarter of the store's
// CPU time per image before this cache, BenchmarkJobCycle). A statement
// prepared on a handle is prepared once per connection by database/sql and
// reused from then on, inside transactions too (sql.Tx.StmtContext, which
// prepares it on the transaction's own connection when that is new).
//
// The writer's statements are all prepared when the store opens: the writer
// has a single connection, so preparing one while a transaction holds it
// would wait for ever. The read pool's are prepared on first use.
type stmts struct {
	mu sync.Mutex
	m  map[stmtKey]*sql.Stmt
	// off disables the cache, for benchmarks to compare against.
	off bool
}

type stmtKey struct {
	h     *sql.DB
	query string
}

// lookup returns the cached statement of query on h.
func (c *stmts) lookup(h *sql.DB, query string) (*sql.Stmt, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[stmtKey{h, query}]
	return s, ok && !c.off
}

// prepare returns query prepared on h, preparing and caching it if needed.
// h must have a connection to spare.
func (c *stmts) prepare(ctx context.Context, h *sql.DB, query string) (*sql.Stmt, error) {
	if s, ok := c.lookup(h, query); ok || c.off {
		if !ok {
			return nil, errors.New("statement cache off")
		}
		return s, nil
	}
	s, err := h.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := stmtKey{h, query}
	if prev, ok := c.m[k]; ok {
		// Another caller prepared it meanwhile: keep one.
		s.Close()
		return prev, nil
	}
	if c.m == nil {
		c.m = map[stmtKey]*sql.Stmt{}
	}
	c.m[k] = s
	return s, nil
}

// close closes every cached statement.
func (c *stmts) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for k, s := range c.m {
		errs = append(errs, s.Close())
		delete(c.m, k)
	}
	return errors.Join(errs...)
}

// prepareWriter prepares writerQueries on a SQLite store's writer; it runs
// before the store is shared, when no transaction holds the connection.
func (db *DB) prepareWriter(ctx context.Context) error {
	for _, q := range writerQueries {
		if _, err := db.stmts.prepare(ctx, db.w, db.d.q(q)); err != nil {
			return err
		}
	}
	return nil
}

// The helpers below run a query written with ? placeholders, as a cached
// statement on SQLite. PostgreSQL's driver (pgx) keeps its own cache of
// prepared statements per connection, so there they run the query as it is.

// execTx runs query in tx.
func (db *DB) execTx(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	query = db.d.q(query)
	if s, ok := db.stmts.lookup(db.w, query); ok {
		return tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// queryRowTx runs query in tx.
func (db *DB) queryRowTx(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	query = db.d.q(query)
	if s, ok := db.stmts.lookup(db.w, query); ok {
		return tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// queryRow runs query on the read pool.
func (db *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	query = db.d.q(query)
	switch {
	case db.d.name != "sqlite":
	case db.r == db.w: // in memory: the writer's connection serves reads too
		if s, ok := db.stmts.lookup(db.w, query); ok {
			return s.QueryRowContext(ctx, args...)
		}
	default:
		if s, err := db.stmts.prepare(ctx, db.r, query); err == nil {
			return s.QueryRowContext(ctx, args...)
		}
		// The query itself reports why it cannot be prepared.
	}
	return db.r.QueryRowContext(ctx, query, args...)
}
