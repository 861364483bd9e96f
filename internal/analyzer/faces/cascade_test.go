package faces

import (
	"context"
	"image"
	"slices"
	"syscall"
	"testing"
	"time"

	pigo "github.com/esimov/pigo/core"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
)

// TestClassifierMatchesPigo checks that the cascade evaluator finds exactly
// the windows, with exactly the scores, that pigo's own RunCascade finds,
// over every window size the analyzer scans.
func TestClassifierMatchesPigo(t *testing.T) {
	pg, err := pigo.NewPigo().Unpack(cascadeFile)
	if err != nil {
		t.Fatal(err)
	}
	cls, err := loadCascade()
	if err != nil {
		t.Fatal(err)
	}
	astronaut := decodePixels(t, "astronaut.png")
	for _, tt := range []struct {
		name string
		img  image.Image
	}{
		{"astronaut", astronaut},
		{"small astronaut", onCanvas(astronaut, 640, 480, 128)},
		{"person", decodePixels(t, "person.jpg")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := analyzer.NewImage("img_test", nil, &imagedata.Image{
				Header: imagedata.Header{Width: tt.img.Bounds().Dx(), Height: tt.img.Bounds().Dy(), Orientation: 1},
				Image:  tt.img,
			})
			work := img.Fit(WorkingSide)
			w, h := work.Bounds().Dx(), work.Bounds().Dy()
			pix := grey(work)
			want := pg.RunCascade(pigo.CascadeParams{
				MinSize: minWindow, MaxSize: min(w, h), ShiftFactor: shiftFactor, ScaleFactor: scaleFactor,
				ImageParams: pigo.ImageParams{Pixels: pix, Rows: h, Cols: w, Dim: w},
			}, 0)
			got, err := cls.scan(context.Background(), pix, w, h, minWindow, min(w, h))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %d detections %v; pigo finds %d %v", len(got), got, len(want), want)
			}
			if len(want) == 0 && tt.name != "person" {
				t.Error("no detections to compare")
			}
			t.Logf("%d raw detections compared", len(want))
		})
	}
}

// BenchmarkScan compares the cascade evaluator with pigo's RunCascade on the
// working copy of the 1 MP benchmark photo, every window size.
func BenchmarkScan(b *testing.B) {
	pg, err := pigo.NewPigo().Unpack(cascadeFile)
	if err != nil {
		b.Fatal(err)
	}
	cls, err := loadCascade()
	if err != nil {
		b.Fatal(err)
	}
	dec := benchImage(b, 1200, 900, 0)
	work := analyzer.NewImage("img_bench", nil, dec).Fit(WorkingSide)
	w, h := work.Bounds().Dx(), work.Bounds().Dy()
	pix := grey(work)
	minSize := int(DefaultMinFace * float64(min(w, h)))
	b.Run("pigo", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			pg.RunCascade(pigo.CascadeParams{
				MinSize: minSize, MaxSize: min(w, h), ShiftFactor: shiftFactor, ScaleFactor: scaleFactor,
				ImageParams: pigo.ImageParams{Pixels: pix, Rows: h, Cols: w, Dim: w},
			}, 0)
		}
	})
	b.Run("classifier", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := cls.scan(context.Background(), pix, w, h, minSize, min(w, h)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reportCPU reports the process's CPU time per iteration, which a busy
// machine disturbs less than the wall time: defer reportCPU(b)().
func reportCPU(b *testing.B) func() {
	t0 := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-t0)/float64(b.N)/1e6, "cpu-ms/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
