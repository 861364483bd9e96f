package queue

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the queue's Prometheus collectors.
type metrics struct {
	published      *prometheus.CounterVec
	publishErrors  *prometheus.CounterVec
	duplicates     prometheus.Counter
	publishSeconds prometheus.Histogram
	fetched        prometheus.Counter
	malformed      prometheus.Counter
	settled        *prometheus.CounterVec
	deadLettered   *prometheus.CounterVec
}

// newMetrics builds the collectors and registers them with reg when it is
// not nil. Collectors already registered by another Queue on the same
// registry are shared.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "glimpse", Subsystem: "queue", Name: "published_total",
			Help: "Messages stored by JetStream, by kind (job, republish, outcome).",
		}, []string{"kind"}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "glimpse", Subsystem: "queue", Name: "publish_errors_total",
			Help: "Publishes that failed, by kind.",
		}, []string{"kind"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "glimpse", Subsystem: "queue", Name: "duplicate_publishes_total",
			Help: "Job publishes ignored as duplicates of an image id.",
		}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "glimpse", Subsystem: "queue", Name: "publish_seconds",
			Help:    "Time from job publish to the server's durable ack.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}),
		fetched: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "glimpse", Subsystem: "queue", Name: "fetched_total",
			Help: "Jobs delivered to workers, redeliveries included.",
		}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "glimpse", Subsystem: "queue", Name: "malformed_total",
			Help: "Job messages terminated because they were not a JSON job.",
		}),
		settled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "glimpse", Subsystem: "queue", Name: "settled_total",
			Help: "Deliveries settled by workers, by how (ack, nak, term).",
		}, []string{"how"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "glimpse", Subsystem: "queue", Name: "dead_lettered_total",
			Help: "Jobs copied to the DLQ, by path (max_deliveries, worker).",
		}, []string{"path"}),
	}
	if reg == nil {
		return m
	}
	m.published = register(reg, m.published)
	m.publishErrors = register(reg, m.publishErrors)
	m.duplicates = register(reg, m.duplicates)
	m.publishSeconds = register(reg, m.publishSeconds)
	m.fetched = register(reg, m.fetched)
	m.malformed = register(reg, m.malformed)
	m.settled = register(reg, m.settled)
	m.deadLettered = register(reg, m.deadLettered)
	return m
}

// register registers c, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
