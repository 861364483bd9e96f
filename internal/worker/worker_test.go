package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/nats-io/nats.go"
	"image"
	"image/color"
	"image/png"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/blobstore"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/natsembed"
	"github.com/glimpse-oss/glimpse/internal/queue"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// rig is a worker's real surroundings: embedded JetStream, SQLite and blobs.
type rig struct {
	nc    *nats.Conn
	q     *queue.Queue
	db    *store.DB
	blobs *blobstore.Store
}

func newRig(t *testing.T, qcfg queue.Config) *rig {
	t.Helper()
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
	q, err := queue.Open(ctx, nc, qcfg)
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
	return &rig{nc: nc, q: q, db: db, blobs: blobs}
}

// submit stores an image the way the API does and queues its job, for
// features (default job.DefaultFeatures).
func (r *rig) submit(t *testing.T, b []byte, features ...job.Feature) string {
	t.Helper()
	if len(features) == 0 {
		features = job.DefaultFeatures
	}
	ctx := context.Background()
	sha := job.ContentHash(b)
	id := job.NewImageID("t1", sha, "")
	key := job.InputKey("t1", id)
	if err := r.blobs.Put(ctx, key, b, "image/png"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.db.CreateImage(ctx, &job.Image{ID: id, Tenant: "t1", Filename: "x.png", ContentType: "image/png", Size: int64(len(b)), SHA256: sha, Features: features, Status: job.StatusQueued}); err != nil {
		t.Fatal(err)
	}
	if err := r.q.Publish(ctx, job.Job{ImageID: id, Tenant: "t1", BlobKey: key, Filename: "x.png", Features: features, EnqueuedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (r *rig) pool(t *testing.T, cfg Config, newPipe func() (Pipeline, error)) *Pool {
	t.Helper()
	p, err := New(cfg, Deps{
		Queue: r.q, Store: r.db, Blobs: r.blobs, NewPipeline: newPipe,
		IsBlobNotFound: func(err error) bool { return errors.Is(err, blobstore.ErrNotFound) },
		Registerer:     prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	return p
}

func (r *rig) waitStatus(t *testing.T, id string, want job.Status) *job.Image {
	t.Helper()
	var img *job.Image
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		var err error
		img, err = r.db.GetImageByID(context.Background(), id)
		if err != nil {
			return err
		}
		if img.Status != want {
			return fmt.Errorf("image %s is %s (%s); want %s", id, img.Status, img.Error, want)
		}
		return nil
	})
	return img
}

// fakeLabels stands in for the ONNX classifier (unit tests only): it calls fn.
type fakeLabels struct {
	fn func(ctx context.Context, img image.Image) ([]job.Label, error)
}

func (f *fakeLabels) Feature() job.Feature { return job.FeatureLabels }
func (f *fakeLabels) MinSide() int         { return 16 }
func (f *fakeLabels) Analyze(ctx context.Context, img *analyzer.Image, res *job.Result) error {
	labels, err := f.fn(ctx, img.Pixels)
	res.Labels = labels
	return err
}

func pipelineOf(a ...analyzer.Analyzer) func() (Pipeline, error) {
	return func() (Pipeline, error) { return analyzer.NewPipeline(0, a...) }
}

func classifierFunc(fn func(ctx context.Context) ([]job.Label, error)) func() (Pipeline, error) {
	return pipelineOf(&fakeLabels{fn: func(ctx context.Context, _ image.Image) ([]job.Label, error) { return fn(ctx) }})
}

var catLabels = []job.Label{{Label: "tabby", Score: 0.7}, {Label: "tiger cat", Score: 0.2}}

func testPNG(t *testing.T, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 32, 24))
	for i := range img.Pix {
		img.Pix[i] = uint8(i*7 + seed)
	}
	img.Set(0, 0, color.RGBA{uint8(seed), 1, 2, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fastConfig() Config {
	c := NewDefaultConfig()
	c.FetchWait = 200 * time.Millisecond
	c.RetryDelay = 10 * time.Millisecond
	c.Heartbeat = 100 * time.Millisecond
	return c
}

func TestProcessesJob(t *testing.T) {
	r := newRig(t, queue.Config{})
	id := r.submit(t, testPNG(t, 1))
	progress := make(chan job.Outcome, 4)
	stop, err := r.q.SubscribeProgress(func(o job.Outcome) { progress <- o })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	p := r.pool(t, fastConfig(), classifierFunc(func(context.Context) ([]job.Label, error) { return catLabels, nil }))
	if err := p.SetSize(2); err != nil {
		t.Fatal(err)
	}
	img := r.waitStatus(t, id, job.StatusDone)
	if img.Result == nil || len(img.Result.Labels) != 2 || img.Result.Labels[0].Label != "tabby" {
		t.Errorf("result = %+v; want the classifier's labels", img.Result)
	}
	if img.Result.Width != 32 || img.Result.Height != 24 {
		t.Errorf("result size = %dx%d; want 32x24", img.Result.Width, img.Result.Height)
	}
	if img.Attempts != 1 {
		t.Errorf("attempts = %d; want 1", img.Attempts)
	}
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := p.Completed(); n != 1 {
			return fmt.Errorf("Completed() = %d; want 1", n)
		}
		return nil
	})
	doc, err := r.blobs.Get(context.Background(), job.ResultKey(id))
	if err != nil || !bytes.Contains(doc, []byte(`"tabby"`)) || !bytes.Contains(doc, []byte(`"filename":"x.png"`)) {
		t.Errorf("result blob = %s, %v; want the labels and the filename", doc, err)
	}
	// The worker announced that it started on the image.
	select {
	case o := <-progress:
		if o.ImageID != id || o.Status != job.StatusProcessing {
			t.Errorf("progress = %+v; want %s processing", o, id)
		}
	case <-time.After(10 * time.Second):
		t.Error("the worker announced no progress")
	}
}

// A corrupt image fails at once with a reason; it is not retried.
func TestCorruptImageFailsOnce(t *testing.T) {
	r := newRig(t, queue.Config{})
	good := testPNG(t, 2)
	id := r.submit(t, good[:len(good)/2])
	var calls atomic.Int32
	p := r.pool(t, fastConfig(), classifierFunc(func(context.Context) ([]job.Label, error) { calls.Add(1); return catLabels, nil }))
	p.SetSize(1)
	img := r.waitStatus(t, id, job.StatusFailed)
	if img.Error == "" || img.Attempts != 1 {
		t.Errorf("failed image = attempts %d, error %q; want 1 attempt and a reason", img.Attempts, img.Error)
	}
	if calls.Load() != 0 {
		t.Errorf("classifier ran %d times on a corrupt image; want 0", calls.Load())
	}
}

// poisonLabels panics on images whose top-left pixel red is 3.
func poisonLabels(calls *atomic.Int32) *fakeLabels {
	return &fakeLabels{fn: func(_ context.Context, img image.Image) ([]job.Label, error) {
		r, _, _, _ := img.At(img.Bounds().Min.X, img.Bounds().Min.Y).RGBA()
		if r>>8 == 3 {
			calls.Add(1)
			panic("analyzer crashed on this image")
		}
		return catLabels, nil
	}}
}

// A poison image whose analyzer panics every time is retried up to
// MaxDeliver, then dead-lettered and marked failed; the process survives and
// other jobs keep flowing.
func TestPoisonImageIsDeadLettered(t *testing.T) {
	r := newRig(t, queue.Config{MaxDeliver: 3})
	poison := r.submit(t, testPNG(t, 3))
	healthy := r.submit(t, testPNG(t, 4))
	var calls atomic.Int32
	p := r.pool(t, fastConfig(), pipelineOf(poisonLabels(&calls)))
	p.SetSize(1)

	if img := r.waitStatus(t, healthy, job.StatusDone); img.Attempts != 1 {
		t.Errorf("healthy image attempts = %d; want 1", img.Attempts)
	}
	img := r.waitStatus(t, poison, job.StatusFailed)
	if got := calls.Load(); got != 3 {
		t.Errorf("poison analysed %d times; want MaxDeliver = 3", got)
	}
	if img.Error == "" {
		t.Error("poison image failed without a reason")
	}
	depth, err := r.q.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if depth.Backlog() != 0 {
		t.Errorf("jobs backlog = %+v; want empty after dead-lettering", depth)
	}
}

// A worker that took a job and died (never acked) does not lose it: the job
// is redelivered after AckWait and ends with exactly one result.
func TestCrashedWorkerJobIsRedelivered(t *testing.T) {
	r := newRig(t, queue.Config{AckWait: 500 * time.Millisecond})
	id := r.submit(t, testPNG(t, 5))
	ctx := context.Background()
	// The "crashed" worker: takes the job, marks it processing, vanishes.
	ds, err := r.q.Fetch(ctx, 1, 5*time.Second)
	if err != nil || len(ds) != 1 {
		t.Fatalf("fetch = %d deliveries, %v; want 1", len(ds), err)
	}
	if ok, err := r.db.MarkProcessing(ctx, id, ds[0].Attempt, nil); !ok || err != nil {
		t.Fatalf("mark processing = %v, %v", ok, err)
	}
	var calls atomic.Int32
	p := r.pool(t, fastConfig(), classifierFunc(func(context.Context) ([]job.Label, error) { calls.Add(1); return catLabels, nil }))
	p.SetSize(1)
	img := r.waitStatus(t, id, job.StatusDone)
	if img.Attempts != 2 || calls.Load() != 1 {
		t.Errorf("attempts %d, classifier calls %d; want the second delivery to do it once", img.Attempts, calls.Load())
	}
	// The stale first delivery cannot overwrite or duplicate the result.
	if ok, err := r.db.SaveResult(ctx, id, 1, nil, &job.Result{}); ok || err != nil {
		t.Errorf("stale SaveResult = %v, %v; want refused", ok, err)
	}
}

// A job left in the queue from before its image was asked for more
// features is obsolete: its delivery is dropped without touching the image,
// which waits, queued, for the job of the wider list.
func TestObsoleteJobIsDropped(t *testing.T) {
	r := newRig(t, queue.Config{})
	ctx := context.Background()
	id := r.submit(t, testPNG(t, 9))
	var calls atomic.Int32
	p := r.pool(t, fastConfig(), classifierFunc(func(context.Context) ([]job.Label, error) { calls.Add(1); return catLabels, nil }))
	p.SetSize(1)
	done := r.waitStatus(t, id, job.StatusDone)
	wider := []job.Feature{job.FeatureEXIF, job.FeatureLabels}
	if _, ok, err := r.db.Reopen(ctx, "t1", id, done.Features, wider); err != nil || !ok {
		t.Fatalf("Reopen = %v, %v", ok, err)
	}
	// The old job again, as a lost ack or a re-publish would leave it.
	old := job.Job{ImageID: id, Tenant: "t1", BlobKey: job.InputKey("t1", id), Features: job.DefaultFeatures, EnqueuedAt: time.Now()}
	if err := r.q.Republish(ctx, old); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if has, err := r.q.Has(ctx, id); err != nil || has {
			return fmt.Errorf("the old job is still in the queue (%v)", err)
		}
		return nil
	})
	img, err := r.db.GetImageByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != job.StatusQueued || !slices.Equal(img.Features, wider) || img.Attempts != done.Attempts || calls.Load() != 1 {
		t.Errorf("after the obsolete delivery: %s for %v at attempt %d, classifier calls %d; want it left queued for %v at %d, one call",
			img.Status, img.Features, img.Attempts, calls.Load(), wider, done.Attempts)
	}
}

// thumbWriter stands in for the thumbnail analyzer: it stores a thumbnail,
// then calls during, as if the user acted while the job ran.
type thumbWriter struct {
	blobs  Blobs
	during func()
}

func (w *thumbWriter) Feature() job.Feature { return job.FeatureThumbnail }
func (w *thumbWriter) MinSide() int         { return 16 }
func (w *thumbWriter) Analyze(ctx context.Context, img *analyzer.Image, res *job.Result) error {
	key := job.ThumbnailKey(img.ID)
	if err := w.blobs.Put(ctx, key, []byte("JPEG"), "image/jpeg"); err != nil {
		return err
	}
	res.Thumbnail = &job.Thumbnail{Key: key, Width: 4, Height: 3, ContentType: "image/jpeg"}
	w.during()
	return nil
}

// An image deleted while its job runs leaves nothing behind: the thumbnail
// the analysis stored after the delete is removed when the commit finds
// the image gone.
func TestDeletedDuringAnalysisLeavesNoThumbnail(t *testing.T) {
	r := newRig(t, queue.Config{})
	ctx := context.Background()
	id := r.submit(t, testPNG(t, 11), job.FeatureThumbnail)
	tw := &thumbWriter{blobs: r.blobs, during: func() {
		if err := r.db.DeleteImage(ctx, "t1", id); err != nil {
			t.Errorf("delete during the analysis: %v", err)
		}
	}}
	p := r.pool(t, fastConfig(), pipelineOf(tw))
	p.SetSize(1)
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if has, err := r.q.Has(ctx, id); err != nil || has {
			return fmt.Errorf("the job is still in the queue (%v)", err)
		}
		return nil
	})
	if ok, err := r.blobs.Exists(ctx, job.ThumbnailKey(id)); err != nil || ok {
		t.Errorf("thumbnail of the deleted image exists = %v, %v; want it removed", ok, err)
	}
}

// Scaling in never kills work: a worker told to stop finishes its job.
func TestScaleInDrains(t *testing.T) {
	r := newRig(t, queue.Config{})
	id := r.submit(t, testPNG(t, 6))
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	p := r.pool(t, fastConfig(), classifierFunc(func(ctx context.Context) ([]job.Label, error) {
		once.Do(func() { close(started) })
		select {
		case <-release:
			return catLabels, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}))
	p.SetSize(1)
	<-started
	if err := p.SetSize(0); err != nil {
		t.Fatal(err)
	}
	if p.Size() != 0 {
		t.Fatalf("size = %d; want 0", p.Size())
	}
	close(release)
	img := r.waitStatus(t, id, job.StatusDone)
	if img.Attempts != 1 {
		t.Errorf("attempts = %d; want the draining worker to finish it in 1", img.Attempts)
	}
}

// Shutdown past the drain deadline releases the held job for redelivery
// instead of losing it.
func TestStopReleasesJob(t *testing.T) {
	r := newRig(t, queue.Config{})
	id := r.submit(t, testPNG(t, 7))
	started := make(chan struct{})
	var once sync.Once
	p := r.pool(t, fastConfig(), classifierFunc(func(ctx context.Context) ([]job.Label, error) {
		once.Do(func() { close(started) })
		<-ctx.Done()
		return nil, ctx.Err()
	}))
	p.SetSize(1)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v; want the deadline to pass", err)
	}
	if img := r.waitStatus(t, id, job.StatusQueued); img.Status != job.StatusQueued {
		t.Fatalf("status = %s", img.Status)
	}
	// A new pool picks the released job up and finishes it.
	p2 := r.pool(t, fastConfig(), classifierFunc(func(context.Context) ([]job.Label, error) { return catLabels, nil }))
	p2.SetSize(1)
	r.waitStatus(t, id, job.StatusDone)
}

func checkFor(t *testing.T, wait, sleep time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %v: %v", wait, err)
		}
		time.Sleep(sleep)
	}
}

// An analyzer that errors leaves an error entry for its feature; the job is
// done and the other features still report.
func TestFailingAnalyzerDoesNotFailJob(t *testing.T) {
	r := newRig(t, queue.Config{})
	id := r.submit(t, testPNG(t, 8), job.FeatureLabels, job.FeatureColors)
	broken := &fakeFeature{feature: job.FeatureColors, err: errors.New("colour space exploded")}
	p := r.pool(t, fastConfig(), pipelineOf(&fakeLabels{fn: func(context.Context, image.Image) ([]job.Label, error) { return catLabels, nil }}, broken))
	p.SetSize(1)
	img := r.waitStatus(t, id, job.StatusDone)
	if len(img.Result.Labels) == 0 || img.Result.Errors[job.FeatureColors] != "colour space exploded" {
		t.Errorf("result = %+v; want labels and an error entry for colors", img.Result)
	}
}

type fakeFeature struct {
	feature job.Feature
	err     error
}

func (f *fakeFeature) Feature() job.Feature { return f.feature }
func (f *fakeFeature) MinSide() int         { return analyzer.NoPixels }
func (f *fakeFeature) Analyze(context.Context, *analyzer.Image, *job.Result) error {
	return f.err
}

// A worker that resumes after its job was taken over (it was paused past
// the ack deadline: no heartbeats) cannot overwrite or duplicate the result
// of the worker that took over: not the row, not the result object, not
// the outcome.
func TestLateWorkerCannotOverwriteResult(t *testing.T) {
	r := newRig(t, queue.Config{AckWait: 500 * time.Millisecond})
	id := r.submit(t, testPNG(t, 9))
	ctx := context.Background()
	outcomes := map[string]int{} // finish time → count
	var mu sync.Mutex
	stop, err := r.q.SubscribeOutcomes(func(o job.Outcome) {
		mu.Lock()
		outcomes[o.FinishedAt.String()+" "+string(o.Status)]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	// The late worker: no heartbeats, analysis held until released.
	late := fastConfig()
	late.Heartbeat = time.Hour
	release := make(chan struct{})
	p1 := r.pool(t, late, classifierFunc(func(context.Context) ([]job.Label, error) {
		<-release
		return []job.Label{{Label: "late", Score: 1}}, nil
	}))
	p1.SetSize(1)
	r.waitStatus(t, id, job.StatusProcessing)

	// The job's ack deadline passes; another worker takes it and finishes.
	p2 := r.pool(t, fastConfig(), classifierFunc(func(context.Context) ([]job.Label, error) { return catLabels, nil }))
	p2.SetSize(1)
	won := r.waitStatus(t, id, job.StatusDone)
	if won.Attempts != 2 {
		t.Fatalf("attempts = %d; want the second delivery to win", won.Attempts)
	}
	var blob []byte
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() (err error) {
		blob, err = r.blobs.Get(ctx, job.ResultKey(id))
		return err
	})

	// The late worker resumes and finishes its analysis.
	close(release)
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if p1.Completed() != 1 {
			return fmt.Errorf("the late worker has not settled its delivery")
		}
		return nil
	})
	after, err := r.db.GetImageByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if after.Attempts != 2 || !after.FinishedAt.Equal(*won.FinishedAt) || after.Result.Labels[0].Label != "tabby" {
		t.Errorf("row after the late worker = attempts %d, finished %v, labels %+v; want the winner's (2, %v, tabby)",
			after.Attempts, after.FinishedAt, after.Result.Labels, won.FinishedAt)
	}
	if got, err := r.blobs.Get(ctx, job.ResultKey(id)); err != nil || !bytes.Equal(got, blob) {
		t.Errorf("result object after the late worker = %s (%v); want the winner's %s", got, err, blob)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(outcomes) != 1 {
		t.Errorf("distinct outcomes published = %v; want one (a re-send carries the same finish time)", outcomes)
	}
}

// A crash after the result committed but before the result object was
// written (or the outcome published, or the job acknowledged) is repaired
// by the redelivery: it writes the object from the stored row and
// publishes the outcome, without analysing again.
func TestRedeliveryRepairsCommittedResult(t *testing.T) {
	r := newRig(t, queue.Config{AckWait: 500 * time.Millisecond})
	id := r.submit(t, testPNG(t, 10))
	ctx := context.Background()
	ds, err := r.q.Fetch(ctx, 1, 5*time.Second)
	if err != nil || len(ds) != 1 {
		t.Fatalf("fetch = %d deliveries, %v; want 1", len(ds), err)
	}
	if ok, err := r.db.MarkProcessing(ctx, id, ds[0].Attempt, nil); !ok || err != nil {
		t.Fatalf("mark processing = %v, %v", ok, err)
	}
	if ok, err := r.db.SaveResult(ctx, id, ds[0].Attempt, nil, &job.Result{Width: 32, Height: 24, Labels: catLabels}); !ok || err != nil {
		t.Fatalf("save result = %v, %v", ok, err)
	}
	// … and the worker died here.
	var calls atomic.Int32
	p := r.pool(t, fastConfig(), classifierFunc(func(context.Context) ([]job.Label, error) { calls.Add(1); return catLabels, nil }))
	p.SetSize(1)
	var doc []byte
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() (err error) {
		doc, err = r.blobs.Get(ctx, job.ResultKey(id))
		return err
	})
	row, err := r.db.GetImageByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte(`"tabby"`)) || !bytes.Contains(doc, []byte(row.FinishedAt.UTC().Format(time.RFC3339Nano))) {
		t.Errorf("repaired result object = %s; want the stored result and finish time %v", doc, row.FinishedAt)
	}
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		d, err := r.q.Depth(ctx)
		if err != nil {
			return err
		}
		if d.Backlog() != 0 {
			return fmt.Errorf("backlog %+v", d)
		}
		return nil
	})
	js, err := jetstream.New(r.nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, queue.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetLastMsgForSubject(ctx, queue.ResultsSubject+"."+id); err != nil {
		t.Errorf("no outcome in the results stream after the repair: %v", err)
	}
	if calls.Load() != 0 {
		t.Errorf("classifier ran %d times; want 0 (the result was committed)", calls.Load())
	}
}

// errRefused is what a dependency that is down answers.
var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

// flakyStore and flakyBlobs fail every call while down is set.
type flakyStore struct {
	Store
	down  atomic.Bool
	fails atomic.Int32
}

func (s *flakyStore) check() error {
	if s.down.Load() {
		s.fails.Add(1)
		return errRefused
	}
	return nil
}
func (s *flakyStore) GetImageByID(ctx context.Context, id string) (*job.Image, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.Store.GetImageByID(ctx, id)
}
func (s *flakyStore) MarkProcessing(ctx context.Context, id string, attempt int, features []job.Feature) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	return s.Store.MarkProcessing(ctx, id, attempt, features)
}
func (s *flakyStore) SaveResult(ctx context.Context, id string, attempt int, features []job.Feature, res *job.Result) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	return s.Store.SaveResult(ctx, id, attempt, features, res)
}

type flakyBlobs struct {
	Blobs
	down  atomic.Bool
	fails atomic.Int32
}

func (b *flakyBlobs) Get(ctx context.Context, key string) ([]byte, error) {
	if b.down.Load() {
		b.fails.Add(1)
		return nil, errRefused
	}
	return b.Blobs.Get(ctx, key)
}
func (b *flakyBlobs) Put(ctx context.Context, key string, v []byte, ct string) error {
	if b.down.Load() {
		b.fails.Add(1)
		return errRefused
	}
	return b.Blobs.Put(ctx, key, v, ct)
}

// An outage of the store or the blob store pauses the work instead of
// spending the job's attempts: with MaxDeliver 2, an outage that outlasts
// many retries still ends with the job done at its first attempt, and
// nothing dead-lettered.
func TestOutageSpendsNoAttempts(t *testing.T) {
	for _, tt := range []struct {
		name string
		down func(s *flakyStore, b *flakyBlobs) (*atomic.Bool, *atomic.Int32)
	}{
		{"store", func(s *flakyStore, _ *flakyBlobs) (*atomic.Bool, *atomic.Int32) { return &s.down, &s.fails }},
		{"blobs", func(_ *flakyStore, b *flakyBlobs) (*atomic.Bool, *atomic.Int32) { return &b.down, &b.fails }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, queue.Config{MaxDeliver: 2, AckWait: time.Second})
			id := r.submit(t, testPNG(t, 11))
			fs, fb := &flakyStore{Store: r.db}, &flakyBlobs{Blobs: r.blobs}
			down, fails := tt.down(fs, fb)
			down.Store(true)
			cfg := fastConfig()
			cfg.Heartbeat = 200 * time.Millisecond
			p, err := New(cfg, Deps{
				Queue: r.q, Store: fs, Blobs: fb,
				NewPipeline:    classifierFunc(func(context.Context) ([]job.Label, error) { return catLabels, nil }),
				IsBlobNotFound: func(err error) bool { return errors.Is(err, blobstore.ErrNotFound) },
				Registerer:     prometheus.NewRegistry(),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				p.Stop(ctx)
			})
			p.SetSize(1)
			began := time.Now()
			// Hold the outage for more calls than the job has deliveries,
			// and past its ack deadline.
			checkFor(t, 30*time.Second, 10*time.Millisecond, func() error {
				if n := fails.Load(); n < 8 {
					return fmt.Errorf("%d failed calls so far", n)
				}
				return nil
			})
			down.Store(false)
			t.Logf("%s down for %v (%d failed calls)", tt.name, time.Since(began).Round(time.Millisecond), fails.Load())
			img := r.waitStatus(t, id, job.StatusDone)
			if img.Attempts != 1 {
				t.Errorf("attempts = %d; want 1 (an outage is not the job's fault)", img.Attempts)
			}
			// The result object follows the commit that made the row done.
			checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
				_, err := r.blobs.Get(context.Background(), job.ResultKey(id))
				return err
			})
		})
	}
}

// A poison image goes to the DLQ after MaxDeliver attempts while the other
// jobs keep their pace: the same healthy jobs are run with and without
// poison images in the queue, and the throughputs are reported (not
// asserted: the machine's load is not ours to control).
func TestPoisonKeepsPace(t *testing.T) {
	const healthy, poisons = 300, 5
	// work stands in for an analysis: a fixed amount of CPU per image.
	work := func() {
		var sum uint64
		for i := range 400_000 {
			sum += uint64(i) * 2654435761
		}
		_ = sum
	}
	run := func(t *testing.T, withPoison bool) (time.Duration, int32) {
		r := newRig(t, queue.Config{MaxDeliver: 3})
		var poisonIDs []string
		if withPoison {
			for i := range poisons {
				poisonIDs = append(poisonIDs, r.submit(t, suffixed(testPNG(t, 3), i)))
			}
		}
		var ids []string
		want := map[string]bool{}
		for i := range healthy {
			id := r.submit(t, suffixed(testPNG(t, 4), i))
			ids = append(ids, id)
			want[id] = true
		}
		var mu sync.Mutex
		allDone := make(chan time.Time, 1)
		stop, err := r.q.SubscribeOutcomes(func(o job.Outcome) {
			mu.Lock()
			defer mu.Unlock()
			if o.Status == job.StatusDone && want[o.ImageID] {
				delete(want, o.ImageID)
				if len(want) == 0 {
					allDone <- time.Now()
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		var crashes atomic.Int32
		p := r.pool(t, fastConfig(), pipelineOf(&fakeLabels{fn: func(_ context.Context, img image.Image) ([]job.Label, error) {
			work()
			if r, _, _, _ := img.At(img.Bounds().Min.X, img.Bounds().Min.Y).RGBA(); r>>8 == 3 {
				crashes.Add(1)
				panic("analyzer crashed on this image")
			}
			return catLabels, nil
		}}))
		start := time.Now()
		p.SetSize(2)
		var took time.Duration
		select {
		case end := <-allDone:
			took = end.Sub(start)
		case <-time.After(time.Minute):
			t.Fatalf("healthy jobs not all done after a minute")
		}
		for _, id := range ids {
			r.waitStatus(t, id, job.StatusDone)
		}
		for _, id := range poisonIDs {
			if img := r.waitStatus(t, id, job.StatusFailed); img.Error == "" {
				t.Errorf("poison %s failed without a reason", id)
			}
		}
		if withPoison {
			js, err := jetstream.New(r.nc)
			if err != nil {
				t.Fatal(err)
			}
			st, err := js.Stream(context.Background(), queue.DLQStream)
			if err != nil {
				t.Fatal(err)
			}
			checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
				info, err := st.Info(context.Background())
				if err != nil {
					return err
				}
				if info.State.Msgs != poisons {
					return fmt.Errorf("DLQ holds %d messages; want %d", info.State.Msgs, poisons)
				}
				return nil
			})
		}
		return took, crashes.Load()
	}
	clean, _ := run(t, false)
	poisoned, crashes := run(t, true)
	rate := func(d time.Duration) float64 { return healthy / d.Seconds() }
	t.Logf("%d healthy jobs on 2 workers: %.0f jobs/s alone, %.0f jobs/s with %d poison images in the queue (%d analyzer crashes): ratio %.2f",
		healthy, rate(clean), rate(poisoned), poisons, crashes, rate(poisoned)/rate(clean))
	if crashes != poisons*3 {
		t.Errorf("poison analysed %d times; want MaxDeliver × %d = %d", crashes, poisons, poisons*3)
	}
}

// suffixed makes distinct bytes (so a distinct image id) that decode to the
// same picture: PNG decoders stop at IEND and ignore what follows.
func suffixed(png []byte, i int) []byte {
	return fmt.Appendf(png[:len(png):len(png)], "%08d", i)
}
