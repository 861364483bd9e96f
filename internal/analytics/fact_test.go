package analytics

import (
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

func TestPlace(t *testing.T) {
	for _, tc := range []struct {
		lat, lon float64
		want     string
	}{
		{48.86, 2.35, "Paris"},
		{48.86 + 0.04, 2.35 - 0.05, "Paris"}, // ~6 km off the centre, as the pump jitters
		{-23.56, -46.64, "São Paulo"},
		{45.5, -3.2, "grid:45,-4"}, // Bay of Biscay
	} {
		if got := Place(tc.lat, tc.lon); got != tc.want {
			t.Errorf("Place(%v, %v) = %q; want %q", tc.lat, tc.lon, got, tc.want)
		}
	}
}

func TestNewFact(t *testing.T) {
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	started, finished := created.Add(time.Second), created.Add(1250*time.Millisecond)
	lat, lon := 35.68, 139.65
	img := &job.Image{ID: "img_000000000000000000000001", Tenant: "acme", CreatedAt: created, StartedAt: &started, FinishedAt: &finished}
	res := &job.Result{
		Labels: []job.Label{{Label: " Tabby ", Score: 0.7}, {Label: "tiger cat", Score: 0.2}},
		QR:     []job.Code{{Text: "hello"}, {Text: "https://Shop.Example/p/1", URL: &job.URLParts{Scheme: "https", Host: "Shop.Example", Path: "/p/1"}}},
		EXIF:   &job.EXIF{TakenAt: "2024-05-01T09:00:00+09:00", Latitude: &lat, Longitude: &lon, Make: "Canon", Model: "Canon EOS R6"},
		Faces:  []job.Face{},
		Colors: &job.Colors{Dominant: []job.Swatch{{Hex: "#AABBCC", Fraction: 0.5}}, Brightness: 0.4},
	}
	f := NewFact(img, job.StatusDone, "", res, time.Time{})
	if f.TopLabel != "tabby" || f.Labels != "tabby|tiger cat" || *f.TopScore != 0.7 {
		t.Errorf("labels: %q %q %v", f.TopLabel, f.Labels, *f.TopScore)
	}
	if f.Product != "shop.example/p/1" || *f.QRCount != 2 {
		t.Errorf("product %q, qr count %d", f.Product, *f.QRCount)
	}
	if f.Place != "Tokyo" || !f.TakenAt.Equal(created.Add(-12*time.Hour)) || f.Camera != "Canon EOS R6" {
		t.Errorf("place %q, taken %v, camera %q", f.Place, f.TakenAt, f.Camera)
	}
	if *f.ProcessingMS != 250 || *f.LatencyMS != 1250 || !f.FinishedAt.Equal(finished) {
		t.Errorf("processing %d ms, latency %d ms, finished %v", *f.ProcessingMS, *f.LatencyMS, f.FinishedAt)
	}
	if *f.Faces != 0 || f.DominantColor != "#aabbcc" {
		t.Errorf("faces %d, colour %q", *f.Faces, f.DominantColor)
	}
}
