package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// BackfillStore is what a backfill reads and writes. *store.DB satisfies it.
type BackfillStore interface {
	Store
	// EachFailedImage calls fn for every failed image.
	EachFailedImage(ctx context.Context, fn func(*job.Image) error) error
}

// BackfillStats says what a backfill did.
type BackfillStats struct {
	Results int `json:"results"` // result documents read
	Done    int `json:"done"`    // rows written from them
	Failed  int `json:"failed"`  // rows written for failed images
	Orphans int `json:"orphans"` // documents whose image is gone from the store
	Bad     int `json:"bad"`     // documents that are not a result
}

// resultDoc is the part of results/<id>.json (written by the worker) that a
// backfill reads.
type resultDoc struct {
	ID         string      `json:"id"`
	Result     *job.Result `json:"result"`
	FinishedAt time.Time   `json:"finished_at"`
}

// backfillBatch is how many rows a backfill writes per transaction.
const backfillBatch = 500

// Backfill rebuilds the analytics rows from the result documents under
// results/ in bucket (the source of truth for done images) and from the
// store's failed images, which have no document. It is idempotent: rows are
// upserted by image id, so running it again, or while the loader runs,
// leaves one row per image. progress, when set, is called after each batch.
func Backfill(ctx context.Context, db BackfillStore, bucket *blob.Bucket, progress func(BackfillStats)) (BackfillStats, error) {
	var (
		st    BackfillStats
		batch []store.Fact
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := db.UpsertFacts(ctx, batch); err != nil {
			return err
		}
		batch = batch[:0]
		if progress != nil {
			progress(st)
		}
		return nil
	}
	it := bucket.List(&blob.ListOptions{Prefix: "results/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("analytics: backfill: list results: %w", err)
		}
		if obj.IsDir || !strings.HasSuffix(obj.Key, ".json") {
			continue
		}
		b, err := bucket.ReadAll(ctx, obj.Key)
		if err != nil {
			return st, fmt.Errorf("analytics: backfill: read %s: %w", obj.Key, err)
		}
		st.Results++
		var doc resultDoc
		if err := json.Unmarshal(b, &doc); err != nil || doc.Result == nil || !job.ValidID(doc.ID) {
			st.Bad++
			continue
		}
		img, err := db.GetImageByID(ctx, doc.ID)
		if errors.Is(err, store.ErrNotFound) {
			st.Orphans++
			continue
		}
		if err != nil {
			return st, fmt.Errorf("analytics: backfill: %w", err)
		}
		if img.Status == job.StatusFailed {
			continue // a result written by an attempt that did not commit; the failed pass covers it
		}
		batch = append(batch, NewFact(img, job.StatusDone, "", doc.Result, doc.FinishedAt))
		st.Done++
		if len(batch) >= backfillBatch {
			if err := flush(); err != nil {
				return st, fmt.Errorf("analytics: backfill: %w", err)
			}
		}
	}
	err := db.EachFailedImage(ctx, func(img *job.Image) error {
		finished := img.UpdatedAt
		if img.FinishedAt != nil {
			finished = *img.FinishedAt
		}
		batch = append(batch, NewFact(img, job.StatusFailed, img.Error, nil, finished))
		st.Failed++
		if len(batch) >= backfillBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return st, fmt.Errorf("analytics: backfill: %w", err)
	}
	return st, nil
}
