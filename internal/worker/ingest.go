package worker

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/queue"
	"github.com/glimpse-oss/glimpse/internal/s3event"
)

// ingest turns a storage event into images and jobs: every object created
// under inputs/<tenant>/ becomes an image of that tenant (the same bytes are
// the same image, so a repeated event or our own upload changes nothing),
// its bytes are copied to the canonical key, and its job is published. The
// event is acknowledged only when every record is handled, so a failure
// redelivers it and the idempotent steps run again.
func (p *Pool) ingest(log *slog.Logger, d *queue.Delivery) {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.JobTimeout)
	defer cancel()
	var err error
	for _, rec := range d.Events {
		if err = p.ingestRecord(ctx, log, rec); err != nil {
			break
		}
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err == nil {
		p.ack(sctx, log, d)
		p.m.jobs.WithLabelValues("event").Inc()
		return
	}
	if d.Last() {
		log.Error("storage event dropped after its retries", "err", err, "records", len(d.Events))
		if err := d.Term(err.Error()); err != nil {
			log.Warn("term failed", "err", err)
		}
		return
	}
	log.Warn("storage event failed; will retry", "err", err)
	if err := d.Nak(p.cfg.RetryDelay << min(d.Attempt-1, 6)); err != nil {
		log.Warn("nak failed", "err", err)
	}
}

func (p *Pool) ingestRecord(ctx context.Context, log *slog.Logger, rec s3event.Record) error {
	log = log.With("key", rec.Key, "event", rec.EventName)
	rest, ok := strings.CutPrefix(rec.Key, "inputs/")
	tenant, name, ok2 := strings.Cut(rest, "/")
	switch {
	case !rec.Created():
		log.Debug("ignoring event: not an object creation")
		return nil
	case !ok || !ok2 || name == "" || !job.ValidTenant(tenant):
		log.Info("ignoring event: key is not inputs/<tenant>/<name>")
		return nil
	case job.ValidID(name):
		// Our own canonical key: the API wrote it and queued its job.
		if _, err := p.deps.Store.GetImageByID(ctx, name); err == nil {
			log.Debug("ignoring event for an image Glimpse stored itself")
			return nil
		}
	}
	b, err := p.deps.Blobs.Get(ctx, rec.Key)
	if err != nil {
		if p.deps.IsBlobNotFound(err) {
			log.Info("ignoring event: the object is gone")
			return nil
		}
		return fmt.Errorf("read %s: %w", rec.Key, err)
	}
	sha := job.ContentHash(b)
	id := job.NewImageID(tenant, sha, "")
	img := &job.Image{
		ID: id, Tenant: tenant, Filename: path.Base(name), Size: int64(len(b)), SHA256: sha,
		Features: p.cfg.EventFeatures, Status: job.StatusQueued,
	}
	h, inspectErr := imagedata.Inspect(b, p.cfg.Limits)
	if inspectErr == nil {
		img.ContentType = h.ContentType
		img.Width, img.Height = h.DisplaySize()
		if key := job.InputKey(tenant, id); key != rec.Key {
			if err := p.deps.Blobs.Put(ctx, key, b, h.ContentType); err != nil {
				return fmt.Errorf("copy %s: %w", rec.Key, err)
			}
		}
	}
	stored, created, err := p.deps.Store.CreateImage(ctx, img)
	if err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	if inspectErr != nil {
		// Not an image we can read: record why, so whoever put it there
		// can see it, instead of dropping it silently.
		if created {
			if _, err := p.deps.Store.MarkFailed(ctx, id, 0, nil, imagedata.MessageOf(inspectErr)); err != nil {
				return fmt.Errorf("mark failed: %w", err)
			}
		}
		log.Info("storage event for an unreadable object", "image", id, "reason", imagedata.MessageOf(inspectErr))
		return nil
	}
	if !created && stored.Status != job.StatusQueued {
		log.Debug("ignoring event: image already known", "image", id)
		return nil
	}
	err = p.deps.Queue.Publish(ctx, job.Job{
		ImageID: id, Tenant: tenant, BlobKey: job.InputKey(tenant, id), Filename: img.Filename,
		ContentType: img.ContentType, Features: stored.Features, EnqueuedAt: time.Now().UTC(),
		ImageCreatedAt: stored.CreatedAt,
	})
	if err != nil {
		return fmt.Errorf("publish job: %w", err)
	}
	log.Info("storage event queued an image", "image", id, "tenant", tenant)
	return nil
}
