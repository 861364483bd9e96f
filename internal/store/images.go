package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// imageCols is the column list scanImage reads, in order.
const imageCols = `i.id, i.tenant, i.filename, i.content_type, i.size, i.sha256, i.width, i.height,
	i.features, i.status, i.error, i.attempts, i.created_at, i.updated_at, i.started_at, i.finished_at,
	i.result`

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// scanImage reads one row of imageCols.
func scanImage(s rowScanner) (*job.Image, error) {
	var (
		img               job.Image
		features, status  string
		created, updated  nullTime
		started, finished nullTime
		result            sql.NullString
	)
	err := s.Scan(&img.ID, &img.Tenant, &img.Filename, &img.ContentType, &img.Size, &img.SHA256,
		&img.Width, &img.Height, &features, &status, &img.Error, &img.Attempts,
		&created, &updated, &started, &finished, &result)
	if err != nil {
		return nil, err
	}
	img.Features = splitFeatures(features)
	img.Status = job.Status(status)
	img.CreatedAt = created.Time
	img.UpdatedAt = updated.Time
	img.StartedAt = started.ptr()
	img.FinishedAt = finished.ptr()
	if result.Valid && result.String != "" {
		var res job.Result
		if err := json.Unmarshal([]byte(result.String), &res); err != nil {
			return nil, fmt.Errorf("store: image %s: decode result: %w", img.ID, err)
		}
		img.Result = &res
	}
	return &img, nil
}

// splitFeatures parses the stored comma list. It does not validate names, so
// an image keeps the features it was created with even if a later build
// drops one.
func splitFeatures(s string) []job.Feature {
	out := []job.Feature{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, job.Feature(f))
		}
	}
	return out
}

// CreateImage inserts img unless an image with img.ID already exists; image
// ids are deterministic, so a retried upload maps to the same row. It returns
// the stored image and whether this call created it. A new image is queued
// with no attempts; CreatedAt and UpdatedAt default to now when zero. img
// itself is not modified.
func (db *DB) CreateImage(ctx context.Context, img *job.Image) (stored *job.Image, created bool, err error) {
	switch {
	case img == nil:
		return nil, false, errors.New("store: create image: nil image")
	case img.ID == "":
		return nil, false, errors.New("store: create image: empty id")
	case img.Tenant == "":
		return nil, false, errors.New("store: create image: empty tenant")
	}
	now := db.nowUTC()
	createdAt, updatedAt := img.CreatedAt, img.UpdatedAt
	if createdAt.IsZero() {
		createdAt = now
	}
	if updatedAt.IsZero() {
		updatedAt = now
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := db.execTx(ctx, tx, qInsertImage,
			img.ID, img.Tenant, img.Filename, img.ContentType, img.Size, img.SHA256,
			img.Width, img.Height, job.FormatFeatures(img.Features), string(job.StatusQueued),
			db.d.t(createdAt), db.d.t(updatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		created = n == 1
		stored, err = scanImage(db.queryRowTx(ctx, tx, qImageByID, img.ID))
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: create image %s: %w", img.ID, err)
	}
	if stored.Tenant != img.Tenant {
		return nil, false, fmt.Errorf("store: create image %s: id is taken by another tenant", img.ID)
	}
	return stored, created, nil
}

// GetImage returns tenant's image id, with its result if it has one. An image
// of another tenant is reported as ErrNotFound.
func (db *DB) GetImage(ctx context.Context, tenant, id string) (*job.Image, error) {
	img, err := scanImage(db.queryRow(ctx, `SELECT `+imageCols+` FROM images i WHERE i.id = ? AND i.tenant = ?`, id, tenant))
	return img, imageErr("get image", id, err)
}

// GetImageByID returns image id whatever its tenant, for workers.
func (db *DB) GetImageByID(ctx context.Context, id string) (*job.Image, error) {
	img, err := scanImage(db.queryRow(ctx, qImageByID, id))
	return img, imageErr("get image", id, err)
}

// imageErr wraps err for op on image id, mapping sql.ErrNoRows to ErrNotFound.
func imageErr(op, id string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: %s %s: %w", op, id, ErrNotFound)
	default:
		return fmt.Errorf("store: %s %s: %w", op, id, err)
	}
}

// Limits of ListOptions.Limit.
const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

// ListImages returns one page of a tenant's images, newest first (by
// created_at, then id, both descending). Status and Label filter the list;
// Label matches any stored label of an image, ignoring case. Pages are
// keyset-paginated: pass Page.Next as Cursor to get the next one. A cursor
// that does not parse gives ErrBadCursor. A Limit above 1000 is treated as
// 1000.
func (db *DB) ListImages(ctx context.Context, opt ListOptions) (Page, error) {
	if opt.Tenant == "" {
		return Page{}, errors.New("store: list images: empty tenant")
	}
	if opt.Status != "" && !opt.Status.Valid() {
		return Page{}, fmt.Errorf("store: list images: unknown status %q", opt.Status)
	}
	limit := opt.Limit
	switch {
	case limit < 0:
		return Page{}, fmt.Errorf("store: list images: negative limit %d", limit)
	case limit == 0:
		limit = defaultListLimit
	case limit > maxListLimit:
		limit = maxListLimit
	}

	// Without a label the list pages through images' (tenant, created_at,
	// id) index. With one it pages through image_labels, which repeats
	// tenant and created_at so that its (tenant, label, created_at,
	// image_id) index gives the same order: a rare label then costs as
	// little as a common one.
	from, order := "images i", "i"
	where := []string{"i.tenant = ?"}
	args := []any{opt.Tenant}
	if opt.Label != "" {
		from, order = "image_labels l JOIN images i ON i.id = l.image_id", "l"
		where = []string{"l.tenant = ?", "l.label = ?"}
		args = append(args, normLabel(opt.Label))
	}
	if opt.Status != "" {
		where = append(where, "i.status = ?")
		args = append(args, string(opt.Status))
	}
	where, args = db.featureFilters(opt, where, args)
	idCol := order + ".id"
	if order == "l" {
		idCol = "l.image_id"
	}
	if opt.Cursor != "" {
		at, id, err := decodeCursor(opt.Cursor)
		if err != nil {
			return Page{}, err
		}
		// Equivalent to (created_at, id) < (at, id); the leading
		// created_at <= ? gives both engines an index range to start from.
		where = append(where, fmt.Sprintf("%[1]s.created_at <= ? AND (%[1]s.created_at < ? OR %[2]s < ?)", order, idCol))
		args = append(args, db.d.t(at), db.d.t(at), id)
	}
	args = append(args, limit+1)
	query := `SELECT ` + imageCols + ` FROM ` + from + ` WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(` ORDER BY %s.created_at DESC, %s DESC LIMIT ?`, order, idCol)

	rows, err := db.r.QueryContext(ctx, db.d.q(query), args...)
	if err != nil {
		return Page{}, fmt.Errorf("store: list images: %w", err)
	}
	defer rows.Close()
	page := Page{Images: make([]*job.Image, 0, min(limit, 64))}
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			return Page{}, fmt.Errorf("store: list images: %w", err)
		}
		page.Images = append(page.Images, img)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("store: list images: %w", err)
	}
	if len(page.Images) > limit {
		page.Images = page.Images[:limit]
		last := page.Images[limit-1]
		page.Next = encodeCursor(last.CreatedAt, last.ID)
	}
	return page, nil
}

// normLabel is the form labels are stored and matched in.
func normLabel(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// synonyms returns the names of a label that lists several, normalised as
// normLabel: ImageNet's "tabby, tabby cat" gives "tabby" and "tabby cat". A
// label of one name gives none.
func synonyms(label string) []string {
	parts := strings.Split(label, ",")
	if len(parts) < 2 {
		return nil
	}
	var out []string
	for _, p := range parts {
		if p = normLabel(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// encodeCursor makes the opaque cursor for the position after (at, id).
func encodeCursor(at time.Time, id string) string {
	raw := strconv.FormatInt(at.UTC().UnixMicro(), 10) + "." + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor is the inverse of encodeCursor.
func decodeCursor(c string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	micros, id, ok := strings.Cut(string(raw), ".")
	if !ok || id == "" {
		return time.Time{}, "", ErrBadCursor
	}
	n, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	return time.UnixMicro(n).UTC(), id, nil
}

// DeleteImage deletes tenant's image id and its labels. It returns
// ErrNotFound when there is no such image.
func (db *DB) DeleteImage(ctx context.Context, tenant, id string) error {
	res, err := db.w.ExecContext(ctx, db.d.q(`DELETE FROM images WHERE id = ? AND tenant = ?`), id, tenant)
	if err == nil {
		err = db.sync(ctx)
	}
	if err != nil {
		return fmt.Errorf("store: delete image %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: delete image %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: delete image %s: %w", id, ErrNotFound)
	}
	return nil
}

// CountByStatus returns how many images are in each status, with every
// status present (zero when none). tenant "" counts all tenants.
func (db *DB) CountByStatus(ctx context.Context, tenant string) (map[job.Status]int, error) {
	query := `SELECT status, COUNT(*) FROM images GROUP BY status`
	var args []any
	if tenant != "" {
		query = `SELECT status, COUNT(*) FROM images WHERE tenant = ? GROUP BY status`
		args = append(args, tenant)
	}
	rows, err := db.r.QueryContext(ctx, db.d.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: count by status: %w", err)
	}
	defer rows.Close()
	counts := map[job.Status]int{
		job.StatusQueued: 0, job.StatusProcessing: 0, job.StatusDone: 0, job.StatusFailed: 0,
	}
	for rows.Next() {
		var (
			s string
			n int
		)
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("store: count by status: %w", err)
		}
		counts[job.Status(s)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count by status: %w", err)
	}
	return counts, nil
}
