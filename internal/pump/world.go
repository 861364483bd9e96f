package pump

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"
	_ "time/tzdata" // City.Zone: the same offsets on every machine
)

// City is a place photos are taken around.
type City struct {
	Name     string
	Lat, Lon float64
	// Weight is the city's share of photos, relative to the others.
	Weight float64
	// Zone is the city's IANA time zone, daylight saving included; the
	// time zone database is built into the binary (time/tzdata), so runs
	// do not depend on the machine's. Empty: Offset, fixed.
	Zone string
	// Offset is a fixed UTC offset for a city without a Zone.
	Offset time.Duration
}

// location is c's time zone.
func (c City) location() (*time.Location, error) {
	if c.Zone == "" {
		return time.FixedZone("", int(c.Offset.Seconds())), nil
	}
	return time.LoadLocation(c.Zone)
}

// DefaultCities covers every hemisphere, so positions come with all four
// reference letters (N/S, E/W).
var DefaultCities = []City{
	{Name: "Paris", Lat: 48.8566, Lon: 2.3522, Weight: 8, Zone: "Europe/Paris"},
	{Name: "London", Lat: 51.5074, Lon: -0.1278, Weight: 7, Zone: "Europe/London"},
	{Name: "Berlin", Lat: 52.5200, Lon: 13.4050, Weight: 5, Zone: "Europe/Berlin"},
	{Name: "New York", Lat: 40.7128, Lon: -74.0060, Weight: 7, Zone: "America/New_York"},
	{Name: "San Francisco", Lat: 37.7749, Lon: -122.4194, Weight: 4, Zone: "America/Los_Angeles"},
	{Name: "Tokyo", Lat: 35.6762, Lon: 139.6503, Weight: 6, Zone: "Asia/Tokyo"},
	{Name: "Mumbai", Lat: 19.0760, Lon: 72.8777, Weight: 3, Zone: "Asia/Kolkata"},
	{Name: "Sydney", Lat: -33.8688, Lon: 151.2093, Weight: 3, Zone: "Australia/Sydney"},
	{Name: "São Paulo", Lat: -23.5505, Lon: -46.6333, Weight: 3, Zone: "America/Sao_Paulo"},
	{Name: "Cape Town", Lat: -33.9249, Lon: 18.4241, Weight: 2, Zone: "Africa/Johannesburg"},
}

// hourWeights is the daily rhythm: the relative number of photos taken in
// each local hour, few at night, most around lunch and early evening.
var hourWeights = [24]float64{
	0.6, 0.3, 0.15, 0.1, 0.1, 0.2, 0.6, 1.5, 3, 4.5, 5.5, 6.5,
	7.5, 7, 6, 6, 6.5, 7.5, 8, 7.5, 6, 4, 2.5, 1.2,
}

// maxJitterKm is how far from its city centre a photo may be taken.
const maxJitterKm = 5.0

// km per degree of latitude.
const kmPerDegree = 111.32

// weighted picks an index with probability proportional to its weight.
type weighted struct{ cum []float64 }

func newWeighted(ws []float64) weighted {
	cum := make([]float64, len(ws))
	sum := 0.0
	for i, w := range ws {
		sum += w
		cum[i] = sum
	}
	return weighted{cum: cum}
}

func (w weighted) pick(rng *rand.Rand) int {
	x := rng.Float64() * w.cum[len(w.cum)-1]
	return min(sort.SearchFloat64s(w.cum, x), len(w.cum)-1)
}

// zipfWeights are the popularity weights of n products, rank k (from 0)
// weighing 1/(k+1)^s.
func zipfWeights(n int, s float64) []float64 {
	ws := make([]float64, n)
	for k := range ws {
		ws[k] = 1 / math.Pow(float64(k+1), s)
	}
	return ws
}

var (
	adjectives = []string{"walnut", "linen", "copper", "ceramic", "wool", "oak", "glass", "brass", "cotton", "slate"}
	nouns      = []string{"lamp", "mug", "chair", "throw", "vase", "desk", "tray", "clock", "shelf", "bowl"}
)

// productPath is the path of product k (from 0) on the shop.
func productPath(k int) string {
	a := adjectives[k%len(adjectives)]
	n := nouns[(k/len(adjectives)+k)%len(nouns)]
	return fmt.Sprintf("/p/%04d/%s-%s", k+1, a, n)
}

// place draws a point uniformly within maxJitterKm of c.
func place(rng *rand.Rand, c City) (lat, lon float64) {
	r := maxJitterKm * math.Sqrt(rng.Float64())
	th := 2 * math.Pi * rng.Float64()
	lat = c.Lat + r*math.Cos(th)/kmPerDegree
	lon = c.Lon + r*math.Sin(th)/(kmPerDegree*math.Cos(c.Lat*math.Pi/180))
	return lat, lon
}

// takenAt draws a time in [from, until) in the city's zone, following the
// daily rhythm, to the second.
func takenAt(rng *rand.Rand, hours weighted, from, until time.Time, zone *time.Location) time.Time {
	span := until.Sub(from)
	var t time.Time
	for range 32 {
		day := from.Add(time.Duration(rng.Int64N(int64(span)))).In(zone)
		h := hours.pick(rng)
		t = time.Date(day.Year(), day.Month(), day.Day(), h, rng.IntN(60), rng.IntN(60), 0, zone)
		if !t.Before(from) && t.Before(until) {
			return t
		}
	}
	// A range of a few hours may never meet the drawn hour: take any
	// second of it.
	return from.Add(time.Duration(rng.Int64N(int64(span)))).In(zone).Truncate(time.Second)
}
