package worker

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	workers     prometheus.Gauge
	inflight    prometheus.Gauge
	jobs        *prometheus.CounterVec
	fetchErrors prometheus.Counter
	duration    prometheus.Histogram
	latency     prometheus.Histogram
	stage       *prometheus.HistogramVec
	// outageRetries counts store and blob calls tried again after failing.
	outageRetries *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := prometheus.ExponentialBuckets(0.002, 2, 14) // 2 ms … 16 s
	m := &metrics{
		workers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "glimpse_workers", Help: "Workers running in this process (draining ones excluded).",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "glimpse_worker_jobs_in_flight", Help: "Jobs being processed in this process.",
		}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glimpse_worker_jobs_total", Help: "Job attempts by how they ended (done, failed, retried, dead, stale, released).",
		}, []string{"outcome"}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "glimpse_worker_fetch_errors_total", Help: "Failed pulls from the jobs queue.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "glimpse_worker_job_seconds", Help: "Time a worker spent on a successful job.", Buckets: buckets,
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "glimpse_job_latency_seconds", Help: "Time from enqueue to a committed result.", Buckets: buckets,
		}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "glimpse_worker_stage_seconds", Help: "Time per stage of a job: decode, analyze (the analyzers), handoff (the analyzed job waiting for the worker's committer), commit (result saved, written and settled).", Buckets: buckets,
		}, []string{"stage"}),
		outageRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glimpse_worker_dependency_retries_total",
			Help: "Store and blob calls tried again after failing (an engine down, a full disk), by step.",
		}, []string{"step"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.workers, m.inflight, m.jobs, m.fetchErrors, m.duration, m.latency, m.stage, m.outageRetries} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
