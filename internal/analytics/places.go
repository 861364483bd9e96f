package analytics

import (
	"fmt"
	"math"
)

// City is a named place images are counted at.
type City struct {
	Name     string
	Lat, Lon float64
}

// Cities is the built-in list Place matches positions against: large cities
// on every continent. Positions farther than CityRadiusKm from all of them
// fall into a grid cell.
var Cities = []City{
	{"Paris", 48.8566, 2.3522},
	{"London", 51.5074, -0.1278},
	{"Berlin", 52.5200, 13.4050},
	{"Madrid", 40.4168, -3.7038},
	{"Rome", 41.9028, 12.4964},
	{"Amsterdam", 52.3676, 4.9041},
	{"Brussels", 50.8503, 4.3517},
	{"Vienna", 48.2082, 16.3738},
	{"Zurich", 47.3769, 8.5417},
	{"Stockholm", 59.3293, 18.0686},
	{"Warsaw", 52.2297, 21.0122},
	{"Istanbul", 41.0082, 28.9784},
	{"Moscow", 55.7558, 37.6173},
	{"Cairo", 30.0444, 31.2357},
	{"Lagos", 6.5244, 3.3792},
	{"Nairobi", -1.2921, 36.8219},
	{"Cape Town", -33.9249, 18.4241},
	{"Johannesburg", -26.2041, 28.0473},
	{"Dubai", 25.2048, 55.2708},
	{"Mumbai", 19.0760, 72.8777},
	{"Delhi", 28.7041, 77.1025},
	{"Bangalore", 12.9716, 77.5946},
	{"Singapore", 1.3521, 103.8198},
	{"Bangkok", 13.7563, 100.5018},
	{"Jakarta", -6.2088, 106.8456},
	{"Hong Kong", 22.3193, 114.1694},
	{"Shanghai", 31.2304, 121.4737},
	{"Beijing", 39.9042, 116.4074},
	{"Seoul", 37.5665, 126.9780},
	{"Tokyo", 35.6762, 139.6503},
	{"Osaka", 34.6937, 135.5023},
	{"Sydney", -33.8688, 151.2093},
	{"Melbourne", -37.8136, 144.9631},
	{"Auckland", -36.8485, 174.7633},
	{"New York", 40.7128, -74.0060},
	{"Boston", 42.3601, -71.0589},
	{"Washington", 38.9072, -77.0369},
	{"Chicago", 41.8781, -87.6298},
	{"Toronto", 43.6532, -79.3832},
	{"Montreal", 45.5017, -73.5673},
	{"Los Angeles", 34.0522, -118.2437},
	{"San Francisco", 37.7749, -122.4194},
	{"Seattle", 47.6062, -122.3321},
	{"Mexico City", 19.4326, -99.1332},
	{"Bogotá", 4.7110, -74.0721},
	{"Lima", -12.0464, -77.0428},
	{"São Paulo", -23.5505, -46.6333},
	{"Rio de Janeiro", -22.9068, -43.1729},
	{"Buenos Aires", -34.6037, -58.3816},
	{"Santiago", -33.4489, -70.6693},
}

// CityRadiusKm is how far from a city's centre a position still counts as
// the city.
const CityRadiusKm = 50.0

const earthRadiusKm = 6371.0

// Place names where a position is: the nearest city of Cities within
// CityRadiusKm, else the 1° grid cell holding it, "grid:LAT,LON" with the
// cell's south-west corner in whole degrees (e.g. "grid:45,-3").
func Place(lat, lon float64) string {
	best, bestKm := "", math.Inf(1)
	for _, c := range Cities {
		if km := distanceKm(lat, lon, c.Lat, c.Lon); km < bestKm {
			best, bestKm = c.Name, km
		}
	}
	if bestKm <= CityRadiusKm {
		return best
	}
	return fmt.Sprintf("grid:%d,%d", int(math.Floor(lat)), int(math.Floor(lon)))
}

// distanceKm is the great-circle distance between two points (haversine).
func distanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dlat := (lat2 - lat1) * rad
	dlon := (lon2 - lon1) * rad
	a := math.Sin(dlat/2)*math.Sin(dlat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}
