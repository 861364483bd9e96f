package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glimpse-oss/glimpse/internal/queue"
)

// DepthSource reports how much work waits; *queue.Queue satisfies it.
type DepthSource interface {
	Depth(ctx context.Context) (queue.Depth, error)
}

// Actuator changes the number of workers. Scale asks for n workers (n ≥ 0);
// a worker removed by scaling in must drain: take no new job and finish or
// release the one it holds. Current reports the workers asked for and not
// draining (running) and how many of them take jobs (ready).
//
// Implementations: inproc (a *worker.Pool), procs (local processes). A
// Kubernetes actuator over a Deployment's scale subresource fits the same
// seam and is not written yet.
type Actuator interface {
	Scale(ctx context.Context, n int) error
	Current(ctx context.Context) (running, ready int, err error)
}

// CompletionCounter is implemented by actuators that count the jobs their
// workers finished; the policy then measures rates exactly instead of
// estimating completions.
type CompletionCounter interface {
	Completed() uint64
}

// CPUSampler reports the machine's CPU utilisation in [0,1] since the
// previous call.
type CPUSampler interface {
	Utilisation() (float64, error)
}

// Config tunes a Controller.
type Config struct {
	Policy PolicyConfig
	// Tick is how often the controller looks and decides.
	Tick time.Duration
}

// NewDefaultConfig returns the defaults serve uses.
func NewDefaultConfig() Config {
	return Config{Policy: NewDefaultPolicyConfig(), Tick: time.Second}
}

// Deps are what a Controller works with.
type Deps struct {
	Depth    DepthSource
	Actuator Actuator
	// CPU is optional; without it the CPU guard never holds.
	CPU        CPUSampler
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now and NewTicker default to the wall clock; tests drive them.
	Now       func() time.Time
	NewTicker func(d time.Duration) (ticks <-chan time.Time, stop func())
}

// Controller runs the policy every tick and scales the actuator.
type Controller struct {
	cfg    Config
	deps   Deps
	policy *Policy
	log    *slog.Logger
	m      *metrics
	last   string // last logged reason, to log holds only when they change
}

// New makes a controller.
func New(cfg Config, deps Deps) (*Controller, error) {
	if deps.Depth == nil || deps.Actuator == nil {
		return nil, errors.New("autoscale: depth source and actuator are required")
	}
	if cfg.Tick <= 0 {
		cfg.Tick = NewDefaultConfig().Tick
	}
	p, err := NewPolicy(cfg.Policy)
	if err != nil {
		return nil, err
	}
	cfg.Policy = p.Config()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.NewTicker == nil {
		deps.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	return &Controller{cfg: cfg, deps: deps, policy: p, log: deps.Logger, m: m}, nil
}

// Run ticks until ctx ends, then returns nil. A failed tick is logged and the
// next one tries again.
func (c *Controller) Run(ctx context.Context) error {
	ticks, stop := c.deps.NewTicker(c.cfg.Tick)
	defer stop()
	c.log.Info("autoscaler started", "min", c.cfg.Policy.Min, "max", c.cfg.Policy.Max,
		"target_wait", c.cfg.Policy.TargetWait, "tick", c.cfg.Tick)
	for {
		if _, err := c.Step(ctx, c.deps.Now()); err != nil && ctx.Err() == nil {
			c.log.Warn("autoscale tick failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
	}
}

// Step observes, decides and scales once, as of now.
func (c *Controller) Step(ctx context.Context, now time.Time) (Decision, error) {
	depth, err := c.deps.Depth.Depth(ctx)
	if err != nil {
		c.m.errors.WithLabelValues("depth").Inc()
		return Decision{}, fmt.Errorf("autoscale: read depth: %w", err)
	}
	running, ready, err := c.deps.Actuator.Current(ctx)
	if err != nil {
		c.m.errors.WithLabelValues("actuator").Inc()
		return Decision{}, fmt.Errorf("autoscale: read workers: %w", err)
	}
	o := Observation{
		Now:       now,
		Pending:   int(depth.Pending),
		InService: int(depth.AckPending),
		OldestAge: depth.OldestAge,
		Running:   running,
		Ready:     ready,
		CPU:       -1,
	}
	if cc, ok := c.deps.Actuator.(CompletionCounter); ok {
		o.Completed, o.HasCompleted = cc.Completed(), true
	}
	if c.deps.CPU != nil {
		if u, err := c.deps.CPU.Utilisation(); err == nil {
			o.CPU = u
		}
	}
	d := c.policy.Decide(o)
	c.m.observe(o, d)
	if d.Action != "hold" || d.Reason != c.last {
		level := slog.LevelDebug
		if d.Action != "hold" {
			level = slog.LevelInfo
		}
		c.log.Log(ctx, level, "autoscale decision", "action", d.Action, "desired", d.Desired,
			"running", running, "ready", ready, "backlog", o.Backlog(), "oldest", o.OldestAge.Round(time.Millisecond),
			"arrival_rate", round2(d.ArrivalRate), "service_rate", round2(d.ServiceRate), "cpu", round2(o.CPU), "reason", d.Reason)
		c.last = d.Reason
	}
	if d.Desired != running {
		if err := c.deps.Actuator.Scale(ctx, d.Desired); err != nil {
			c.m.errors.WithLabelValues("scale").Inc()
			return d, fmt.Errorf("autoscale: scale to %d: %w", d.Desired, err)
		}
	}
	return d, nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
