package phash

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math/bits"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// hashOf runs the analyzer on m and returns its hash string.
func hashOf(t *testing.T, m image.Image) string {
	t.Helper()
	var res job.Result
	if err := New().Analyze(context.Background(), newImage(m), &res); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	return res.PHash
}

// distance is Distance for hashes known to be well formed.
func distance(t *testing.T, a, b string) int {
	t.Helper()
	d, err := Distance(a, b)
	if err != nil {
		t.Fatalf("Distance(%q, %q): %v", a, b, err)
	}
	return d
}

// reencodeHalf encodes m as JPEG at quality 50, decodes it and halves it
// with a 2×2 box filter, as a messaging app might.
func reencodeHalf(t *testing.T, m *image.RGBA) *image.RGBA {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 50}); err != nil {
		t.Fatalf("jpeg.Encode: %v", err)
	}
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		t.Fatalf("jpeg.Decode: %v", err)
	}
	src := toRGBA(dec)
	w, h := src.Bounds().Dx()/2, src.Bounds().Dy()/2
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			for c := range 4 {
				s := int(src.Pix[(2*y)*src.Stride+8*x+c]) + int(src.Pix[(2*y)*src.Stride+8*x+4+c]) +
					int(src.Pix[(2*y+1)*src.Stride+8*x+c]) + int(src.Pix[(2*y+1)*src.Stride+8*x+4+c])
				dst.Pix[y*dst.Stride+4*x+c] = uint8((s + 2) / 4)
			}
		}
	}
	return dst
}

// brighten scales every colour channel by pct percent, clamping at 255.
func brighten(m *image.RGBA, pct int) *image.RGBA {
	dst := image.NewRGBA(m.Bounds())
	for i, v := range m.Pix {
		if i%4 == 3 {
			dst.Pix[i] = v
			continue
		}
		dst.Pix[i] = uint8(min(int(v)*(100+pct)/100, 255))
	}
	return dst
}

func TestNearDuplicates(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*testing.T, *image.RGBA) *image.RGBA
		maxDist int
	}{
		{"jpeg q50 at half size", reencodeHalf, 6},
		{"brightened by 10%", func(_ *testing.T, m *image.RGBA) *image.RGBA { return brighten(m, 10) }, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range testPhotos {
				m := photo(t, name)
				orig, edited := hashOf(t, m), hashOf(t, tt.edit(t, m))
				d := distance(t, orig, edited)
				t.Logf("%s: %s vs %s, distance %d", name, orig, edited, d)
				if d > tt.maxDist {
					t.Errorf("%s: distance(original, edited) = %d; want <= %d", name, d, tt.maxDist)
				}
			}
		})
	}
}

func TestDifferentPhotos(t *testing.T) {
	const minDist = 20
	hashes := make([]string, len(testPhotos))
	for i, name := range testPhotos {
		hashes[i] = hashOf(t, photo(t, name))
	}
	closest := 64
	for i := range hashes {
		for j := i + 1; j < len(hashes); j++ {
			d := distance(t, hashes[i], hashes[j])
			closest = min(closest, d)
			if d < minDist {
				t.Errorf("distance(%s, %s) = %d; want >= %d", testPhotos[i], testPhotos[j], d, minDist)
			}
		}
	}
	t.Logf("closest pair of different photos: %d bits apart", closest)
}

func TestDeterministic(t *testing.T) {
	m := photo(t, "chelsea.png")
	first := hashOf(t, m)
	for range 3 {
		if got := hashOf(t, m); got != first {
			t.Fatalf("hash = %s; want %s as on the first run", got, first)
		}
	}
}

func TestHashShape(t *testing.T) {
	grad := image.NewRGBA(image.Rect(0, 0, 200, 100))
	for y := range 100 {
		for x := range 200 {
			grad.Set(x, y, color.RGBA{uint8(x), uint8(x), uint8(x), 255})
		}
	}
	flat := image.NewRGBA(image.Rect(0, 0, 7, 3)) // smaller than the DCT grid
	tests := []struct {
		name string
		m    image.Image
	}{
		{"gradient", grad},
		{"tiny flat", flat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hashOf(t, tt.m)
			h, err := Parse(got)
			if err != nil {
				t.Fatalf("Parse(%q): %v", got, err)
			}
			if Format(h) != got {
				t.Errorf("Format(Parse(%q)) = %q; want it unchanged", got, Format(h))
			}
			if h>>63 != 0 {
				t.Errorf("hash %s has the DC bit set; want it 0", got)
			}
			if n := bits.OnesCount64(h); n > 31 {
				t.Errorf("hash %s has %d bits set; want at most 31 (above the median of 63)", got, n)
			}
		})
	}
}

// Flat images of any colour and size hash alike, to 0: they have no
// frequencies to compare, only rounding noise.
func TestFlatImages(t *testing.T) {
	for _, c := range []color.RGBA{{0, 0, 0, 255}, {200, 30, 90, 255}, {255, 255, 255, 255}, {17, 17, 17, 255}} {
		for _, r := range []image.Rectangle{image.Rect(0, 0, 640, 480), image.Rect(0, 0, 97, 333)} {
			m := image.NewRGBA(r)
			for i := 0; i < len(m.Pix); i += 4 {
				m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
			}
			if got := hashOf(t, m); got != "0000000000000000" {
				t.Errorf("flat %v %v: hash %s; want 0000000000000000", c, r.Size(), got)
			}
		}
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b    string
		want    int
		wantErr bool
	}{
		{"0000000000000000", "0000000000000000", 0, false},
		{"0000000000000000", "ffffffffffffffff", 64, false},
		{"c3a1f0e08c0f1e3c", "C3A1F0E08C0F1E3D", 1, false},
		{"8000000000000000", "0000000000000001", 2, false},
		{"", "0000000000000000", 0, true},
		{"000000000000000", "0000000000000000", 0, true},
		{"00000000000000000", "0000000000000000", 0, true},
		{"0000000000000000", "000000000000000g", 0, true},
		{"+000000000000000", "0000000000000000", 0, true},
		{"0x00000000000000", "0000000000000000", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			got, err := Distance(tt.a, tt.b)
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("Distance(%q, %q) error = %v; want ErrMalformed", tt.a, tt.b, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Distance(%q, %q): %v", tt.a, tt.b, err)
			}
			if got != tt.want {
				t.Errorf("Distance(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestAnalyzeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var res job.Result
	err := New().Analyze(ctx, newImage(image.NewRGBA(image.Rect(0, 0, 64, 64))), &res)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze with a canceled context = %v; want context.Canceled", err)
	}
	if res.PHash != "" {
		t.Errorf("PHash = %q after a canceled Analyze; want empty", res.PHash)
	}
}

// TestThinImages checks images far longer than wide, or wider than long,
// are hashed from all their pixels: different content gives different,
// non-zero hashes, and a 600000×1 strip (within the pixel limit) is hashed
// without a failure.
func TestThinImages(t *testing.T) {
	ramp := func(w, h int, up bool) *image.RGBA {
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				v := uint8(255 * (x + y) / (w + h))
				if !up {
					v = 255 - v
				}
				if (x/37+y/3)%2 == 0 {
					v /= 2
				}
				m.SetRGBA(x, y, color.RGBA{v, v, v, 255})
			}
		}
		return m
	}
	for _, sz := range [][2]int{{3000, 20}, {20, 3000}, {3000, 40}, {600000, 1}} {
		a, b := hashOf(t, ramp(sz[0], sz[1], true)), hashOf(t, ramp(sz[0], sz[1], false))
		if a == "0000000000000000" || b == "0000000000000000" {
			t.Errorf("%dx%d: hashes %s and %s; want content in both", sz[0], sz[1], a, b)
		}
		if a == b {
			t.Errorf("%dx%d: a ramp and its reverse hash alike (%s)", sz[0], sz[1], a)
		}
	}
}
