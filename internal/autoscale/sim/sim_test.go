package sim

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
)

func shortParams() Params {
	p := DefaultParams()
	p.Tail = 30 * time.Second
	return p
}

// The oracle meets the wait target and uses no more worker-seconds than any
// policy that meets it too; fixed-max never waits long.
func TestInvariants(t *testing.T) {
	p := shortParams()
	rs, err := Compare(Traces(), Contenders(p, autoscale.NewDefaultPolicyConfig()), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range ByTrace(rs) {
		var oracle Result
		for _, r := range g {
			if r.Policy == "oracle" {
				oracle = r
			}
		}
		if oracle.MaxWait > p.TargetWait.Seconds()+p.Step.Seconds() {
			t.Errorf("%s: oracle max wait %.2fs; want ≤ target %s", oracle.Trace, oracle.MaxWait, p.TargetWait)
		}
		for _, r := range g {
			if r.Jobs != oracle.Jobs {
				t.Errorf("%s/%s: %d jobs; oracle saw %d (same seed, same jobs)", r.Trace, r.Policy, r.Jobs, oracle.Jobs)
			}
			if r.MaxWait <= p.TargetWait.Seconds() && r.WorkerSeconds < oracle.WorkerSeconds {
				t.Errorf("%s/%s: meets the target with %.0f worker-s, below the oracle's %.0f", r.Trace, r.Policy, r.WorkerSeconds, oracle.WorkerSeconds)
			}
			if r.Policy == "fixed-max" && r.P99 > 0.5 {
				t.Errorf("%s/fixed-max: p99 %.2fs; want tiny", r.Trace, r.P99)
			}
		}
	}
}

// The same seed gives the same table and chart, byte for byte.
func TestDeterministic(t *testing.T) {
	p := shortParams()
	out := func() string {
		rs, err := Compare(Traces()[:2], Contenders(p, autoscale.NewDefaultPolicyConfig()), p)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := WriteTable(&b, rs, p); err != nil {
			t.Fatal(err)
		}
		if err := WriteSVG(&b, rs); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	a, b := out(), out()
	if a != b {
		t.Error("two runs with the same seed differ")
	}
	if !strings.Contains(a, "<svg") || !strings.Contains(a, "goal check") {
		t.Error("output lacks the chart or the goal check")
	}
}

// Our policy meets the goal on the standard traces: no baseline
// beats it on both p99 wait and worker-seconds, and it uses at most 15%
// more worker-seconds than the oracle.
func TestOursMeetsGoal(t *testing.T) {
	p := shortParams()
	rs, err := Compare(Traces(), Contenders(p, autoscale.NewDefaultPolicyConfig()), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range ByTrace(rs) {
		if d := Dominators(g); len(d) > 0 {
			t.Errorf("%s: %s beat ours on both p99 wait and worker-seconds", g[0].Trace, strings.Join(d, ", "))
		}
		var ours, oracle Result
		for _, r := range g {
			switch r.Policy {
			case Ourselves:
				ours = r
			case "oracle":
				oracle = r
			}
		}
		if ours.WorkerSeconds > 1.15*oracle.WorkerSeconds {
			t.Errorf("%s: ours used %.0f worker-s, %+.0f%% over the oracle's %.0f; want ≤ +15%%", g[0].Trace, ours.WorkerSeconds, (ours.WorkerSeconds/oracle.WorkerSeconds-1)*100, oracle.WorkerSeconds)
		}
	}
}

// The oracle pays for start-up like everyone else: with a start-up delay
// it still meets the target, and needs more worker-seconds than without.
func TestOraclePaysStartup(t *testing.T) {
	p := shortParams()
	for _, tr := range Traces() {
		p.StartupDelay = 0
		instant := Oracle(tr, p)
		p.StartupDelay = 2 * time.Second
		fair := Oracle(tr, p)
		if fair.MaxWait > p.TargetWait.Seconds()+p.Step.Seconds() {
			t.Errorf("%s: max wait %.2fs with a start-up; want ≤ target %s", tr.Name, fair.MaxWait, p.TargetWait)
		}
		if fair.WorkerSeconds <= instant.WorkerSeconds {
			t.Errorf("%s: %.0f worker-s with a 2 s start-up, %.0f without; want more", tr.Name, fair.WorkerSeconds, instant.WorkerSeconds)
		}
	}
}
