// Package queue is Glimpse's work queue on NATS JetStream: the API publishes
// jobs, workers pull them, acknowledge them once the result is committed, and
// jobs that keep failing end in a dead-letter stream. Outcomes are published
// on a results stream so that any process can wait for an image.
//
// The same code runs against the embedded server of `glimpse serve`
// (package natsembed) and against a NATS cluster; it sticks to JetStream
// APIs that servers from 2.9 on understand.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/glimpse-oss/glimpse/internal/s3event"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults used by Open for zero Config fields.
const (
	DefaultReplicas        = 1
	DefaultMaxDeliver      = 5
	DefaultAckWait         = 30 * time.Second
	DefaultDuplicateWindow = 10 * time.Minute
	DefaultMaxAckPending   = 1000
	DefaultResultsMaxAge   = 7 * 24 * time.Hour
	DefaultResultsMaxBytes = 512 << 20
	DefaultDLQMaxAge       = 30 * 24 * time.Hour
	DefaultDLQMaxBytes     = 256 << 20
	DefaultStartupWait     = time.Minute
)

// Config configures a Queue. The zero value of every field means its default.
type Config struct {
	// Replicas is the replica count of every stream: 1 on a single server,
	// 3 on a cluster.
	Replicas int
	// MaxDeliver is how many times a job is delivered before it is dead
	// lettered.
	MaxDeliver int
	// AckWait is how long a delivery may go without an ack before it is
	// redelivered; workers call Delivery.InProgress to extend it.
	AckWait time.Duration
	// BackOff, when set, replaces AckWait with a per-attempt wait for
	// redeliveries after a timeout (not after a Nak). It must not have more
	// entries than MaxDeliver.
	BackOff []time.Duration
	// DuplicateWindow is how long a job publish with the same image id is
	// a no-op.
	DuplicateWindow time.Duration
	// MaxAckPending caps the jobs delivered and not yet acknowledged across
	// all workers.
	MaxAckPending int
	// ResultsMaxAge and ResultsMaxBytes bound the results stream, which keeps
	// the latest outcome of each image.
	ResultsMaxAge   time.Duration
	ResultsMaxBytes int64
	// DLQMaxAge and DLQMaxBytes bound the dead-letter stream.
	DLQMaxAge   time.Duration
	DLQMaxBytes int64
	// Logger receives the queue's logs; slog.Default() when nil.
	Logger *slog.Logger
	// Registerer receives the queue's metrics; none are registered when nil.
	Registerer prometheus.Registerer
	// StartupWait is how long Open keeps retrying requests that a JetStream
	// which has just started cannot answer yet: a cluster whose servers
	// are still electing a leader or meeting their peers lets requests time
	// out or answers "temporarily unavailable" for a few seconds, and a
	// process started alongside it should wait that out, not exit.
	StartupWait time.Duration
	// Syncer, for streams kept by an embedded server that does not fsync
	// its writes (natsembed without SyncAlways), makes each stored publish
	// durable before Publish returns: the server has written the message
	// to the operating system when it acknowledges it, and Syncer flushes
	// the file system (*durable.Syncer, group-committed with the other
	// engines on the disk). Nil for a server that syncs its own writes.
	Syncer Syncer
}

// Syncer makes everything written to a file system before a call durable.
type Syncer interface {
	Sync(ctx context.Context) error
}

func (c Config) withDefaults() Config {
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.ResultsMaxAge == 0 {
		c.ResultsMaxAge = DefaultResultsMaxAge
	}
	if c.ResultsMaxBytes == 0 {
		c.ResultsMaxBytes = DefaultResultsMaxBytes
	}
	if c.DLQMaxAge == 0 {
		c.DLQMaxAge = DefaultDLQMaxAge
	}
	if c.DLQMaxBytes == 0 {
		c.DLQMaxBytes = DefaultDLQMaxBytes
	}
	if c.StartupWait == 0 {
		c.StartupWait = DefaultStartupWait
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports whether c, after defaults, can be used.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("%w: replicas %d not in 1..5", ErrBadConfig, c.Replicas))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("%w: max deliver %d < 1", ErrBadConfig, c.MaxDeliver))
	}
	if c.AckWait < 0 || c.DuplicateWindow < 0 {
		errs = append(errs, fmt.Errorf("%w: negative duration", ErrBadConfig))
	}
	if len(c.BackOff) > c.MaxDeliver {
		errs = append(errs, fmt.Errorf("%w: %d backoff entries > max deliver %d", ErrBadConfig, len(c.BackOff), c.MaxDeliver))
	}
	if c.MaxAckPending < 1 {
		errs = append(errs, fmt.Errorf("%w: max ack pending %d < 1", ErrBadConfig, c.MaxAckPending))
	}
	return errors.Join(errs...)
}

// Queue is the Glimpse work queue on one NATS connection. It does not own
// the connection: Close leaves it open.
type Queue struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	cfg     Config
	log     *slog.Logger
	m       *metrics
	workers jetstream.Consumer
	// termReason is whether the server understands "+TERM <reason>"
	// (2.10.4 and later); older servers would ignore the whole ack.
	termReason bool
	closed     atomic.Bool
}

// Open binds to the Glimpse streams and the workers consumer on nc,
// creating or updating them so that they match cfg. It is idempotent and
// safe to call from every process at start-up.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("queue: jetstream: %w", err)
	}
	q := &Queue{
		nc:         nc,
		js:         js,
		cfg:        cfg,
		log:        cfg.Logger.With("component", "queue"),
		m:          newMetrics(cfg.Registerer),
		termReason: versionAtLeast(nc.ConnectedServerVersion(), 2, 10, 4),
	}
	deadline := time.Now().Add(cfg.StartupWait)
	for _, sc := range q.streamConfigs() {
		err := q.whileStarting(ctx, deadline, "stream "+sc.Name, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, sc)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("queue: stream %s: %w", sc.Name, err)
		}
	}
	consumer := jetstream.ConsumerConfig{
		Durable:       WorkersConsumer,
		Description:   "Glimpse workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		BackOff:       cfg.BackOff,
		MaxAckPending: cfg.MaxAckPending,
		MaxWaiting:    512,
		FilterSubject: JobsSubject + ".>",
		Replicas:      0, // inherit the stream's
	}
	err = q.whileStarting(ctx, deadline, "consumer "+WorkersConsumer, func(ctx context.Context) (err error) {
		q.workers, err = js.CreateOrUpdateConsumer(ctx, JobsStream, consumer)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("queue: consumer %s: %w", WorkersConsumer, err)
	}
	if err := q.sync(ctx); err != nil {
		return nil, fmt.Errorf("queue: streams: %w", err)
	}
	return q, nil
}

// whileStarting calls fn until it succeeds, fails for good, or deadline
// (or ctx) ends. Each call gets at most startupAttempt: a request sent
// before a cluster formed may never be answered, and the caller's ctx may
// have a far deadline. It retries only the failures of a JetStream that
// cannot answer yet (see startingUp), 250 ms apart, and logs each.
func (q *Queue) whileStarting(ctx context.Context, deadline time.Time, what string, fn func(ctx context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, startupAttempt)
		err := fn(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !startingUp(err) || time.Now().After(deadline) {
			return err
		}
		q.log.Warn("JetStream not ready yet; retrying", "what", what, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// startupAttempt bounds each request whileStarting makes; it is the
// jetstream client's own default request timeout.
const startupAttempt = 5 * time.Second

// startingUp reports whether err is what a JetStream that has just started
// answers before it can serve requests: a request that timed out (the
// client's own per-request deadline, not the caller's), "JetStream system
// temporarily unavailable" (no meta leader yet) or "insufficient
// resources" (peers not met yet). Any other failure is final: a stream
// configuration the server refuses, or no responders at all, which is a
// server without JetStream and should be said at once.
func startingUp(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		return true
	}
	var api jetstream.JetStreamError
	if errors.As(err, &api) && api.APIError() != nil {
		code := api.APIError().ErrorCode
		return code == jsErrCodeTemporarilyUnavailable || code == jsErrCodeInsufficientResources
	}
	return false
}

// JetStream API error codes (nats-server's errors.json) that jetstream does
// not name.
const (
	jsErrCodeTemporarilyUnavailable jetstream.ErrorCode = 10008
	jsErrCodeInsufficientResources  jetstream.ErrorCode = 10023
)

// sync makes the messages the server stored so far durable, when a Syncer
// stands in for the server's own fsyncs.
func (q *Queue) sync(ctx context.Context) error {
	if q.cfg.Syncer == nil {
		return nil
	}
	return q.cfg.Syncer.Sync(ctx)
}

// streamConfigs lists the streams Open ensures.
func (q *Queue) streamConfigs() []jetstream.StreamConfig {
	c := q.cfg
	return []jetstream.StreamConfig{
		{
			Name:        JobsStream,
			Description: "Glimpse jobs waiting for a worker",
			Subjects:    []string{JobsSubject + ".>"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			Duplicates:  c.DuplicateWindow,
			// No limits: an accepted job is never dropped; a full disk makes
			// Publish fail instead.
			MaxMsgs:  -1,
			MaxBytes: -1,
			Discard:  jetstream.DiscardNew,
		},
		{
			Name:              ResultsStream,
			Description:       "Latest outcome of each Glimpse image",
			Subjects:          []string{ResultsSubject + ".>"},
			Retention:         jetstream.LimitsPolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          c.Replicas,
			MaxAge:            c.ResultsMaxAge,
			MaxBytes:          c.ResultsMaxBytes,
			MaxMsgsPerSubject: 1,
			Discard:           jetstream.DiscardOld,
		},
		{
			Name:        DLQStream,
			Description: "Glimpse jobs that failed every delivery",
			Subjects:    []string{DLQSubject},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			MaxAge:      c.DLQMaxAge,
			MaxBytes:    c.DLQMaxBytes,
			Discard:     jetstream.DiscardOld,
		},
		{
			Name:        AdvisoriesStream,
			Description: "MAX_DELIVERIES advisories of the Glimpse workers, consumed by the dead-letter runner",
			Subjects:    []string{maxDeliveriesSubject},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			MaxAge:      c.DLQMaxAge,
			Discard:     jetstream.DiscardOld,
		},
	}
}

// maxDeliveriesSubject is where the server announces that a job of the
// workers consumer exhausted MaxDeliver.
const maxDeliveriesSubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + JobsStream + "." + WorkersConsumer

// Config returns the effective configuration, defaults applied.
func (q *Queue) Config() Config { return q.cfg }

// Close marks q closed; later calls return ErrClosed. The connection stays
// open, it belongs to the caller.
func (q *Queue) Close() error {
	q.closed.Store(true)
	return nil
}

func (q *Queue) check() error {
	if q.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Publish enqueues j and waits until the server has stored it. The message
// id is j.MessageID() — the image id and the row's birth — so publishing the
// same job again within Config.DuplicateWindow is a no-op, while the same
// bytes uploaded again after a delete are a new job.
func (q *Queue) Publish(ctx context.Context, j job.Job) error {
	return q.publishJob(ctx, j, j.MessageID(), "job")
}

// Republish enqueues j under a fresh message id, bypassing deduplication;
// the reconciler uses it to re-send a job that was lost.
func (q *Queue) Republish(ctx context.Context, j job.Job) error {
	return q.publishJob(ctx, j, j.ImageID+"."+nuid.Next(), "republish")
}

func (q *Queue) publishJob(ctx context.Context, j job.Job, msgID, kind string) error {
	if err := q.check(); err != nil {
		return err
	}
	if j.ImageID == "" {
		return ErrEmptyImageID
	}
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("queue: encode job %s: %w", j.ImageID, err)
	}
	msg := &nats.Msg{Subject: JobSubject(j.ImageID), Data: b, Header: nats.Header{}}
	msg.Header.Set(HeaderImageID, j.ImageID)
	start := time.Now()
	ack, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(JobsStream))
	// On a cluster, an identical publish racing this one is answered "in
	// process" until the first is stored or fails: ask again shortly, since
	// only the first one's outcome says whether the job is durable.
	for try := 1; try <= 10 && errors.Is(err, errDuplicateInProcess); try++ {
		select {
		case <-ctx.Done():
			return fmt.Errorf("queue: publish job %s: %w", j.ImageID, ctx.Err())
		case <-time.After(time.Duration(try) * 20 * time.Millisecond):
		}
		ack, err = q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(JobsStream))
	}
	if err == nil {
		// A duplicate's first publish may not have been flushed yet either.
		err = q.sync(ctx)
	}
	if err != nil {
		q.m.publishErrors.WithLabelValues(kind).Inc()
		return fmt.Errorf("queue: publish job %s: %w", j.ImageID, err)
	}
	q.m.publishSeconds.Observe(time.Since(start).Seconds())
	if ack.Duplicate {
		q.m.duplicates.Inc()
		q.log.Debug("duplicate job publish ignored", "image_id", j.ImageID, "seq", ack.Sequence)
		return nil
	}
	q.m.published.WithLabelValues(kind).Inc()
	return nil
}

// errDuplicateInProcess matches the server's answer to a publish whose
// message id another, unfinished publish holds (JetStream error 10158).
var errDuplicateInProcess = &jetstream.APIError{ErrorCode: 10158}

// JobSubject is the subject an image's job is published on. One subject per
// image lets the reconciler ask the stream whether a job is still there.
func JobSubject(imageID string) string { return JobsSubject + "." + imageID }

// Has reports whether the jobs stream still holds a job for the image
// (waiting or being worked on).
func (q *Queue) Has(ctx context.Context, imageID string) (bool, error) {
	if err := q.check(); err != nil {
		return false, err
	}
	st, err := q.js.Stream(ctx, JobsStream)
	if err != nil {
		return false, fmt.Errorf("queue: jobs stream: %w", err)
	}
	if _, err := st.GetLastMsgForSubject(ctx, JobSubject(imageID)); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("queue: look up job %s: %w", imageID, err)
	}
	return true, nil
}

// Fetch pulls up to max jobs, waiting at most wait (and no longer than ctx
// allows) for the first one. It returns as soon as at least one job is
// available, and (nil, nil) when none came in time. Messages that are not a
// JSON job are terminated and logged, not returned.
func (q *Queue) Fetch(ctx context.Context, max int, wait time.Duration) ([]*Delivery, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if max < 1 {
		max = 1
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A waiting pull request for max messages would only return once all
	// max arrived or it expired, so pull takes what is ready first.
	msgs, err := pull(ctx, q.workers, max, wait)
	if err != nil && len(msgs) == 0 {
		return nil, err
	}
	if err != nil {
		q.log.Warn("fetch ended early", "err", err, "got", len(msgs))
	}
	var out []*Delivery
	for _, msg := range msgs {
		if d := q.newDelivery(msg); d != nil {
			out = append(out, d)
		}
	}
	q.m.fetched.Add(float64(len(out)))
	return out, nil
}

// pull is Fetch's strategy for any consumer: take what is ready; if nothing
// is, wait up to wait for one message, then top up without waiting.
func pull(ctx context.Context, c jetstream.Consumer, max int, wait time.Duration) ([]jetstream.Msg, error) {
	out, err := pullBatch(ctx, c, max, 0)
	if err != nil || len(out) > 0 || wait <= 0 {
		return out, err
	}
	out, err = pullBatch(ctx, c, 1, wait)
	if err != nil || len(out) == 0 || max == 1 {
		return out, err
	}
	more, err := pullBatch(ctx, c, max-1, 0)
	return append(out, more...), err
}

// pullBatch runs one pull request; wait 0 means no-wait. A timeout is not an
// error; an error may come with the messages received before it.
func pullBatch(ctx context.Context, c jetstream.Consumer, max int, wait time.Duration) ([]jetstream.Msg, error) {
	var (
		batch jetstream.MessageBatch
		err   error
	)
	if wait <= 0 {
		batch, err = c.FetchNoWait(max)
	} else {
		fctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		batch, err = c.Fetch(max, jetstream.FetchContext(fctx))
	}
	if err != nil {
		return nil, fmt.Errorf("queue: fetch: %w", err)
	}
	var out []jetstream.Msg
	for msg := range batch.Messages() {
		out = append(out, msg)
	}
	if err := batch.Error(); err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if !isFetchTimeout(err) {
			return out, fmt.Errorf("queue: fetch: %w", err)
		}
	}
	return out, nil
}

func isFetchTimeout(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) ||
		errors.Is(err, context.DeadlineExceeded)
}

// newDelivery decodes msg — a job, or an S3 event notification published on
// a jobs subject (EventsSubject) — or terminates it and returns nil when it
// is neither.
func (q *Queue) newDelivery(msg jetstream.Msg) *Delivery {
	d := &Delivery{q: q, msg: msg, Raw: msg.Data(), MaxDeliver: q.cfg.MaxDeliver}
	if md, err := msg.Metadata(); err == nil {
		d.Attempt = int(md.NumDelivered)
		d.Seq = md.Sequence.Stream
		d.Published = md.Timestamp
	}
	if s3event.IsEvent(msg.Data()) {
		recs, err := s3event.Parse(msg.Data())
		if err == nil {
			d.Events = recs
			return d
		}
		q.m.malformed.Inc()
		q.log.Error("terminating malformed storage event", "seq", d.Seq, "err", err)
		if terr := d.Term("malformed storage event: " + err.Error()); terr != nil {
			q.log.Error("terminate malformed event", "seq", d.Seq, "err", terr)
		}
		return nil
	}
	if err := json.Unmarshal(msg.Data(), &d.Job); err != nil || d.Job.ImageID == "" {
		if err == nil {
			err = ErrEmptyImageID
		}
		q.m.malformed.Inc()
		q.log.Error("terminating malformed job message", "seq", d.Seq, "err", err, "bytes", len(d.Raw))
		if terr := d.Term("malformed job: " + err.Error()); terr != nil {
			q.log.Error("terminate malformed job", "seq", d.Seq, "err", terr)
		}
		return nil
	}
	return d
}

// PublishOutcome publishes o on ResultsSubject.<image id> and waits for the
// server to store it. An identical re-send (same image, status and finish
// time) within the stream's duplicate window is a no-op.
func (q *Queue) PublishOutcome(ctx context.Context, o job.Outcome) error {
	if err := q.check(); err != nil {
		return err
	}
	if o.ImageID == "" {
		return ErrEmptyImageID
	}
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("queue: encode outcome %s: %w", o.ImageID, err)
	}
	id := o.ImageID + "." + string(o.Status) + "." + strconv.FormatInt(o.FinishedAt.UnixNano(), 10)
	_, err = q.js.Publish(ctx, ResultsSubject+"."+o.ImageID, b, jetstream.WithMsgID(id))
	if err == nil {
		err = q.sync(ctx)
	}
	if err != nil {
		q.m.publishErrors.WithLabelValues("outcome").Inc()
		return fmt.Errorf("queue: publish outcome %s: %w", o.ImageID, err)
	}
	q.m.published.WithLabelValues("outcome").Inc()
	return nil
}

// SubscribeOutcomes calls fn, in order and on one goroutine, for every
// outcome published from now on by any process. It is a plain subscription:
// outcomes published while nobody listens are only in the results stream.
// Call stop to end it.
func (q *Queue) SubscribeOutcomes(fn func(job.Outcome)) (stop func(), err error) {
	return q.subscribe(ResultsSubject, "outcome", fn)
}

// PublishProgress announces that a worker started on image id of tenant
// (an Outcome with status processing, no result). It is fire and forget:
// core NATS, no stream and no acknowledgement, since the store holds the
// status and the announcement only lets event streams show it at once.
func (q *Queue) PublishProgress(tenant, id string) error {
	if err := q.check(); err != nil {
		return err
	}
	b, err := json.Marshal(job.Outcome{ImageID: id, Tenant: tenant, Status: job.StatusProcessing})
	if err != nil {
		return fmt.Errorf("queue: publish progress: %w", err)
	}
	if err := q.nc.Publish(ProgressSubject+"."+id, b); err != nil {
		return fmt.Errorf("queue: publish progress: %w", err)
	}
	return nil
}

// SubscribeProgress calls fn for every PublishProgress from now on, from
// any process on the same NATS, until stop is called.
func (q *Queue) SubscribeProgress(fn func(job.Outcome)) (stop func(), err error) {
	return q.subscribe(ProgressSubject, "progress", fn)
}

// subscribe calls fn with each Outcome JSON published under subject.>.
func (q *Queue) subscribe(subject, what string, fn func(job.Outcome)) (stop func(), err error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	sub, err := q.nc.Subscribe(subject+".>", func(m *nats.Msg) {
		var o job.Outcome
		if err := json.Unmarshal(m.Data, &o); err != nil {
			q.log.Warn("ignoring malformed "+what, "subject", m.Subject, "err", err)
			return
		}
		fn(o)
	})
	if err != nil {
		return nil, fmt.Errorf("queue: subscribe %ss: %w", what, err)
	}
	// Make sure the server knows the subscription before returning, so
	// that a message published right after is not missed.
	if err := q.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("queue: subscribe %ss: %w", what, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Depth reports the workers' backlog. Pending and AckPending come from the
// workers consumer (NumPending, NumAckPending). OldestAge is the age of the
// first message still in the jobs stream: in a work-queue stream a job is
// removed once acknowledged, terminated or dead lettered, so that message is
// the oldest job not yet done, whether waiting or being worked on.
func (q *Queue) Depth(ctx context.Context) (Depth, error) {
	if err := q.check(); err != nil {
		return Depth{}, err
	}
	ci, err := q.workers.Info(ctx)
	if err != nil {
		return Depth{}, fmt.Errorf("queue: depth: %w", err)
	}
	d := Depth{Pending: ci.NumPending, AckPending: uint64(ci.NumAckPending)}
	st, err := q.js.Stream(ctx, JobsStream)
	if err != nil {
		return Depth{}, fmt.Errorf("queue: depth: %w", err)
	}
	s := st.CachedInfo().State
	if s.Msgs > 0 && !s.FirstTime.IsZero() {
		if age := time.Since(s.FirstTime); age > 0 {
			d.OldestAge = age
		}
	}
	return d, nil
}

// Ping checks that the connection is up and the jobs stream answers.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.check(); err != nil {
		return err
	}
	if !q.nc.IsConnected() {
		return fmt.Errorf("queue: ping: %w", nats.ErrConnectionClosed)
	}
	if _, err := q.js.Stream(ctx, JobsStream); err != nil {
		return fmt.Errorf("queue: ping: %w", err)
	}
	return nil
}

// versionAtLeast reports whether the server version v ("2.10.4",
// "2.11.0-beta.1") is at least major.minor.patch.
func versionAtLeast(v string, major, minor, patch int) bool {
	v, _, _ = strings.Cut(v, "-")
	parts := strings.SplitN(v, ".", 3)
	want := []int{major, minor, patch}
	for i, w := range want {
		if i >= len(parts) {
			return w == 0
		}
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return false
		}
		if n != w {
			return n > w
		}
	}
	return true
}
