package sim

import (
	"math"
	"time"
)

// Trace is an arrival-rate curve: jobs per second at t seconds from the start.
type Trace struct {
	Name     string
	Duration time.Duration
	Rate     func(t float64) float64
}

// Traces are the standard traces, for a worker serving about 10 jobs/s:
//
//	step      10/s, then ×10 for five minutes, then back
//	daily     a day compressed into 20 minutes: 5/s at night to 150/s at noon
//	bursts    20/s with a 15 s burst of 150/s every 90 s
//	idle      idle 5 minutes, 20 s at 100/s, idle, again: scale to zero and back
//	flash     20/s with a 30 s flash crowd of 300/s
func Traces() []Trace {
	return []Trace{
		{Name: "step", Duration: 10 * time.Minute, Rate: func(t float64) float64 {
			if t >= 120 && t < 420 {
				return 100
			}
			return 10
		}},
		{Name: "daily", Duration: 20 * time.Minute, Rate: func(t float64) float64 {
			return 5 + 145*(1-math.Cos(2*math.Pi*t/1200))/2
		}},
		{Name: "bursts", Duration: 15 * time.Minute, Rate: func(t float64) float64 {
			if math.Mod(t, 90) >= 60 && math.Mod(t, 90) < 75 {
				return 150
			}
			return 20
		}},
		{Name: "idle", Duration: 15 * time.Minute, Rate: func(t float64) float64 {
			if (t >= 300 && t < 320) || (t >= 700 && t < 720) {
				return 100
			}
			return 0
		}},
		{Name: "flash", Duration: 10 * time.Minute, Rate: func(t float64) float64 {
			if t >= 200 && t < 230 {
				return 300
			}
			return 20
		}},
	}
}
