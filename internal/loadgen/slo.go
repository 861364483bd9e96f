package loadgen

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// An SLO is one service-level objective such as "p99<1.2s": a metric of the
// Summary, a comparison and a bound.
type SLO struct {
	// Text is the objective as written, trimmed.
	Text   string
	Metric string
	Op     string
	// Bound is the bound in the metric's unit: seconds for latencies, a
	// count for errors, a fraction for rates and accuracies, images per
	// second for throughput.
	Bound float64
}

// metricKind says how a metric's bound is written.
type metricKind int

const (
	kindDuration metricKind = iota // 1.2s, 600ms, or bare seconds
	kindCount                      // a whole number
	kindFraction                   // 0.01 or 1%
	kindRate                       // images per second, optionally "/s"
)

// latencyStats are the statistics of a latency distribution a check can name.
var latencyStats = []string{"avg", "p50", "p90", "p99", "max"}

// latencyPhases prefix a statistic to name a phase instead of the total:
// "queue.p99", "upload.max".
var latencyPhases = []string{"upload", "queue", "processing"}

// metrics maps each plain metric name to its kind.
var metrics = map[string]metricKind{
	"errors":         kindCount,
	"error_rate":     kindFraction,
	"throughput":     kindRate,
	"accuracy_qr":    kindFraction,
	"accuracy_time":  kindFraction,
	"accuracy_place": kindFraction,
	"accuracy_label": kindFraction,
}

func metricKindOf(name string) (metricKind, bool) {
	if k, ok := metrics[name]; ok {
		return k, true
	}
	stat := name
	if phase, s, ok := strings.Cut(name, "."); ok {
		known := false
		for _, p := range latencyPhases {
			known = known || p == phase
		}
		if !known {
			return 0, false
		}
		stat = s
	}
	for _, s := range latencyStats {
		if s == stat {
			return kindDuration, true
		}
	}
	return 0, false
}

// validMetrics describes the metric names for error messages.
const validMetrics = "avg, p50, p90, p99, max (optionally prefixed upload., queue. or processing.), " +
	"errors, error_rate, throughput, accuracy_qr, accuracy_time, accuracy_place, accuracy_label"

// ops are the comparisons, longest first so that "<=" is not read as "<".
var ops = []string{"<=", ">=", "==", "!=", "<", ">", "="}

// ParseSLOs parses a comma-separated list of objectives such as
// "p99<1.2s,avg<0.6s,errors=0". Latency bounds are Go durations (or bare
// seconds); error_rate and accuracies are fractions or percentages; throughput
// is images per second. "=" and "==" are the same test.
func ParseSLOs(s string) ([]SLO, error) {
	var out []SLO
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		slo, err := parseSLO(part)
		if err != nil {
			return nil, err
		}
		out = append(out, slo)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("loadgen: check %q names no objective; write e.g. 'p99<1.2s,errors=0'", s)
	}
	return out, nil
}

func parseSLO(text string) (SLO, error) {
	at, op := -1, ""
	for _, o := range ops {
		if i := strings.Index(text, o); i >= 0 && (at < 0 || i < at || i == at && len(o) > len(op)) {
			at, op = i, o
		}
	}
	if at < 0 {
		return SLO{}, fmt.Errorf("loadgen: objective %q has no comparison; use one of < <= > >= =", text)
	}
	name := strings.ToLower(strings.TrimSpace(text[:at]))
	val := strings.TrimSpace(text[at+len(op):])
	if op == "==" {
		op = "="
	}
	kind, ok := metricKindOf(name)
	if !ok {
		return SLO{}, fmt.Errorf("loadgen: objective %q: unknown metric %q; valid metrics are %s", text, name, validMetrics)
	}
	if val == "" {
		return SLO{}, fmt.Errorf("loadgen: objective %q has no bound", text)
	}
	bound, err := parseBound(kind, val)
	if err != nil {
		return SLO{}, fmt.Errorf("loadgen: objective %q: %v", text, err)
	}
	return SLO{Text: text, Metric: name, Op: op, Bound: bound}, nil
}

func parseBound(kind metricKind, v string) (float64, error) {
	switch kind {
	case kindDuration:
		if d, err := time.ParseDuration(v); err == nil {
			return d.Seconds(), nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) {
			return 0, fmt.Errorf("bound %q is not a duration such as 1.2s or 600ms", v)
		}
		return f, nil
	case kindCount:
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return 0, fmt.Errorf("bound %q is not a whole number", v)
		}
		return float64(n), nil
	case kindFraction:
		pct := strings.HasSuffix(v, "%")
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil || math.IsNaN(f) {
			return 0, fmt.Errorf("bound %q is not a fraction such as 0.01 or 1%%", v)
		}
		if pct {
			f /= 100
		}
		if f < 0 || f > 1 {
			// 99 meant as 99% would otherwise be a bound no share meets,
			// or every share does: refuse it rather than guess.
			return 0, fmt.Errorf("bound %q is not a share between 0 and 1: write 0.99 or 99%%", v)
		}
		return f, nil
	default:
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "/s"), 64)
		if err != nil || math.IsNaN(f) {
			return 0, fmt.Errorf("bound %q is not a rate such as 20 or 20/s", v)
		}
		return f, nil
	}
}

// Outcome is one objective checked against a Summary.
type Outcome struct {
	SLO
	// Value is the measured value in the metric's unit; Known is false
	// when the run measured nothing for it (no image finished, no
	// manifest), which misses the objective.
	Value float64
	Known bool
	Met   bool
}

// String describes the outcome, e.g. "p99<1ns missed: p99 = 812ms".
func (o Outcome) String() string {
	verdict := "met"
	if !o.Met {
		verdict = "missed"
	}
	if !o.Known {
		return fmt.Sprintf("%s %s: %s was not measured", o.Text, verdict, o.Metric)
	}
	return fmt.Sprintf("%s %s: %s = %s", o.Text, verdict, o.Metric, formatValue(o.Metric, o.Value))
}

func formatValue(metric string, v float64) string {
	kind, _ := metricKindOf(metric)
	switch kind {
	case kindDuration:
		return formatDuration(time.Duration(v * float64(time.Second)))
	case kindCount:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case kindFraction:
		return strconv.FormatFloat(v*100, 'f', -1, 64) + "%"
	default:
		return strconv.FormatFloat(v, 'f', 2, 64) + "/s"
	}
}

// Check evaluates each objective against s.
func Check(s *Summary, slos []SLO) []Outcome {
	out := make([]Outcome, len(slos))
	for i, slo := range slos {
		v, known := s.metric(slo.Metric)
		o := Outcome{SLO: slo, Value: v, Known: known}
		if known {
			o.Met = compare(v, slo.Op, slo.Bound)
		}
		out[i] = o
	}
	return out
}

func compare(v float64, op string, bound float64) bool {
	switch op {
	case "<":
		return v < bound
	case "<=":
		return v <= bound
	case ">":
		return v > bound
	case ">=":
		return v >= bound
	case "!=":
		return v != bound
	default:
		return v == bound
	}
}
