// Package analyzertest holds what the analyzers' tests and benchmarks
// share: camera-sized JPEGs made from a real photo, one benchmark that
// splits an analyzer's cost into its working copy and its analysis, and
// the check that skips a test whose dependency is missing.
package analyzertest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/testphotos"
)

// Need skips the test, or fails it when GLIMPSE_STRICT_TESTS=1 (as `make
// test` sets), when err reports that what is missing (the ONNX runtime,
// the model, a photo).
func Need(tb testing.TB, what string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
		tb.Fatalf("%s unavailable: %v", what, err)
	}
	tb.Skipf("%s unavailable: %v", what, err)
}

// JPEG is kite.jpg stretched bilinearly to w×h and encoded as a quality-90
// JPEG, a stand-in for a camera photo of that size.
func JPEG(b *testing.B, w, h int) []byte {
	b.Helper()
	src := testphotos.RGBA(b, "kite.jpg")
	sw, sh := src.Bounds().Dx(), src.Bounds().Dy()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		fy := (float64(y)+0.5)*float64(sh)/float64(h) - 0.5
		y0 := min(max(int(fy), 0), sh-2)
		wy := min(max(fy-float64(y0), 0), 1)
		for x := range w {
			fx := (float64(x)+0.5)*float64(sw)/float64(w) - 0.5
			x0 := min(max(int(fx), 0), sw-2)
			wx := min(max(fx-float64(x0), 0), 1)
			for c := range 4 {
				p := func(x, y int) float64 { return float64(src.Pix[y*src.Stride+4*x+c]) }
				v := (1-wy)*((1-wx)*p(x0, y0)+wx*p(x0+1, y0)) + wy*((1-wx)*p(x0, y0+1)+wx*p(x0+1, y0+1))
				dst.Pix[y*dst.Stride+4*x+c] = uint8(v + 0.5)
			}
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatalf("jpeg.Encode: %v", err)
	}
	return buf.Bytes()
}

// BenchmarkAnalyze splits the cost of analyzer a on 1 MP and 12 MP JPEGs
// into the shared copy it works on (fit, Fit(workSide)) and the analysis on
// it (analyze), and gives
// both together (total). The JPEG is decoded once, outside the timing,
// either as the worker would for this feature alone (decode=own: the
// decoder may DCT-scale down to MinSide) or at full size (decode=full, as
// when another feature of the job needs every pixel).
func BenchmarkAnalyze(b *testing.B, a analyzer.Analyzer, workSide int) {
	ctx := context.Background()
	for _, sz := range []struct {
		name string
		w, h int
	}{{"1MP", 1152, 864}, {"12MP", 4000, 3000}} {
		data := JPEG(b, sz.w, sz.h)
		for _, mode := range []struct {
			name    string
			minSide int
		}{{"own", a.MinSide()}, {"full", analyzer.FullResolution}} {
			dec, err := imagedata.Decode(data, imagedata.DefaultLimits(), imagedata.DecodeOptions{MinSide: mode.minSide})
			if err != nil {
				b.Fatalf("Decode: %v", err)
			}
			r := dec.Image.Bounds()
			prefix := fmt.Sprintf("%s/decode=%s_%dx%d", sz.name, mode.name, r.Dx(), r.Dy())
			b.Run(prefix+"/fit", func(b *testing.B) {
				for b.Loop() {
					analyzer.NewImage("bench", data, dec).Fit(workSide)
				}
			})
			b.Run(prefix+"/analyze", func(b *testing.B) {
				img := analyzer.NewImage("bench", data, dec)
				img.Fit(workSide)
				b.ReportAllocs()
				for b.Loop() {
					var res job.Result
					if err := a.Analyze(ctx, img, &res); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(prefix+"/total", func(b *testing.B) {
				for b.Loop() {
					var res job.Result
					if err := a.Analyze(ctx, analyzer.NewImage("bench", data, dec), &res); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
