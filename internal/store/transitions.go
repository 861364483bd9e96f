package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// The worker transitions below name the attempt they belong to: the queue's
// delivery count, starting at 1. images.attempts holds the latest attempt
// that started. A transition is refused — it returns false and a nil error —
// when the image is already done or failed, or when a later attempt than the
// caller's has started; a stale worker can therefore never overwrite a newer
// one's work. Repeating a transition with the same attempt is harmless.
//
// They also name the features their job computes (job.Job.Features, as the
// image's row listed them when the job was published), and are refused when
// the row lists others: the image was asked for more since (Reopen), and a
// job of its earlier list, still in the queue, must not finish it without
// them. nil features skip that check.

// MarkProcessing records that attempt has started on image id: a queued or
// processing image becomes processing with attempts = attempt and started_at
// = now (kept when the same attempt repeats the call). It returns
// ErrNotFound when the image does not exist.
func (db *DB) MarkProcessing(ctx context.Context, id string, attempt int, features []job.Feature) (ok bool, err error) {
	if attempt < 1 {
		return false, fmt.Errorf("store: mark processing %s: attempt %d < 1", id, attempt)
	}
	now := db.d.t(db.nowUTC())
	// Lazy: a mark lost in a power cut leaves the image queued or at an
	// older attempt, and the job's next delivery marks it again.
	err = db.writeLazy(ctx, func(tx *sql.Tx) error {
		fs := job.FormatFeatures(features)
		res, err := db.execTx(ctx, tx, qMarkProcessing,
			attempt, now, attempt, now, id, attempt, fs, fs)
		if err != nil {
			return err
		}
		ok, err = affectedOrExists(ctx, tx, db, res, id)
		return err
	})
	return ok, imageErr("mark processing", id, err)
}

// SaveResult stores attempt's result for image id and marks it done: the
// result JSON, width and height from res (when non-zero), the image's label
// rows and QR URLs (replaced, so a redelivery never duplicates them) and
// finished_at.
// It returns ErrNotFound when the image does not exist.
func (db *DB) SaveResult(ctx context.Context, id string, attempt int, features []job.Feature, res *job.Result) (ok bool, err error) {
	if attempt < 1 {
		return false, fmt.Errorf("store: save result %s: attempt %d < 1", id, attempt)
	}
	if res == nil {
		return false, fmt.Errorf("store: save result %s: nil result", id)
	}
	body, err := json.Marshal(res)
	if err != nil {
		return false, fmt.Errorf("store: save result %s: %w", id, err)
	}
	now := db.d.t(db.nowUTC())
	fc := extractFeatures(res)
	err = db.write(ctx, func(tx *sql.Tx) error {
		r, err := db.execTx(ctx, tx, qSaveResult,
			string(body), fc.qrURL, db.d.nt(fc.takenAt), fc.lat, fc.lon, fc.faces, fc.phash,
			res.Width, res.Width, res.Height, res.Height, attempt,
			now, now, now, id, attempt, job.FormatFeatures(features), job.FormatFeatures(features))
		if err != nil {
			return err
		}
		if ok, err = affectedOrExists(ctx, tx, db, r, id); err != nil || !ok {
			return err
		}
		if _, err := db.execTx(ctx, tx, qDeleteLabels, id); err != nil {
			return err
		}
		seen := make(map[string]bool, 2*len(res.Labels))
		for i, l := range res.Labels {
			label := normLabel(l.Label)
			if seen[label] {
				continue // one row per label, so a filtered list has no duplicates
			}
			seen[label] = true
			if _, err := db.execTx(ctx, tx, qInsertLabel, label, l.Score, i, id); err != nil {
				return err
			}
		}
		// Then each synonym of a label on its own ("tabby" of "tabby,
		// tabby cat"), ranked after the labels, so that the label filter
		// finds an image by any name its labels give.
		rank := len(res.Labels)
		for _, l := range res.Labels {
			for _, name := range synonyms(l.Label) {
				if seen[name] {
					continue
				}
				seen[name] = true
				if _, err := db.execTx(ctx, tx, qInsertLabel, name, l.Score, rank, id); err != nil {
					return err
				}
				rank++
			}
		}
		if _, err := db.execTx(ctx, tx, qDeleteQRURLs, id); err != nil {
			return err
		}
		for i, u := range fc.qrURLs {
			if _, err := db.execTx(ctx, tx, qInsertQRURL, id, i, u); err != nil {
				return err
			}
		}
		return nil
	})
	return ok, imageErr("save result", id, err)
}

// Reopen asks a finished image of tenant for more features: when image id
// is done or failed and still has exactly the features from (the list its
// caller read), it goes back to queued with the features to, its error
// cleared. Its last result stays until the next one commits, and its
// attempts stay, so that the new job's (numbered from them, see
// job.Job.AttemptBase) are later ones. Reopen returns the image as it is
// afterwards and whether this call reopened it: false when the image is not
// finished or its features changed since it was read. Its start and finish
// times are cleared, as a queued image has neither. It returns
// ErrNotFound when tenant has no image id.
func (db *DB) Reopen(ctx context.Context, tenant, id string, from, to []job.Feature) (img *job.Image, ok bool, err error) {
	now := db.d.t(db.nowUTC())
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.d.q(`UPDATE images SET
			features = ?, status = 'queued', error = '',
			started_at = NULL, finished_at = NULL, updated_at = ?
			WHERE id = ? AND tenant = ? AND status IN ('done', 'failed') AND features = ?`),
			job.FormatFeatures(to), now, id, tenant, job.FormatFeatures(from))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		ok = n > 0
		img, err = scanImage(db.queryRowTx(ctx, tx, qImageByID+` AND i.tenant = ?`, id, tenant))
		return err
	})
	if err != nil {
		return nil, false, imageErr("reopen", id, err)
	}
	return img, ok, nil
}

// MarkFailed marks image id failed with reason on behalf of attempt. Attempt
// 0 is the dead-letter handler: it fails any image not yet done or failed,
// whatever attempt last started, whose features are still its job's. It
// returns ErrNotFound when the image does not exist.
func (db *DB) MarkFailed(ctx context.Context, id string, attempt int, features []job.Feature, reason string) (ok bool, err error) {
	if attempt < 0 {
		return false, fmt.Errorf("store: mark failed %s: negative attempt %d", id, attempt)
	}
	now := db.d.t(db.nowUTC())
	query := `UPDATE images SET
		status = 'failed',
		error = ?,
		attempts = CASE WHEN ? > 0 THEN ? ELSE attempts END,
		finished_at = ?,
		updated_at = ?
		WHERE id = ? AND status IN ('queued', 'processing')`
	args := []any{reason, attempt, attempt, now, now, id}
	if attempt > 0 {
		query += ` AND attempts <= ?`
		args = append(args, attempt)
	}
	if fs := job.FormatFeatures(features); fs != "" {
		query += ` AND features = ?`
		args = append(args, fs)
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.d.q(query), args...)
		if err != nil {
			return err
		}
		ok, err = affectedOrExists(ctx, tx, db, res, id)
		return err
	})
	return ok, imageErr("mark failed", id, err)
}

// Requeue puts a processing image back to queued, for a worker that released
// its job unfinished (on shutdown). An image in any other status is left as
// it is. It returns ErrNotFound when the image does not exist.
func (db *DB) Requeue(ctx context.Context, id string) error {
	now := db.d.t(db.nowUTC())
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.d.q(`UPDATE images SET status = 'queued', updated_at = ?
			WHERE id = ? AND status = 'processing'`), now, id)
		if err != nil {
			return err
		}
		_, err = affectedOrExists(ctx, tx, db, res, id)
		return err
	})
	return imageErr("requeue", id, err)
}

// affectedOrExists reports whether res changed a row; when it did not, it
// returns sql.ErrNoRows if image id does not exist either.
func affectedOrExists(ctx context.Context, tx *sql.Tx, db *DB, res sql.Result, id string) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n > 0 {
		return true, nil
	}
	var one int
	return false, db.queryRowTx(ctx, tx, qImageExists, id).Scan(&one)
}

// ListStale returns up to limit images still queued or processing whose
// updated_at is before before, oldest first, for the reconciler that
// re-publishes jobs whose publish was lost. A limit of 0 or less means 100.
func (db *DB) ListStale(ctx context.Context, before time.Time, limit int) ([]*job.Image, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.r.QueryContext(ctx, db.d.q(`SELECT `+imageCols+` FROM images i
		WHERE i.status IN ('queued', 'processing') AND i.updated_at < ?
		ORDER BY i.updated_at, i.id LIMIT ?`), db.d.t(before), limit)
	if err != nil {
		return nil, fmt.Errorf("store: list stale: %w", err)
	}
	defer rows.Close()
	var out []*job.Image
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list stale: %w", err)
		}
		out = append(out, img)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list stale: %w", err)
	}
	return out, nil
}

// Touch sets image id's updated_at to now, after the reconciler re-published
// its job. It returns ErrNotFound when the image does not exist.
func (db *DB) Touch(ctx context.Context, id string) error {
	res, err := db.w.ExecContext(ctx, db.d.q(`UPDATE images SET updated_at = ? WHERE id = ?`),
		db.d.t(db.nowUTC()), id)
	if err != nil {
		return fmt.Errorf("store: touch %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: touch %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: touch %s: %w", id, ErrNotFound)
	}
	return nil
}
