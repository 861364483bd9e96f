package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest sample such that at least p% of the
// samples are less than or equal to it. It is 0 for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Dist summarises a latency distribution.
type Dist struct {
	N   int
	Avg time.Duration
	P50 time.Duration
	P90 time.Duration
	P99 time.Duration
	Max time.Duration
}

// NewDist summarises samples; it sorts a copy.
func NewDist(samples []time.Duration) Dist {
	if len(samples) == 0 {
		return Dist{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Dist{
		N:   len(s),
		Avg: sum / time.Duration(len(s)),
		P50: Percentile(s, 50),
		P90: Percentile(s, 90),
		P99: Percentile(s, 99),
		Max: s[len(s)-1],
	}
}

func (d Dist) stat(name string) (time.Duration, bool) {
	if d.N == 0 {
		return 0, false
	}
	switch name {
	case "avg":
		return d.Avg, true
	case "p50":
		return d.P50, true
	case "p90":
		return d.P90, true
	case "p99":
		return d.P99, true
	case "max":
		return d.Max, true
	}
	return 0, false
}

// MarshalJSON writes the durations as milliseconds.
func (d Dist) MarshalJSON() ([]byte, error) {
	ms := func(x time.Duration) float64 { return math.Round(float64(x)/1e3) / 1e3 }
	return json.Marshal(struct {
		N   int     `json:"n"`
		Avg float64 `json:"avg_ms"`
		P50 float64 `json:"p50_ms"`
		P90 float64 `json:"p90_ms"`
		P99 float64 `json:"p99_ms"`
		Max float64 `json:"max_ms"`
	}{d.N, ms(d.Avg), ms(d.P50), ms(d.P90), ms(d.P99), ms(d.Max)})
}

// FieldAccuracy counts how many checked images had one expected field right.
type FieldAccuracy struct {
	Checked int     `json:"checked"`
	Correct int     `json:"correct"`
	Ratio   float64 `json:"accuracy"`
}

func (f *FieldAccuracy) add(ok bool) {
	f.Checked++
	if ok {
		f.Correct++
	}
	f.Ratio = float64(f.Correct) / float64(f.Checked)
}

// Accuracy is how well results matched the expected answers of a manifest.
type Accuracy struct {
	// Images is how many finished images had an expected answer.
	Images int            `json:"images"`
	QR     *FieldAccuracy `json:"qr,omitempty"`
	Time   *FieldAccuracy `json:"time,omitempty"`
	Place  *FieldAccuracy `json:"place,omitempty"`
	Label  *FieldAccuracy `json:"label,omitempty"`
	// Misses lists the first mismatches, "image: field got …, want …".
	Misses []string `json:"misses,omitempty"`
}

// Summary is what a load run measured.
type Summary struct {
	Sent int `json:"sent"`
	Done int `json:"done"`
	// Errors counts images that did not end done: HTTP errors, failed
	// images and transport errors.
	Errors    int     `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	// Elapsed is from the first send to the last answer.
	Elapsed time.Duration `json:"-"`
	// Throughput is done images per second of Elapsed.
	Throughput float64 `json:"throughput"`
	// Latency is per done image, from its scheduled send (so a late send
	// counts against it) to the answer; the others split it by phase.
	Latency    Dist `json:"latency"`
	Upload     Dist `json:"upload"`
	QueueWait  Dist `json:"queue_wait"`
	Processing Dist `json:"processing"`
	// ErrorKinds counts errors by kind: "http 503", "failed: …",
	// "transport: timeout".
	ErrorKinds map[string]int `json:"errors_by_kind"`
	// MaxInFlight is the most requests outstanding at once.
	MaxInFlight int `json:"max_in_flight"`
	// Late counts sends more than LateAfter behind their schedule; MaxLag
	// is the worst delay.
	Late     int           `json:"late_sends"`
	MaxLag   time.Duration `json:"-"`
	Accuracy *Accuracy     `json:"accuracy,omitempty"`
}

// LateAfter is how far behind schedule a send must be to count as late.
const LateAfter = 10 * time.Millisecond

// MarshalJSON adds the durations in seconds and milliseconds.
func (s *Summary) MarshalJSON() ([]byte, error) {
	type plain Summary
	return json.Marshal(struct {
		*plain
		ElapsedSeconds float64 `json:"elapsed_s"`
		MaxLagMillis   float64 `json:"max_lag_ms"`
	}{(*plain)(s), s.Elapsed.Seconds(), float64(s.MaxLag.Microseconds()) / 1e3})
}

// metric returns the value of a metric named in an SLO, in its unit.
func (s *Summary) metric(name string) (float64, bool) {
	acc := func(f func(*Accuracy) *FieldAccuracy) (float64, bool) {
		if s.Accuracy == nil || f(s.Accuracy) == nil || f(s.Accuracy).Checked == 0 {
			return 0, false
		}
		return f(s.Accuracy).Ratio, true
	}
	switch name {
	case "errors":
		return float64(s.Errors), true
	case "error_rate":
		return s.ErrorRate, s.Sent > 0
	case "throughput":
		return s.Throughput, s.Elapsed > 0
	case "accuracy_qr":
		return acc(func(a *Accuracy) *FieldAccuracy { return a.QR })
	case "accuracy_time":
		return acc(func(a *Accuracy) *FieldAccuracy { return a.Time })
	case "accuracy_place":
		return acc(func(a *Accuracy) *FieldAccuracy { return a.Place })
	case "accuracy_label":
		return acc(func(a *Accuracy) *FieldAccuracy { return a.Label })
	}
	d := s.Latency
	if phase, stat, ok := strings.Cut(name, "."); ok {
		switch phase {
		case "upload":
			d = s.Upload
		case "queue":
			d = s.QueueWait
		case "processing":
			d = s.Processing
		}
		name = stat
	}
	v, ok := d.stat(name)
	return v.Seconds(), ok
}

// summarize builds a Summary from the results of a run.
func summarize(results []Result, elapsed time.Duration, maxInFlight, late int, maxLag time.Duration) *Summary {
	s := &Summary{Sent: len(results), Elapsed: elapsed, ErrorKinds: map[string]int{},
		MaxInFlight: maxInFlight, Late: late, MaxLag: maxLag}
	var lat, up, qw, pr []time.Duration
	for _, r := range results {
		if r.Status != StatusDone {
			s.Errors++
			s.ErrorKinds[r.ErrorKind]++
			continue
		}
		s.Done++
		lat = append(lat, r.Latency)
		if r.Upload >= 0 {
			up = append(up, r.Upload)
		}
		if r.QueueWait >= 0 {
			qw = append(qw, r.QueueWait)
		}
		if r.Processing >= 0 {
			pr = append(pr, r.Processing)
		}
	}
	if s.Sent > 0 {
		s.ErrorRate = float64(s.Errors) / float64(s.Sent)
	}
	if elapsed > 0 {
		s.Throughput = float64(s.Done) / elapsed.Seconds()
	}
	s.Latency, s.Upload, s.QueueWait, s.Processing = NewDist(lat), NewDist(up), NewDist(qw), NewDist(pr)
	return s
}

// WriteText writes s for a person to read.
func (s *Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "sent %d · done %d · errors %d (%.1f%%) in %s · %.2f img/s · max in flight %d",
		s.Sent, s.Done, s.Errors, s.ErrorRate*100, formatDuration(s.Elapsed), s.Throughput, s.MaxInFlight)
	if s.Late > 0 {
		fmt.Fprintf(w, " · %d sends late (worst %s)", s.Late, formatDuration(s.MaxLag))
	}
	fmt.Fprintln(w)
	if s.Latency.N > 0 {
		fmt.Fprintf(w, "%-12s %9s %9s %9s %9s %9s %6s\n", "latency", "avg", "p50", "p90", "p99", "max", "n")
		for _, row := range []struct {
			name string
			d    Dist
		}{{"total", s.Latency}, {"upload", s.Upload}, {"queue wait", s.QueueWait}, {"processing", s.Processing}} {
			if row.d.N == 0 {
				continue
			}
			fmt.Fprintf(w, "  %-10s %9s %9s %9s %9s %9s %6d\n", row.name, formatDuration(row.d.Avg), formatDuration(row.d.P50),
				formatDuration(row.d.P90), formatDuration(row.d.P99), formatDuration(row.d.Max), row.d.N)
		}
	}
	if len(s.ErrorKinds) > 0 {
		fmt.Fprintln(w, "errors by kind")
		kinds := make([]string, 0, len(s.ErrorKinds))
		for k := range s.ErrorKinds {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool {
			a, b := s.ErrorKinds[kinds[i]], s.ErrorKinds[kinds[j]]
			return a > b || a == b && kinds[i] < kinds[j]
		})
		for _, k := range kinds {
			fmt.Fprintf(w, "  %6d  %s\n", s.ErrorKinds[k], k)
		}
	}
	if a := s.Accuracy; a != nil {
		fmt.Fprintf(w, "accuracy against the manifest (%d images)\n", a.Images)
		for _, row := range []struct {
			name string
			f    *FieldAccuracy
		}{{"qr", a.QR}, {"time", a.Time}, {"place", a.Place}, {"label", a.Label}} {
			if row.f != nil && row.f.Checked > 0 {
				fmt.Fprintf(w, "  %-6s %5d/%-5d %6.1f%%\n", row.name, row.f.Correct, row.f.Checked, row.f.Ratio*100)
			}
		}
		for _, m := range a.Misses {
			fmt.Fprintf(w, "  miss: %s\n", m)
		}
	}
}

// formatDuration prints d with about three significant digits.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
