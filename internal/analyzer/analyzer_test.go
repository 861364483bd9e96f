package analyzer

import (
	"context"
	"errors"
	"image"
	"image/color"
	"math"
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
}

func TestRunReturnsPanics(t *testing.T) {
	p, _ := NewPipeline(0, &stub{f: job.FeatureLabels, fn: func(context.Context, *job.Result) error { panic("boom") }})
	err := p.Run(context.Background(), &Image{}, []job.Feature{job.FeatureLabels}, &job.Result{})
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Feature != job.FeatureLabels || pe.Value != "boom" {
		t.Errorf("Run = %v; want a *PanicError for labels", err)
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

func BenchmarkFit(b *testing.B) {
	for _, tc := range []struct {
		name       string
		w, h, side int
	}{{"1MP-to-1000", 1152, 864, 1000}, {"1MP-to-640", 1152, 864, 640}, {"12MP-to-1000", 4000, 3000, 1000}, {"12MP-to-128", 4000, 3000, 128}} {
		src := image.NewRGBA(image.Rect(0, 0, tc.w, tc.h))
		for i := range src.Pix {
			src.Pix[i] = uint8(i * 31)
		}
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				fit(src, tc.side)
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
	dst := areaResize(src, 4, 3)
	var got float64
	for i := 0; i < len(dst.Pix); i += 4 {
		got += float64(dst.Pix[i])
	}
	if want := sum / 35; math.Abs(got/12-want) > 1 {
		t.Errorf("mean red after resize = %.2f; want %.2f (an area filter keeps the mean)", got/12, want)
	}
}
