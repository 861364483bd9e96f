package quality

import (
	"context"
	"errors"
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// analyze runs a default analyzer on m.
func analyze(t *testing.T, m image.Image) *job.Quality {
	t.Helper()
	a, err := New(Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var res job.Result
	if err := a.Analyze(context.Background(), newImage(m), &res); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	if res.Quality == nil {
		t.Fatal("Analyze left Result.Quality nil")
	}
	return res.Quality
}

// gaussianBlur blurs m with a separable Gaussian of standard deviation sigma
// pixels, clamping at the borders.
func gaussianBlur(m *image.RGBA, sigma float64) *image.RGBA {
	r := int(math.Ceil(3 * sigma))
	k := make([]float32, 2*r+1)
	var ks float32
	for i := range k {
		d := float64(i - r)
		k[i] = float32(math.Exp(-d * d / (2 * sigma * sigma)))
		ks += k[i]
	}
	for i := range k {
		k[i] /= ks
	}
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	// blur1D blurs n samples spaced step apart in src into dst.
	blur1D := func(dst, src []float32, n, step int) {
		for i := range n {
			var acc float32
			for j, kv := range k {
				acc += kv * src[min(max(i+j-r, 0), n-1)*step]
			}
			dst[i*step] = acc
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	plane, tmp := make([]float32, w*h), make([]float32, w*h)
	for c := range 4 {
		for y := range h {
			for x := range w {
				plane[y*w+x] = float32(m.Pix[y*m.Stride+4*x+c])
			}
		}
		for y := range h {
			blur1D(tmp[y*w:], plane[y*w:], w, 1)
		}
		for x := range w {
			blur1D(plane[x:], tmp[x:], h, w)
		}
		for y := range h {
			for x := range w {
				dst.Pix[y*dst.Stride+4*x+c] = uint8(min(max(math.Round(float64(plane[y*w+x])), 0), 255))
			}
		}
	}
	return dst
}

// uniform is a w×h image of one colour.
func uniform(w, h int, c color.RGBA) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// checkerboard is a w×h black-and-white checkerboard of cell-pixel squares.
func checkerboard(w, h, cell int) *image.RGBA {
	m := uniform(w, h, color.RGBA{0, 0, 0, 255})
	for y := range h {
		for x := range w {
			if (x/cell+y/cell)%2 == 0 {
				m.SetRGBA(x, y, color.RGBA{255, 255, 255, 255})
			}
		}
	}
	return m
}

// bands is a 100×100 image of base with its top rows painted top and its
// bottom rows painted bottom, each band covering the given share.
func bands(base, top color.RGBA, topShare float64, bottom color.RGBA, bottomShare float64) *image.RGBA {
	m := uniform(100, 100, base)
	for y := range 100 {
		for x := range 100 {
			switch {
			case y < int(topShare*100):
				m.SetRGBA(x, y, top)
			case y >= 100-int(bottomShare*100):
				m.SetRGBA(x, y, bottom)
			}
		}
	}
	return m
}

func TestSynthetic(t *testing.T) {
	var (
		black = color.RGBA{0, 0, 0, 255}
		white = color.RGBA{255, 255, 255, 255}
		grey  = color.RGBA{128, 128, 128, 255}
		dim   = color.RGBA{60, 60, 60, 255}
	)
	tests := []struct {
		name string
		m    image.Image
		want job.Quality // Megapixels is checked separately
		tol  float64
	}{
		{"flat grey", uniform(300, 200, grey), job.Quality{Blurry: true, Exposure: "ok"}, 1e-9},
		{"checkerboard", checkerboard(300, 200, 1),
			job.Quality{Sharpness: 4 * 255 * 4 * 255, Contrast: 0.5, Entropy: 1, Exposure: "ok", Underexposed: 0.5, Overexposed: 0.5}, 1e-3},
		{"black", uniform(100, 100, black), job.Quality{Blurry: true, Exposure: "under", Underexposed: 1}, 1e-9},
		{"white", uniform(100, 100, white), job.Quality{Blurry: true, Exposure: "over", Overexposed: 1}, 1e-9},
		// One edge of step d over 98×98 interior pixels: variance 2·d²/98.
		// Two values shares p, 1-p, a step Δ apart: contrast √(p(1-p))·Δ.
		{"30% black on dim", bands(dim, black, 0.3, dim, 0),
			job.Quality{Sharpness: 2 * 60 * 60 / 98.0, Blurry: true, Contrast: math.Sqrt(0.21) * 60 / 255, Entropy: 0.881291,
				Exposure: "under", Underexposed: 0.3}, 1e-5},
		{"30% white on grey", bands(grey, white, 0.3, grey, 0),
			job.Quality{Sharpness: 2 * 127 * 127 / 98.0, Contrast: math.Sqrt(0.21) * 127 / 255, Entropy: 0.881291,
				Exposure: "over", Overexposed: 0.3}, 1e-5},
		{"20% black, 20% white on grey", bands(grey, black, 0.2, white, 0.2),
			job.Quality{Sharpness: 2 * (128*128 + 127*127) / 98.0, Contrast: 0.316228, Entropy: 1.370951,
				Exposure: "ok", Underexposed: 0.2, Overexposed: 0.2}, 1e-5},
		{"40% black, 30% white on grey", bands(grey, black, 0.4, white, 0.3),
			job.Quality{Sharpness: 2 * (128*128 + 127*127) / 98.0, Contrast: 0.415403, Entropy: 1.570951,
				Exposure: "under", Underexposed: 0.4, Overexposed: 0.3}, 1e-5},
		{"50% black, 50% white", bands(grey, black, 0.5, white, 0.5),
			job.Quality{Sharpness: 2 * 255 * 255 / 98.0, Contrast: 0.5, Entropy: 1,
				Exposure: "ok", Underexposed: 0.5, Overexposed: 0.5}, 1e-5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyze(t, tt.m)
			near := func(name string, g, w float64) {
				t.Helper()
				if math.Abs(g-w) > tt.tol*max(1, math.Abs(w)) {
					t.Errorf("%s = %.4f; want %.4f", name, g, w)
				}
			}
			near("Sharpness", got.Sharpness, tt.want.Sharpness)
			near("Contrast", got.Contrast, tt.want.Contrast)
			near("Entropy", got.Entropy, tt.want.Entropy)
			near("Underexposed", got.Underexposed, tt.want.Underexposed)
			near("Overexposed", got.Overexposed, tt.want.Overexposed)
			if got.Blurry != tt.want.Blurry {
				t.Errorf("Blurry = %v (sharpness %.1f); want %v", got.Blurry, got.Sharpness, tt.want.Blurry)
			}
			if got.Exposure != tt.want.Exposure {
				t.Errorf("Exposure = %q; want %q", got.Exposure, tt.want.Exposure)
			}
		})
	}
}

func TestMegapixels(t *testing.T) {
	img := newImage(uniform(400, 300, color.RGBA{128, 128, 128, 255}))
	// Decoded at 1/8 scale and stored rotated: the display size counts.
	img.Header.Width, img.Header.Height, img.Header.Orientation = 2400, 3200, 6
	a, err := New(Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var res job.Result
	if err := a.Analyze(context.Background(), img, &res); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	if got, want := res.Quality.Megapixels, 7.68; math.Abs(got-want) > 1e-9 {
		t.Errorf("Megapixels = %v; want %v", got, want)
	}
}

// TestBlurSeparation checks that the default threshold separates every
// test photo from the same photo blurred with a Gaussian of σ = 2 px, with
// a margin of at least minMargin on both sides.
func TestBlurSeparation(t *testing.T) {
	const (
		sigma     = 2.0
		minMargin = 2.0
	)
	for _, name := range testPhotos {
		t.Run(name, func(t *testing.T) {
			m := photo(t, name)
			sharp := analyze(t, m)
			blurred := analyze(t, gaussianBlur(m, sigma))
			t.Logf("sharpness %.1f, blurred %.1f", sharp.Sharpness, blurred.Sharpness)
			if blurred.Sharpness >= sharp.Sharpness {
				t.Errorf("blurred sharpness %.1f >= original %.1f; want lower", blurred.Sharpness, sharp.Sharpness)
			}
			if sharp.Blurry || sharp.Sharpness < minMargin*DefaultBlurThreshold {
				t.Errorf("original: Blurry = %v, Sharpness = %.1f; want not blurry, >= %.0f", sharp.Blurry, sharp.Sharpness, minMargin*DefaultBlurThreshold)
			}
			if !blurred.Blurry || blurred.Sharpness > DefaultBlurThreshold/minMargin {
				t.Errorf("blurred: Blurry = %v, Sharpness = %.1f; want blurry, <= %.0f", blurred.Blurry, blurred.Sharpness, DefaultBlurThreshold/minMargin)
			}
		})
	}
}

// dim returns m with its colours scaled by f.
func dim(m *image.RGBA, f float64) *image.RGBA {
	out := image.NewRGBA(m.Bounds())
	for i, v := range m.Pix {
		if i%4 == 3 {
			out.Pix[i] = v
		} else {
			out.Pix[i] = uint8(float64(v) * f)
		}
	}
	return out
}

// An evenly dim photo is underexposed, not blurry; dim and blurred, it is
// both.
func TestDimPhotos(t *testing.T) {
	for _, name := range testPhotos {
		t.Run(name, func(t *testing.T) {
			m := photo(t, name)
			dark := analyze(t, dim(m, 0.15))
			if dark.Exposure != ExposureUnder || dark.Blurry {
				t.Errorf("at 15%% brightness: exposure %q, blurry %v (sharpness %.1f, contrast %.3f); want under, not blurry",
					dark.Exposure, dark.Blurry, dark.Sharpness, dark.Contrast)
			}
			if db := analyze(t, dim(gaussianBlur(m, 2), 0.15)); !db.Blurry {
				t.Errorf("blurred at 15%% brightness: not blurry (sharpness %.1f, contrast %.3f)", db.Sharpness, db.Contrast)
			}
		})
	}
}

func TestPhotos(t *testing.T) {
	for _, name := range testPhotos {
		t.Run(name, func(t *testing.T) {
			got := analyze(t, photo(t, name))
			t.Logf("%+v", *got)
			if got.Contrast <= 0.05 || got.Contrast > 0.5 {
				t.Errorf("Contrast = %.3f; want a photo's, in (0.05, 0.5]", got.Contrast)
			}
			if got.Entropy < 4 || got.Entropy > 8 {
				t.Errorf("Entropy = %.3f; want a photo's, in [4, 8]", got.Entropy)
			}
			want := "ok"
			if name == "hubble_deep_field.jpg" {
				want = "under" // a night sky: mostly black
			}
			if got.Exposure != want {
				t.Errorf("Exposure = %q (under %.3f, over %.3f); want %q", got.Exposure, got.Underexposed, got.Overexposed, want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative threshold", Config{BlurThreshold: -1}},
		{"negative clip share", Config{ClipShare: -0.1}},
		{"clip share above 1", Config{ClipShare: 1.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, err := New(tt.cfg); err == nil {
				t.Errorf("New(%+v) = %v, nil; want an error", tt.cfg, a)
			}
		})
	}
}

func TestAnalyzeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a, err := New(Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var res job.Result
	err = a.Analyze(ctx, newImage(uniform(64, 64, color.RGBA{A: 255})), &res)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze with a canceled context = %v; want context.Canceled", err)
	}
	if res.Quality != nil {
		t.Errorf("Quality = %+v after a canceled Analyze; want nil", res.Quality)
	}
}
