package autoscale

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var epoch = time.Unix(1_700_000_000, 0)

// world is a tiny deterministic queue for driving the policy tick by tick:
// arrivals per tick are given, each ready worker serves mu jobs per tick. A
// worker asked for (running raised after tick i) is ready from tick
// i+startup; a scale-down cancels the workers still starting first.
type world struct {
	pending, inService int
	completed          uint64
	running            int
	mu                 int
	startup            int

	asked    int   // running at the previous tick
	starting []int // ticks from which the starting workers are ready
}

func (w *world) tick(i, arrivals int) Observation {
	if w.running > w.asked {
		for range w.running - w.asked {
			w.starting = append(w.starting, i-1+w.startup)
		}
	}
	if drop := w.asked - w.running; drop > 0 {
		w.starting = w.starting[:max(0, len(w.starting)-drop)]
	}
	w.asked = w.running
	for len(w.starting) > 0 && w.starting[0] <= i {
		w.starting = w.starting[1:]
	}
	ready := w.running - len(w.starting)
	w.pending += arrivals
	total := w.pending + w.inService
	served := min(total, ready*w.mu)
	// JetStream's ack-pending sampled at a random instant averages the
	// busy worker-seconds per second: served/mu.
	busy := (served + w.mu/2) / w.mu
	w.completed += uint64(served)
	left := total - served
	w.inService = min(left, ready)
	w.pending = left - w.inService
	return Observation{Now: epoch.Add(time.Duration(i) * time.Second), Pending: w.pending, InService: busy,
		Completed: w.completed, HasCompleted: true, Running: w.running, Ready: ready, CPU: -1}
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

// runNoisy drives a policy with a noisy flat load (about mean jobs/s, 10 per
// worker) for ten minutes and returns the workers it ran each tick.
func runNoisy(t *testing.T, seed uint64, mean int) []int {
	t.Helper()
	p := newTestPolicy(t, nil)
	r := rand.New(rand.NewPCG(seed, 1))
	w := &world{running: 1, mu: 10}
	var fleet []int
	for i := range 600 {
		arr := mean + int(r.NormFloat64()*7)
		w.running = p.Decide(w.tick(i, max(arr, 0))).Desired
		fleet = append(fleet, w.running)
	}
	return fleet
}

// changes counts the fleet changes after the first minute.
func changes(fleet []int) (n, lo, hi int, mean float64) {
	lo = fleet[60]
	for i := 60; i < len(fleet); i++ {
		if fleet[i] != fleet[i-1] {
			n++
		}
		lo, hi = min(lo, fleet[i]), max(hi, fleet[i])
		mean += float64(fleet[i])
	}
	return n, lo, hi, mean / float64(len(fleet)-60)
}

// A noisy flat load settles and then does not change: noise alone moves
// no worker.
func TestNoFlappingOnNoise(t *testing.T) {
	for _, tt := range []struct{ mean, want int }{{45, 5}, {55, 6}} {
		for _, seed := range []uint64{1, 2, 3} {
			n, lo, hi, _ := changes(runNoisy(t, seed, tt.mean))
			if n > 2 {
				t.Errorf("%d jobs/s, seed %d: %d changes in 9 minutes of flat noisy load; want ≤ 2", tt.mean, seed, n)
			}
			if lo < tt.want || hi > tt.want+1 {
				t.Errorf("%d jobs/s, seed %d: ran %d–%d workers at 10 jobs/s each; want %d (at most one more)", tt.mean, seed, lo, hi, tt.want)
			}
		}
	}
}

// At exactly 50 jobs/s, 5 workers cannot keep up on average and 6 are a
// sixth idle. The policy lets the queue grow into its standing share on 5
// and drains it on 6: it alternates between the two, an up and a down
// every minute or so, and runs well under 6 on average. (The policy before
// the standing queue held 7 without a change: utilisation 0.9, plus the
// window's noise and the tolerance.)
func TestCriticalLoadAlternatesSlowly(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		n, lo, hi, mean := changes(runNoisy(t, seed, 50))
		if lo < 5 || hi > 6 {
			t.Errorf("seed %d: ran %d–%d workers for 50 jobs/s at 10/s each; want 5–6", seed, lo, hi)
		}
		if n > 16 {
			t.Errorf("seed %d: %d changes in 9 minutes; want ≤ 16 (one up and one down per half-minute)", seed, n)
		}
		if mean > 5.75 {
			t.Errorf("seed %d: %.2f workers on average; want ≤ 5.75", seed, mean)
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

// When arrivals stop, the fleet shrinks to one worker a tick later, but to
// zero only after a stable window without arrivals: the next job after
// zero waits a whole start-up.
func TestScaleToZeroAfterBurst(t *testing.T) {
	p := newTestPolicy(t, func(c *PolicyConfig) { c.Min = 0 })
	w := &world{running: 1, asked: 1, mu: 10}
	for i := range 60 {
		w.running = p.Decide(w.tick(i, 50)).Desired
	}
	oneAt, zeroAt := -1, -1
	for i := 60; i < 120; i++ {
		w.running = p.Decide(w.tick(i, 0)).Desired
		if w.running == 1 && oneAt < 0 {
			oneAt = i
		}
		if w.running == 0 && zeroAt < 0 {
			zeroAt = i
		}
	}
	win := int(p.Config().StableWindow / time.Second)
	if oneAt < 0 || oneAt > 62 {
		t.Errorf("arrivals stopped at tick 60; one worker left at tick %d; want by 62", oneAt)
	}
	if zeroAt < 60+win || zeroAt > 60+win+int(p.Config().DownCooldown/time.Second)+2 {
		t.Errorf("arrivals stopped at tick 60; zero at tick %d; want just after the %ds stable window", zeroAt, win)
	}
}

// A drift in the arrival rate (within what noise could do in one tick) is
// followed only after the stable window; a fall beyond noise is followed
// once the next tick confirms it.
func TestScaleDownIsStabilised(t *testing.T) {
	tests := []struct {
		name       string
		after      int // jobs/s once the load falls from 100/s
		heldAtHalf bool
		end        int // at most this many workers at the end
	}{
		{"drift", 80, true, 9},
		{"fall", 10, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPolicy(t, nil)
			w := &world{running: 1, mu: 10}
			for i := range 60 {
				w.running = p.Decide(w.tick(i, 100)).Desired
			}
			high := w.running
			if high < 10 {
				t.Fatalf("100 jobs/s ran on %d workers; want ≥ 10", high)
			}
			half := 60 + int(p.Config().StableWindow/time.Second)/2
			var first, held int
			for i := 60; i < 200; i++ {
				w.running = p.Decide(w.tick(i, tt.after)).Desired
				switch i {
				case 60:
					first = w.running
				case half:
					held = w.running
				}
			}
			if first != high {
				t.Errorf("the tick the load fell, %d workers run; want %d still (nothing confirms the fall yet)", first, high)
			}
			if tt.heldAtHalf && held < high {
				t.Errorf("half a stable window after the load drifted down, %d workers run; want %d still", held, high)
			}
			if !tt.heldAtHalf && held > tt.end {
				t.Errorf("half a stable window after the load fell, %d workers run; want ≤ %d", held, tt.end)
			}
			if w.running > tt.end {
				t.Errorf("%d jobs/s ends on %d workers; want ≤ %d", tt.after, w.running, tt.end)
			}
		})
	}
}

// burst drives a world whose workers take startup ticks to be ready: 10
// jobs/s, then 100/s from tick 30 to 70, then 10/s again. It returns the
// decisions.
func burst(t *testing.T, p *Policy, startup int) []Decision {
	t.Helper()
	w := &world{running: 1, asked: 1, mu: 10, startup: startup}
	var ds []Decision
	for i := range 120 {
		arr := 10
		if i >= 30 && i < 70 {
			arr = 100
		}
		d := p.Decide(w.tick(i, arr))
		ds = append(ds, d)
		w.running = d.Desired
	}
	return ds
}

// Workers still starting are counted: a burst gets one panic sized for the
// arrivals plus what piles up until the new workers are ready, and no more
// while they start (4 ticks here).
func TestCreditsStartingWorkers(t *testing.T) {
	p := newTestPolicy(t, func(c *PolicyConfig) { c.StartupDelay = 4 * time.Second })
	ds := burst(t, p, 4)
	if !strings.HasPrefix(ds[30].Reason, "panic") {
		t.Fatalf("first burst tick: %+v; want a panic", ds[30])
	}
	asked := ds[30].Desired
	for i := 31; i < 34; i++ {
		if ds[i].Desired != asked {
			t.Errorf("tick %d, while the %d workers start: desired %d (%s); want %d still", i, asked, ds[i].Desired, ds[i].Reason, asked)
		}
	}
	peak := 0
	for _, d := range ds {
		peak = max(peak, d.Desired)
	}
	// 100 jobs/s need 10 workers; 4 s of start-up pile up about 400 jobs,
	// which 12 more drain within TargetWait plus StandingWait (3 s).
	if peak > 22 {
		t.Errorf("peak %d workers for 100 jobs/s at 10/s each with a 4 s start-up; want ≤ 22", peak)
	}
}

// The start-up delay is measured from Running and Ready.
func TestMeasuresStartupDelay(t *testing.T) {
	p := newTestPolicy(t, nil)
	burst(t, p, 5)
	if got := p.StartupDelay(); got != 5*time.Second {
		t.Errorf("StartupDelay() = %s after workers took 5 ticks of 1s to be ready; want 5s", got)
	}
}

// With a start-up far slower than assumed, the workers still starting are
// not cancelled while the backlog needs them: one panic, no flapping, and
// the backlog drains.
func TestKeepsStartingWorkersTheBacklogNeeds(t *testing.T) {
	p := newTestPolicy(t, func(c *PolicyConfig) { c.StartupDelay = time.Second })
	ds := burst(t, p, 10)
	panics, reversals, dir := 0, 0, 0
	for i, d := range ds {
		if strings.HasPrefix(d.Reason, "panic:") {
			panics++
		}
		if d.Action == "up" || d.Action == "down" {
			nd := 1
			if d.Action == "down" {
				nd = -1
			}
			if dir != 0 && nd != dir && i < 70 {
				reversals++
			}
			dir = nd
		}
	}
	if panics != 1 || reversals > 1 {
		t.Errorf("%d panics and %d reversals during the burst; want 1 panic and at most 1 reversal", panics, reversals)
	}
	if p.StartupDelay() != 10*time.Second {
		t.Errorf("StartupDelay() = %s; want the measured 10s", p.StartupDelay())
	}
}

// The measured service rate outlives an idle spell: the decayed sums it is
// the ratio of decay alike.
func TestServiceRateOutlivesIdle(t *testing.T) {
	p := newTestPolicy(t, func(c *PolicyConfig) { c.ServiceRate = 1 })
	w := &world{running: 4, asked: 4, mu: 7}
	for i := range 60 {
		p.Decide(w.tick(i, 28))
	}
	for i := 60; i < 660; i++ {
		p.Decide(w.tick(i, 0))
	}
	if got := p.ServiceRate(); got < 6 || got > 8 {
		t.Errorf("ServiceRate() = %.2f after 10 idle minutes; want about the measured 7", got)
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
		// 101 jobs, 1 worker, 2 s start-up: the worker serves 20 before new
		// ones are ready; 3 then hold 30 (1 s standing) and drain 50 in 2 s.
		{"backlog from min panics", nil, obs(100, 1, 1, -1), 3, "panic"},
		{"capped at max", func(c *PolicyConfig) { c.Max = 3 }, obs(1000, 1, 1, -1), 3, "panic"},
		{"below min is raised", func(c *PolicyConfig) { c.Min = 2 }, obs(0, 0, 0, -1), 2, "outside"},
		{"above max is lowered", func(c *PolicyConfig) { c.Max = 4 }, obs(0, 0, 6, -1), 4, "outside"},
		{"cpu guard holds", func(c *PolicyConfig) { c.Cores = 2 }, obs(1000, 2, 2, 0.97), 2, "cpu saturated"},
		{"cpu guard lets a busy machine below its cores grow", func(c *PolicyConfig) { c.Cores = 4 }, obs(1000, 2, 2, 0.97), 32, "panic"},
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
	for _, c := range []PolicyConfig{{Min: -1, Max: 2}, {Min: 3, Max: 2}, {Min: 0, Max: 0}, {Max: 2, Utilisation: 1.5}, {Max: 2, TargetWait: time.Second, StandingWait: time.Second}} {
		if _, err := NewPolicy(c); err == nil {
			t.Errorf("NewPolicy(%+v) = nil error; want one", c)
		}
	}
}
