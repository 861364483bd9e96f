package queue

import (
	"context"
	"fmt"
	"github.com/glimpse-oss/glimpse/internal/s3event"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/nats-io/nats.go/jetstream"
)

// Delivery is one job handed to a worker. The worker must settle it with
// exactly one of Ack, Nak, Term or Queue.DeadLetter; until then it may call
// InProgress to hold on to it past AckWait.
type Delivery struct {
	// Job is the decoded job; zero when the message is a storage event.
	Job job.Job
	// Events holds the records of an S3 event notification, when the
	// message is one rather than a job.
	Events []s3event.Record
	// Attempt is the 1-based delivery count of this job.
	Attempt int
	// MaxDeliver is the consumer's delivery limit.
	MaxDeliver int
	// Raw is the message body as published.
	Raw []byte
	// Seq is the job's sequence number in the jobs stream.
	Seq uint64
	// Published is when the server stored the job.
	Published time.Time

	q   *Queue
	msg jetstream.Msg
}

// Last reports whether this is the final attempt: if it fails, the job is
// dead lettered rather than redelivered.
func (d *Delivery) Last() bool { return d.Attempt >= d.MaxDeliver }

// Ack acknowledges the job and waits for the server to confirm, so that a
// nil error means it will not be redelivered.
func (d *Delivery) Ack(ctx context.Context) error {
	if err := d.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("queue: ack job %s: %w", d.Job.ImageID, err)
	}
	d.q.m.settled.WithLabelValues("ack").Inc()
	return nil
}

// Nak asks for the job to be redelivered after delay (at once when delay
// is 0). It counts as an attempt.
func (d *Delivery) Nak(delay time.Duration) error {
	var err error
	if delay > 0 {
		err = d.msg.NakWithDelay(delay)
	} else {
		err = d.msg.Nak()
	}
	if err != nil {
		return fmt.Errorf("queue: nak job %s: %w", d.Job.ImageID, err)
	}
	d.q.m.settled.WithLabelValues("nak").Inc()
	return nil
}

// InProgress resets the job's AckWait timer; long analyses call it
// periodically.
func (d *Delivery) InProgress() error {
	if err := d.msg.InProgress(); err != nil {
		return fmt.Errorf("queue: in progress job %s: %w", d.Job.ImageID, err)
	}
	return nil
}

// Term stops all further deliveries of the job; the server drops it from
// the jobs stream. The reason goes into the server's TERMINATED advisory
// on servers from 2.10.4 on (older ones would ignore a reasoned term, so
// they get a plain one).
func (d *Delivery) Term(reason string) error {
	var err error
	if d.q.termReason && reason != "" {
		err = d.msg.TermWithReason(reason)
	} else {
		err = d.msg.Term()
	}
	if err != nil {
		return fmt.Errorf("queue: term job %s: %w", d.Job.ImageID, err)
	}
	d.q.m.settled.WithLabelValues("term").Inc()
	return nil
}
