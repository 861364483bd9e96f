package web

import (
	"encoding/json"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// exampleImage is a finished image asked for every feature, as GET
// /v1/images/{id} returns it: the example of the Image and Result schemas
// in the OpenAPI document. Its values are what the analyzers give a phone
// photo of a product label with a QR code, taken in Paris.
func exampleImage() *job.Image {
	lat, lon, alt := 48.8584, 2.2945, 35.0
	created := time.Date(2024, 5, 17, 12, 3, 20, 0, time.UTC)
	started, finished := created.Add(40*time.Millisecond), created.Add(95*time.Millisecond)
	return &job.Image{
		ID: "img_3e4bf4b7455f172d0f8bb137", Filename: "label.jpg", ContentType: "image/jpeg",
		Size: 812345, SHA256: "9f2c1e6a0b7d4c3e8f5a6b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e",
		Width: 3024, Height: 4032, Features: job.Features, Status: job.StatusDone, Attempts: 1,
		CreatedAt: created, UpdatedAt: finished, StartedAt: &started, FinishedAt: &finished,
		Result: &job.Result{
			Width: 3024, Height: 4032, Model: "mobilenetv2-12-int8",
			Labels: []job.Label{{Label: "packet", Score: 0.41}, {Label: "carton", Score: 0.17}, {Label: "menu", Score: 0.06}},
			QR: []job.Code{{
				Text: "https://shop.example/p/42?src=label", Format: "QR_CODE",
				Points: []job.Point{{X: 1210, Y: 2388}, {X: 1702, Y: 2391}, {X: 1699, Y: 2880}, {X: 1207, Y: 2877}},
				URL:    &job.URLParts{Scheme: "https", Host: "shop.example", Path: "/p/42", Query: "src=label"},
			}},
			EXIF: &job.EXIF{TakenAt: "2024-05-17T14:03:11+02:00", Latitude: &lat, Longitude: &lon, Altitude: &alt,
				Make: "Apple", Model: "iPhone 15 Pro", Orientation: 6},
			Faces: []job.Face{},
			Colors: &job.Colors{
				Dominant:   []job.Swatch{{Hex: "#f2efe8", Fraction: 0.46}, {Hex: "#3a5f8c", Fraction: 0.31}, {Hex: "#1d1d1f", Fraction: 0.23}},
				Brightness: 0.62, Saturation: 0.21,
				Histogram: []float64{0.02, 0.05, 0.09, 0.07, 0.05, 0.04, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.09, 0.06, 0.04},
			},
			Quality: &job.Quality{Sharpness: 812.4, Contrast: 0.27, Entropy: 7.31, Exposure: "ok",
				Underexposed: 0.03, Overexposed: 0.01, Megapixels: 12.2},
			PHash:     "c3a1f0e08c0f1e3c",
			Thumbnail: &job.Thumbnail{Width: 240, Height: 320, ContentType: "image/jpeg"},
		},
	}
}

// documentExamples sets exampleImage as the example of the Image and
// Result schemas, as JSON values the way the API sends them.
func (s *Server) documentExamples() {
	img := exampleImage()
	schemas := s.api.OpenAPI().Components.Schemas.Map()
	for name, v := range map[string]any{"Image": img, "Result": img.Result} {
		sc, ok := schemas[name]
		if !ok {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // a fixed value of our own types
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			panic(err)
		}
		sc.Examples = []any{doc}
	}
}
