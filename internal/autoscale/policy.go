// Package autoscale sizes the worker fleet from the queue: a pure Policy
// turns what one tick observes (backlog, oldest age, measured rates, CPU,
// workers) into a desired number of workers with a reason, and a Controller
// runs it every tick against a DepthSource and an Actuator.
//
// Actuators live in sub-packages: inproc resizes a *worker.Pool, procs starts
// and stops local `glimpse worker` processes. A Kubernetes actuator (scale
// subresource through client-go) is meant to implement the same Actuator
// interface; it is not written yet. The sim sub-package replays arrival
// traces against the policy and against the scalers people use today.
package autoscale

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// PolicyConfig tunes a Policy. The zero value of a field takes its default
// from NewDefaultPolicyConfig, except Min (0 allows scaling to zero) and Cores
// (0 turns the CPU guard off).
type PolicyConfig struct {
	// Min and Max bound the desired workers. Min 0 allows scaling to zero.
	Min, Max int
	// TargetWait is how long a job should wait at most for a worker.
	TargetWait time.Duration
	// StandingWait is how long jobs may wait in the queue the fleet keeps:
	// rather than idle workers, a short queue absorbs random arrivals, and
	// a worker is added when the queue would outgrow what the fleet serves
	// in StandingWait, not when the first job waits. Below TargetWait; 0
	// takes half of it.
	StandingWait time.Duration
	// StartupDelay is how long a new worker is assumed to take before its
	// first job, until the policy has measured it (from asking for a worker
	// to seeing it ready).
	StartupDelay time.Duration
	// Utilisation is the busy fraction the arrival rate is served at, in
	// (0,1]: below 1 it keeps idle headroom on top of the standing queue.
	Utilisation float64
	// PanicWindow is how long scale-down is held off after a burst made
	// the policy scale up at once (desired ≥ PanicThreshold × current).
	PanicWindow    time.Duration
	PanicThreshold float64
	// StableWindow is the scale-down stabilisation: the fleet shrinks only
	// to the largest need seen over this window, and only to a fleet that
	// would keep up with the arrivals for that long. A fall in arrivals
	// beyond noise is followed after one tick instead.
	StableWindow time.Duration
	// DownCooldown is the least time between any change and a scale-down.
	DownCooldown time.Duration
	// Tolerance is the scale-down hysteresis: shrinking by no more than
	// this fraction of the current workers is not worth it (shrinking to
	// zero always is).
	Tolerance float64
	// ServiceRate is the per-worker service rate (jobs/s) assumed until one
	// has been measured.
	ServiceRate float64
	// RateHalfLife smooths the measured arrival rate; ServiceHalfLife the
	// measured service rate.
	RateHalfLife, ServiceHalfLife time.Duration
	// Cores and CPUSaturated make the CPU guard: with at least Cores
	// workers and CPU utilisation above CPUSaturated, adding workers cannot
	// help and the policy holds. Cores 0 turns the guard off.
	Cores        int
	CPUSaturated float64
}

// NewDefaultPolicyConfig returns the defaults serve uses (with Cores set to
// the machine's CPUs by the caller).
func NewDefaultPolicyConfig() PolicyConfig {
	return PolicyConfig{
		Min:             1,
		Max:             20,
		TargetWait:      2 * time.Second,
		StartupDelay:    2 * time.Second,
		Utilisation:     1,
		PanicWindow:     6 * time.Second,
		PanicThreshold:  2,
		StableWindow:    20 * time.Second, // the simulator: 10–60 s all within +15% of the oracle
		DownCooldown:    5 * time.Second,
		Tolerance:       0.1,
		ServiceRate:     1,
		RateHalfLife:    3 * time.Second,
		ServiceHalfLife: 30 * time.Second,
		CPUSaturated:    0.9,
	}
}

// withDefaults fills zero fields from the defaults.
func (c PolicyConfig) withDefaults() PolicyConfig {
	d := NewDefaultPolicyConfig()
	if c.TargetWait <= 0 {
		c.TargetWait = d.TargetWait
	}
	if c.StandingWait <= 0 {
		c.StandingWait = c.TargetWait / 2
	}
	if c.StartupDelay <= 0 {
		c.StartupDelay = d.StartupDelay
	}
	if c.Utilisation <= 0 {
		c.Utilisation = d.Utilisation
	}
	if c.PanicWindow <= 0 {
		c.PanicWindow = d.PanicWindow
	}
	if c.PanicThreshold <= 0 {
		c.PanicThreshold = d.PanicThreshold
	}
	if c.StableWindow <= 0 {
		c.StableWindow = d.StableWindow
	}
	if c.DownCooldown < 0 {
		c.DownCooldown = 0
	}
	if c.Tolerance < 0 {
		c.Tolerance = 0
	}
	if c.ServiceRate <= 0 {
		c.ServiceRate = d.ServiceRate
	}
	if c.RateHalfLife <= 0 {
		c.RateHalfLife = d.RateHalfLife
	}
	if c.ServiceHalfLife <= 0 {
		c.ServiceHalfLife = d.ServiceHalfLife
	}
	if c.CPUSaturated <= 0 {
		c.CPUSaturated = d.CPUSaturated
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c PolicyConfig) Validate() error {
	var errs []error
	if c.Min < 0 {
		errs = append(errs, fmt.Errorf("autoscale: min workers %d: want 0 or more", c.Min))
	}
	if c.Max < 1 || c.Max < c.Min {
		errs = append(errs, fmt.Errorf("autoscale: max workers %d: want at least 1 and at least min (%d)", c.Max, c.Min))
	}
	if c.Utilisation > 1 {
		errs = append(errs, fmt.Errorf("autoscale: utilisation %g: want (0,1]", c.Utilisation))
	}
	if c.StandingWait >= c.TargetWait {
		errs = append(errs, fmt.Errorf("autoscale: standing wait %s: want below the target wait %s", c.StandingWait, c.TargetWait))
	}
	return errors.Join(errs...)
}

// Observation is what one tick sees.
type Observation struct {
	Now time.Time
	// Pending jobs wait for a worker; InService jobs are held by one
	// (JetStream's ack-pending). Their sum is the backlog.
	Pending, InService int
	// OldestAge is the age of the oldest unfinished job, 0 when none.
	OldestAge time.Duration
	// Completed counts every job the workers have finished since they
	// started (only differences matter); HasCompleted says it is known.
	// Without it, completions are estimated from InService and the
	// service rate assumed in the config.
	Completed    uint64
	HasCompleted bool
	// Running workers were asked for and are not draining; Ready ones of
	// them have started and take jobs.
	Running, Ready int
	// CPU is the machine's utilisation in [0,1]; negative when unknown.
	CPU float64
}

// Backlog is Pending + InService.
func (o Observation) Backlog() int { return o.Pending + o.InService }

// Decision is the policy's answer for one tick.
type Decision struct {
	// Desired is the number of workers to run now.
	Desired int
	// Target is this tick's own need, clamped to [Min, Max], before the
	// windows, cooldowns and hysteresis.
	Target int
	// Reason says why Desired is what it is, for the log.
	Reason string
	// Action is "up", "down" or "hold".
	Action string
	// ArrivalRate (jobs/s) and ServiceRate (jobs/s per worker) are the
	// smoothed measurements the decision used.
	ArrivalRate, ServiceRate float64
	// Panic is true while the panic window holds scale-down off.
	Panic bool
}

// Policy decides how many workers to run. It keeps the little state its
// windows and estimates need, but reads no clock and does no I/O: the same
// observations always give the same decisions. It is not safe for
// concurrent use.
//
// Each tick it projects the queue to the moment a worker asked for now
// would take its first job, one start-up delay ahead, crediting the workers
// that are still starting with the jobs they will serve by then. It then
// runs the fewest workers that keep the projected queue within what they
// serve in StandingWait: a queue beyond that is drained within TargetWait,
// and a smaller one may grow into it as long as a worker asked for at the
// next tick would still be in time — so a worker is added when it is
// needed, not when the first job waits. Scale-down follows the arrivals
// over the last StableWindow (with a margin for noise): a smaller fleet
// must keep up with them for a whole window. When the rate changes further
// than Poisson noise can explain, the window starts afresh, so after a
// fall the fleet follows one tick later.
type Policy struct {
	cfg PolicyConfig

	prev    Observation
	hasPrev bool
	start   time.Time // first observation: the stable window starts full

	// arrival is the arrival rate (jobs/s): an EWMA that jumps to the last
	// tick's rate when that differs from it beyond Poisson noise.
	arrival float64
	// served and busy are decayed sums of completions and of in-service
	// worker-seconds; their ratio is the service rate per worker (Little's
	// law on the service stage), robust when workers are often idle. Both
	// decay alike, so their ratio, kept in mu once it has replaced the
	// configured guess, outlives an idle spell.
	served, busy float64
	mu           float64

	// startup is the measured start-up delay in seconds (0: none measured
	// yet); starting holds, oldest first, when each running but not yet
	// ready worker was asked for.
	startup  float64
	starting []time.Time

	history    []sample  // arrivals over the stable window
	jumpAt     time.Time // when the arrival rate last changed beyond noise
	dropAt     time.Time // when it last fell beyond noise
	panicUntil time.Time
	lastChange time.Time
}

// sample is one tick's arrivals, kept over the stable window.
type sample struct {
	at      time.Time
	arrived float64
	dt      float64 // seconds since the previous tick
}

// NewPolicy makes a policy.
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Policy{cfg: cfg}, nil
}

// Config returns the configuration in effect, defaults filled in.
func (p *Policy) Config() PolicyConfig { return p.cfg }

// decay is the EWMA weight kept after dt with the given half-life.
func decay(dt, halfLife time.Duration) float64 {
	return math.Exp2(-dt.Seconds() / halfLife.Seconds())
}

const (
	// minBusySeconds is how much in-service time the service-rate
	// estimate needs before it replaces the configured guess.
	minBusySeconds = 2.0
	// A tick's arrival rate replaces the estimate when it is further from
	// it than jumpSigmas standard deviations of Poisson noise and than
	// jumpShare of the larger of the two: a burst, or its end.
	jumpSigmas = 4.0
	jumpShare  = 0.3
	// startupWeight weighs a new start-up measurement in the running mean.
	startupWeight = 0.3
	// sustainSigmas is the margin for Poisson noise on the arrival rate
	// over the stable window that scale-down allows for.
	sustainSigmas = 1.0
)

// ServiceRate is the measured per-worker service rate, or the configured
// guess while too little has been measured.
func (p *Policy) ServiceRate() float64 {
	if p.mu == 0 {
		return p.cfg.ServiceRate
	}
	return p.mu
}

// StartupDelay is the measured time from asking for a worker to seeing it
// ready, or the configured guess until one has been measured.
func (p *Policy) StartupDelay() time.Duration {
	if p.startup > 0 {
		return time.Duration(p.startup * float64(time.Second))
	}
	return p.cfg.StartupDelay
}

// measure updates the rate estimates from the previous observation to o and
// returns the jobs that arrived in between.
func (p *Policy) measure(o Observation) (arrived float64) {
	if !p.hasPrev {
		return float64(o.Backlog())
	}
	dt := o.Now.Sub(p.prev.Now)
	if dt <= 0 {
		return 0
	}
	sec := dt.Seconds()
	avgInService := float64(p.prev.InService+o.InService) / 2
	var completed float64
	switch {
	case o.HasCompleted && p.prev.HasCompleted && o.Completed >= p.prev.Completed:
		completed = float64(o.Completed - p.prev.Completed)
	default:
		// No counter (or it restarted): what the in-service workers
		// should have finished at the rate we believe in.
		completed = avgInService * sec * p.ServiceRate()
		if drop := float64(p.prev.Backlog() - o.Backlog()); drop > completed {
			completed = drop
		}
	}
	arrived = max(0, float64(o.Backlog()-p.prev.Backlog())+completed)

	// A change beyond what Poisson noise explains replaces the estimate at
	// once; anything else is smoothed.
	rate := arrived / sec
	noise := math.Sqrt(max(p.arrival, rate)*sec) / sec
	if diff := math.Abs(rate - p.arrival); diff > jumpSigmas*noise && diff > jumpShare*max(rate, p.arrival) {
		if rate < p.arrival {
			p.dropAt = o.Now
		}
		p.jumpAt = o.Now
		p.arrival = rate
	} else {
		k := decay(dt, p.cfg.RateHalfLife)
		p.arrival = k*p.arrival + (1-k)*rate
	}
	// The service rate is measured only while the ready fleet stays the
	// same: when workers become ready or leave between two ticks, the
	// in-service samples at either end say little about the time between.
	if o.HasCompleted && p.prev.HasCompleted && o.Ready == p.prev.Ready {
		ks := decay(dt, p.cfg.ServiceHalfLife)
		p.served = ks*p.served + completed
		p.busy = ks*p.busy + avgInService*sec
		if p.served > 0 && (p.busy >= minBusySeconds || p.mu > 0 && p.busy > 1e-6) {
			p.mu = p.served / p.busy
		}
	}
	return arrived
}

// track follows the workers that are starting: those that became ready
// since the previous tick measure the start-up delay (oldest first), and
// the list is kept as long as Running − Ready (a scale-down cancels the
// newest first).
func (p *Policy) track(o Observation) {
	if p.hasPrev {
		if n := min(o.Ready-p.prev.Ready, len(p.starting)); n > 0 {
			for _, at := range p.starting[:n] {
				d := o.Now.Sub(at).Seconds()
				if p.startup == 0 {
					p.startup = d
				} else {
					p.startup += startupWeight * (d - p.startup)
				}
			}
			p.starting = p.starting[n:]
		}
	}
	want := max(0, o.Running-o.Ready)
	if len(p.starting) > want {
		p.starting = p.starting[:want]
	}
	for len(p.starting) < want {
		p.starting = append(p.starting, o.Now)
	}
}

// Decide returns the workers to run given this tick's observation.
// Observations must come in time order.
func (p *Policy) Decide(o Observation) Decision {
	c := p.cfg
	first := !p.hasPrev
	if first {
		p.start = o.Now
	}
	tick := c.TargetWait.Seconds() / 2 // until a second observation shows it
	if !first && o.Now.After(p.prev.Now) {
		tick = o.Now.Sub(p.prev.Now).Seconds()
	}
	prevBacklog, prevReady := p.prev.Backlog(), p.prev.Ready
	arrived := p.measure(o)
	p.track(o)
	p.prev, p.hasPrev = o, true
	mu := p.ServiceRate()
	cur := o.Running
	lambda := p.arrival / c.Utilisation
	d := Decision{ArrivalRate: p.arrival, ServiceRate: mu}

	// The horizon: when a worker asked for now takes its first job. A
	// worker still starting after longer than that shows the start-up is
	// slower now; it is then expected one tick later.
	delay := p.StartupDelay().Seconds()
	ages := make([]float64, len(p.starting))
	for i, at := range p.starting {
		ages[i] = o.Now.Sub(at).Seconds()
	}
	if len(ages) > 0 {
		delay = max(delay, ages[0]+tick)
	}
	// pending is the queue at the horizon with n workers from now on: the
	// ready ones serve all the while, the starting ones (oldest kept first)
	// once ready, new ones not yet; n jobs are then in service.
	pending := func(n int) float64 {
		busy := float64(min(n, o.Ready)) * delay
		for _, age := range ages[:min(max(0, n-o.Ready), len(ages))] {
			busy += min(delay, age)
		}
		backlog := float64(o.Backlog()) + p.arrival*delay - mu*busy
		return max(0, backlog-float64(n))
	}
	// n workers serve λ and let the queue stand at what they serve within
	// StandingWait (n·μ·w); they keep it there over a horizon h if
	// n·μ ≥ λ + (queue − n·μ·w)/h, that is if n ≥ size(queue, h).
	w := c.StandingWait.Seconds()
	size := func(queue, h float64) float64 { return (lambda*h + queue) / (mu * (h + w)) }
	// enough says n workers need no help before the next tick could bring
	// it: a queue beyond the standing one drains within TargetWait, and a
	// smaller one outgrows it no sooner than a tick and a start-up away.
	enough := func(n int) bool {
		q := pending(n)
		h := tick + delay
		if q > w*float64(n)*mu {
			h = c.TargetWait.Seconds()
		}
		return float64(n) >= size(q, h)-1e-9
	}
	target := c.Max
	for n := range c.Max {
		if enough(n) {
			target = n
			break
		}
	}
	idle := o.Backlog() == 0 && arrived == 0
	switch {
	case idle:
		target = 0
	case target < 1:
		target = 1
	}
	// Work has waited past the target while the whole fleet was ready and
	// the backlog did not shrink: the projection is wrong (a slower
	// service, say). At least one more.
	late := o.Pending > 0 && o.OldestAge > c.TargetWait && o.Backlog() >= prevBacklog && prevReady >= cur
	if late && target <= cur {
		target = cur + 1
	}
	target = min(max(target, c.Min), c.Max)
	d.Target = target

	if !first {
		p.history = append(p.history, sample{at: o.Now, arrived: arrived, dt: tick})
	}
	cut := 0
	for cut < len(p.history) && o.Now.Sub(p.history[cut].at) > c.StableWindow {
		cut++
	}
	p.history = p.history[cut:]

	hold := func(reason string) Decision {
		d.Desired, d.Action, d.Reason = cur, "hold", reason
		d.Panic = o.Now.Before(p.panicUntil)
		return d
	}
	// Clamp first: min and max changes apply at once.
	if cur < c.Min || cur > c.Max {
		n := min(max(cur, c.Min), c.Max)
		return p.change(d, o, n, fmt.Sprintf("outside [%d,%d]", c.Min, c.Max))
	}
	startup := p.StartupDelay().Round(time.Millisecond)
	switch {
	case target > cur:
		if c.Cores > 0 && cur >= c.Cores && o.CPU > c.CPUSaturated {
			return hold(fmt.Sprintf("cpu saturated (%.0f%% with %d workers on %d cores): more workers cannot help", o.CPU*100, cur, c.Cores))
		}
		if cur == 0 || float64(target) >= c.PanicThreshold*float64(cur) {
			p.panicUntil = o.Now.Add(c.PanicWindow)
			d.Panic = true
			return p.change(d, o, target, fmt.Sprintf("panic: need %d workers, have %d (backlog %d, arrivals %.1f/s, %.2f/s per worker, start-up %s)", target, cur, o.Backlog(), p.arrival, mu, startup))
		}
		if late {
			return p.change(d, o, target, fmt.Sprintf("late: oldest job waited %s > %s", o.OldestAge.Round(time.Millisecond), c.TargetWait))
		}
		return p.change(d, o, target, fmt.Sprintf("up: need %d workers (backlog %d, arrivals %.1f/s, %.2f/s per worker, start-up %s)", target, o.Backlog(), p.arrival, mu, startup))
	case target < cur:
		if o.Now.Before(p.panicUntil) {
			return hold("panic window")
		}
		if o.Now.Sub(p.start) < c.StableWindow {
			return hold("warming up: no scale-down in the first stable window")
		}
		// The sustained need is what the arrivals over the stable window
		// need: a smaller fleet may let the queue grow into its standing
		// share over a window, not more. Workers added to drain a backlog
		// go once it is drained; those that carry the arrival rate stay
		// until the window's arrivals no longer need them. A change beyond
		// noise starts the window afresh; after a fall, one more tick
		// confirms it.
		fell := !p.dropAt.IsZero() && o.Now.Sub(p.dropAt) < c.StableWindow
		if fell && o.Now.Sub(p.dropAt) < time.Duration(tick*float64(time.Second)) {
			return hold(fmt.Sprintf("arrivals fell to %.1f/s: confirming", p.arrival))
		}
		since := o.Now.Add(-c.StableWindow)
		if p.jumpAt.After(since) {
			since = p.jumpAt
		}
		var jobs, secs, all float64
		for _, s := range p.history {
			all += s.arrived
			if !s.at.Before(since) {
				jobs += s.arrived
				secs += s.dt
			}
		}
		window := time.Duration(secs * float64(time.Second))
		var need float64
		if secs > 0 && jobs > 0 {
			rate := (jobs + sustainSigmas*math.Sqrt(jobs)) / secs / c.Utilisation
			q := pending(cur)
			h := max(c.StableWindow.Seconds(), tick+delay)
			need = min(rate/mu, (rate*h+q)/(mu*(h+w)))
		}
		down := max(target, int(math.Ceil(need-1e-9)))
		if down == 0 && all > 0 {
			// The next job after zero waits a whole start-up: go to
			// zero only after a stable window without arrivals.
			down = 1
		}
		down = min(max(down, c.Min), c.Max)
		if down >= cur {
			return hold(fmt.Sprintf("stabilising: needed %d within %s", down, window.Round(time.Millisecond)))
		}
		if down > 0 && !fell && float64(cur-down) <= c.Tolerance*float64(cur) {
			return hold(fmt.Sprintf("within tolerance: need %d, have %d", down, cur))
		}
		if o.Now.Sub(p.lastChange) < c.DownCooldown {
			return hold("scale-down cooldown")
		}
		reason := fmt.Sprintf("down: at most %d needed over %s", down, window.Round(time.Millisecond))
		switch {
		case down == 0:
			reason = fmt.Sprintf("idle for %s: scale to zero", c.StableWindow)
		case fell:
			reason = fmt.Sprintf("down: arrivals fell to %.1f/s, %d needed", p.arrival, down)
		}
		return p.change(d, o, down, reason)
	}
	return hold("steady")
}

func (p *Policy) change(d Decision, o Observation, n int, reason string) Decision {
	d.Desired, d.Reason = n, reason
	switch {
	case n > o.Running:
		d.Action = "up"
		for range n - o.Running {
			p.starting = append(p.starting, o.Now)
		}
	case n < o.Running:
		d.Action = "down"
	default:
		d.Action = "hold"
	}
	p.lastChange = o.Now
	d.Panic = d.Panic || o.Now.Before(p.panicUntil)
	return d
}
