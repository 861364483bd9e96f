package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// checkFor calls f every sleep until it returns nil or wait has passed,
// then fails with f's last error.
func checkFor(t testing.TB, wait, sleep time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", wait, err)
		}
		time.Sleep(sleep)
	}
}

// startServer runs an embedded server on dir (a temp dir when empty).
func startServer(t testing.TB, dir string) *natsembed.Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := natsembed.Start(natsembed.Config{Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("natsembed.Start: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t testing.TB, s *natsembed.Server) *nats.Conn {
	t.Helper()
	nc, err := s.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// openQueue starts a server and opens a queue on it with cfg.
func openQueue(t testing.TB, cfg Config) (*Queue, *nats.Conn) {
	t.Helper()
	nc := connect(t, startServer(t, ""))
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	q, err := Open(context.Background(), nc, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return q, nc
}

func testJob(n int) job.Job {
	id := job.NewImageID("t1", job.ContentHash([]byte(strconv.Itoa(n))), "")
	return job.Job{
		ImageID:    id,
		Tenant:     "t1",
		BlobKey:    job.InputKey("t1", id),
		Features:   []job.Feature{job.FeatureLabels},
		EnqueuedAt: time.Unix(1700000000, 0).UTC(),
	}
}

// fetchOne fetches exactly one delivery, polling up to 10s.
func fetchOne(t testing.TB, q *Queue) *Delivery {
	t.Helper()
	var d *Delivery
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		ds, err := q.Fetch(context.Background(), 1, 200*time.Millisecond)
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			return errors.New("no delivery")
		}
		d = ds[0]
		return nil
	})
	return d
}

// expectNoDelivery fetches once and fails if a job comes. After a job's
// last delivery is nak'd, this pull is also what makes the server notice
// that MaxDeliver is exhausted and send the advisory, as a busy worker
// pool would.
func expectNoDelivery(t testing.TB, q *Queue) {
	t.Helper()
	ds, err := q.Fetch(context.Background(), 1, 200*time.Millisecond)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(ds) != 0 {
		t.Fatalf("Fetch = attempt %d of %s; want no delivery", ds[0].Attempt, ds[0].Job.ImageID)
	}
}

func streamMsgs(t testing.TB, nc *nats.Conn, name string) uint64 {
	t.Helper()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("Stream(%s): %v", name, err)
	}
	return st.CachedInfo().State.Msgs
}

// basicFlow publishes, fetches and acks one job; it runs on any server.
func basicFlow(t *testing.T, q *Queue, nc *nats.Conn) {
	ctx := context.Background()
	want := testJob(1)
	if err := q.Publish(ctx, want); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	d := fetchOne(t, q)
	if d.Job.ImageID != want.ImageID || d.Job.BlobKey != want.BlobKey || !d.Job.EnqueuedAt.Equal(want.EnqueuedAt) {
		t.Errorf("Fetch job = %+v; want %+v", d.Job, want)
	}
	if d.Attempt != 1 || d.Last() {
		t.Errorf("Attempt = %d, Last = %v; want 1, false", d.Attempt, d.Last())
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := streamMsgs(t, nc, JobsStream); n != 0 {
			return errors.New("jobs stream not empty after ack: " + strconv.FormatUint(n, 10))
		}
		return nil
	})
	ds, err := q.Fetch(ctx, 10, 100*time.Millisecond)
	if err != nil || len(ds) != 0 {
		t.Fatalf("Fetch after ack = %d deliveries, %v; want 0, nil", len(ds), err)
	}
	if err := q.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestPublishFetchAck(t *testing.T) {
	q, nc := openQueue(t, Config{})
	basicFlow(t, q, nc)
}

func TestOpenIdempotent(t *testing.T) {
	nc := connect(t, startServer(t, ""))
	ctx := context.Background()
	for i, cfg := range []Config{{}, {}, {MaxDeliver: 3, AckWait: time.Second}} {
		cfg.Logger = quietLogger()
		q, err := Open(ctx, nc, cfg)
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		ci, err := q.workers.Info(ctx)
		if err != nil {
			t.Fatalf("consumer info: %v", err)
		}
		if got, want := ci.Config.MaxDeliver, q.Config().MaxDeliver; got != want {
			t.Errorf("Open #%d: MaxDeliver = %d; want %d", i, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{name: "zero", cfg: Config{}, ok: true},
		{name: "cluster", cfg: Config{Replicas: 3}, ok: true},
		{name: "too many replicas", cfg: Config{Replicas: 7}},
		{name: "negative max deliver", cfg: Config{MaxDeliver: -1}},
		{name: "backoff longer than max deliver", cfg: Config{MaxDeliver: 1, BackOff: []time.Duration{time.Second, time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if got := err == nil; got != tt.ok {
				t.Fatalf("Validate() = %v; want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadConfig) {
				t.Errorf("Validate() = %v; want ErrBadConfig", err)
			}
		})
	}
}

func TestPublishDeduplicates(t *testing.T) {
	reg := prometheus.NewRegistry()
	q, nc := openQueue(t, Config{Registerer: reg})
	ctx := context.Background()
	j := testJob(1)
	for i := 0; i < 3; i++ {
		if err := q.Publish(ctx, j); err != nil {
			t.Fatalf("Publish #%d: %v", i, err)
		}
	}
	if got := streamMsgs(t, nc, JobsStream); got != 1 {
		t.Errorf("jobs after 3 publishes of one id = %d; want 1", got)
	}
	if err := q.Republish(ctx, j); err != nil {
		t.Fatalf("Republish: %v", err)
	}
	if got := streamMsgs(t, nc, JobsStream); got != 2 {
		t.Errorf("jobs after Republish = %d; want 2", got)
	}
	if err := q.Publish(ctx, job.Job{}); !errors.Is(err, ErrEmptyImageID) {
		t.Errorf("Publish(empty id) = %v; want ErrEmptyImageID", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var dups float64
	for _, mf := range mfs {
		if mf.GetName() == "glimpse_queue_duplicate_publishes_total" {
			dups = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if dups != 2 {
		t.Errorf("glimpse_queue_duplicate_publishes_total = %v; want 2", dups)
	}
}

func TestRedelivery(t *testing.T) {
	tests := []struct {
		name   string
		settle func(*Delivery) error
	}{
		{name: "nak", settle: func(d *Delivery) error { return d.Nak(0) }},
		{name: "nak with delay", settle: func(d *Delivery) error { return d.Nak(50 * time.Millisecond) }},
		{name: "ack wait expires", settle: func(*Delivery) error { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := openQueue(t, Config{AckWait: 500 * time.Millisecond})
			ctx := context.Background()
			if err := q.Publish(ctx, testJob(1)); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			d := fetchOne(t, q)
			if err := tt.settle(d); err != nil {
				t.Fatalf("settle: %v", err)
			}
			d2 := fetchOne(t, q)
			if d2.Attempt != 2 || d2.Job.ImageID != d.Job.ImageID || d2.Seq != d.Seq {
				t.Errorf("redelivery = attempt %d, %s seq %d; want attempt 2, %s seq %d",
					d2.Attempt, d2.Job.ImageID, d2.Seq, d.Job.ImageID, d.Seq)
			}
			if err := d2.Ack(ctx); err != nil {
				t.Fatalf("Ack: %v", err)
			}
		})
	}
}

func TestInProgressHoldsDelivery(t *testing.T) {
	q, _ := openQueue(t, Config{AckWait: 500 * time.Millisecond})
	ctx := context.Background()
	if err := q.Publish(ctx, testJob(1)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	d := fetchOne(t, q)
	// Keep extending for about three AckWaits; nothing may be redelivered.
	for i := 0; i < 6; i++ {
		if err := d.InProgress(); err != nil {
			t.Fatalf("InProgress: %v", err)
		}
		ds, err := q.Fetch(ctx, 1, 250*time.Millisecond)
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		if len(ds) != 0 {
			t.Fatalf("job redelivered (attempt %d) while in progress", ds[0].Attempt)
		}
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func TestMalformedJobIsTerminated(t *testing.T) {
	q, nc := openQueue(t, Config{})
	ctx := context.Background()
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(ctx, JobsSubject+".garbage", []byte("{not json")); err != nil {
		t.Fatalf("raw publish: %v", err)
	}
	if err := q.Publish(ctx, testJob(2)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	ds, err := q.Fetch(ctx, 10, time.Second)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(ds) != 1 || ds[0].Job.ImageID != testJob(2).ImageID {
		t.Fatalf("Fetch = %d deliveries; want only the valid job", len(ds))
	}
	if err := ds[0].Ack(ctx); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := streamMsgs(t, nc, JobsStream); n != 0 {
			return errors.New("malformed job still in the stream")
		}
		return nil
	})
}

// waitPending waits until q's consumer holds exactly n jobs ready, none out
// for delivery.
func waitPending(t *testing.T, q *Queue, n int) {
	t.Helper()
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		d, err := q.Depth(context.Background())
		if err != nil {
			return err
		}
		if d.Pending != uint64(n) || d.AckPending != 0 {
			return fmt.Errorf("consumer has %d pending, %d out for delivery; want %d, 0", d.Pending, d.AckPending, n)
		}
		return nil
	})
}

func TestFetchBatch(t *testing.T) {
	q, _ := openQueue(t, Config{})
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := q.Publish(ctx, testJob(i)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	tests := []struct {
		max, want int
	}{{max: 3, want: 3}, {max: 10, want: 2}, {max: 10, want: 0}}
	left := 5
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.max), func(t *testing.T) {
			// Fetch takes what the consumer has ready; on a starved
			// machine the server can still be catching up with the
			// publishes and acks before, so wait until it holds exactly
			// the jobs left, none of them out for delivery.
			waitPending(t, q, left)
			left -= tt.want
			ds, err := q.Fetch(ctx, tt.max, 100*time.Millisecond)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if len(ds) != tt.want {
				t.Errorf("Fetch(%d) = %d deliveries; want %d", tt.max, len(ds), tt.want)
			}
			for _, d := range ds {
				if err := d.Ack(ctx); err != nil {
					t.Fatalf("Ack: %v", err)
				}
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := q.Fetch(cctx, 1, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch(canceled ctx) = %v; want context.Canceled", err)
	}
}

// TestFetchWakesOnPublish checks that a waiting Fetch returns when a job
// arrives rather than at the end of its wait.
func TestFetchWakesOnPublish(t *testing.T) {
	q, _ := openQueue(t, Config{})
	ctx := context.Background()
	got := make(chan []*Delivery, 1)
	go func() {
		ds, _ := q.Fetch(ctx, 10, time.Minute)
		got <- ds
	}()
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if err := q.Publish(ctx, testJob(1)); err != nil {
			return err
		}
		select {
		case ds := <-got:
			if len(ds) != 1 {
				t.Fatalf("Fetch = %d deliveries; want 1", len(ds))
			}
			return nil
		default:
			return errors.New("fetch still waiting")
		}
	})
}

func TestDeadLetters(t *testing.T) {
	q, nc := openQueue(t, Config{MaxDeliver: 2, AckWait: 500 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j := testJob(1)
	if err := q.Publish(ctx, j); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		d := fetchOne(t, q)
		if d.Attempt != attempt || d.Last() != (attempt == 2) {
			t.Fatalf("delivery attempt = %d, last = %v; want %d", d.Attempt, d.Last(), attempt)
		}
		if err := d.Nak(0); err != nil {
			t.Fatalf("Nak: %v", err)
		}
	}
	expectNoDelivery(t, q)

	var (
		mu    sync.Mutex
		calls []string
	)
	done := make(chan error, 1)
	go func() {
		done <- q.RunDeadLetters(ctx, func(_ context.Context, got job.Job, reason string) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, got.ImageID+": "+reason)
			return nil
		})
	}()
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := streamMsgs(t, nc, DLQStream); n != 1 {
			return errors.New("dlq has " + strconv.FormatUint(n, 10) + " messages; want 1")
		}
		if n := streamMsgs(t, nc, JobsStream); n != 0 {
			return errors.New("jobs stream still has the job")
		}
		mu.Lock()
		defer mu.Unlock()
		if len(calls) != 1 {
			return errors.New("fn not called yet")
		}
		return nil
	})
	js, _ := jetstream.New(nc)
	st, _ := js.Stream(ctx, DLQStream)
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("dlq GetMsg: %v", err)
	}
	if got := m.Header.Get(HeaderDeliveries); got != "2" {
		t.Errorf("dlq %s = %q; want 2", HeaderDeliveries, got)
	}
	if got := m.Header.Get(HeaderStreamSeq); got != "1" {
		t.Errorf("dlq %s = %q; want 1", HeaderStreamSeq, got)
	}
	if got := m.Header.Get(HeaderImageID); got != j.ImageID {
		t.Errorf("dlq %s = %q; want %q", HeaderImageID, got, j.ImageID)
	}

	// The same advisory seen again is a no-op.
	adv := `{"stream":"` + JobsStream + `","consumer":"` + WorkersConsumer + `","stream_seq":1,"deliveries":2}`
	if _, err := js.Publish(ctx, maxDeliveriesSubject, []byte(adv)); err != nil {
		t.Fatalf("replay advisory: %v", err)
	}
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := streamMsgs(t, nc, AdvisoriesStream); n != 0 {
			return errors.New("replayed advisory not handled")
		}
		return nil
	})
	mu.Lock()
	if len(calls) != 1 {
		t.Errorf("fn calls = %q; want one", calls)
	}
	mu.Unlock()
	if n := streamMsgs(t, nc, DLQStream); n != 1 {
		t.Errorf("dlq messages after replay = %d; want 1", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunDeadLetters = %v; want nil", err)
	}
}

// TestDeadLetterRetriesFn checks that a failing fn leaves the job in place
// and is retried.
func TestDeadLetterRetriesFn(t *testing.T) {
	q, nc := openQueue(t, Config{MaxDeliver: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := q.Publish(ctx, testJob(1)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := fetchOne(t, q).Nak(0); err != nil {
		t.Fatalf("Nak: %v", err)
	}
	expectNoDelivery(t, q)
	var (
		mu    sync.Mutex
		calls int
	)
	go q.RunDeadLetters(ctx, func(context.Context, job.Job, string) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return errors.New("store down")
		}
		return nil
	})
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if calls < 2 {
			if calls == 1 && streamMsgs(t, nc, JobsStream) != 1 {
				t.Fatal("job deleted although fn failed")
			}
			return errors.New("fn not retried yet")
		}
		if n := streamMsgs(t, nc, JobsStream); n != 0 {
			return errors.New("job not deleted after fn succeeded")
		}
		return nil
	})
}

func TestWorkerDeadLetter(t *testing.T) {
	q, nc := openQueue(t, Config{})
	ctx := context.Background()
	if err := q.Publish(ctx, testJob(1)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	d := fetchOne(t, q)
	if err := q.DeadLetter(ctx, d, "undecodable image"); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := streamMsgs(t, nc, JobsStream); n != 0 {
			return errors.New("terminated job still in the jobs stream")
		}
		return nil
	})
	js, _ := jetstream.New(nc)
	st, _ := js.Stream(ctx, DLQStream)
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("dlq GetMsg: %v", err)
	}
	if got := m.Header.Get(HeaderReason); got != "undecodable image" {
		t.Errorf("dlq reason = %q; want %q", got, "undecodable image")
	}
}

func TestDepth(t *testing.T) {
	q, _ := openQueue(t, Config{})
	ctx := context.Background()
	got, err := q.Depth(ctx)
	if err != nil {
		t.Fatalf("Depth: %v", err)
	}
	if got != (Depth{}) {
		t.Errorf("Depth of empty queue = %+v; want zero", got)
	}
	for i := 0; i < 5; i++ {
		if err := q.Publish(ctx, testJob(i)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	// Fetch takes what the consumer has ready; on a starved machine the
	// server can still be catching up with the publishes (as in
	// TestFetchBatch), so wait until it holds all five.
	waitPending(t, q, 5)
	ds, err := q.Fetch(ctx, 2, time.Second)
	if err != nil || len(ds) != 2 {
		t.Fatalf("Fetch = %d, %v; want 2 deliveries", len(ds), err)
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		got, err := q.Depth(ctx)
		if err != nil {
			return err
		}
		if got.Pending != 3 || got.AckPending != 2 || got.Backlog() != 5 {
			return errors.New("depth not 3+2 yet")
		}
		if got.OldestAge <= 0 {
			return errors.New("oldest age not positive")
		}
		return nil
	})
	for _, d := range ds {
		if err := d.Ack(ctx); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		got, err := q.Depth(ctx)
		if err != nil {
			return err
		}
		if got.Pending != 3 || got.AckPending != 0 {
			return errors.New("depth not 3+0 after acks")
		}
		return nil
	})
}

// Progress announcements reach subscribers live, are stored in no stream,
// and do not reach outcome subscribers.
func TestProgress(t *testing.T) {
	q, nc := openQueue(t, Config{})
	progress := make(chan job.Outcome, 10)
	outcomes := make(chan job.Outcome, 10)
	stop, err := q.SubscribeProgress(func(o job.Outcome) { progress <- o })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	stopOutcomes, err := q.SubscribeOutcomes(func(o job.Outcome) { outcomes <- o })
	if err != nil {
		t.Fatal(err)
	}
	defer stopOutcomes()
	id := testJob(7).ImageID
	if err := q.PublishProgress("t1", id); err != nil {
		t.Fatalf("PublishProgress: %v", err)
	}
	select {
	case o := <-progress:
		if o.ImageID != id || o.Tenant != "t1" || o.Status != job.StatusProcessing {
			t.Errorf("progress = %+v; want %s of t1 processing", o, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no progress announcement arrived")
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-outcomes:
		t.Errorf("progress reached the outcome subscribers: %+v", o)
	default:
	}
	if n := streamMsgs(t, nc, ResultsStream); n != 0 {
		t.Errorf("results stream = %d messages; want none", n)
	}
}

func TestSubscribeOutcomes(t *testing.T) {
	q, nc := openQueue(t, Config{})
	ctx := context.Background()
	got := make(chan job.Outcome, 10)
	stop, err := q.SubscribeOutcomes(func(o job.Outcome) { got <- o })
	if err != nil {
		t.Fatalf("SubscribeOutcomes: %v", err)
	}
	want := job.Outcome{ImageID: testJob(1).ImageID, Tenant: "t1", Status: job.StatusDone,
		Result: &job.Result{Labels: []job.Label{{Label: "tabby", Score: 0.9}}}, FinishedAt: time.Unix(1700000001, 0).UTC()}
	if err := q.PublishOutcome(ctx, want); err != nil {
		t.Fatalf("PublishOutcome: %v", err)
	}
	o := <-got
	if o.ImageID != want.ImageID || o.Status != want.Status || o.Result == nil || o.Result.Labels[0] != want.Result.Labels[0] {
		t.Errorf("outcome = %+v; want %+v", o, want)
	}
	// Same outcome again is deduplicated in the stream.
	if err := q.PublishOutcome(ctx, want); err != nil {
		t.Fatalf("PublishOutcome again: %v", err)
	}
	if n := streamMsgs(t, nc, ResultsStream); n != 1 {
		t.Errorf("results stream = %d messages; want 1", n)
	}
	stop()
	<-got // the duplicate still reached the live subscription
	second := want
	second.Status = job.StatusFailed
	if err := q.PublishOutcome(ctx, second); err != nil {
		t.Fatalf("PublishOutcome: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	select {
	case o := <-got:
		t.Errorf("outcome %+v delivered after stop", o)
	default:
	}
}

// TestRestartKeepsJobs checks durability: unacknowledged jobs survive a
// restart of the embedded server on the same dir.
func TestRestartKeepsJobs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := natsembed.Start(natsembed.Config{Dir: dir, SyncAlways: true, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	nc, err := s.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	q, err := Open(ctx, nc, Config{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := q.Publish(ctx, testJob(i)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	d := fetchOne(t, q) // delivered, never acked
	nc.Close()
	s.Shutdown()

	nc2 := connect(t, startServer(t, dir))
	q2, err := Open(ctx, nc2, Config{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Open after restart: %v", err)
	}
	seen := map[string]bool{}
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		// The unacked one comes back once its AckWait (30s) passes; the
		// other two are pending right away.
		ds, err := q2.Fetch(ctx, 10, 200*time.Millisecond)
		if err != nil {
			return err
		}
		for _, d := range ds {
			seen[d.Job.ImageID] = true
			_ = d.Ack(ctx)
		}
		if len(seen) != 2 {
			return errors.New("pending jobs not all back")
		}
		return nil
	})
	if seen[d.Job.ImageID] {
		t.Errorf("in-flight job %s redelivered before its AckWait", d.Job.ImageID)
	}
	dep, err := q2.Depth(ctx)
	if err != nil {
		t.Fatalf("Depth: %v", err)
	}
	if dep.AckPending != 1 {
		t.Errorf("AckPending after restart = %d; want 1 (the unacked job)", dep.AckPending)
	}
}

// TestExternalServer runs the basic flow against the machine's nats-server
// on 127.0.0.1:4222 after deleting the Glimpse streams there. It is skipped
// when nothing listens, unless GLIMPSE_STRICT_TESTS=1.
func TestExternalServer(t *testing.T) {
	const addr = "127.0.0.1:4222"
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
			t.Fatalf("no nats-server on %s: %v", addr, err)
		}
		t.Skipf("no nats-server on %s: %v", addr, err)
	}
	c.Close()
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	t.Logf("server version %s", nc.ConnectedServerVersion())
	ctx := context.Background()
	js, _ := jetstream.New(nc)
	deleteStreams := func() {
		for _, name := range []string{JobsStream, ResultsStream, DLQStream, AdvisoriesStream} {
			if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Fatalf("DeleteStream(%s): %v", name, err)
			}
		}
	}
	deleteStreams()
	t.Cleanup(deleteStreams)
	q, err := Open(ctx, nc, Config{Logger: quietLogger(), MaxDeliver: 2, AckWait: 500 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := Open(ctx, nc, Config{Logger: quietLogger(), MaxDeliver: 2, AckWait: 500 * time.Millisecond}); err != nil {
		t.Fatalf("Open again: %v", err)
	}
	t.Run("basic", func(t *testing.T) { basicFlow(t, q, nc) })
	t.Run("term", func(t *testing.T) {
		if err := q.Publish(ctx, testJob(2)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if err := q.DeadLetter(ctx, fetchOne(t, q), "bad image"); err != nil {
			t.Fatalf("DeadLetter: %v", err)
		}
		checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if n := streamMsgs(t, nc, JobsStream); n != 0 {
				return errors.New("terminated job still in the jobs stream")
			}
			return nil
		})
	})
	t.Run("max deliveries", func(t *testing.T) {
		if err := q.Publish(ctx, testJob(3)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		for i := 0; i < 2; i++ {
			if err := fetchOne(t, q).Nak(0); err != nil {
				t.Fatalf("Nak: %v", err)
			}
		}
		expectNoDelivery(t, q)
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		called := make(chan string, 2)
		go q.RunDeadLetters(rctx, func(_ context.Context, j job.Job, _ string) error {
			called <- j.ImageID
			return nil
		})
		if got := <-called; got != testJob(3).ImageID {
			t.Errorf("dead lettered %s; want %s", got, testJob(3).ImageID)
		}
		checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if n := streamMsgs(t, nc, JobsStream); n != 0 {
				return errors.New("dead-lettered job still in the jobs stream")
			}
			return nil
		})
	})
}

func TestVersionAtLeast(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"2.9.10", false}, {"2.10.3", false}, {"2.10.4", true}, {"2.10.22", true},
		{"2.11.0-beta.1", true}, {"3.0.0", true}, {"", false}, {"x.y", false},
	}
	for _, tt := range tests {
		t.Run(tt.v, func(t *testing.T) {
			if got := versionAtLeast(tt.v, 2, 10, 4); got != tt.want {
				t.Errorf("versionAtLeast(%q, 2.10.4) = %v; want %v", tt.v, got, tt.want)
			}
		})
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run("sync_always="+strconv.FormatBool(sync), func(b *testing.B) {
			s, err := natsembed.Start(natsembed.Config{Dir: b.TempDir(), SyncAlways: sync, Logger: quietLogger()})
			if err != nil {
				b.Fatalf("Start: %v", err)
			}
			defer s.Shutdown()
			q, err := Open(context.Background(), connect(b, s), Config{Logger: quietLogger()})
			if err != nil {
				b.Fatalf("Open: %v", err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := q.Publish(ctx, testJob(i)); err != nil {
					b.Fatalf("Publish: %v", err)
				}
			}
		})
	}
}

func BenchmarkFetchAck(b *testing.B) {
	q, _ := openQueue(b, Config{})
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if err := q.Publish(ctx, testJob(i)); err != nil {
			b.Fatalf("Publish: %v", err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		ds, err := q.Fetch(ctx, 100, time.Second)
		if err != nil {
			b.Fatalf("Fetch: %v", err)
		}
		for _, d := range ds {
			if err := d.Ack(ctx); err != nil {
				b.Fatalf("Ack: %v", err)
			}
		}
		n += len(ds)
	}
}

func TestHas(t *testing.T) {
	q, _ := openQueue(t, Config{})
	ctx := context.Background()
	j := job.Job{ImageID: "img_0123456789abcdef01234567", Tenant: "t", BlobKey: "inputs/t/x"}
	if has, err := q.Has(ctx, j.ImageID); err != nil || has {
		t.Fatalf("Has before publish = %v, %v; want false", has, err)
	}
	if err := q.Publish(ctx, j); err != nil {
		t.Fatal(err)
	}
	if has, err := q.Has(ctx, j.ImageID); err != nil || !has {
		t.Fatalf("Has after publish = %v, %v; want true", has, err)
	}
	ds, err := q.Fetch(ctx, 1, 5*time.Second)
	if err != nil || len(ds) != 1 {
		t.Fatalf("fetch = %d, %v", len(ds), err)
	}
	if has, _ := q.Has(ctx, j.ImageID); !has {
		t.Error("Has while a worker holds the job = false; want true")
	}
	if err := ds[0].Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if has, err := q.Has(ctx, j.ImageID); err != nil || has {
		t.Errorf("Has after ack = %v, %v; want false", has, err)
	}
}

// countingSyncer counts Sync calls and can fail them.
type countingSyncer struct {
	n   atomic.Int64
	err error
}

func (c *countingSyncer) Sync(context.Context) error {
	c.n.Add(1)
	return c.err
}

// TestSyncerMakesPublishesDurable checks that with a Syncer (an embedded
// server that does not fsync itself) every stored publish is flushed
// before it returns — a new job, a duplicate, an outcome, a dead letter —
// and that a failed flush fails the publish.
func TestSyncerMakesPublishesDurable(t *testing.T) {
	sy := &countingSyncer{}
	q, _ := openQueue(t, Config{Syncer: sy, MaxDeliver: 1, AckWait: 500 * time.Millisecond})
	ctx := context.Background()
	if sy.n.Load() != 1 {
		t.Errorf("Open flushed %d times; want 1 (the streams)", sy.n.Load())
	}
	step := func(what string, fn func() error) {
		t.Helper()
		before := sy.n.Load()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := sy.n.Load() - before; got != 1 {
			t.Errorf("%s flushed %d times; want 1", what, got)
		}
	}
	j := testJob(1)
	step("Publish", func() error { return q.Publish(ctx, j) })
	step("Publish (duplicate)", func() error { return q.Publish(ctx, j) })
	step("PublishOutcome", func() error {
		return q.PublishOutcome(ctx, job.Outcome{ImageID: j.ImageID, Tenant: j.Tenant, Status: job.StatusDone})
	})
	d := fetchOne(t, q)
	step("DeadLetter", func() error { return q.DeadLetter(ctx, d, "test") })

	sy.err = errors.New("disk on fire")
	if err := q.Publish(ctx, testJob(2)); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Publish with a failing flush = %v; want its error", err)
	}
}
