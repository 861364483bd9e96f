package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// AnalyticsConsumer is the durable consumer of the results stream that the
// analytics loader reads.
const AnalyticsConsumer = "glimpse-analytics"

// Defaults of a results consumer.
const (
	outcomeAckWait       = 30 * time.Second
	outcomeMaxAckPending = 4096
)

// OutcomeConsumer is a durable pull consumer of the results stream: unlike
// SubscribeOutcomes it remembers, in JetStream, how far it got, so a reader
// that stops and starts again resumes where it left off and misses nothing
// the stream still holds. Several processes may read one consumer; each
// outcome goes to one of them. An outcome that is not acknowledged in time
// is delivered again, so readers must be idempotent.
type OutcomeConsumer struct {
	q    *Queue
	c    jetstream.Consumer
	name string
}

// OutcomeDelivery is one outcome handed to a reader, to be settled with Ack
// or Nak.
type OutcomeDelivery struct {
	Outcome job.Outcome
	// Seq is the outcome's sequence in the results stream.
	Seq uint64
	// Attempt is the 1-based delivery count.
	Attempt int

	msg jetstream.Msg
}

// ResultsConsumer creates (or binds to) the durable consumer name of the
// results stream. A new consumer starts at the first outcome the stream
// holds (it keeps the latest outcome of each image for
// Config.ResultsMaxAge), so a first start loads what came before it.
func (q *Queue) ResultsConsumer(ctx context.Context, name string) (*OutcomeConsumer, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errors.New("queue: results consumer needs a name")
	}
	c, err := q.js.CreateOrUpdateConsumer(ctx, ResultsStream, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "Glimpse outcomes reader " + name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       outcomeAckWait,
		MaxDeliver:    -1, // a reader that cannot store an outcome retries it for ever
		MaxAckPending: outcomeMaxAckPending,
		MaxWaiting:    512,
		FilterSubject: ResultsSubject + ".>",
	})
	if err != nil {
		return nil, fmt.Errorf("queue: results consumer %s: %w", name, err)
	}
	return &OutcomeConsumer{q: q, c: c, name: name}, nil
}

// Fetch pulls up to n outcomes, waiting at most wait for the first one;
// it returns (nil, nil) when none came in time. Messages that are not an
// outcome are terminated and logged, not returned.
func (c *OutcomeConsumer) Fetch(ctx context.Context, n int, wait time.Duration) ([]*OutcomeDelivery, error) {
	if err := c.q.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	msgs, err := pull(ctx, c.c, max(n, 1), wait)
	if err != nil && len(msgs) == 0 {
		return nil, err
	}
	var out []*OutcomeDelivery
	for _, msg := range msgs {
		d := &OutcomeDelivery{msg: msg}
		if md, err := msg.Metadata(); err == nil {
			d.Seq = md.Sequence.Stream
			d.Attempt = int(md.NumDelivered)
		}
		if err := json.Unmarshal(msg.Data(), &d.Outcome); err != nil || d.Outcome.ImageID == "" {
			c.q.log.Warn("terminating malformed outcome", "consumer", c.name, "subject", msg.Subject(), "seq", d.Seq, "err", err)
			_ = msg.Term()
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// Pending is how many outcomes the consumer has not yet been given, plus
// those given and not yet acknowledged: its lag behind the stream.
func (c *OutcomeConsumer) Pending(ctx context.Context) (uint64, error) {
	ci, err := c.c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("queue: results consumer %s: %w", c.name, err)
	}
	return ci.NumPending + uint64(ci.NumAckPending), nil
}

// Ack tells the server the outcome is handled. It does not wait for a
// confirmation: a lost ack only means the outcome comes again.
func (d *OutcomeDelivery) Ack() error {
	if err := d.msg.Ack(); err != nil {
		return fmt.Errorf("queue: ack outcome %s: %w", d.Outcome.ImageID, err)
	}
	return nil
}

// Nak asks for the outcome again after delay.
func (d *OutcomeDelivery) Nak(delay time.Duration) error {
	if err := d.msg.NakWithDelay(delay); err != nil {
		return fmt.Errorf("queue: nak outcome %s: %w", d.Outcome.ImageID, err)
	}
	return nil
}
