package colors

import (
	"context"
	"errors"
	"image"
	"image/color"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// analyze runs a fresh analyzer on m.
func analyze(t *testing.T, m image.Image) *job.Colors {
	t.Helper()
	var res job.Result
	if err := New().Analyze(context.Background(), newImage(m), &res); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	if res.Colors == nil {
		t.Fatal("Analyze left Result.Colors nil")
	}
	return res.Colors
}

// area is a share of an image filled with one colour.
type area struct {
	c     color.RGBA
	share float64
}

// stripes draws areas as vertical stripes, left to right, on a w×h image.
func stripes(w, h int, areas ...area) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	x0 := 0
	for i, a := range areas {
		x1 := x0 + int(math.Round(a.share*float64(w)))
		if i == len(areas)-1 {
			x1 = w
		}
		for y := range h {
			for x := x0; x < x1; x++ {
				m.SetRGBA(x, y, a.c)
			}
		}
		x0 = x1
	}
	return m
}

var (
	red   = color.RGBA{255, 0, 0, 255}
	blue  = color.RGBA{0, 0, 255, 255}
	green = color.RGBA{0, 160, 60, 255}
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{128, 128, 128, 255}
)

// parseHex reads "#rrggbb".
func parseHex(t *testing.T, s string) [3]int {
	t.Helper()
	if !regexp.MustCompile(`^#[0-9a-f]{6}$`).MatchString(s) {
		t.Fatalf("hex %q is not #rrggbb in lower case", s)
	}
	var c [3]int
	for i := range 3 {
		v, _ := strconv.ParseUint(s[1+2*i:3+2*i], 16, 8)
		c[i] = int(v)
	}
	return c
}

func TestDominant(t *testing.T) {
	const (
		hexTol  = 4    // per channel, 0..255
		fracTol = 0.02 // resampling blends a column or two at the borders
	)
	tests := []struct {
		name  string
		m     image.Image
		want  []area
		slack bool // whether small blended swatches may follow the wanted ones
	}{
		{"70% red 30% blue", stripes(100, 50, area{red, 0.7}, area{blue, 0.3}), []area{{red, 0.7}, {blue, 0.3}}, false},
		{"blue first in the image", stripes(100, 50, area{blue, 0.3}, area{red, 0.7}), []area{{red, 0.7}, {blue, 0.3}}, false},
		{"three colours", stripes(80, 60, area{white, 0.3}, area{green, 0.5}, area{black, 0.2}),
			[]area{{green, 0.5}, {white, 0.3}, {black, 0.2}}, false},
		{"one grey", stripes(64, 64, area{grey, 1}), []area{{grey, 1}}, false},
		{"near-identical reds merged", stripes(100, 40, area{red, 0.6}, area{color.RGBA{245, 8, 6, 255}, 0.4}),
			[]area{{color.RGBA{251, 3, 2, 255}, 1}}, false},
		{"resampled from 2000x1000", stripes(2000, 1000, area{red, 0.7}, area{blue, 0.3}),
			[]area{{red, 0.7}, {blue, 0.3}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyze(t, tt.m).Dominant
			if len(got) < len(tt.want) || !tt.slack && len(got) != len(tt.want) {
				t.Fatalf("Dominant = %v; want %d swatches like %v", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				c := parseHex(t, got[i].Hex)
				for ch, v := range []uint8{w.c.R, w.c.G, w.c.B} {
					if d := c[ch] - int(v); d < -hexTol || d > hexTol {
						t.Errorf("Dominant[%d].Hex = %s; want within %d of #%02x%02x%02x", i, got[i].Hex, hexTol, w.c.R, w.c.G, w.c.B)
						break
					}
				}
				if math.Abs(got[i].Fraction-w.share) > fracTol {
					t.Errorf("Dominant[%d].Fraction = %.3f; want %.2f ± %.2f", i, got[i].Fraction, w.share, fracTol)
				}
			}
		})
	}
}

func TestBrightnessSaturation(t *testing.T) {
	tests := []struct {
		name       string
		c          color.RGBA
		brightness float64
		saturation float64
		bin        int // the histogram bin holding every pixel
	}{
		{"black", black, 0, 0, 0},
		{"white", white, 1, 0, 15},
		{"mid grey", grey, 128.0 / 255, 0, 8},
		{"pure red", red, 0.2126, 1, 3},
		{"pure blue", blue, 0.0722, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyze(t, stripes(64, 64, area{tt.c, 1}))
			if math.Abs(got.Brightness-tt.brightness) > 1e-6 {
				t.Errorf("Brightness = %.6f; want %.6f", got.Brightness, tt.brightness)
			}
			if math.Abs(got.Saturation-tt.saturation) > 1e-6 {
				t.Errorf("Saturation = %.6f; want %.6f", got.Saturation, tt.saturation)
			}
			if len(got.Histogram) != 16 {
				t.Fatalf("len(Histogram) = %d; want 16", len(got.Histogram))
			}
			if got.Histogram[tt.bin] != 1 {
				t.Errorf("Histogram = %v; want every pixel in bin %d", got.Histogram, tt.bin)
			}
		})
	}
}

func TestTransparentPixelsIgnored(t *testing.T) {
	m := stripes(100, 50, area{red, 0.5}, area{color.RGBA{}, 0.5})
	got := analyze(t, m)
	if len(got.Dominant) != 1 || got.Dominant[0].Hex != "#ff0000" || got.Dominant[0].Fraction != 1 {
		t.Errorf("Dominant = %v; want only #ff0000 covering 1", got.Dominant)
	}
	if math.Abs(got.Brightness-0.2126) > 1e-6 {
		t.Errorf("Brightness = %.6f; want 0.2126, the red half only", got.Brightness)
	}
}

func TestPhotos(t *testing.T) {
	for _, name := range testPhotos {
		t.Run(name, func(t *testing.T) {
			got := analyze(t, photo(t, name))
			var sum float64
			for _, v := range got.Histogram {
				sum += v
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Errorf("sum(Histogram) = %v; want 1", sum)
			}
			if len(got.Dominant) == 0 || len(got.Dominant) > 5 {
				t.Fatalf("Dominant = %v; want 1 to 5 swatches", got.Dominant)
			}
			var fsum float64
			for i, s := range got.Dominant {
				parseHex(t, s.Hex)
				if s.Fraction < 0.01 || i > 0 && s.Fraction > got.Dominant[i-1].Fraction {
					t.Errorf("Dominant = %v; want shares >= 0.01, largest first", got.Dominant)
				}
				fsum += s.Fraction
			}
			if fsum > 1+1e-9 {
				t.Errorf("sum of Dominant fractions = %v; want <= 1", fsum)
			}
			if got.Brightness <= 0 || got.Brightness >= 1 || got.Saturation < 0 || got.Saturation > 1 {
				t.Errorf("Brightness, Saturation = %v, %v; want both inside (0,1)", got.Brightness, got.Saturation)
			}
			t.Logf("%v brightness %.3f saturation %.3f", got.Dominant, got.Brightness, got.Saturation)
		})
	}
}

func TestCoffeeIsColourful(t *testing.T) {
	got := analyze(t, photo(t, "coffee.png")).Dominant
	colourful := 0
	for _, s := range got {
		c := parseHex(t, s.Hex)
		hi, lo := max(c[0], c[1], c[2]), min(c[0], c[1], c[2])
		if hi > 0 && float64(hi-lo)/float64(hi) > 0.25 {
			colourful++
		}
	}
	if colourful == 0 {
		t.Errorf("coffee.png Dominant = %v; want at least one swatch with HSV saturation > 0.25", got)
	}
}

func TestDeterministic(t *testing.T) {
	for _, name := range []string{"coffee.png", "astronaut.png"} {
		t.Run(name, func(t *testing.T) {
			m := photo(t, name)
			first := analyze(t, m)
			a := New() // one analyzer reused: scratch buffers must not leak between images
			for range 3 {
				var res job.Result
				if err := a.Analyze(context.Background(), newImage(m), &res); err != nil {
					t.Fatalf("Analyze: %v", err)
				}
				if !reflect.DeepEqual(res.Colors, first) {
					t.Fatalf("Colors = %+v; want %+v as on the first run", res.Colors, first)
				}
			}
		})
	}
}

func TestAnalyzeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var res job.Result
	err := New().Analyze(ctx, newImage(stripes(64, 64, area{red, 1})), &res)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze with a canceled context = %v; want context.Canceled", err)
	}
	if res.Colors != nil {
		t.Errorf("Colors = %+v after a canceled Analyze; want nil", res.Colors)
	}
}
