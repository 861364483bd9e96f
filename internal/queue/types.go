package queue

import (
	"errors"
	"time"
)

// Stream, subject and consumer names. They are public so that operators can
// point tools (KEDA's NATS JetStream scaler, nats CLI) at them.
const (
	JobsStream  = "GLIMPSE_JOBS"
	JobsSubject = "glimpse.jobs" // a job goes to glimpse.jobs.<image id>
	// EventsSubject is where a bucket's ObjectCreated notifications (S3 event
	// JSON) go to start recognition without the API; it is inside the jobs
	// stream, so workers take them like jobs.
	EventsSubject  = "glimpse.jobs.s3"
	ResultsStream  = "GLIMPSE_RESULTS"
	ResultsSubject = "glimpse.results" // outcomes go to glimpse.results.<image id>
	// ProgressSubject carries announcements that a worker started on an
	// image (glimpse.progress.<image id>): plain NATS, no stream, so they
	// cost no disk and a missed one only delays a status on screen.
	ProgressSubject = "glimpse.progress"
	DLQStream       = "GLIMPSE_DLQ"
	DLQSubject      = "glimpse.dlq"
	WorkersConsumer = "glimpse-workers"
)

// ErrClosed is returned by calls on a closed Queue.
var ErrClosed = errors.New("queue: closed")

// Depth is how much work waits for the workers.
type Depth struct {
	Pending    uint64        // published, not yet delivered
	AckPending uint64        // delivered, not yet acknowledged
	OldestAge  time.Duration // age of the oldest unacknowledged job, 0 when none
}

// Backlog is Pending + AckPending, what scalers target.
func (d Depth) Backlog() uint64 { return d.Pending + d.AckPending }

// AdvisoriesStream keeps the JetStream MAX_DELIVERIES advisories of the
// workers consumer, so that RunDeadLetters handles every exhausted job even
// when no dead-letter runner was listening at the moment it gave up.
const (
	AdvisoriesStream    = "GLIMPSE_ADVISORIES"
	DeadLettersConsumer = "glimpse-dead-letters"
)

// Headers set on messages copied to the DLQ stream.
const (
	HeaderReason     = "Glimpse-Dlq-Reason"
	HeaderDeliveries = "Glimpse-Dlq-Deliveries"
	HeaderStreamSeq  = "Glimpse-Dlq-Stream-Seq"
	HeaderImageID    = "Glimpse-Image-Id"
)

// ReasonMaxDeliveries is the DLQ reason of a job whose every delivery
// failed without a verdict (timeouts, naks, crashed workers).
const ReasonMaxDeliveries = "max deliveries exceeded"

// ErrBadConfig is wrapped by Open when Config is invalid.
var ErrBadConfig = errors.New("queue: bad config")

// ErrEmptyImageID is returned when publishing a job or outcome without an
// image id, which is also the deduplication key.
var ErrEmptyImageID = errors.New("queue: empty image id")
