package loadgen

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Arrivals is how open-loop sends are spaced.
type Arrivals string

// The arrival processes.
const (
	// Poisson spaces sends by exponentially distributed gaps, as
	// independent users would.
	Poisson Arrivals = "poisson"
	// Uniform spaces sends evenly, 1/rate apart.
	Uniform Arrivals = "uniform"
)

// ParseArrivals parses "poisson" or "uniform".
func ParseArrivals(s string) (Arrivals, error) {
	switch a := Arrivals(s); a {
	case Poisson, Uniform:
		return a, nil
	}
	return "", fmt.Errorf("loadgen: arrivals %q: want poisson or uniform", s)
}

// Schedule gives the send times of an open-loop run as offsets from its
// start. It is deterministic for a seed.
type Schedule struct {
	gap  float64 // mean gap in seconds
	kind Arrivals
	rng  *rand.Rand
	at   float64 // seconds since start of the last arrival
	n    int
}

// NewSchedule returns the schedule of rate sends per second (rate > 0).
func NewSchedule(rate float64, kind Arrivals, seed uint64) *Schedule {
	return &Schedule{gap: 1 / rate, kind: kind, rng: rand.New(rand.NewPCG(seed, 0x6c6f6164))}
}

// Next returns the offset of the next send. The first uniform send is at 0;
// the first Poisson send after one random gap.
func (s *Schedule) Next() time.Duration {
	switch s.kind {
	case Uniform:
		s.at = float64(s.n) * s.gap
	default:
		s.at += s.rng.ExpFloat64() * s.gap
	}
	s.n++
	return time.Duration(s.at * float64(time.Second))
}
