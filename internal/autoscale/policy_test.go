package autoscale

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var epoch = time.Unix(1_700_000_000, 0)

// world is a tiny deterministic queue for driving the policy tick by tick:
// arrivals per tick are given, each ready worker serves mu jobs per tick.
type world struct {
	pending, inService int
	completed          uint64
	running            int
	mu                 int
}

func (w *world) tick(i, arrivals int) Observation {
	w.pending += arrivals
	total := w.pending + w.inService
	served := min(total, w.running*w.mu)
	// JetStream's ack-pending sampled at a random instant averages the
	// busy worker-seconds per second: served/mu.
	busy := (served + w.mu/2) / w.mu
	w.completed += uint64(served)
	left := total - served
	w.inService = min(left, w.running)
	w.pending = left - w.inService
	return Observation{Now: epoch.Add(time.Duration(i) * time.Second), Pending: w.pending, InService: busy,
		Completed: w.completed, HasCompleted: true, Running: w.running, Ready: w.running, CPU: -1}
}

func newTestPolicy(t *testing.T, mod func(*PolicyConfig)) *Policy {
	t.Helper()
	c := NewDefaultPolicyConfig()
	c.Min, c.Max, c.ServiceRate = 1, 50, 10
	if mod != nil {
		mod(&c)
	}
	p, err := NewPolicy(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A noisy flat load (Poisson-ish around 50 jobs/s, 10 per worker) settles
// and then barely changes.
func TestNoFlappingOnNoise(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		p := newTestPolicy(t, nil)
		r := rand.New(rand.NewPCG(seed, 1))
		w := &world{running: 1, mu: 10}
		changes := 0
		for i := range 600 {
			arr := 50 + int(r.NormFloat64()*7)
			d := p.Decide(w.tick(i, max(arr, 0)))
			if i >= 60 && d.Desired != w.running {
				changes++
			}
			w.running = d.Desired
		}
		if changes > 4 {
			t.Errorf("seed %d: %d changes in 9 minutes of flat noisy load; want ≤ 4", seed, changes)
		}
		if w.running < 5 || w.running > 8 {
			t.Errorf("seed %d: settled at %d workers for 50 jobs/s at 10/s each; want 5–8", seed, w.running)
		}
	}
}

// A burst is answered on the tick that sees it, with a panic reason.
func TestBurstReactsWithinOneTick(t *testing.T) {
	p := newTestPolicy(t, nil)
	w := &world{running: 1, mu: 10}
	for i := range 30 {
		w.running = p.Decide(w.tick(i, 3)).Desired
	}
	if w.running != 1 {
		t.Fatalf("idle-ish load runs %d workers; want 1", w.running)
	}
	d := p.Decide(w.tick(30, 400))
	if d.Desired < 10 || d.Action != "up" || !strings.HasPrefix(d.Reason, "panic") {
		t.Errorf("burst of 400 jobs: %+v; want ≥ 10 workers at once, a panic", d)
	}
}

// With min 0, an idle queue goes to zero after the stable window, and the
// first job brings one worker back on the next tick.
func TestScaleToZeroAndBack(t *testing.T) {
	p := newTestPolicy(t, func(c *PolicyConfig) { c.Min = 0 })
	w := &world{running: 3, mu: 10}
	zeroAt := -1
	for i := range 120 {
		d := p.Decide(w.tick(i, 0))
		w.running = d.Desired
		if d.Desired == 0 && zeroAt < 0 {
			zeroAt = i
		}
	}
	win := int(p.Config().StableWindow / time.Second)
	if zeroAt < win || zeroAt > win+int(p.Config().DownCooldown/time.Second)+2 {
		t.Fatalf("reached zero at tick %d; want just after the %ds stable window", zeroAt, win)
	}
	d := p.Decide(w.tick(120, 1))
	if d.Desired != 1 {
		t.Errorf("first job from zero: desired %d (%s); want 1", d.Desired, d.Reason)
	}
}

// Scale-down waits for the stable window, then follows the arrivals.
func TestScaleDownIsStabilised(t *testing.T) {
	p := newTestPolicy(t, nil)
	w := &world{running: 1, mu: 10}
	for i := range 60 {
		w.running = p.Decide(w.tick(i, 100)).Desired
	}
	high := w.running
	var held int
	for i := 60; i < 200; i++ {
		w.running = p.Decide(w.tick(i, 10)).Desired
		if i == 60+int(p.Config().StableWindow/time.Second)/2 {
			held = w.running
		}
	}
	if high < 10 {
		t.Fatalf("100 jobs/s ran on %d workers; want ≥ 10", high)
	}
	if held < 10 {
		t.Errorf("half a stable window after the load fell, %d workers run; want ≥ 10 still", held)
	}
	if w.running > 3 {
		t.Errorf("10 jobs/s ends on %d workers; want ≤ 3", w.running)
	}
}

func TestDecisionTable(t *testing.T) {
	obs := func(pending, inService, running int, cpu float64) Observation {
		return Observation{Now: epoch, Pending: pending, InService: inService, Running: running, Ready: running, CPU: cpu}
	}
	tests := []struct {
		name   string
		mod    func(*PolicyConfig)
		o      Observation
		want   int
		reason string
	}{
		{"idle stays at min", nil, obs(0, 0, 1, -1), 1, "steady"},
		{"backlog from min panics", nil, obs(100, 1, 1, -1), 5, "panic"},
		{"capped at max", func(c *PolicyConfig) { c.Max = 3 }, obs(1000, 1, 1, -1), 3, "panic"},
		{"below min is raised", func(c *PolicyConfig) { c.Min = 2 }, obs(0, 0, 0, -1), 2, "outside"},
		{"above max is lowered", func(c *PolicyConfig) { c.Max = 4 }, obs(0, 0, 6, -1), 4, "outside"},
		{"cpu guard holds", func(c *PolicyConfig) { c.Cores = 2 }, obs(1000, 2, 2, 0.97), 2, "cpu saturated"},
		{"cpu guard lets a busy machine below its cores grow", func(c *PolicyConfig) { c.Cores = 4 }, obs(1000, 2, 2, 0.97), 50, "panic"},
		{"from zero", func(c *PolicyConfig) { c.Min = 0 }, obs(1, 0, 0, -1), 1, "panic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPolicy(t, tt.mod)
			d := p.Decide(tt.o)
			if d.Desired != tt.want || !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("Decide(%+v) = %d (%q); want %d (%q)", tt.o, d.Desired, d.Reason, tt.want, tt.reason)
			}
		})
	}
}

// The service rate is measured from completions and in-service time, and
// replaces the configured guess.
func TestMeasuresServiceRate(t *testing.T) {
	p := newTestPolicy(t, func(c *PolicyConfig) { c.ServiceRate = 1 })
	w := &world{running: 4, mu: 7}
	for i := range 60 {
		p.Decide(w.tick(i, 28)) // exactly saturates 4 workers at 7/s
	}
	if got := p.ServiceRate(); got < 6 || got > 8 {
		t.Errorf("ServiceRate() = %.2f; want about 7", got)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []PolicyConfig{{Min: -1, Max: 2}, {Min: 3, Max: 2}, {Min: 0, Max: 0}, {Max: 2, Utilisation: 1.5}} {
		if _, err := NewPolicy(c); err == nil {
			t.Errorf("NewPolicy(%+v) = nil error; want one", c)
		}
	}
}
