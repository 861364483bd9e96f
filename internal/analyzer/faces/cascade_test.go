package faces

import (
	"context"
	"fmt"
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
			for _, simd := range []bool{false, true} {
				if simd && !avx512 {
					t.Log("no AVX-512 here: only the Go scan is compared")
					continue
				}
				restore := forceSIMD(simd)
				got, err := cls.scan(context.Background(), pix, w, h, minWindow, min(w, h))
				restore()
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Errorf("simd=%v: got %d detections %v; pigo finds %d %v", simd, len(got), got, len(want), want)
				}
			}
			if len(want) == 0 && tt.name != "person" {
				t.Error("no detections to compare")
			}
			t.Logf("%d raw detections compared", len(want))
		})
	}
}

// TestVectorKernelMatchesGo checks that the AVX-512 kernel finds exactly
// what the Go scan finds, window for window and score for score, on every
// test photo as the analyzer sees it, mirrored too, and at the smallest face
// size a caller can ask for (more windows, more detections).
func TestVectorKernelMatchesGo(t *testing.T) {
	if !avx512 {
		t.Skip("this processor has no AVX-512 (or the build no cgo): the vector kernel is not used here")
	}
	cls, err := loadCascade()
	if err != nil {
		t.Fatal(err)
	}
	var works []*image.RGBA
	var names []string
	for _, name := range []string{"astronaut.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg", "motorcycle_left.png",
		"chelsea.png", "dog.jpg", "horses.jpg", "eagle.jpg", "giraffe.jpg", "person.jpg", "kite.jpg", "scream.jpg"} {
		works = append(works, decode(t, readPhoto(t, name), WorkingSide).Fit(WorkingSide))
		names = append(names, name)
	}
	astronaut := decodePixels(t, "astronaut.png")
	for _, side := range []int{96, 160, 256, 400} {
		works = append(works, onCanvas(astronaut, 640, 480, side))
		names = append(names, fmt.Sprintf("astronaut at %d px", side))
	}
	total := 0
	for k, work := range works {
		name := names[k]
		for _, mirror := range []bool{false, true} {
			if mirror {
				work = mirrored(work)
			}
			w, h := work.Bounds().Dx(), work.Bounds().Dy()
			pix := grey(work)
			var got [2][]pigo.Detection
			for i, simd := range []bool{false, true} {
				restore := forceSIMD(simd)
				got[i], err = cls.scan(context.Background(), pix, w, h, minWindow, min(w, h))
				restore()
				if err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(got[1], got[0]) {
				t.Errorf("%s (mirrored %v): kernel finds %d detections %v; Go finds %d %v", name, mirror, len(got[1]), got[1], len(got[0]), got[0])
			}
			// Split over two goroutines, as for a job of faces alone.
			split, err := cls.scan(analyzer.WithCores(context.Background(), 2), pix, w, h, minWindow, min(w, h))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(split, got[1]) {
				t.Errorf("%s (mirrored %v): the split scan finds %d detections %v; in one piece %d %v", name, mirror, len(split), split, len(got[1]), got[1])
			}
			total += len(got[0])
		}
	}
	if total == 0 {
		t.Error("no detections to compare")
	}
	t.Logf("%d raw detections compared", total)
}

// mirrored returns m flipped left to right.
func mirrored(m *image.RGBA) *image.RGBA {
	r := m.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := range r.Dy() {
		for x := range r.Dx() {
			out.SetRGBA(r.Dx()-1-x, y, m.RGBAAt(r.Min.X+x, r.Min.Y+y))
		}
	}
	return out
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
	for _, simd := range []bool{false, true} {
		name := "classifier/go"
		if simd {
			if !avx512 {
				continue
			}
			name = "classifier/avx512"
		}
		b.Run(name, func(b *testing.B) {
			defer forceSIMD(simd)()
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := cls.scan(context.Background(), pix, w, h, minSize, min(w, h)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// forceSIMD sets whether scans may use the vector kernel until the returned
// function restores it: defer forceSIMD(false)().
func forceSIMD(on bool) func() {
	was := useSIMD
	useSIMD = on
	return func() { useSIMD = was }
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
