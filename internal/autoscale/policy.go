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
	// TargetWait is how soon the waiting backlog should be drained.
	TargetWait time.Duration
	// Utilisation is the busy fraction the arrival term aims for, in (0,1]:
	// below 1 it leaves headroom so that random arrivals do not queue.
	Utilisation float64
	// PanicWindow is how long scale-down is held off after a burst made
	// the policy scale up at once (desired ≥ PanicThreshold × current).
	PanicWindow    time.Duration
	PanicThreshold float64
	// StableWindow is the scale-down stabilisation: the fleet shrinks only
	// to the largest target seen over this window.
	StableWindow time.Duration
	// UpCooldown is the least time between two ordinary scale-ups (a panic
	// or a late backlog skips it); DownCooldown the least time between any
	// change and a scale-down.
	UpCooldown, DownCooldown time.Duration
	// Tolerance is the hysteresis: a change of no more than this fraction
	// of the current workers is ignored (a change to or from zero never is).
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
		Utilisation:     0.9,
		PanicWindow:     6 * time.Second,
		PanicThreshold:  2,
		StableWindow:    20 * time.Second, // tuned with the simulator: 60 s cost +60–360% worker-seconds
		UpCooldown:      2 * time.Second,
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
	if c.UpCooldown < 0 {
		c.UpCooldown = 0
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
// windows and rate estimates need, but reads no clock and does no I/O: the
// same observations always give the same decisions. It is not safe for
// concurrent use.
type Policy struct {
	cfg PolicyConfig

	prev    Observation
	hasPrev bool
	start   time.Time // first observation: the stable window starts full

	arrival float64 // jobs/s, EWMA
	// served and busy are decayed sums of completions and of in-service
	// worker-seconds; their ratio is the service rate per worker (Little's
	// law on the service stage), robust when workers are often idle.
	served, busy float64

	history    []sample // sustained needs over the stable window
	panicUntil time.Time
	lastUp     time.Time
	lastChange time.Time
}

type sample struct {
	at   time.Time
	need float64 // workers the arrival rate alone needs
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

// minBusySeconds is how much in-service time the service-rate estimate needs
// before it replaces the configured guess.
const minBusySeconds = 2.0

// ServiceRate is the measured per-worker service rate, or the configured
// guess while too little has been measured.
func (p *Policy) ServiceRate() float64 {
	if p.busy < minBusySeconds || p.served <= 0 {
		return p.cfg.ServiceRate
	}
	return p.served / p.busy
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

	k := decay(dt, p.cfg.RateHalfLife)
	p.arrival = k*p.arrival + (1-k)*arrived/sec
	if o.HasCompleted && p.prev.HasCompleted {
		ks := decay(dt, p.cfg.ServiceHalfLife)
		p.served = ks*p.served + completed
		p.busy = ks*p.busy + avgInService*sec
	}
	return arrived
}

// Decide returns the workers to run given this tick's observation.
// Observations must come in time order.
func (p *Policy) Decide(o Observation) Decision {
	c := p.cfg
	if !p.hasPrev {
		p.start = o.Now
	}
	arrived := p.measure(o)
	p.prev, p.hasPrev = o, true
	mu := p.ServiceRate()
	cur := o.Running
	d := Decision{ArrivalRate: p.arrival, ServiceRate: mu}

	// This tick's need: keep up with arrivals at the target utilisation and
	// drain what waits within TargetWait.
	need := p.arrival/(mu*c.Utilisation) + float64(o.Pending)/(c.TargetWait.Seconds()*mu)
	target := int(math.Ceil(need - 1e-9))
	idle := o.Backlog() == 0 && arrived == 0
	switch {
	case idle:
		target = 0
	case target < 1:
		target = 1
	}
	// Work that has already waited past the target: at least one more.
	late := o.Pending > 0 && o.OldestAge > c.TargetWait
	if late && target <= cur {
		target = cur + 1
	}
	target = min(max(target, c.Min), c.Max)
	d.Target = target
	// The stable window remembers the sustained need (arrivals alone):
	// workers added to drain a backlog go as soon as it is drained, while
	// those that carry the arrival rate stay for the whole window.
	sustained := p.arrival / (mu * c.Utilisation)
	if idle {
		sustained = 0
	}
	p.history = append(p.history, sample{at: o.Now, need: sustained})
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
	switch {
	case target > cur:
		if c.Cores > 0 && cur >= c.Cores && o.CPU > c.CPUSaturated {
			return hold(fmt.Sprintf("cpu saturated (%.0f%% with %d workers on %d cores): more workers cannot help", o.CPU*100, cur, c.Cores))
		}
		if cur == 0 || float64(target) >= c.PanicThreshold*float64(cur) {
			p.panicUntil = o.Now.Add(c.PanicWindow)
			d.Panic = true
			return p.change(d, o, target, fmt.Sprintf("panic: need %d workers, have %d (backlog %d, arrivals %.1f/s, %.2f/s per worker)", target, cur, o.Backlog(), p.arrival, mu))
		}
		if late {
			return p.change(d, o, target, fmt.Sprintf("late: oldest job waited %s > %s", o.OldestAge.Round(time.Millisecond), c.TargetWait))
		}
		if float64(target-cur) <= c.Tolerance*float64(cur) {
			return hold(fmt.Sprintf("within tolerance: need %d, have %d", target, cur))
		}
		if o.Now.Sub(p.lastUp) < c.UpCooldown {
			return hold("scale-up cooldown")
		}
		return p.change(d, o, target, fmt.Sprintf("up: need %d workers (backlog %d, arrivals %.1f/s, %.2f/s per worker)", target, o.Backlog(), p.arrival, mu))
	case target < cur:
		if o.Now.Before(p.panicUntil) {
			return hold("panic window")
		}
		if o.Now.Sub(p.start) < c.StableWindow {
			return hold("warming up: no scale-down in the first stable window")
		}
		// Hysteresis: shrink only to the window's highest sustained need
		// plus the tolerance, so that the next tick's noise does not
		// scale straight back up.
		var need float64
		for _, s := range p.history {
			need = max(need, s.need)
		}
		down := max(target, int(math.Ceil(need*(1+c.Tolerance)-1e-9)))
		down = min(max(down, c.Min), c.Max)
		if down >= cur {
			return hold(fmt.Sprintf("stabilising: needed %d within %s", down, c.StableWindow))
		}
		if down > 0 && float64(cur-down) <= c.Tolerance*float64(cur) {
			return hold(fmt.Sprintf("within tolerance: need %d, have %d", down, cur))
		}
		if o.Now.Sub(p.lastChange) < c.DownCooldown {
			return hold("scale-down cooldown")
		}
		reason := fmt.Sprintf("down: at most %d needed over %s", down, c.StableWindow)
		if down == 0 {
			reason = fmt.Sprintf("idle for %s: scale to zero", c.StableWindow)
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
		p.lastUp = o.Now
	case n < o.Running:
		d.Action = "down"
	default:
		d.Action = "hold"
	}
	p.lastChange = o.Now
	d.Panic = d.Panic || o.Now.Before(p.panicUntil)
	return d
}
