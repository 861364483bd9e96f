package thumbnail

import (
	"context"
	"image"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// discard is a Blobs that stores nothing.
type discard struct{}

func (discard) Put(context.Context, string, []byte, string) error { return nil }

// benchImage returns dog.jpg enlarged to w×h, encoded as a JPEG and decoded
// by imagedata with minSide, as the worker does.
func benchImage(b *testing.B, w, h, minSide int) *imagedata.Image {
	b.Helper()
	src := decode(b, readPhoto(b, "dog.jpg"), 0).Pixels
	big := image.NewRGBA(image.Rect(0, 0, w, h))
	sb := src.Bounds()
	for y := range h {
		for x := range w {
			big.Set(x, y, src.At(sb.Min.X+x*sb.Dx()/w, sb.Min.Y+y*sb.Dy()/h))
		}
	}
	dec, err := imagedata.Decode(encodeJPEG(b, big, 90), imagedata.DefaultLimits(), imagedata.DecodeOptions{MinSide: minSide})
	if err != nil {
		b.Fatal(err)
	}
	return dec
}

// BenchmarkAnalyze measures thumbnails of decoded photos: "fit" includes
// scaling to 320 px (a fresh Image each time), "cached" only encodes; "dct"
// decodes with MinSide 320 as the worker does when only the thumbnail needs
// pixels.
func BenchmarkAnalyze(b *testing.B) {
	a, err := New(Config{Blobs: discard{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range []struct {
		name string
		w, h int
	}{
		{"1MP", 1200, 900},
		{"12MP", 4000, 3000},
	} {
		full := benchImage(b, s.w, s.h, 0)
		dct := benchImage(b, s.w, s.h, DefaultMaxSide)
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
				}
			})
		}
	}
}
