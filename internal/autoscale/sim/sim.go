// Package sim is a discrete-time simulator of a job queue and an elastic
// worker fleet. It replays arrival traces against a Scaler — our policy or a
// model of a scaler people use today — and against an offline oracle, and
// reports queue waits, worker-seconds, scale events and reversals.
//
// The model: jobs arrive as a Poisson process whose rate follows the trace;
// each needs an exponentially distributed service time; workers take jobs
// first come, first served. A new worker takes jobs after StartupDelay; a
// removed worker drains (finishes its job) and counts until it exits. The
// scaler sees an observation every Tick, Staleness old.
package sim

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
)

// Params are the simulated world's constants.
type Params struct {
	Step         time.Duration // simulation step (0.1 s by default)
	Tick         time.Duration // how often scalers decide
	StartupDelay time.Duration // from asking for a worker to its first job
	Staleness    time.Duration // age of the metrics scalers see
	ServiceMean  time.Duration // mean time one worker needs per job
	TargetWait   time.Duration // the wait goal, given to every policy and the oracle
	Min, Max     int
	Seed         uint64
	// Tail is simulated after the trace ends with no arrivals, so that
	// slow scale-down is paid for.
	Tail time.Duration
}

// DefaultParams are the CLI's defaults.
func DefaultParams() Params {
	return Params{
		Step:         100 * time.Millisecond,
		Tick:         time.Second,
		StartupDelay: 2 * time.Second,
		ServiceMean:  100 * time.Millisecond,
		TargetWait:   2 * time.Second,
		Min:          1,
		Max:          40,
		Seed:         1,
		Tail:         2 * time.Minute,
	}
}

// Scaler decides the workers for one observation. Implementations keep
// their own state; each run gets a fresh one.
type Scaler interface {
	Decide(o autoscale.Observation) int
}

// Result is one trace × policy run.
type Result struct {
	Trace, Policy string
	Jobs          int
	// Waits in seconds: from arrival to the start of service.
	P50, P99, MaxWait float64
	WorkerSeconds     float64
	ScaleEvents       int
	Reversals         int
	// Timeline is the worker count at every tick (for charts and tests).
	Timeline []int
}

type simJob struct{ arrive, service float64 }

// jobs draws the trace's arrivals and service times for a seed.
func jobs(tr Trace, p Params) []simJob {
	r := rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15))
	step := p.Step.Seconds()
	end := tr.Duration.Seconds()
	var js []simJob
	for t := 0.0; t < end-1e-9; t += step {
		n := poisson(r, tr.Rate(t)*step)
		at := make([]float64, n)
		for i := range at {
			at[i] = t + r.Float64()*step
		}
		slices.Sort(at)
		for _, a := range at {
			js = append(js, simJob{arrive: a, service: r.ExpFloat64() * p.ServiceMean.Seconds()})
		}
	}
	return js
}

func poisson(r *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 50 { // normal approximation
		return max(0, int(math.Round(mean+math.Sqrt(mean)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

type simWorker struct {
	readyAt   float64 // takes jobs from here on
	busyUntil float64 // end of its current job
	draining  bool
}

// world is the queue and fleet in one run.
type world struct {
	p        Params
	js       []simJob
	arrived  int // jobs[:arrived] have arrived
	started  int // jobs[:started] have started (FIFO)
	done     uint64
	ends     []float64 // end times of jobs in service, for completions
	waits    []float64
	workers  []*simWorker
	ws       float64
	events   int
	revs     int
	lastDir  int
	timeline []int
}

// dispatch starts every job that a worker can start before tEnd.
func (w *world) dispatch(t, tEnd float64) {
	for w.started < len(w.js) && w.js[w.started].arrive < tEnd {
		var best *simWorker
		bestAt := math.Inf(1)
		for _, k := range w.workers {
			if k.draining {
				continue
			}
			at := max(k.readyAt, k.busyUntil, t)
			if at < bestAt {
				best, bestAt = k, at
			}
		}
		if best == nil {
			return
		}
		j := w.js[w.started]
		start := max(bestAt, j.arrive)
		if start >= tEnd {
			return
		}
		best.busyUntil = start + j.service
		w.ends = append(w.ends, best.busyUntil)
		w.waits = append(w.waits, start-j.arrive)
		w.started++
	}
}

// advance moves time to tEnd: completions, exits of drained workers and
// worker-seconds.
func (w *world) advance(t, tEnd float64) {
	keep := w.ends[:0]
	for _, e := range w.ends {
		if e <= tEnd {
			w.done++
		} else {
			keep = append(keep, e)
		}
	}
	w.ends = keep
	live := w.workers[:0]
	for _, k := range w.workers {
		if k.draining && k.busyUntil <= t {
			continue
		}
		w.ws += tEnd - t
		live = append(live, k)
	}
	w.workers = live
}

func (w *world) observe(now float64, start time.Time) autoscale.Observation {
	o := autoscale.Observation{
		Now:          start.Add(time.Duration(now * float64(time.Second))),
		Pending:      w.arrived - w.started,
		Completed:    w.done,
		HasCompleted: true,
		CPU:          -1,
	}
	for _, k := range w.workers {
		if k.busyUntil > now {
			o.InService++
		}
		if !k.draining {
			o.Running++
			if k.readyAt <= now {
				o.Ready++
			}
		}
	}
	if o.Pending > 0 {
		o.OldestAge = time.Duration((now - w.js[w.started].arrive) * float64(time.Second))
	}
	if w.p.Max > 0 {
		o.CPU = float64(o.InService) / float64(w.p.Max)
	}
	return o
}

// scale applies a scaler's answer: new workers start after the delay;
// removed ones are those still starting first, then idle, then busy ones
// (which drain).
func (w *world) scale(n int, now float64) {
	n = min(max(n, w.p.Min), w.p.Max)
	var running []*simWorker
	for _, k := range w.workers {
		if !k.draining {
			running = append(running, k)
		}
	}
	if n == len(running) {
		return
	}
	dir := 1
	if n < len(running) {
		dir = -1
	}
	w.events++
	if w.lastDir != 0 && dir != w.lastDir {
		w.revs++
	}
	w.lastDir = dir
	for i := len(running); i < n; i++ {
		w.workers = append(w.workers, &simWorker{readyAt: now + w.p.StartupDelay.Seconds()})
	}
	if dir < 0 {
		// Least useful first: not ready (the last asked for first, as a
		// Kubernetes ReplicaSet does), then idle, then busy.
		slices.SortStableFunc(running, func(a, b *simWorker) int {
			if k := cmpKey(b, now) - cmpKey(a, now); k != 0 {
				return k
			}
			if cmpKey(a, now) == 2 {
				return cmp.Compare(b.readyAt, a.readyAt)
			}
			return 0
		})
		for _, k := range running[:len(running)-n] {
			k.draining = true
		}
	}
}

func cmpKey(k *simWorker, now float64) int {
	switch {
	case k.readyAt > now:
		return 2
	case k.busyUntil <= now:
		return 1
	}
	return 0
}

// Run simulates trace tr with scaler s.
func Run(tr Trace, policy string, s Scaler, p Params) Result {
	p = p.withDefaults()
	w := &world{p: p, js: jobs(tr, p)}
	step, tick := p.Step.Seconds(), p.Tick.Seconds()
	end := tr.Duration.Seconds() + p.Tail.Seconds()
	epoch := time.Unix(1_700_000_000, 0)
	for range p.Min {
		w.workers = append(w.workers, &simWorker{})
	}
	var history []autoscale.Observation // for stale metrics
	nextTick := 0.0
	for i := 0; ; i++ {
		t := float64(i) * step
		if t >= end && w.started == len(w.js) {
			break
		}
		if t >= end+10*tr.Duration.Seconds() { // hopeless: stop
			break
		}
		tEnd := t + step
		if t+1e-9 >= nextTick {
			nextTick += tick
			o := w.observe(t, epoch)
			history = append(history, o)
			seen := o
			if p.Staleness > 0 {
				for len(history) > 1 && o.Now.Sub(history[1].Now) >= p.Staleness {
					history = history[1:]
				}
				seen = history[0]
				seen.Now = o.Now
				seen.Running, seen.Ready = o.Running, o.Ready // the fleet itself is known
			}
			w.scale(s.Decide(seen), t)
			w.timeline = append(w.timeline, o.Running)
		}
		for w.arrived < len(w.js) && w.js[w.arrived].arrive < tEnd {
			w.arrived++
		}
		w.dispatch(t, tEnd)
		w.advance(t, tEnd)
	}
	return w.result(tr.Name, policy, end)
}

func (w *world) result(trace, policy string, end float64) Result {
	waits := w.waits
	for _, j := range w.js[w.started:] { // never served: waited until the end
		waits = append(waits, max(0, end-j.arrive))
	}
	slices.Sort(waits)
	r := Result{Trace: trace, Policy: policy, Jobs: len(w.js), WorkerSeconds: w.ws,
		ScaleEvents: w.events, Reversals: w.revs, Timeline: w.timeline}
	if len(waits) > 0 {
		r.P50 = quantile(waits, 0.5)
		r.P99 = quantile(waits, 0.99)
		r.MaxWait = waits[len(waits)-1]
	}
	return r
}

func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (p Params) withDefaults() Params {
	d := DefaultParams()
	if p.Step <= 0 {
		p.Step = d.Step
	}
	if p.Tick < p.Step {
		p.Tick = max(d.Tick, p.Step)
	}
	if p.ServiceMean <= 0 {
		p.ServiceMean = d.ServiceMean
	}
	if p.TargetWait <= 0 {
		p.TargetWait = d.TargetWait
	}
	if p.Max <= 0 {
		p.Max = d.Max
	}
	return p
}

// Oracle knows every arrival and service time in advance. In a forward pass
// it finds, at every step, the fewest ready workers (never fewer than are
// busy) that leave no waiting job older than the target wait: the laziest
// schedule that still meets the target.
//
// It obeys the same physics as every scaler: a worker takes jobs only
// StartupDelay after it was asked for and is paid from the asking. Knowing
// the future, the oracle asks for each worker exactly StartupDelay before
// the schedule first needs it, and keeps a worker through an idle gap
// shorter than StartupDelay rather than stop and restart it (which would
// cost more): the fleet it pays for at t is the most ready workers the
// schedule needs in [t, t+StartupDelay]. (An oracle that started workers
// instantly would be a bound no scaler facing a start-up delay could
// approach.)
//
// With a start-up delay the laziest schedule is not the cheapest: its fleet
// swings with the deadlines, and every swing up is paid a delay ahead. So
// the oracle also tries schedules with a floor of ready workers that serve
// a share of the work arriving over the next few start-up delays, which
// smooths the fleet, and reports the cheapest. It is a lower bound on the
// worker-seconds any scaler needs to meet the target as far as
// TestInvariants can tell, not a proven one. It decides every Step, not
// every Tick, and an idle worker leaves the instant it is unneeded.
func Oracle(tr Trace, p Params) Result {
	p = p.withDefaults()
	best := oracle(tr, p, 0, 0)
	if p.StartupDelay > 0 {
		for _, w := range []float64{1, 2, 4} {
			for _, share := range []float64{0.8, 0.9, 1} {
				if r := oracle(tr, p, w*p.StartupDelay.Seconds(), share); r.WorkerSeconds < best.WorkerSeconds {
					best = r
				}
			}
		}
	}
	return best
}

// oracle runs one offline schedule: the laziest one with, at every step, at
// least enough ready workers to serve share of the work arriving over the
// next window seconds (none when window is 0).
func oracle(tr Trace, p Params, window, share float64) Result {
	js := jobs(tr, p)
	step, target := p.Step.Seconds(), p.TargetWait.Seconds()
	end := tr.Duration.Seconds() + p.Tail.Seconds()
	// work[i] is the service time of the jobs arriving before step i.
	steps := int(math.Ceil(end/step)) + 2
	work := make([]float64, steps+1)
	for _, j := range js {
		if k := int(j.arrive/step) + 1; k <= steps {
			work[k] += j.service
		}
	}
	for i := 1; i <= steps; i++ {
		work[i] += work[i-1]
	}
	floor := func(i int) int {
		if window <= 0 {
			return 0
		}
		a, b := min(i, steps), min(i+int(math.Round(window/step)), steps)
		return min(int(share*(work[b]-work[a])/window), p.Max)
	}
	var fleet []float64 // when each ready worker is (or was last) busy until
	started := 0
	var waits []float64
	var ready []int // ready workers at every step
	for i := 0; ; i++ {
		t := float64(i) * step
		if t >= end && started == len(js) {
			break
		}
		tEnd := t + step
		// Busy workers first: an idle one leaves first.
		slices.SortFunc(fleet, func(a, b float64) int { return cmp.Compare(b, a) })
		busy := 0
		for _, b := range fleet {
			if b > t {
				busy++
			}
		}
		// try simulates this step with n workers.
		try := func(n int) (ok bool, nf []float64, ns int, nw []float64) {
			nf = append([]float64(nil), fleet[:min(n, len(fleet))]...)
			for len(nf) < n {
				nf = append(nf, t)
			}
			s := started
			for s < len(js) && js[s].arrive < tEnd {
				bi := 0
				for k := range nf {
					if nf[k] < nf[bi] {
						bi = k
					}
				}
				start := max(nf[bi], js[s].arrive, t)
				if start >= tEnd {
					break
				}
				nf[bi] = start + js[s].service
				nw = append(nw, start-js[s].arrive)
				s++
			}
			ok = s >= len(js) || js[s].arrive >= tEnd || tEnd-js[s].arrive < target
			return ok, nf, s, nw
		}
		lo := max(busy, p.Min, floor(i))
		n := lo
		var nf []float64
		var ns int
		var nw []float64
		for ; ; n++ {
			var ok bool
			ok, nf, ns, nw = try(n)
			if ok || n >= max(p.Max, lo) {
				break
			}
		}
		fleet, started = nf, ns
		waits = append(waits, nw...)
		ready = append(ready, n)
	}
	res := Result{Trace: tr.Name, Policy: "oracle", Jobs: len(js)}
	// The paid fleet: the sliding maximum of the ready schedule over the
	// next StartupDelay (a worker the schedule needs before StartupDelay
	// has passed is one of the Min the run starts with, or is paid from 0).
	ahead := int(math.Round(p.StartupDelay.Seconds() / step))
	prev, lastDir := -1, 0
	var win []int // indices into ready, values decreasing
	next := 0
	for i := range ready {
		for ; next < len(ready) && next <= i+ahead; next++ {
			for len(win) > 0 && ready[win[len(win)-1]] <= ready[next] {
				win = win[:len(win)-1]
			}
			win = append(win, next)
		}
		for win[0] < i {
			win = win[1:]
		}
		n := ready[win[0]]
		res.WorkerSeconds += float64(n) * step
		if prev >= 0 && n != prev {
			dir := 1
			if n < prev {
				dir = -1
			}
			res.ScaleEvents++
			if lastDir != 0 && dir != lastDir {
				res.Reversals++
			}
			lastDir = dir
		}
		prev = n
		if i%max(1, int(p.Tick/p.Step)) == 0 {
			res.Timeline = append(res.Timeline, n)
		}
	}
	w := &world{js: js, started: started, waits: waits}
	r := w.result(tr.Name, "oracle", end)
	r.WorkerSeconds, r.ScaleEvents, r.Reversals, r.Timeline = res.WorkerSeconds, res.ScaleEvents, res.Reversals, res.Timeline
	return r
}

// String formats a result row.
func (r Result) String() string {
	return fmt.Sprintf("%s/%s: p50 %.2fs p99 %.2fs worker-s %.0f events %d reversals %d", r.Trace, r.Policy, r.P50, r.P99, r.WorkerSeconds, r.ScaleEvents, r.Reversals)
}
