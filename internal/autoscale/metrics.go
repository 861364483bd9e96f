package autoscale

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	desired, actual, ready, backlog, arrival, service prometheus.Gauge
	decisions, errors                                 *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "glimpse_autoscale_" + name, Help: help})
	}
	m := &metrics{
		desired: g("desired_workers", "Workers the autoscaler wants."),
		actual:  g("actual_workers", "Workers running (asked for and not draining) at the last tick."),
		ready:   g("ready_workers", "Running workers that take jobs at the last tick."),
		backlog: g("backlog", "Jobs pending or in service at the last tick."),
		arrival: g("arrival_rate", "Smoothed job arrival rate, jobs per second."),
		service: g("service_rate", "Measured service rate, jobs per second per worker."),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glimpse_autoscale_decisions_total", Help: "Autoscaler decisions by action (up, down, hold).",
		}, []string{"action"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glimpse_autoscale_errors_total", Help: "Failed autoscaler ticks by the step that failed (depth, actuator, scale).",
		}, []string{"step"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.desired, m.actual, m.ready, m.backlog, m.arrival, m.service, m.decisions, m.errors} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(o Observation, d Decision) {
	m.desired.Set(float64(d.Desired))
	m.actual.Set(float64(o.Running))
	m.ready.Set(float64(o.Ready))
	m.backlog.Set(float64(o.Backlog()))
	m.arrival.Set(d.ArrivalRate)
	m.service.Set(d.ServiceRate)
	m.decisions.WithLabelValues(d.Action).Inc()
}
