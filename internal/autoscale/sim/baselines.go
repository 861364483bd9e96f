package sim

import (
	"math"
	"time"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
)

// Each baseline models the published defaults of a scaler in use today,
// simplified to what the simulator can see. They are models, not the real
// controllers.

// Fixed always asks for N workers.
type Fixed struct{ N int }

// Decide returns N.
func (f *Fixed) Decide(autoscale.Observation) int { return f.N }

// Ours runs the autoscale.Policy.
type Ours struct{ P *autoscale.Policy }

// Decide runs the policy.
func (s *Ours) Decide(o autoscale.Observation) int { return s.P.Decide(o).Desired }

// hpa is the Kubernetes HorizontalPodAutoscaler's core: every 15 s a
// recommendation ceil(current × metric/target) (held within a 10% tolerance),
// scale-up limited to max(4 pods, 100%) per period, and scale-down to the
// highest recommendation of the last 5 minutes.
type hpa struct {
	Period, Stabilise time.Duration
	metric            func(o autoscale.Observation, h *hpa) float64 // ratio metric/target; <0: no data
	last              time.Time
	recs              []rec
	cur               int
	samples           []autoscale.Observation
}

type rec struct {
	at time.Time
	n  int
}

func (h *hpa) Decide(o autoscale.Observation) int {
	h.samples = append(h.samples, o)
	if h.cur == 0 {
		h.cur = o.Running
	}
	if !h.last.IsZero() && o.Now.Sub(h.last) < h.Period {
		return h.cur
	}
	h.last = o.Now
	cur := o.Running
	ratio := h.metric(o, h)
	h.samples = h.samples[:0]
	n := cur
	if ratio >= 0 && math.Abs(ratio-1) > 0.1 {
		n = int(math.Ceil(float64(max(o.Ready, 1)) * ratio))
		if o.Ready == 0 {
			n = int(math.Ceil(ratio))
		}
	}
	n = min(n, max(4, 2*cur))
	h.recs = append(h.recs, rec{o.Now, n})
	for len(h.recs) > 0 && o.Now.Sub(h.recs[0].at) > h.Stabilise {
		h.recs = h.recs[1:]
	}
	if n < cur {
		hi := n
		for _, r := range h.recs {
			hi = max(hi, r.n)
		}
		n = min(hi, cur)
	}
	h.cur = n
	return n
}

// NewHPACPU is the HPA on CPU with a 70% utilisation target: per-worker busy
// fraction averaged over the period.
func NewHPACPU() Scaler {
	return &hpa{Period: 15 * time.Second, Stabilise: 5 * time.Minute, metric: func(o autoscale.Observation, h *hpa) float64 {
		var sum float64
		var n int
		for _, s := range h.samples {
			if s.Ready > 0 {
				sum += min(1, float64(s.InService)/float64(s.Ready))
				n++
			}
		}
		if n == 0 {
			return -1
		}
		return sum / float64(n) / 0.7
	}}
}

// NewKEDAQueue is KEDA's queue scaler feeding the HPA an average value of 5
// queued jobs (pending + in service) per replica.
func NewKEDAQueue(perReplica float64) Scaler {
	return &hpa{Period: 15 * time.Second, Stabilise: 5 * time.Minute, metric: func(o autoscale.Observation, h *hpa) float64 {
		return float64(o.Backlog()) / perReplica / float64(max(o.Ready, 1))
	}}
}

// aws models EC2 Auto Scaling target tracking on backlog per instance: the
// target is the acceptable latency over the mean processing time; 1-minute
// datapoints; scale out after 3 breaching datapoints, in after 15.
type aws struct {
	target     float64
	last       time.Time
	sum        float64
	n          int
	high, low  int
	cur        int
	lastMetric float64
}

// NewAWSBacklog returns the AWS model for a latency goal and processing time.
func NewAWSBacklog(latency, processing time.Duration) Scaler {
	return &aws{target: latency.Seconds() / processing.Seconds()}
}

func (a *aws) Decide(o autoscale.Observation) int {
	if a.cur == 0 {
		a.cur = o.Running
	}
	a.sum += float64(o.Backlog()) / float64(max(o.Running, 1))
	a.n++
	if a.last.IsZero() {
		a.last = o.Now
	}
	if o.Now.Sub(a.last) < time.Minute {
		return a.cur
	}
	m := a.sum / float64(a.n)
	a.sum, a.n, a.last = 0, 0, o.Now
	switch {
	case m > a.target:
		a.high, a.low = a.high+1, 0
	case m < a.target*0.9:
		a.low, a.high = a.low+1, 0
	default:
		a.high, a.low = 0, 0
	}
	want := int(math.Ceil(float64(o.Running) * m / a.target))
	if a.high >= 3 && want > o.Running {
		a.cur, a.high = want, 0
	}
	if a.low >= 15 && want < o.Running {
		a.cur, a.low = want, 0
	}
	return a.cur
}

// knative models the Knative Pod Autoscaler with container concurrency 1 at
// 70% target utilisation: concurrency (jobs in the system) averaged over a
// 60 s stable and a 6 s panic window, evaluated every 2 s; panic when the
// panic window wants twice the ready pods, then no scale-down for 60 s;
// scale-down at most halves per evaluation.
type knative struct {
	samples    []autoscale.Observation
	last       time.Time
	panicSince time.Time
	cur        int
}

// NewKnative returns the Knative model.
func NewKnative() Scaler { return &knative{} }

func (k *knative) Decide(o autoscale.Observation) int {
	if k.cur == 0 {
		k.cur = o.Running
	}
	k.samples = append(k.samples, o)
	for len(k.samples) > 0 && o.Now.Sub(k.samples[0].Now) > time.Minute {
		k.samples = k.samples[1:]
	}
	if !k.last.IsZero() && o.Now.Sub(k.last) < 2*time.Second {
		return k.cur
	}
	k.last = o.Now
	avg := func(w time.Duration) float64 {
		var s float64
		var n int
		for _, x := range k.samples {
			if o.Now.Sub(x.Now) <= w {
				s += float64(x.Backlog())
				n++
			}
		}
		return s / float64(max(n, 1))
	}
	const target = 0.7
	stable := int(math.Ceil(avg(time.Minute) / target))
	panicWant := int(math.Ceil(avg(6*time.Second) / target))
	if float64(panicWant) >= 2*float64(max(o.Ready, 1)) {
		k.panicSince = o.Now
	}
	n := stable
	if !k.panicSince.IsZero() && o.Now.Sub(k.panicSince) < time.Minute {
		n = max(panicWant, stable, k.cur)
	}
	if n < k.cur {
		n = max(n, int(math.Ceil(float64(k.cur)/2)))
	}
	k.cur = n
	return n
}
