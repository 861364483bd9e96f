package faces

import (
	"context"
	"image"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// benchSizes are the photo sizes the benchmarks run on.
var benchSizes = []struct {
	name string
	w, h int
}{
	{"1MP", 1200, 900},
	{"12MP", 4000, 3000},
}

// benchImage returns dog.jpg with astronaut.png's face pasted in, enlarged to
// w×h, encoded as a JPEG and decoded by imagedata with minSide, as the
// worker does.
func benchImage(b testing.TB, w, h, minSide int) *imagedata.Image {
	b.Helper()
	scene := onCanvas(decodePixels(b, "dog.jpg"), 768, 576, 768)
	face := image.NewRGBA(image.Rect(0, 0, 256, 256))
	scaleInto(face, decodePixels(b, "astronaut.png"))
	for y := range 256 {
		copy(scene.Pix[scene.PixOffset(500, 20+y):], face.Pix[face.PixOffset(0, y):face.PixOffset(256, y)])
	}
	big := image.NewRGBA(image.Rect(0, 0, w, h))
	scaleInto(big, scene)
	dec, err := imagedata.Decode(encodeJPEG(b, big, 90), imagedata.DefaultLimits(), imagedata.DecodeOptions{MinSide: minSide})
	if err != nil {
		b.Fatal(err)
	}
	return dec
}

// BenchmarkAnalyze measures faces on decoded photos: "fit" includes making
// the ≤ 640 px working copy (a fresh Image each time), "cached" reuses it as
// a job whose other analyzers asked first would; "dct" decodes with
// MinSide 640 as the worker does when faces needs the most pixels.
func BenchmarkAnalyze(b *testing.B) {
	a, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range benchSizes {
		full := benchImage(b, s.w, s.h, 0)
		dct := benchImage(b, s.w, s.h, WorkingSide)
		for _, c := range []struct {
			name   string
			dec    *imagedata.Image
			cached bool
		}{
			{"full/fit", full, false},
			{"full/cached", full, true},
			{"dct/fit", dct, false},
		} {
			b.Run(s.name+"/"+c.name, func(b *testing.B) {
				shared := analyzer.NewImage("img_bench", nil, c.dec)
				var res job.Result
				b.ReportAllocs()
				for b.Loop() {
					img := shared
					if !c.cached {
						img = analyzer.NewImage("img_bench", nil, c.dec)
					}
					if err := a.Analyze(ctx, img, &res); err != nil {
						b.Fatal(err)
					}
					if len(res.Faces) != 1 {
						b.Fatalf("got %d faces; want 1", len(res.Faces))
					}
				}
			})
		}
	}
}
