package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxDeliveriesAdvisory is the part of the server's
// io.nats.jetstream.advisory.v1.max_deliver event that we use.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// deadLetterRetry is how long a failed dead-letter step waits before the
// advisory is handled again.
const deadLetterRetry = 5 * time.Second

// RunDeadLetters handles jobs that exhausted MaxDeliver until ctx is done.
//
// The server announces each one with a MAX_DELIVERIES advisory, which the
// AdvisoriesStream keeps until handled, so jobs given up while no runner was
// up are handled on the next start; several processes may run it at once.
// For each advisory it reads the job by sequence from the jobs stream, copies
// it to the DLQ stream (headers HeaderReason, HeaderDeliveries,
// HeaderStreamSeq), calls fn, and only then deletes the job from the jobs
// stream and acknowledges the advisory. If fn fails the advisory is retried
// later, so fn is called at least once per job and must be idempotent; an
// advisory seen again after the job was deleted is a no-op. A job that was
// acknowledged late, after the advisory, is gone too and is skipped.
//
// It returns nil when ctx is done, or an error if it cannot start.
func (q *Queue) RunDeadLetters(ctx context.Context, fn func(ctx context.Context, j job.Job, reason string) error) error {
	if err := q.check(); err != nil {
		return err
	}
	cons, err := q.js.CreateOrUpdateConsumer(ctx, AdvisoriesStream, jetstream.ConsumerConfig{
		Durable:       DeadLettersConsumer,
		Description:   "Glimpse dead-letter runner",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       time.Minute,
		MaxDeliver:    -1,
		MaxAckPending: 64,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("queue: dead letters: consumer: %w", err)
	}
	jobs, err := q.js.Stream(ctx, JobsStream)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("queue: dead letters: %w", err)
	}
	for ctx.Err() == nil {
		msgs, err := pull(ctx, cons, 16, 5*time.Second)
		if err != nil && ctx.Err() == nil {
			q.log.Warn("dead letters: fetch advisories", "err", err)
			wait(ctx, time.Second)
		}
		for _, m := range msgs {
			q.handleAdvisory(ctx, jobs, m, fn)
		}
	}
	return nil
}

// wait blocks for d or until ctx is done.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// handleAdvisory dead letters the job one advisory is about and settles the
// advisory.
func (q *Queue) handleAdvisory(ctx context.Context, jobs jetstream.Stream, m jetstream.Msg,
	fn func(ctx context.Context, j job.Job, reason string) error) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data(), &adv); err != nil || adv.StreamSeq == 0 {
		q.log.Error("dead letters: dropping malformed advisory", "err", err, "body", string(m.Data()))
		_ = m.Term()
		return
	}
	log := q.log.With("seq", adv.StreamSeq, "deliveries", adv.Deliveries)
	retry := func(step string, err error) {
		log.Error("dead letters: "+step, "err", err)
		_ = m.NakWithDelay(deadLetterRetry)
	}
	raw, err := jobs.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		log.Debug("dead letters: job already gone")
		_ = m.DoubleAck(ctx)
		return
	}
	if err != nil {
		retry("read job", err)
		return
	}
	var j job.Job
	jerr := json.Unmarshal(raw.Data, &j)
	reason := fmt.Sprintf("%s (%d deliveries)", ReasonMaxDeliveries, adv.Deliveries)
	if err := q.publishDLQ(ctx, raw.Data, raw.Header, j.ImageID, adv.StreamSeq, int(adv.Deliveries), reason); err != nil {
		retry("copy to dlq", err)
		return
	}
	if jerr == nil && j.ImageID != "" {
		if err := fn(ctx, j, reason); err != nil {
			retry("mark failed", fmt.Errorf("image %s: %w", j.ImageID, err))
			return
		}
	} else {
		log.Error("dead letters: job is not JSON; copied to the dlq without marking an image", "err", jerr)
	}
	if err := jobs.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		retry("delete job", err)
		return
	}
	if err := m.DoubleAck(ctx); err != nil {
		log.Warn("dead letters: ack advisory", "err", err)
	}
	q.m.deadLettered.WithLabelValues("max_deliveries").Inc()
	log.Info("job dead lettered", "image_id", j.ImageID, "reason", reason)
}

// DeadLetter is the worker-side way to give up on a job: it copies d to the
// DLQ stream with reason, then terminates it. The worker marks the image
// failed itself.
func (q *Queue) DeadLetter(ctx context.Context, d *Delivery, reason string) error {
	if err := q.check(); err != nil {
		return err
	}
	if err := q.publishDLQ(ctx, d.Raw, d.msg.Headers(), d.Job.ImageID, d.Seq, d.Attempt, reason); err != nil {
		return err
	}
	if err := d.Term(reason); err != nil {
		return err
	}
	q.m.deadLettered.WithLabelValues("worker").Inc()
	return nil
}

// publishDLQ copies a job to the DLQ stream. The message id derives from
// the job's stream sequence, so copying the same job twice stores it once.
func (q *Queue) publishDLQ(ctx context.Context, data []byte, h nats.Header, imageID string, seq uint64, deliveries int, reason string) error {
	msg := &nats.Msg{Subject: DLQSubject, Data: data, Header: nats.Header{}}
	if v := h.Get(HeaderImageID); v != "" {
		imageID = v
	}
	if imageID != "" {
		msg.Header.Set(HeaderImageID, imageID)
	}
	msg.Header.Set(HeaderReason, reason)
	msg.Header.Set(HeaderDeliveries, strconv.Itoa(deliveries))
	msg.Header.Set(HeaderStreamSeq, strconv.FormatUint(seq, 10))
	id := "dlq." + strconv.FormatUint(seq, 10) + "." + imageID
	_, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(DLQStream))
	if err == nil {
		err = q.sync(ctx)
	}
	if err != nil {
		return fmt.Errorf("queue: dead letter job %s: %w", imageID, err)
	}
	return nil
}
