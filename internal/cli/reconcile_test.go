package cli

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/natsembed"
	"github.com/glimpse-oss/glimpse/internal/queue"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// An image whose row committed but whose publish was lost is re-published
// once; an image whose job still waits in the queue is left alone.
func TestReconcileRepublishesStrandedJobs(t *testing.T) {
	dir := t.TempDir()
	ns, err := natsembed.Start(natsembed.Config{Dir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := context.Background()
	q, err := queue.Open(ctx, nc, queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "glimpse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	mk := func(seed string) *job.Image {
		img := &job.Image{ID: job.NewImageID("t", job.ContentHash([]byte(seed)), ""), Tenant: "t", Filename: seed, ContentType: "image/png", SHA256: job.ContentHash([]byte(seed)), Features: job.DefaultFeatures, Status: job.StatusQueued}
		if _, _, err := db.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		return img
	}
	stranded := mk("stranded")
	waiting := mk("waiting")
	if err := q.Publish(ctx, jobFor(waiting)); err != nil {
		t.Fatal(err)
	}

	later := time.Now().Add(time.Hour) // both rows count as stale
	n, err := reconcileOnce(ctx, db, q, later)
	if err != nil || n != 1 {
		t.Fatalf("reconcileOnce = %d, %v; want 1 re-published", n, err)
	}
	if has, _ := q.Has(ctx, stranded.ID); !has {
		t.Error("stranded job is not in the queue after reconciling")
	}
	if n, err := reconcileOnce(ctx, db, q, later); err != nil || n != 0 {
		t.Errorf("second reconcileOnce = %d, %v; want 0 (nothing doubles)", n, err)
	}
	d, err := q.Depth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Pending != 2 {
		t.Errorf("queue holds %d jobs; want 2 (one each)", d.Pending)
	}
}
