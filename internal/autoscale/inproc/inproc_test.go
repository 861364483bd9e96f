package inproc

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/autoscale"
	"github.com/glimpse-oss/glimpse/internal/autoscale/actuatortest"
	"github.com/glimpse-oss/glimpse/internal/blobstore"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/natsembed"
	"github.com/glimpse-oss/glimpse/internal/queue"
	"github.com/glimpse-oss/glimpse/internal/store"
	"github.com/glimpse-oss/glimpse/internal/worker"
)

// gated is a fake labels analyzer (tests only): each job announces itself on
// entered and then waits until gate is closed.
type gated struct {
	entered chan struct{}
	gate    chan struct{}
}

func (g *gated) Feature() job.Feature { return job.FeatureLabels }
func (g *gated) MinSide() int         { return 8 }
func (g *gated) Analyze(ctx context.Context, _ *analyzer.Image, res *job.Result) error {
	g.entered <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	res.Labels = []job.Label{{Label: "tabby", Score: 0.9}}
	return nil
}

// rig is a real pool over embedded JetStream, SQLite and in-memory blobs.
type rig struct {
	q     *queue.Queue
	db    *store.DB
	blobs *blobstore.Store
	pool  *worker.Pool
}

func newRig(t *testing.T, a analyzer.Analyzer) *rig {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
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
	q, err := queue.Open(ctx, nc, queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "glimpse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := blobstore.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	cfg := worker.NewDefaultConfig()
	cfg.FetchWait = 100 * time.Millisecond
	cfg.RetryDelay = 10 * time.Millisecond
	cfg.Heartbeat = 100 * time.Millisecond
	pool, err := worker.New(cfg, worker.Deps{
		Queue: q, Store: db, Blobs: blobs,
		NewPipeline:    func() (worker.Pipeline, error) { return analyzer.NewPipeline(0, a) },
		IsBlobNotFound: func(err error) bool { return errors.Is(err, blobstore.ErrNotFound) },
		Registerer:     prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pool.Stop(ctx)
	})
	return &rig{q: q, db: db, blobs: blobs, pool: pool}
}

func (r *rig) submit(t *testing.T, seed int) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = uint8(i*31 + seed)
	}
	img.Pix[0], img.Pix[1] = uint8(seed), uint8(seed>>8)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	ctx := context.Background()
	sha := job.ContentHash(b)
	id := job.NewImageID("t1", sha, "")
	key := job.InputKey("t1", id)
	if err := r.blobs.Put(ctx, key, b, "image/png"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.db.CreateImage(ctx, &job.Image{ID: id, Tenant: "t1", Filename: "x.png", ContentType: "image/png", Size: int64(len(b)), SHA256: sha, Features: job.DefaultFeatures, Status: job.StatusQueued}); err != nil {
		t.Fatal(err)
	}
	if err := r.q.Publish(ctx, job.Job{ImageID: id, Tenant: "t1", BlobKey: key, Filename: "x.png", Features: job.DefaultFeatures, EnqueuedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestConformance(t *testing.T) {
	actuatortest.RunConformanceTests(t, actuatortest.Harness{
		New: func(t *testing.T) autoscale.Actuator {
			return New(newRig(t, &gated{entered: make(chan struct{}), gate: make(chan struct{})}).pool)
		},
	})
}

// Scaling in while every worker holds a job loses nothing: the drained
// workers finish their jobs, no job is delivered twice, and every image ends
// done.
func TestScaleInDuringWorkLosesNoJob(t *testing.T) {
	const jobs, workers = 24, 4
	g := &gated{entered: make(chan struct{}), gate: make(chan struct{})}
	r := newRig(t, g)
	a := New(r.pool)
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = r.submit(t, i)
	}
	ctx := context.Background()
	if err := a.Scale(ctx, workers); err != nil {
		t.Fatal(err)
	}
	// Wait until every worker holds a job, then scale in under them.
	for range workers {
		select {
		case <-g.entered:
		case <-time.After(30 * time.Second):
			t.Fatal("workers did not pick up jobs")
		}
	}
	if err := a.Scale(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if running, _, _ := a.Current(ctx); running != 1 {
		t.Fatalf("running = %d after Scale(1); want 1", running)
	}
	var entered atomic.Int32
	go func() {
		for range g.entered {
			entered.Add(1)
		}
	}()
	close(g.gate)

	ok := actuatortest.Poll(t, 60*time.Second, func() bool { return a.Completed() == jobs })
	if !ok {
		t.Fatalf("Completed() = %d; want %d", a.Completed(), jobs)
	}
	if err := a.Scale(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		img, err := r.db.GetImageByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if img.Status != job.StatusDone || img.Attempts != 1 {
			t.Errorf("image %s: %s after %d attempts; want done after 1", id, img.Status, img.Attempts)
		}
	}
	d, err := r.q.Depth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Backlog() != 0 {
		t.Errorf("backlog = %d after the drain; want 0", d.Backlog())
	}
	if got := int(entered.Load()) + workers; got != jobs {
		t.Errorf("analyzer ran %d times; want %d (one per job)", got, jobs)
	}
}
