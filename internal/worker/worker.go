// Package worker turns queued jobs into results: it pulls a job, reads the
// image's bytes, decodes them once, runs the analyzers, writes the result JSON
// and the store row, publishes the outcome and only then acknowledges the job.
//
// A Pool runs any number of workers and can be resized while it runs; a worker
// told to stop finishes the job it holds first, so scaling in never kills work.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/queue"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// Queue is the slice of the job queue a worker needs.
type Queue interface {
	Fetch(ctx context.Context, max int, wait time.Duration) ([]*queue.Delivery, error)
	Publish(ctx context.Context, j job.Job) error
	PublishOutcome(ctx context.Context, o job.Outcome) error
	// PublishProgress announces that a worker started on an image; it
	// is best effort (the store holds the status).
	PublishProgress(tenant, id string) error
	DeadLetter(ctx context.Context, d *queue.Delivery, reason string) error
}

// Store is the slice of the SQL store a worker needs. Every transition names
// the delivery attempt so that a stale worker cannot overwrite newer work.
type Store interface {
	CreateImage(ctx context.Context, img *job.Image) (*job.Image, bool, error)
	GetImageByID(ctx context.Context, id string) (*job.Image, error)
	MarkProcessing(ctx context.Context, id string, attempt int, features []job.Feature) (bool, error)
	SaveResult(ctx context.Context, id string, attempt int, features []job.Feature, res *job.Result) (bool, error)
	MarkFailed(ctx context.Context, id string, attempt int, features []job.Feature, reason string) (bool, error)
	Requeue(ctx context.Context, id string) error
}

// Blobs is the slice of the blob store a worker needs.
type Blobs interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, b []byte, contentType string) error
	Exists(ctx context.Context, key string) (bool, error)
	Delete(ctx context.Context, key string) error
}

// Pipeline runs a job's analyzers over one decoded image. It need not be
// safe for concurrent use: each worker owns one (*analyzer.Pipeline).
type Pipeline interface {
	MinSide(features []job.Feature) int
	Run(ctx context.Context, img *analyzer.Image, features []job.Feature, res *job.Result) error
	Close() error
}

// Config tunes a Pool.
type Config struct {
	Limits imagedata.Limits
	// FetchWait is how long one pull waits for a job before looking again.
	FetchWait time.Duration
	// Heartbeat is how often a worker tells the queue it still holds a job;
	// it must be well under the consumer's AckWait.
	Heartbeat time.Duration
	// JobTimeout bounds one attempt at one job.
	JobTimeout time.Duration
	// RetryDelay is the base of the back-off before a failed attempt is
	// retried, and before a failed call to the store or the blob store is
	// tried again.
	RetryDelay time.Duration
	// OutageWait is how long one attempt keeps retrying a store or blob
	// call that fails (the engine is down, the disk is full) before the
	// attempt gives up and counts as failed. While it waits the job is held
	// by heartbeats, so an outage shorter than this spends no attempts.
	OutageWait time.Duration
	// CallTimeout bounds one call to the store or the blob store.
	CallTimeout time.Duration
	// EventFeatures are the features computed for images that arrive by a
	// storage event (nobody asked through the API); DefaultFeatures if empty.
	EventFeatures []job.Feature
	// PixelBuffers is how many bytes of pixel buffers a worker keeps from
	// one job for the next (imagedata.Buffers), which spares each job the
	// zeroing and page faults of fresh memory; 0 means
	// DefaultPixelBuffers, negative keeps none.
	PixelBuffers int
}

// DefaultPixelBuffers is Config.PixelBuffers' default: a 12 MP image's
// decoded pixels (48 MB) and the working copies of a few smaller ones.
const DefaultPixelBuffers = 64 << 20

// NewDefaultConfig returns the configuration serve uses.
func NewDefaultConfig() Config {
	return Config{
		Limits:      imagedata.DefaultLimits(),
		FetchWait:   2 * time.Second,
		Heartbeat:   5 * time.Second,
		JobTimeout:  2 * time.Minute,
		RetryDelay:  time.Second,
		OutageWait:  5 * time.Minute,
		CallTimeout: 30 * time.Second,
	}
}

// Deps are what a Pool works with.
type Deps struct {
	Queue Queue
	Store Store
	Blobs Blobs
	// NewPipeline makes one analyzer pipeline per worker.
	NewPipeline func() (Pipeline, error)
	// IsBlobNotFound reports whether err means a blob does not exist.
	IsBlobNotFound func(error) bool
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
}

// Pool runs workers. Its size can change while it runs.
type Pool struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *metrics

	mu      sync.Mutex
	workers []*handle
	nextID  int
	wg      sync.WaitGroup
	ctx     context.Context // the pool's lifetime; cancelled by Stop
	cancel  context.CancelFunc
	stopped bool

	completed atomic.Uint64 // deliveries settled for good (see Completed)
}

type handle struct {
	id   int
	stop chan struct{} // closed: finish the current job, take no more
	done chan struct{} // closed when the worker has exited
}

// New makes a pool with no workers; call SetSize to start some.
func New(cfg Config, deps Deps) (*Pool, error) {
	if deps.Queue == nil || deps.Store == nil || deps.Blobs == nil || deps.NewPipeline == nil {
		return nil, errors.New("worker: queue, store, blobs and pipeline are required")
	}
	def := NewDefaultConfig()
	if cfg.FetchWait <= 0 {
		cfg.FetchWait = def.FetchWait
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = def.Heartbeat
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = def.JobTimeout
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = def.RetryDelay
	}
	if cfg.OutageWait <= 0 {
		cfg.OutageWait = def.OutageWait
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = def.CallTimeout
	}
	if len(cfg.EventFeatures) == 0 {
		cfg.EventFeatures = job.DefaultFeatures
	}
	if cfg.PixelBuffers == 0 {
		cfg.PixelBuffers = DefaultPixelBuffers
	}
	if deps.IsBlobNotFound == nil {
		deps.IsBlobNotFound = func(error) bool { return false }
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{cfg: cfg, deps: deps, log: deps.Logger, m: m, ctx: ctx, cancel: cancel}, nil
}

// Size is the number of workers running or starting (not those draining).
func (p *Pool) Size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.workers)
}

// Completed counts the deliveries this pool settled for good — done, failed,
// dead-lettered or dropped as stale — that is, jobs that left the queue's
// backlog. Retried and released jobs go back to the queue and do not count.
// The autoscaler measures service and arrival rates from it.
func (p *Pool) Completed() uint64 { return p.completed.Load() }

// SetSize starts or drains workers until n are running. Draining workers
// finish the job they hold and exit in the background. It returns an error
// when a new worker's classifier cannot be made (the workers made so far keep
// running).
func (p *Pool) SetSize(n int) error {
	if n < 0 {
		n = 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return errors.New("worker: pool stopped")
	}
	for len(p.workers) > n {
		last := p.workers[len(p.workers)-1]
		p.workers = p.workers[:len(p.workers)-1]
		close(last.stop)
	}
	for len(p.workers) < n {
		pipe, err := p.deps.NewPipeline()
		if err != nil {
			p.m.workers.Set(float64(len(p.workers)))
			return fmt.Errorf("worker: start worker: %w", err)
		}
		p.nextID++
		h := &handle{id: p.nextID, stop: make(chan struct{}), done: make(chan struct{})}
		p.workers = append(p.workers, h)
		p.wg.Add(1)
		go p.run(h, pipe)
	}
	p.m.workers.Set(float64(len(p.workers)))
	return nil
}

// Stop drains every worker: each finishes (or, once ctx ends, releases) the
// job it holds, then exits. Stop returns when all have exited or ctx ends.
func (p *Pool) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		for _, h := range p.workers {
			close(h.stop)
		}
		p.workers = nil
		p.m.workers.Set(0)
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		p.cancel()
		return nil
	case <-ctx.Done():
		// Abandon in-flight work: cancelling the pool context makes each
		// worker release (nak) its job so another worker redelivers it.
		p.cancel()
		<-done
		return ctx.Err()
	}
}

// run is one worker's loop.
func (p *Pool) run(h *handle, pipe Pipeline) {
	defer p.wg.Done()
	defer close(h.done)
	defer pipe.Close()
	log := p.log.With("worker", h.id)
	log.Debug("worker started")
	defer log.Debug("worker stopped")

	// fetchCtx ends when the worker is told to stop, cutting a pending pull short.
	fetchCtx, cancelFetch := context.WithCancel(p.ctx)
	defer cancelFetch()
	go func() {
		select {
		case <-h.stop:
			cancelFetch()
		case <-fetchCtx.Done():
		}
	}()

	// The worker analyzes one job while the job before it commits: the
	// commit waits on the disk (the store's and the blob store's flushes,
	// the outcome's publish), and a worker that waited with it would leave
	// its core idle for that long. The channel is unbuffered, so a worker
	// holds at most two jobs: one being analyzed, one being committed.
	// Returning waits for the commit in flight, so a worker told to stop
	// still finishes everything it holds.
	var bufs *imagedata.Buffers
	if p.cfg.PixelBuffers > 0 {
		bufs = imagedata.NewBuffers(p.cfg.PixelBuffers)
	}
	commits := make(chan *analyzed)
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		for a := range commits {
			p.commitAndSettle(a)
		}
	}()
	defer func() {
		close(commits)
		<-committed
	}()

	for {
		select {
		case <-h.stop:
			return
		case <-p.ctx.Done():
			return
		default:
		}
		ds, err := p.deps.Queue.Fetch(fetchCtx, 1, p.cfg.FetchWait)
		if err != nil {
			if fetchCtx.Err() != nil {
				return
			}
			log.Warn("fetch failed", "err", err)
			p.m.fetchErrors.Inc()
			select {
			case <-time.After(p.cfg.RetryDelay):
			case <-fetchCtx.Done():
				return
			}
			continue
		}
		for _, d := range ds {
			p.handle(log, pipe, bufs, d, commits)
		}
	}
}

// errPermanent marks failures that no retry can mend (the bytes are not a
// usable image): the image fails at once with the error's message.
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

func permanent(format string, args ...any) error {
	return &permanentError{msg: fmt.Sprintf(format, args...)}
}

// staleError means this delivery does not own the image (any more): the
// store refused its transition. Row is the image as the store holds it.
// When the row is terminal the delivery is a leftover — a redelivery after
// the result committed, or a worker that was paused past its ack deadline —
// and it completes the committed outcome's effects and is acknowledged.
// When another attempt is working on the image, the delivery is left to
// that attempt: acknowledging it would take the job from the queue under the
// feet of its owner. When the row lists other features than the job, the
// image was asked for more since the job was published (a job of its
// earlier list, left in the queue): the delivery is obsolete, and dropped.
type staleError struct {
	row      *job.Image
	obsolete bool
}

func (e *staleError) Error() string {
	return fmt.Sprintf("worker: stale delivery (image is %s at attempt %d)", e.row.Status, e.row.Attempts)
}

// errGone means the image was deleted before it was processed.
var errGone = errors.New("worker: image deleted")

// analyzed is a job whose analysis succeeded, on its way to its commit.
type analyzed struct {
	log      *slog.Logger
	d        *queue.Delivery
	res      *job.Result
	start    time.Time
	stopBeat func()
}

// handle analyzes one delivery and hands it to commits, the worker's
// committer; a delivery that fails before that is settled here.
func (p *Pool) handle(log *slog.Logger, pipe Pipeline, bufs *imagedata.Buffers, d *queue.Delivery, commits chan<- *analyzed) {
	if d.Events != nil {
		p.ingest(log, d)
		return
	}
	log = log.With("image", d.Job.ImageID, "attempt", d.Attempt)
	start := time.Now()
	p.m.inflight.Inc()

	// The job's context is the pool's: a draining worker finishes its job;
	// it ends only with the pool (Stop's deadline). The analysis itself is
	// bounded by JobTimeout inside prepare. The heartbeat runs until the
	// job is settled, through its commit.
	stopBeat := p.heartbeat(p.ctx, d)
	res, err := p.prepare(p.ctx, log, pipe, bufs, d)
	if err != nil {
		stopBeat()
		p.settle(log, d, start, nil, err)
		p.m.inflight.Dec()
		return
	}
	t := time.Now()
	commits <- &analyzed{log: log, d: d, res: res, start: start, stopBeat: stopBeat}
	p.m.stage.WithLabelValues("handoff").Observe(time.Since(t).Seconds())
}

// commitAndSettle commits an analyzed job's result and settles its delivery.
func (p *Pool) commitAndSettle(a *analyzed) {
	t := time.Now()
	row, err := p.commit(p.ctx, a.log, a.d, a.res)
	a.stopBeat()
	p.settle(a.log, a.d, a.start, row, err)
	p.m.stage.WithLabelValues("commit").Observe(time.Since(t).Seconds())
	p.m.inflight.Dec()
}

// settle ends a delivery after its attempt: err is nil when the image's
// result committed as row, else why the attempt stopped.
func (p *Pool) settle(log *slog.Logger, d *queue.Delivery, start time.Time, row *job.Image, err error) {
	j := d.Job
	// Settle with a fresh context so that a cancelled job can still be
	// released or recorded.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	var (
		perm  *permanentError
		stale *staleError
	)
	switch {
	case errors.As(err, &stale) && stale.obsolete:
		log.Info("obsolete delivery: the image was asked for other features since; dropping it",
			"job_features", job.FormatFeatures(j.Features), "image_features", job.FormatFeatures(stale.row.Features))
		p.completed.Add(1)
		p.ack(sctx, log, d)
		p.m.jobs.WithLabelValues("stale").Inc()
	case err == nil:
		p.settleTerminal(sctx, log, d, row)
		p.m.jobs.WithLabelValues("done").Inc()
		p.m.duration.Observe(time.Since(start).Seconds())
		if !j.EnqueuedAt.IsZero() {
			p.m.latency.Observe(time.Since(j.EnqueuedAt).Seconds())
		}
		log.Debug("job done", "took", time.Since(start))
	case errors.As(err, &stale) && stale.row.Status.Terminal():
		log.Info("stale delivery of a finished image: completing its effects", "status", stale.row.Status)
		p.settleTerminal(sctx, log, d, stale.row)
		p.m.jobs.WithLabelValues("stale").Inc()
	case errors.As(err, &stale):
		log.Info("another attempt owns the image; leaving the job to it", "owner_attempt", stale.row.Attempts)
		p.m.jobs.WithLabelValues("stale").Inc()
	case errors.Is(err, errGone):
		log.Info("image was deleted; dropping its job")
		p.completed.Add(1)
		p.ack(sctx, log, d)
		p.m.jobs.WithLabelValues("stale").Inc()
	case errors.As(err, &perm):
		p.fail(sctx, log, d, perm.msg)
		p.m.jobs.WithLabelValues("failed").Inc()
	case p.ctx.Err() != nil:
		// The pool is shutting down past its drain deadline: release the
		// job so that it is redelivered to a worker that is staying.
		log.Info("releasing job on shutdown")
		if err := p.deps.Store.Requeue(sctx, j.ImageID); err != nil {
			log.Warn("requeue failed", "err", err)
		}
		if err := d.Nak(0); err != nil {
			log.Warn("nak failed", "err", err)
		}
		p.m.jobs.WithLabelValues("released").Inc()
	case d.Last():
		p.completed.Add(1)
		reason := fmt.Sprintf("gave up after %d attempts: %v", d.Attempt, err)
		log.Warn("job exhausted its retries", "err", err)
		if dlqErr := p.deps.Queue.DeadLetter(sctx, d, reason); dlqErr != nil {
			log.Error("dead-letter failed; the advisory handler will retry", "err", dlqErr)
		}
		// The job is terminated; the failure is published, not settled.
		if row := p.markFailed(log, d, reason); row != nil && row.Status.Terminal() {
			if err := p.deps.Queue.PublishOutcome(sctx, outcomeOf(j.Tenant, row)); err != nil {
				log.Warn("publish outcome failed", "err", err)
			}
		}
		p.m.jobs.WithLabelValues("dead").Inc()
	default:
		delay := p.cfg.RetryDelay << min(d.Attempt-1, 6)
		log.Warn("job attempt failed; will retry", "err", err, "retry_in", delay)
		if err := d.Nak(delay); err != nil {
			log.Warn("nak failed", "err", err)
		}
		p.m.jobs.WithLabelValues("retried").Inc()
	}
}

// settleTerminal publishes the outcome of a finished image, as its row
// records it, and acknowledges the delivery. The outcome carries the row's
// finish time, so a re-sent outcome is the same message (the results stream
// deduplicates it, and readers can tell it from a second finish). When the
// publish fails the job is not acknowledged but released: its redelivery is
// stale, finds the image finished and publishes again — outcomes are at
// least once, never lost to a crash or an outage between commit and ack.
func (p *Pool) settleTerminal(ctx context.Context, log *slog.Logger, d *queue.Delivery, row *job.Image) {
	if err := p.deps.Queue.PublishOutcome(ctx, outcomeOf(d.Job.Tenant, row)); err != nil {
		log.Warn("publish outcome failed; the job will be redelivered to publish it again", "err", err)
		if err := d.Nak(p.cfg.RetryDelay); err != nil {
			log.Warn("nak failed", "err", err)
		}
		return
	}
	p.completed.Add(1)
	p.ack(ctx, log, d)
}

// outcomeOf is the outcome message of a finished image's row.
func outcomeOf(tenant string, row *job.Image) job.Outcome {
	o := job.Outcome{ImageID: row.ID, Tenant: tenant, Status: row.Status, Error: row.Error}
	if row.Tenant != "" {
		o.Tenant = row.Tenant
	}
	if row.Status == job.StatusDone {
		o.Result = row.Result
	}
	if row.FinishedAt != nil {
		o.FinishedAt = row.FinishedAt.UTC()
	}
	return o
}

// prepare and commit do the work of one attempt, the analysis and then the
// commit of its result. A panic in any step becomes an error, so that a
// poison image is retried and then dead-lettered instead of killing the
// process.
//
// Only the analysis counts against the job's attempts. Calls to the store
// and the blob store are retried in place while they fail (see retry): an
// outage of the database or the blob store pauses the work, with the job
// held by heartbeats, instead of spending its deliveries and failing it.
//
// The order of the effects is what makes a crash or a pause harmless at any
// point:
//
//  1. MarkProcessing(attempt) claims the image; a refusal means another
//     attempt owns it or it is finished (staleError).
//  2. The analysis runs; nothing is written yet.
//  3. SaveResult(attempt) is the commit point. The store accepts it only
//     from an attempt that no later attempt has superseded, of a job for
//     the features the image lists, and at most once: a done image is final
//     until it is asked for more features (store.DB.Reopen), which starts
//     a new job with later attempts and makes every job of the earlier list
//     obsolete (its deliveries are dropped).
//  4. Only then is results/<id>.json written, and its contents are made
//     from the committed row (id, filename, features, result, finish
//     time), never from this worker's memory. A worker that resumes after
//     its job was taken over therefore never reaches the blob: step 3
//     refuses it first. Writing the blob before the commit, as we once did,
//     let such a worker overwrite the winner's result object.
//  5. The outcome is published from the row and the job acknowledged
//     (settleTerminal).
//
// A crash between 3 and 5 leaves a done row whose blob or outcome may be
// missing and a job that was never acknowledged. Its redelivery is refused
// at step 1 and repairs what is missing: it rewrites the blob if it is
// absent (the same bytes the winner would have written, because they come
// from the row) and re-publishes the outcome (deduplicated by its finish
// time), then acknowledges. So a done row always gets its blob and its
// outcome, and no delivery writes a second, different result for the same
// list of features.
//
// prepare does steps 1 and 2 on the worker's goroutine; commit does the rest
// on its committer's, while the worker analyzes its next job.
func (p *Pool) prepare(ctx context.Context, log *slog.Logger, pipe Pipeline, bufs *imagedata.Buffers, d *queue.Delivery) (res *job.Result, err error) {
	defer recoverPanic(&err)
	j := d.Job
	var ok bool
	err = p.retry(ctx, log, "mark processing", func(ctx context.Context) (err error) {
		ok, err = p.deps.Store.MarkProcessing(ctx, j.ImageID, attemptOf(d), j.Features)
		return err
	})
	if err != nil {
		return nil, p.storeErr("mark processing", err)
	}
	if !ok {
		return nil, p.stale(ctx, log, j)
	}
	if err := p.deps.Queue.PublishProgress(j.Tenant, j.ImageID); err != nil {
		log.Debug("announce processing", "err", err)
	}
	var b []byte
	err = p.retry(ctx, log, "read input", func(ctx context.Context) (err error) {
		b, err = p.deps.Blobs.Get(ctx, j.BlobKey)
		return err
	})
	if err != nil {
		if p.deps.IsBlobNotFound(err) {
			return nil, permanent("the uploaded bytes are gone (deleted before processing)")
		}
		return nil, fmt.Errorf("read input: %w", err)
	}
	return p.analyze(ctx, pipe, bufs, j, b)
}

// commit does steps 3 and 4 of an analyzed job (see prepare) and returns the
// image's committed row.
func (p *Pool) commit(ctx context.Context, log *slog.Logger, d *queue.Delivery, res *job.Result) (row *job.Image, err error) {
	defer recoverPanic(&err)
	j := d.Job
	var ok bool
	err = p.retry(ctx, log, "save result", func(ctx context.Context) (err error) {
		ok, err = p.deps.Store.SaveResult(ctx, j.ImageID, attemptOf(d), j.Features, res)
		return err
	})
	if err != nil {
		err = p.storeErr("save result", err)
		if errors.Is(err, errGone) {
			p.dropOutputs(ctx, log, j.ImageID, res)
		}
		return nil, err
	}
	if !ok {
		return nil, p.stale(ctx, log, j)
	}
	row, err = p.readRow(ctx, log, j.ImageID)
	if err != nil {
		return nil, err
	}
	if err := p.writeResult(ctx, log, row, false); err != nil {
		return nil, err
	}
	return row, nil
}

// dropOutputs deletes the blobs an analysis wrote for an image that was
// deleted while it ran (its thumbnail): the delete removed the image's
// blobs before these existed, and nothing else would.
func (p *Pool) dropOutputs(ctx context.Context, log *slog.Logger, id string, res *job.Result) {
	if res == nil || res.Thumbnail == nil {
		return
	}
	key := res.Thumbnail.Key
	if key == "" {
		key = job.ThumbnailKey(id)
	}
	if err := p.deps.Blobs.Delete(ctx, key); err != nil && !p.deps.IsBlobNotFound(err) {
		log.Warn("delete the thumbnail of a deleted image", "key", key, "err", err)
	}
}

// recoverPanic turns a panic into *err, so that a poison image is retried
// and then dead-lettered instead of killing the process.
func recoverPanic(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("worker: panic: %v\n%s", r, debug.Stack())
	}
}

// analyze decodes the image once, at the smallest size every requested
// analyzer can use, and runs the pipeline within JobTimeout.
func (p *Pool) analyze(ctx context.Context, pipe Pipeline, bufs *imagedata.Buffers, j job.Job, b []byte) (*job.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.JobTimeout)
	defer cancel()
	t0 := time.Now()
	var img *analyzer.Image
	if need := pipe.MinSide(j.Features); need == analyzer.NoPixels {
		h, err := imagedata.Inspect(b, p.cfg.Limits)
		if err != nil {
			return nil, permanent("%s", imagedata.MessageOf(err))
		}
		img = &analyzer.Image{ID: j.ImageID, Bytes: b, Header: h}
	} else {
		dec, err := imagedata.Decode(b, p.cfg.Limits, imagedata.DecodeOptions{MinSide: need, Buffers: bufs})
		if err != nil {
			return nil, permanent("%s", imagedata.MessageOf(err))
		}
		img = analyzer.NewImage(j.ImageID, b, dec)
		img.Buffers = bufs
	}
	// The pipeline waits for every analyzer, so nothing reads the pixels
	// once it returns: their buffers serve the next job.
	defer img.Release()
	p.m.stage.WithLabelValues("decode").Observe(time.Since(t0).Seconds())
	w, h := img.DisplaySize()
	res := &job.Result{Width: w, Height: h}
	t1 := time.Now()
	if err := pipe.Run(ctx, img, j.Features, res); err != nil {
		return nil, err
	}
	p.m.stage.WithLabelValues("analyze").Observe(time.Since(t1).Seconds())
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// stale reads the row of an image whose transition was refused and returns
// the staleError that says what to do with the delivery.
func (p *Pool) stale(ctx context.Context, log *slog.Logger, j job.Job) error {
	row, err := p.readRow(ctx, log, j.ImageID)
	if err != nil {
		return err
	}
	if job.FormatFeatures(row.Features) != job.FormatFeatures(j.Features) {
		return &staleError{row: row, obsolete: true}
	}
	if row.Status == job.StatusDone {
		// Repair what a crash between the commit and the ack may have
		// left undone; the outcome is re-published when it is settled.
		if err := p.writeResult(ctx, log, row, true); err != nil {
			return err
		}
	}
	return &staleError{row: row}
}

// readRow reads image id's row, retrying while the store is unavailable.
func (p *Pool) readRow(ctx context.Context, log *slog.Logger, id string) (*job.Image, error) {
	var row *job.Image
	err := p.retry(ctx, log, "read image", func(ctx context.Context) (err error) {
		row, err = p.deps.Store.GetImageByID(ctx, id)
		return err
	})
	if err != nil {
		return nil, p.storeErr("read image", err)
	}
	return row, nil
}

// writeResult writes results/<id>.json from a done row. With onlyIfMissing
// an existing object is left untouched: it can only hold the same document.
func (p *Pool) writeResult(ctx context.Context, log *slog.Logger, row *job.Image, onlyIfMissing bool) error {
	doc := resultDoc{ImageID: row.ID, Filename: row.Filename, Features: row.Features, Result: row.Result}
	if row.FinishedAt != nil {
		doc.FinishedAt = row.FinishedAt.UTC()
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	key := job.ResultKey(row.ID)
	err = p.retry(ctx, log, "write result", func(ctx context.Context) error {
		if onlyIfMissing {
			ok, err := p.deps.Blobs.Exists(ctx, key)
			if err != nil || ok {
				return err
			}
			log.Info("result object missing after a commit: rewriting it from the stored row")
		}
		return p.deps.Blobs.Put(ctx, key, b, "application/json")
	})
	if err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// storeErr turns the store's ErrNotFound (the image was deleted) into
// errGone.
func (p *Pool) storeErr(what string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errGone
	}
	return fmt.Errorf("%s: %w", what, err)
}

// retry calls fn, a call to the store or the blob store, until it succeeds,
// fails for good (a missing image or blob), ctx ends or OutageWait passes,
// backing off from RetryDelay to maxOutageBackoff. Each call gets
// CallTimeout, so that an engine that hangs counts as unavailable instead
// of holding the worker for ever. The job's delivery is kept by the
// heartbeat meanwhile: an outage does not spend the job's attempts.
func (p *Pool) retry(ctx context.Context, log *slog.Logger, what string, fn func(ctx context.Context) error) error {
	var (
		began = time.Now()
		delay = p.cfg.RetryDelay
		tries int
	)
	for {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
		err := fn(cctx)
		cancel()
		tries++
		if err == nil {
			if tries > 1 {
				log.Info(what+" recovered", "tries", tries, "after", time.Since(began).Round(time.Millisecond))
			}
			return nil
		}
		if errors.Is(err, store.ErrNotFound) || p.deps.IsBlobNotFound(err) || ctx.Err() != nil ||
			time.Since(began) >= p.cfg.OutageWait {
			return err
		}
		if tries == 1 {
			log.Warn(what+" failed; retrying until the dependency recovers", "err", err, "give_up_after", p.cfg.OutageWait)
		} else {
			log.Debug(what+" failed again", "err", err, "tries", tries)
		}
		p.m.outageRetries.WithLabelValues(what).Inc()
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		delay = min(delay*2, maxOutageBackoff)
	}
}

// maxOutageBackoff caps the wait between two tries of a failing dependency.
const maxOutageBackoff = 5 * time.Second

// resultDoc is the JSON written to results/<id>.json: the image's name and
// its full result, as the output buckets of the systems we learned from held.
type resultDoc struct {
	ImageID    string        `json:"id"`
	Filename   string        `json:"filename"`
	Features   []job.Feature `json:"features"`
	Result     *job.Result   `json:"result"`
	FinishedAt time.Time     `json:"finished_at"`
}

// fail records a permanent failure, publishes it and acknowledges the job.
func (p *Pool) fail(ctx context.Context, log *slog.Logger, d *queue.Delivery, reason string) {
	row := p.markFailed(log, d, reason)
	if row == nil {
		// Not recorded (the store is down past OutageWait): release the job
		// so that a redelivery records it.
		if err := d.Nak(p.cfg.RetryDelay); err != nil {
			log.Warn("nak failed", "err", err)
		}
		return
	}
	p.settleTerminal(ctx, log, d, row)
}

// markFailed records a failure in the store and returns the image's row,
// nil when it could not be read or written. When the transition is refused
// (a newer attempt or a result won) the row is returned as it is.
func (p *Pool) markFailed(log *slog.Logger, d *queue.Delivery, reason string) *job.Image {
	j := d.Job
	log.Info("job failed", "reason", reason)
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.OutageWait)
	defer cancel()
	err := p.retry(ctx, log, "mark failed", func(ctx context.Context) error {
		_, err := p.deps.Store.MarkFailed(ctx, j.ImageID, attemptOf(d), j.Features, reason)
		return err
	})
	if err != nil {
		log.Error("mark failed", "err", err)
		return nil
	}
	row, err := p.readRow(ctx, log, j.ImageID)
	if err != nil {
		log.Error("read failed image", "err", err)
		return nil
	}
	return row
}

func (p *Pool) ack(ctx context.Context, log *slog.Logger, d *queue.Delivery) {
	if err := d.Ack(ctx); err != nil {
		// The result is committed; a redelivery will find it done and drop it.
		log.Warn("ack failed", "err", err)
	}
}

// heartbeat keeps the delivery from timing out while a long job runs.
func (p *Pool) heartbeat(ctx context.Context, d *queue.Delivery) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(p.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = d.InProgress()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// attemptOf numbers a delivery's attempt in the store: the queue's delivery
// count, after any attempts the image recorded before its job was
// re-published (job.Job.AttemptBase).
func attemptOf(d *queue.Delivery) int { return d.Attempt + d.Job.AttemptBase }
