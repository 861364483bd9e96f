package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/queue"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// runReconciler closes the one gap between the store and the queue: an image
// whose row committed but whose job never reached the queue (the publish
// failed, or the process died in between). Every period it looks at images
// left unfinished for longer than after and re-publishes those the jobs stream
// does not hold. Images whose job is still waiting in a long backlog are left
// alone, so the queue never doubles.
func runReconciler(ctx context.Context, log *slog.Logger, db *store.DB, q *queue.Queue, after time.Duration) {
	if after <= 0 {
		return
	}
	every(ctx, max(after/4, time.Second), func() {
		n, err := reconcileOnce(ctx, db, q, time.Now().Add(-after))
		if err != nil && ctx.Err() == nil {
			log.Warn("reconcile failed", "err", err)
		}
		if n > 0 {
			log.Info("re-published stranded jobs", "count", n)
		}
	})
}

// every calls fn once per period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

// reconcileOnce re-publishes the stranded jobs of images untouched since
// before and reports how many it sent.
func reconcileOnce(ctx context.Context, db *store.DB, q *queue.Queue, before time.Time) (int, error) {
	stale, err := db.ListStale(ctx, before, 500)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, img := range stale {
		has, err := q.Has(ctx, img.ID)
		if err != nil {
			return sent, err
		}
		if !has {
			if err := q.Republish(ctx, jobFor(img)); err != nil {
				return sent, err
			}
			sent++
		}
		if err := db.Touch(ctx, img.ID); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// jobFor rebuilds the queue message for a stored image.
func jobFor(img *job.Image) job.Job {
	return job.Job{
		ImageID:        img.ID,
		Tenant:         img.Tenant,
		BlobKey:        job.InputKey(img.Tenant, img.ID),
		Filename:       img.Filename,
		ContentType:    img.ContentType,
		Features:       img.Features,
		EnqueuedAt:     time.Now().UTC(),
		ImageCreatedAt: img.CreatedAt,
		AttemptBase:    img.Attempts,
	}
}
