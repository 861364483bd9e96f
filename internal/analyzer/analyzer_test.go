package analyzer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

type stub struct {
	f       job.Feature
	minSide int
	fn      func(ctx context.Context, res *job.Result) error
	closed  bool
}

func (s *stub) Feature() job.Feature { return s.f }
func (s *stub) MinSide() int         { return s.minSide }
func (s *stub) Analyze(ctx context.Context, _ *Image, res *job.Result) error {
	return s.fn(ctx, res)
}
func (s *stub) Close() error { s.closed = true; return nil }

func ok(context.Context, *job.Result) error { return nil }

func TestMinSide(t *testing.T) {
	p, err := NewPipeline(0,
		&stub{f: job.FeatureLabels, minSide: 256, fn: ok},
		&stub{f: job.FeatureFaces, minSide: 640, fn: ok},
		&stub{f: job.FeatureQR, minSide: FullResolution, fn: ok},
		&stub{f: job.FeatureEXIF, minSide: NoPixels, fn: ok},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		features []job.Feature
		want     int
	}{
		{[]job.Feature{job.FeatureLabels}, 256},
		{[]job.Feature{job.FeatureLabels, job.FeatureFaces}, 640},
		{[]job.Feature{job.FeatureLabels, job.FeatureQR}, FullResolution},
		{[]job.Feature{job.FeatureEXIF}, NoPixels},
		{[]job.Feature{job.FeatureEXIF, job.FeatureLabels}, 256},
	} {
		if got := p.MinSide(tc.features); got != tc.want {
			t.Errorf("MinSide(%v) = %d; want %d", tc.features, got, tc.want)
		}
	}
	if _, err := NewPipeline(0, &stub{f: job.FeatureQR, fn: ok}, &stub{f: job.FeatureQR, fn: ok}); err == nil {
		t.Error("two analyzers for one feature were accepted")
	}
}

func TestRunIsolatesFailures(t *testing.T) {
	for _, parallel := range []int{1, 4} {
		t.Run(fmt.Sprintf("parallel %d", parallel), func(t *testing.T) {
			labels := &stub{f: job.FeatureLabels, fn: func(_ context.Context, res *job.Result) error {
				res.Labels = []job.Label{{Label: "tabby", Score: 0.9}}
				return nil
			}}
			failing := &stub{f: job.FeatureColors, fn: func(context.Context, *job.Result) error { return errors.New("no colours today") }}
			slow := &stub{f: job.FeatureQuality, fn: func(ctx context.Context, _ *job.Result) error {
				<-ctx.Done()
				return ctx.Err()
			}}
			notAsked := &stub{f: job.FeaturePHash, fn: func(context.Context, *job.Result) error {
				t.Error("an analyzer ran for a feature nobody asked for")
				return nil
			}}
			p, err := NewPipeline(50*time.Millisecond, labels, failing, slow, notAsked)
			if err != nil {
				t.Fatal(err)
			}
			p.SetParallel(parallel)
			res := &job.Result{}
			err = p.Run(context.Background(), &Image{}, []job.Feature{job.FeatureLabels, job.FeatureColors, job.FeatureQuality, job.FeatureFaces}, res)
			if err != nil {
				t.Fatalf("Run = %v; want nil (feature failures are per feature)", err)
			}
			if len(res.Labels) != 1 {
				t.Errorf("labels = %v; want the working analyzer's answer", res.Labels)
			}
			want := map[job.Feature]string{
				job.FeatureColors:  "no colours today",
				job.FeatureQuality: "took longer than 50ms",
				job.FeatureFaces:   "this server has no analyzer for it",
			}
			for f, msg := range want {
				if res.Errors[f] != msg {
					t.Errorf("errors[%s] = %q; want %q", f, res.Errors[f], msg)
				}
			}
			if len(res.Errors) != len(want) {
				t.Errorf("errors = %v; want exactly %v", res.Errors, want)
			}
			p.Close()
			if !labels.closed || !failing.closed {
				t.Error("Close did not close the analyzers")
			}
		})
	}
}

func TestRunReturnsPanics(t *testing.T) {
	for _, parallel := range []int{1, 4} {
		t.Run(fmt.Sprintf("parallel %d", parallel), func(t *testing.T) {
			p, _ := NewPipeline(0,
				&stub{f: job.FeatureLabels, fn: ok},
				&stub{f: job.FeatureColors, fn: func(context.Context, *job.Result) error { return errors.New("no colours today") }},
				&stub{f: job.FeatureQuality, fn: func(context.Context, *job.Result) error { panic("boom") }},
				&stub{f: job.FeaturePHash, fn: ok},
			)
			p.SetParallel(parallel)
			err := p.Run(context.Background(), &Image{}, []job.Feature{job.FeatureLabels, job.FeatureColors, job.FeatureQuality, job.FeaturePHash}, &job.Result{})
			var pe *PanicError
			if !errors.As(err, &pe) || pe.Feature != job.FeatureQuality || pe.Value != "boom" {
				t.Errorf("Run = %v; want a *PanicError for quality", err)
			}
		})
	}
}

// TestRunConcurrently checks that the analyzers of one job run at the same
// time when allowed to: each of two waits for the other to start, which
// only works when both run at once, and one after another when not.
func TestRunConcurrently(t *testing.T) {
	for _, parallel := range []int{1, 2} {
		t.Run(fmt.Sprintf("parallel %d", parallel), func(t *testing.T) {
			started := map[job.Feature]chan struct{}{job.FeatureLabels: make(chan struct{}), job.FeatureColors: make(chan struct{})}
			var order []job.Feature
			var mu sync.Mutex
			rendezvous := func(self, other job.Feature) func(ctx context.Context, res *job.Result) error {
				return func(ctx context.Context, res *job.Result) error {
					mu.Lock()
					order = append(order, self)
					mu.Unlock()
					close(started[self])
					select {
					case <-started[other]:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			timeout := 10 * time.Second // not reached: both return as soon as both started
			if parallel == 1 {
				timeout = 50 * time.Millisecond
			}
			p, _ := NewPipeline(timeout,
				&stub{f: job.FeatureLabels, fn: rendezvous(job.FeatureLabels, job.FeatureColors)},
				&stub{f: job.FeatureColors, fn: rendezvous(job.FeatureColors, job.FeatureLabels)},
			)
			p.SetParallel(parallel)
			res := &job.Result{}
			if err := p.Run(context.Background(), &Image{}, []job.Feature{job.FeatureColors, job.FeatureLabels}, res); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if parallel == 1 {
				// One after another, in the pipeline's order: labels waits in
				// vain for colours, which then finds labels started.
				if want := []job.Feature{job.FeatureLabels, job.FeatureColors}; !slices.Equal(order, want) {
					t.Errorf("ran %v; want %v", order, want)
				}
				if res.Errors[job.FeatureLabels] == "" || res.Errors[job.FeatureColors] != "" {
					t.Errorf("errors = %v; want labels alone timed out", res.Errors)
				}
				return
			}
			if len(res.Errors) != 0 {
				t.Errorf("errors = %v; want none (the two ran at once)", res.Errors)
			}
		})
	}
}

func TestRunCanceled(t *testing.T) {
	ran := false
	p, _ := NewPipeline(0, &stub{f: job.FeatureLabels, fn: func(context.Context, *job.Result) error { ran = true; return nil }},
		&stub{f: job.FeatureColors, fn: ok})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx, &Image{}, []job.Feature{job.FeatureLabels, job.FeatureColors}, &job.Result{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v; want context.Canceled", err)
	}
	if ran {
		t.Error("an analyzer ran after the job was canceled")
	}
}

func TestFit(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 400, 300))
	for y := 0; y < 300; y++ {
		for x := 0; x < 400; x++ {
			// Fine stripes that average to mid grey: aliasing would show.
			v := uint8(0)
			if x%2 == 0 {
				v = 255
			}
			src.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	img := NewImage("img", nil, &imagedata.Image{Header: imagedata.Header{Width: 400, Height: 300, Orientation: 1}, Image: src})
	small := img.Fit(100)
	if b := small.Bounds(); b.Dx() != 100 || b.Dy() != 75 {
		t.Fatalf("Fit(100) is %v; want 100×75", b)
	}
	if img.Fit(100) != small {
		t.Error("Fit(100) twice made two copies; want one shared")
	}
	for i := 0; i < len(small.Pix); i += 4 {
		if v := small.Pix[i]; v < 120 || v > 135 {
			t.Fatalf("pixel %d = %d; want ≈128 (an area average, not a sample of one stripe)", i/4, v)
		}
	}
	if img.Fit(1000) != src {
		t.Error("Fit larger than the image copied it; want the image itself")
	}
	if s := img.Scale(); s != 1 {
		t.Errorf("Scale = %v; want 1", s)
	}
}

// TestFitSameWhateverTheOrder checks that a copy does not depend on which
// copies were asked for before it, as analyzers running concurrently ask in
// no fixed order, and that concurrent callers share one copy.
func TestFitSameWhateverTheOrder(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 1155, 866))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range src.Pix {
		src.Pix[i] = uint8(r.IntN(256))
	}
	newImg := func() *Image {
		return NewImage("img", nil, &imagedata.Image{Header: imagedata.Header{Width: 1155, Height: 866, Orientation: 1}, Image: src})
	}
	sizes := []int{1000, 640, 320, 128, 100}
	want := map[int]*image.RGBA{}
	for _, side := range sizes {
		want[side] = newImg().Fit(side)
	}
	for _, order := range [][]int{{100, 128, 320, 640, 1000}, {640, 100, 1000, 320, 128}} {
		img := newImg()
		for _, side := range order {
			if got := img.Fit(side); !slices.Equal(got.Pix, want[side].Pix) || got.Bounds() != want[side].Bounds() {
				t.Errorf("order %v: Fit(%d) differs from Fit(%d) on a fresh image", order, side, side)
			}
		}
	}
	img := newImg()
	got := make([]*image.RGBA, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = img.Fit(sizes[i%len(sizes)]) })
	}
	wg.Wait()
	for i, m := range got {
		if m != img.Fit(sizes[i%len(sizes)]) {
			t.Errorf("concurrent Fit(%d) made its own copy; want the shared one", sizes[i%len(sizes)])
		}
	}
}

func BenchmarkFit(b *testing.B) {
	for _, tc := range []struct {
		name       string
		w, h, side int
	}{{"1MP-to-1000", 1152, 864, 1000}, {"1MP-to-640", 1152, 864, 640}, {"12MP-to-1000", 4000, 3000, 1000}, {"12MP-to-128", 4000, 3000, 128}} {
		src := image.NewRGBA(image.Rect(0, 0, tc.w, tc.h))
		for i := range src.Pix {
			src.Pix[i] = uint8(i * 31)
		}
		w, h := fitSize(tc.w, tc.h, tc.side)
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				fit(src, w, h, nil)
			}
		})
	}
}

func TestAreaResizeKeepsMean(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 7, 5))
	var sum float64
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 37)
		if i%4 == 0 {
			sum += float64(src.Pix[i])
		}
	}
	dst := areaResize(src, 4, 3, nil)
	var got float64
	for i := 0; i < len(dst.Pix); i += 4 {
		got += float64(dst.Pix[i])
	}
	if want := sum / 35; math.Abs(got/12-want) > 1 {
		t.Errorf("mean red after resize = %.2f; want %.2f (an area filter keeps the mean)", got/12, want)
	}
}

// TestAreaResizeMatchesReference checks the fast area filter against the
// general one (wider fixed-point sums, no lanes) on noise, where rounding
// differences show most, and that a flat image stays exactly flat.
func TestAreaResizeMatchesReference(t *testing.T) {
	for _, tc := range []struct{ sw, sh, w, h int }{
		{1155, 866, 640, 480}, {1155, 866, 683, 512}, {1333, 1000, 1000, 750}, {7, 5, 4, 3}, {641, 3, 640, 2}, {3, 3, 2, 2},
	} {
		src := image.NewRGBA(image.Rect(0, 0, tc.sw, tc.sh))
		r := rand.New(rand.NewPCG(uint64(tc.sw), uint64(tc.sh)))
		for i := range src.Pix {
			src.Pix[i] = uint8(r.IntN(256))
		}
		got, want := areaResize(src, tc.w, tc.h, nil), areaResizeAny(src, tc.w, tc.h)
		if got.Bounds() != want.Bounds() {
			t.Fatalf("%dx%d to %dx%d: bounds %v; want %v", tc.sw, tc.sh, tc.w, tc.h, got.Bounds(), want.Bounds())
		}
		for i := range got.Pix {
			if d := int(got.Pix[i]) - int(want.Pix[i]); d < -1 || d > 1 {
				t.Fatalf("%dx%d to %dx%d: byte %d = %d; reference %d", tc.sw, tc.sh, tc.w, tc.h, i, got.Pix[i], want.Pix[i])
			}
		}
		flat := image.NewRGBA(image.Rect(0, 0, tc.sw, tc.sh))
		for i := range flat.Pix {
			flat.Pix[i] = []uint8{255, 7, 128, 255}[i%4]
		}
		for i, v := range areaResize(flat, tc.w, tc.h, nil).Pix {
			if want := []uint8{255, 7, 128, 255}[i%4]; v != want {
				t.Fatalf("%dx%d to %dx%d: flat byte %d = %d; want %d", tc.sw, tc.sh, tc.w, tc.h, i, v, want)
			}
		}
	}
}

// TestBoxReduceMatchesReference checks the lane-parallel box filter against
// the plain one, byte for byte.
func TestBoxReduceMatchesReference(t *testing.T) {
	for _, tc := range []struct{ w, h, k int }{
		{1155, 866, 2}, {1155, 866, 3}, {640, 480, 5}, {640, 480, 6}, {641, 481, 7}, {17, 16, 16}, {35, 35, 17}, {4000, 3000, 31}, {600, 600, 257}, {600, 600, 300}, {5, 5, 2},
	} {
		src := image.NewRGBA(image.Rect(0, 0, tc.w, tc.h))
		r := rand.New(rand.NewPCG(uint64(tc.w), uint64(tc.k)))
		for i := range src.Pix {
			src.Pix[i] = uint8(r.IntN(256))
		}
		if tc.k == 16 || tc.k == 257 {
			for i := range src.Pix {
				src.Pix[i] = 255 // the largest sums
			}
		}
		got, want := boxReduce(src, tc.k, nil), boxReduceAny(src, tc.k)
		if got.Bounds() != want.Bounds() {
			t.Fatalf("%dx%d / %d: bounds %v; want %v", tc.w, tc.h, tc.k, got.Bounds(), want.Bounds())
		}
		for i := range got.Pix {
			if got.Pix[i] != want.Pix[i] {
				t.Fatalf("%dx%d / %d: byte %d = %d; reference %d", tc.w, tc.h, tc.k, i, got.Pix[i], want.Pix[i])
			}
		}
	}
}

func TestLuma(t *testing.T) {
	m := image.NewRGBA(image.Rect(0, 0, 5, 2))
	px := []color.RGBA{
		{0, 0, 0, 255}, {255, 255, 255, 255}, {100, 40, 200, 255}, // black, white, a colour
		{0, 0, 0, 0}, {50, 50, 50, 128}, // transparent, half-transparent dark grey (premultiplied)
	}
	for i, c := range px {
		m.SetRGBA(i, 0, c)
		m.SetRGBA(4-i, 1, c) // the odd width's last pixel takes the scalar path
	}
	want := []uint8{0, 255, (54*100 + 183*40 + 19*200 + 128) / 256, 255, (54*50+183*50+19*50+128)/256 + 255 - 128}
	g := LumaOf(m)
	for i, w := range want {
		if got := g.GrayAt(i, 0).Y; got != w {
			t.Errorf("luma of %v = %d; want %d", px[i], got, w)
		}
		if got := g.GrayAt(4-i, 1).Y; got != w {
			t.Errorf("luma of %v (second row) = %d; want %d", px[i], got, w)
		}
	}
	img := NewImage("img_test", nil, &imagedata.Image{Header: imagedata.Header{Width: 5, Height: 2, Orientation: 1}, Image: m})
	if a, b := img.Luma(0), img.Luma(10); a != b {
		t.Error("Luma(0) and Luma(10) of a 5×2 image are different planes; want the one shared plane")
	}
}

// TestLumaSizes checks that a smaller luma plane, averaged down from the
// full one, has Fit's size and the luma of Fit's pixels but for rounding:
// on noise, where rounding shows most, on both the area-filter path and
// the box-then-area path, and on thin strips.
func TestLumaSizes(t *testing.T) {
	for _, tc := range []struct{ w, h, side, tol int }{
		{1155, 866, 1000, 2}, {866, 1155, 1000, 2}, {1155, 866, 640, 2}, {4000, 3000, 1000, 3}, {3001, 7, 1000, 3},
		{1000, 2, 400, 2}, {7, 5, 4, 2},
	} {
		m := image.NewRGBA(image.Rect(0, 0, tc.w, tc.h))
		r := rand.New(rand.NewPCG(uint64(tc.w), uint64(tc.h)))
		for i := range m.Pix {
			m.Pix[i] = uint8(r.IntN(256))
		}
		for i := 3; i < len(m.Pix); i += 4 {
			m.Pix[i] = 255 // opaque: premultiplied channels stay ≤ alpha
		}
		img := NewImage("img_test", nil, &imagedata.Image{Header: imagedata.Header{Width: tc.w, Height: tc.h, Orientation: 1}, Image: m})
		got, want := img.Luma(tc.side), LumaOf(img.Fit(tc.side))
		if got.Bounds() != want.Bounds() {
			t.Fatalf("%dx%d: Luma(%d) is %v; Fit(%d) is %v", tc.w, tc.h, tc.side, got.Bounds(), tc.side, want.Bounds())
		}
		worst := 0
		for i := range got.Pix {
			worst = max(worst, int(got.Pix[i])-int(want.Pix[i]), int(want.Pix[i])-int(got.Pix[i]))
		}
		if worst > tc.tol {
			t.Errorf("%dx%d: Luma(%d) differs from the luma of Fit(%d) by up to %d; want at most %d", tc.w, tc.h, tc.side, tc.side, worst, tc.tol)
		}
	}
}

// TestCores checks an analyzer learns it may use every core of the job only
// when it is the job's only analyzer.
func TestCores(t *testing.T) {
	var got []int
	var mu sync.Mutex
	a := &coresProbe{feature: job.FeatureLabels, got: &got, mu: &mu}
	b := &coresProbe{feature: job.FeatureColors, got: &got, mu: &mu}
	p, err := NewPipeline(0, a, b)
	if err != nil {
		t.Fatal(err)
	}
	p.SetParallel(4)
	img := NewImage("img_test", nil, &imagedata.Image{Header: imagedata.Header{Width: 1, Height: 1}, Image: image.NewRGBA(image.Rect(0, 0, 1, 1))})
	for _, tc := range []struct {
		features []job.Feature
		want     []int
	}{
		{[]job.Feature{job.FeatureLabels}, []int{4}},
		{[]job.Feature{job.FeatureLabels, job.FeatureColors}, []int{1, 1}},
	} {
		got = nil
		if err := p.Run(context.Background(), img, tc.features, &job.Result{}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("features %v: Cores = %v; want %v", tc.features, got, tc.want)
		}
	}
	if n := Cores(context.Background()); n != 1 {
		t.Errorf("Cores(background) = %d; want 1", n)
	}
}

type coresProbe struct {
	feature job.Feature
	got     *[]int
	mu      *sync.Mutex
}

func (c *coresProbe) Feature() job.Feature { return c.feature }
func (c *coresProbe) MinSide() int         { return 1 }
func (c *coresProbe) Analyze(ctx context.Context, _ *Image, _ *job.Result) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.got = append(*c.got, Cores(ctx))
	return nil
}
