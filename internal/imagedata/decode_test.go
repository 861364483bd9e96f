package imagedata

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestBackend(t *testing.T) {
	if got := Backend(); got != "libjpeg-turbo" && got != "pure-go" {
		t.Errorf("Backend() = %q; want libjpeg-turbo or pure-go", got)
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeFormats(t *testing.T) {
	q := quadrants(64, 48)
	tests := []struct {
		name   string
		data   []byte
		format Format
		orient int
		tol    int
	}{
		{"jpeg", encodeJPEG(t, q, 95), JPEG, 1, 40},
		{"png", encodePNG(t, q), PNG, 1, 0},
		{"gif", encodeGIF(t, q), GIF, 1, 0},
		{"webp lossless", readFixture(t, "quadrants-lossless.webp"), WebP, 1, 0},
		{"webp lossy", readFixture(t, "quadrants-lossy.webp"), WebP, 1, 40},
		{"webp lossy exif orientation 6", readFixture(t, "quadrants-lossy-o6.webp"), WebP, 6, 40},
		{"jpeg progressive exif orientation 8", readFixture(t, "quadrants-progressive-o8.jpg"), JPEG, 8, 40},
		// libjpeg-turbo cannot output RGBA from CMYK; the fallback must.
		{"jpeg cmyk", readFixture(t, "quadrants-cmyk.jpg"), JPEG, 1, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Decode(tt.data, DefaultLimits(), DecodeOptions{})
			if err != nil {
				t.Fatalf("Decode() error = %v", err)
			}
			if img.Format != tt.format || img.Orientation != tt.orient {
				t.Errorf("Decode() header = %+v; want format %s orientation %d", img.Header, tt.format, tt.orient)
			}
			if img.ContentType != "image/"+string(tt.format) {
				t.Errorf("ContentType = %q; want %q", img.ContentType, "image/"+string(tt.format))
			}
			checkCorners(t, img.Image, tt.orient, 64, 48, tt.tol)
		})
	}
}

// TestDecodeGIFSubFrame checks that a first frame smaller than the logical
// screen is placed on a screen-sized canvas.
func TestDecodeGIFSubFrame(t *testing.T) {
	frame := image.NewPaletted(image.Rect(10, 5, 20, 15), palette.Plan9)
	draw.Draw(frame, frame.Bounds(), image.NewUniform(color.RGBA{255, 0, 0, 255}), image.Point{}, draw.Src)
	var buf bytes.Buffer
	err := gif.EncodeAll(&buf, &gif.GIF{
		Image:  []*image.Paletted{frame},
		Delay:  []int{0},
		Config: image.Config{ColorModel: color.Palette(palette.Plan9), Width: 40, Height: 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := Decode(buf.Bytes(), DefaultLimits(), DecodeOptions{})
	if err != nil {
		t.Fatalf("Decode() error = %v", err)
	}
	if got, want := img.Image.Bounds(), image.Rect(0, 0, 40, 30); got != want {
		t.Fatalf("bounds = %v; want %v", got, want)
	}
	if _, _, _, a := img.Image.At(0, 0).RGBA(); a != 0 {
		t.Errorf("outside the frame alpha = %d; want 0", a)
	}
	if got := img.Image.At(15, 10); !near(got, color.RGBA{255, 0, 0, 255}, 0) {
		t.Errorf("inside the frame = %v; want red", got)
	}
}

// toRGBA copies m into a fresh RGBA with bounds at the origin.
func toRGBA(m image.Image) *image.RGBA {
	b := m.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), m, b.Min, draw.Src)
	return dst
}

// boxDown averages src down to w×h (src dimensions need not be multiples).
func boxDown(src *image.RGBA, w, h int) *image.RGBA {
	sw, sh := src.Bounds().Dx(), src.Bounds().Dy()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		y0, y1 := y*sh/h, max((y+1)*sh/h, y*sh/h+1)
		for x := range w {
			x0, x1 := x*sw/w, max((x+1)*sw/w, x*sw/w+1)
			var sum [4]int
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					i := src.PixOffset(sx, sy)
					for c := range 4 {
						sum[c] += int(src.Pix[i+c])
					}
				}
			}
			n := (y1 - y0) * (x1 - x0)
			i := dst.PixOffset(x, y)
			for c := range 4 {
				dst.Pix[i+c] = uint8(sum[c] / n)
			}
		}
	}
	return dst
}

// meanAbsDiff returns the mean absolute RGB difference of equal-size images.
func meanAbsDiff(a, b *image.RGBA) float64 {
	var sum, n int
	for i := 0; i < len(a.Pix); i += 4 {
		for c := range 3 {
			d := int(a.Pix[i+c]) - int(b.Pix[i+c])
			sum += max(d, -d)
			n++
		}
	}
	return float64(sum) / float64(n)
}

// checkScaled decodes b at full size and with minSide, and checks that the
// scaled result keeps its shorter side >= minSide (unless the image is
// smaller) and looks like the full decode shrunk.
func checkScaled(t *testing.T, b []byte, minSide int) *Image {
	t.Helper()
	full, err := Decode(b, DefaultLimits(), DecodeOptions{})
	if err != nil {
		t.Fatalf("Decode(full) error = %v", err)
	}
	scaled, err := Decode(b, DefaultLimits(), DecodeOptions{MinSide: minSide})
	if err != nil {
		t.Fatalf("Decode(MinSide=%d) error = %v", minSide, err)
	}
	fb, sb := full.Image.Bounds(), scaled.Image.Bounds()
	short := min(sb.Dx(), sb.Dy())
	if want := min(minSide, fb.Dx(), fb.Dy()); short < want {
		t.Errorf("MinSide=%d: scaled %dx%d, shorter side %d; want >= %d", minSide, sb.Dx(), sb.Dy(), short, want)
	}
	if sb.Dx() > fb.Dx() || sb.Dy() > fb.Dy() {
		t.Errorf("MinSide=%d: scaled %v larger than full %v", minSide, sb, fb)
	}
	// Aspect ratio within a pixel of rounding.
	if d := sb.Dx()*fb.Dy() - sb.Dy()*fb.Dx(); max(d, -d) > max(fb.Dx(), fb.Dy()) {
		t.Errorf("MinSide=%d: scaled %v does not keep the aspect of %v", minSide, sb, fb)
	}
	ref := boxDown(toRGBA(full.Image), sb.Dx(), sb.Dy())
	if d := meanAbsDiff(toRGBA(scaled.Image), ref); d > 6 {
		t.Errorf("MinSide=%d: mean abs difference to the downscaled full decode = %.2f; want <= 6", minSide, d)
	}
	return scaled
}

func TestDecodeScaled(t *testing.T) {
	jpg := encodeJPEG(t, textured(1024, 768), 90)
	turbo := Backend() == "libjpeg-turbo"
	tests := []struct {
		minSide  int
		turboDim [2]int // expected size with libjpeg-turbo; pure Go is always full
	}{
		{0, [2]int{1024, 768}},
		{1, [2]int{128, 96}},
		{96, [2]int{128, 96}},
		{97, [2]int{256, 192}},
		{224, [2]int{512, 384}},
		{384, [2]int{512, 384}},
		{385, [2]int{1024, 768}},
		{5000, [2]int{1024, 768}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.minSide), func(t *testing.T) {
			img := checkScaled(t, jpg, tt.minSide)
			want := [2]int{1024, 768}
			if turbo {
				want = tt.turboDim
			}
			if got := [2]int{img.Image.Bounds().Dx(), img.Image.Bounds().Dy()}; got != want {
				t.Errorf("MinSide=%d: size %v; want %v", tt.minSide, got, want)
			}
			if img.Width != 1024 || img.Height != 768 {
				t.Errorf("Header size %dx%d; want the stored 1024x768", img.Width, img.Height)
			}
		})
	}
}

// TestDecodePhotos runs every real photo in .deps/testdata through the
// whole path.
func TestDecodePhotos(t *testing.T) {
	dir := photoDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if ext != ".jpg" && ext != ".png" {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			b := readPhoto(t, e.Name())
			h, err := Inspect(b, DefaultLimits())
			if err != nil {
				t.Fatalf("Inspect() error = %v", err)
			}
			if want := map[string]Format{".jpg": JPEG, ".png": PNG}[ext]; h.Format != want {
				t.Errorf("Format = %q; want %q", h.Format, want)
			}
			img := checkScaled(t, b, 224)
			dw, dh := h.DisplaySize()
			if r := img.Image.Bounds(); r.Dx() > dw || r.Dy() > dh {
				t.Errorf("decoded %v; display size %dx%d", r, dw, dh)
			}
		})
	}
	if n == 0 {
		t.Fatalf("no photos in %s", dir)
	}
}

// TestLimitBeforeDecode shows the pixel limit is enforced before pixels are
// allocated: refusing a 2000×2000 PNG must cost far less memory than
// decoding it would (16 MB).
func TestLimitBeforeDecode(t *testing.T) {
	b := encodePNG(t, textured(2000, 2000))
	lim := Limits{MaxPixels: 1_000_000}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Decode(b, lim, DecodeOptions{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooManyPixels) {
		t.Fatalf("Decode() error = %v; want ErrTooManyPixels", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("refusing allocated %d bytes; want < 1 MiB", got)
	}
}

// TestCorruptJPEGBody flips bytes in the entropy-coded data: whatever the
// backend, the result is an image or ErrCorrupt, never a crash.
func TestCorruptJPEGBody(t *testing.T) {
	jpg := encodeJPEG(t, textured(200, 150), 90)
	for _, at := range []int{len(jpg) / 3, len(jpg) / 2, len(jpg) - 10} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			b := bytes.Clone(jpg)
			for i := at; i < at+8 && i < len(b)-2; i++ {
				b[i] = 0xFF
			}
			_, err := Decode(b, DefaultLimits(), DecodeOptions{MinSide: 32})
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("Decode() error = %v; want nil or ErrCorrupt", err)
			}
		})
	}
}
