package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// secretPrefix starts every API key secret, so that leaked keys are easy to
// recognise by scanners.
const secretPrefix = "glk_"

// lastUsedEvery is how stale Key.LastUsed may get before Authenticate writes
// it again; it keeps authentication from being a write per request.
const lastUsedEvery = time.Minute

// secretEncoding is lower-case base32 without padding: 20 random bytes give
// 32 characters.
var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// hashSecret is the stored form of a secret: hex SHA-256.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// keyCols is the column list scanKey reads, in order.
const keyCols = `id, tenant, name, created_at, revoked_at, last_used`

// scanKey reads one row of keyCols.
func scanKey(s rowScanner) (Key, error) {
	var (
		k                      Key
		created, revoked, used nullTime
	)
	if err := s.Scan(&k.ID, &k.Tenant, &k.Name, &created, &revoked, &used); err != nil {
		return Key{}, err
	}
	k.CreatedAt = created.Time
	k.RevokedAt = revoked.ptr()
	k.LastUsed = used.ptr()
	return k, nil
}

// CreateKey creates an API key for tenant. The secret ("glk_" and 32
// base32 characters, 160 random bits) is returned only here: the store keeps
// its SHA-256.
func (db *DB) CreateKey(ctx context.Context, tenant, name string) (secret string, k Key, err error) {
	if !job.ValidTenant(tenant) {
		return "", Key{}, fmt.Errorf("store: create key: tenant %q: a tenant name is %s", tenant, job.TenantRule)
	}
	var buf [20 + 8]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", Key{}, fmt.Errorf("store: create key: %w", err)
	}
	secret = secretPrefix + secretEncoding.EncodeToString(buf[:20])
	k = Key{
		ID:        "key_" + hex.EncodeToString(buf[20:]),
		Tenant:    tenant,
		Name:      name,
		CreatedAt: db.nowUTC(),
	}
	_, err = db.w.ExecContext(ctx, db.d.q(`INSERT INTO api_keys (id, tenant, name, hash, created_at)
		VALUES (?, ?, ?, ?, ?)`), k.ID, k.Tenant, k.Name, hashSecret(secret), db.d.t(k.CreatedAt))
	if err == nil {
		err = db.sync(ctx)
	}
	if err != nil {
		return "", Key{}, fmt.Errorf("store: create key: %w", err)
	}
	return secret, k, nil
}

// Authenticate returns the key whose secret this is, or ErrUnauthorized when
// it is unknown or revoked. The lookup is by the secret's hash, so timing
// does not reveal how much of a guess was right. LastUsed is written at most
// once a minute per key.
func (db *DB) Authenticate(ctx context.Context, secret string) (Key, error) {
	if !strings.HasPrefix(secret, secretPrefix) {
		return Key{}, ErrUnauthorized
	}
	k, err := scanKey(db.r.QueryRowContext(ctx,
		db.d.q(`SELECT `+keyCols+` FROM api_keys WHERE hash = ?`), hashSecret(secret)))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Key{}, ErrUnauthorized
	case err != nil:
		return Key{}, fmt.Errorf("store: authenticate: %w", err)
	case k.RevokedAt != nil:
		return Key{}, ErrUnauthorized
	}
	now := db.nowUTC()
	if k.LastUsed != nil && now.Sub(*k.LastUsed) < lastUsedEvery {
		return k, nil
	}
	res, err := db.w.ExecContext(ctx, db.d.q(`UPDATE api_keys SET last_used = ?
		WHERE id = ? AND (last_used IS NULL OR last_used < ?)`),
		db.d.t(now), k.ID, db.d.t(now.Add(-lastUsedEvery)))
	if err != nil {
		return Key{}, fmt.Errorf("store: authenticate: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		k.LastUsed = &now
	}
	return k, nil
}

// ListKeys returns tenant's keys, revoked ones included, oldest first;
// tenant "" lists every tenant's keys.
func (db *DB) ListKeys(ctx context.Context, tenant string) ([]Key, error) {
	query := `SELECT ` + keyCols + ` FROM api_keys ORDER BY created_at, id`
	var args []any
	if tenant != "" {
		query = `SELECT ` + keyCols + ` FROM api_keys WHERE tenant = ? ORDER BY created_at, id`
		args = append(args, tenant)
	}
	rows, err := db.r.QueryContext(ctx, db.d.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	defer rows.Close()
	var keys []Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	return keys, nil
}

// RevokeKey revokes key id; revoking a revoked key keeps the first
// revocation time. It returns ErrNotFound when there is no such key.
func (db *DB) RevokeKey(ctx context.Context, id string) error {
	now := db.d.t(db.nowUTC())
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.d.q(`UPDATE api_keys SET revoked_at = ?
			WHERE id = ? AND revoked_at IS NULL`), now, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var one int
		return tx.QueryRowContext(ctx, db.d.q(`SELECT 1 FROM api_keys WHERE id = ?`), id).Scan(&one)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: revoke key %s: %w", id, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: revoke key %s: %w", id, err)
	}
	return nil
}
