package sim

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
)

// Contender names a scaler; New makes a fresh one for each run.
type Contender struct {
	Name string
	New  func() (Scaler, error)
}

// Ourselves is the name of our policy in results.
const Ourselves = "glimpse"

// Contenders returns our policy (cfg, with Min, Max and TargetWait taken from
// p, and the service rate it assumes until it has measured one set from
// p's mean service time, which aws-backlog is given too) and the baselines,
// for the world p.
func Contenders(p Params, cfg autoscale.PolicyConfig) []Contender {
	p = p.withDefaults()
	cfg.Min, cfg.Max, cfg.TargetWait = p.Min, p.Max, p.TargetWait
	cfg.ServiceRate = 1 / p.ServiceMean.Seconds()
	return []Contender{
		{Ourselves, func() (Scaler, error) {
			pol, err := autoscale.NewPolicy(cfg)
			return &Ours{P: pol}, err
		}},
		{"fixed-min", func() (Scaler, error) { return &Fixed{N: p.Min}, nil }},
		{"fixed-max", func() (Scaler, error) { return &Fixed{N: p.Max}, nil }},
		{"hpa-cpu70", func() (Scaler, error) { return NewHPACPU(), nil }},
		{"keda-queue5", func() (Scaler, error) { return NewKEDAQueue(5), nil }},
		{"aws-backlog", func() (Scaler, error) { return NewAWSBacklog(p.TargetWait, p.ServiceMean), nil }},
		{"knative", func() (Scaler, error) { return NewKnative(), nil }},
	}
}

// Compare runs every contender and the oracle on every trace.
func Compare(traces []Trace, cs []Contender, p Params) ([]Result, error) {
	var out []Result
	for _, tr := range traces {
		for _, c := range cs {
			s, err := c.New()
			if err != nil {
				return nil, fmt.Errorf("sim: %s: %w", c.Name, err)
			}
			out = append(out, Run(tr, c.Name, s, p))
		}
		out = append(out, Oracle(tr, p))
	}
	return out, nil
}

// Dominators returns the baselines that beat ours on both axes (p99 wait and
// worker-seconds, each at least as good and one strictly better) in one
// trace's results.
func Dominators(rs []Result) []string {
	var ours *Result
	for i := range rs {
		if rs[i].Policy == Ourselves {
			ours = &rs[i]
		}
	}
	if ours == nil {
		return nil
	}
	var out []string
	for _, r := range rs {
		if r.Policy == Ourselves || r.Policy == "oracle" {
			continue
		}
		if r.P99 <= ours.P99 && r.WorkerSeconds <= ours.WorkerSeconds && (r.P99 < ours.P99 || r.WorkerSeconds < ours.WorkerSeconds) {
			out = append(out, r.Policy)
		}
	}
	return out
}

// ByTrace groups results by trace, in order.
func ByTrace(rs []Result) [][]Result {
	var out [][]Result
	for _, r := range rs {
		if len(out) == 0 || out[len(out)-1][0].Trace != r.Trace {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], r)
	}
	return out
}

// WriteTable prints the results and, per trace, how ours compares to the
// goal: dominated by no baseline, within 15% of the oracle's worker-seconds.
func WriteTable(w io.Writer, rs []Result, p Params) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "trace\tpolicy\tjobs\tp50 wait\tp99 wait\tworker-s\tvs oracle\tscale events\treversals\t")
	var verdicts []string
	for _, group := range ByTrace(rs) {
		var oracle float64
		for _, r := range group {
			if r.Policy == "oracle" {
				oracle = r.WorkerSeconds
			}
		}
		for _, r := range group {
			rel := "-"
			if oracle > 0 {
				rel = fmt.Sprintf("%+.0f%%", (r.WorkerSeconds/oracle-1)*100)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2fs\t%.2fs\t%.0f\t%s\t%d\t%d\t\n", r.Trace, r.Policy, r.Jobs, r.P50, r.P99, r.WorkerSeconds, rel, r.ScaleEvents, r.Reversals)
		}
		fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t")
		i := slices.IndexFunc(group, func(r Result) bool { return r.Policy == Ourselves })
		if i < 0 || oracle == 0 {
			continue
		}
		ours := group[i]
		dom := Dominators(group)
		v := fmt.Sprintf("%-7s dominated by: %-22s oracle gap %+4.0f%% (goal ≤ +15%%)  p99 %.2fs (target %s)",
			ours.Trace, orNone(dom), (ours.WorkerSeconds/oracle-1)*100, ours.P99, p.withDefaults().TargetWait)
		verdicts = append(verdicts, v)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\ngoal check (%s):\n  %s\n", Ourselves, strings.Join(verdicts, "\n  "))
	return err
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}
