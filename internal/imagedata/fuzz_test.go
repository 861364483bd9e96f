package imagedata

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes through Decode: it must never panic, and
// must return either a sane image or a typed *Error.
func FuzzDecode(f *testing.F) {
	q := quadrants(16, 12)
	jpg := encodeJPEG(f, q, 80)
	f.Add(jpg, uint16(0))
	f.Add(withOrientation(jpg, 6), uint16(4))
	f.Add(encodePNG(f, q), uint16(0))
	f.Add(encodeGIF(f, q), uint16(0))
	f.Add(pngHeader(65535, 65535), uint16(0))
	f.Add(gifHeader(300, 300), uint16(0))
	f.Add(jpegHeader(64, 64), uint16(8))
	f.Add(webpLosslessHeader(64, 64), uint16(0))
	f.Add([]byte("not an image"), uint16(0))
	for _, name := range []string{"quadrants-lossy-o6.webp", "quadrants-lossless.webp", "quadrants-cmyk.jpg", "quadrants-progressive-o8.jpg"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(6))
	}
	// Small limits keep each iteration cheap; bigger claims must be refused.
	lim := Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20}
	f.Fuzz(func(t *testing.T, b []byte, minSide uint16) {
		img, err := Decode(b, lim, DecodeOptions{MinSide: int(minSide)})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status == 0 || e.Message == "" {
				t.Fatalf("Decode() error = %#v; want *Error with status and message", err)
			}
			return
		}
		r := img.Image.Bounds()
		dw, dh := img.DisplaySize()
		if r.Min.X != 0 || r.Min.Y != 0 || r.Dx() > dw || r.Dy() > dh || r.Empty() {
			t.Fatalf("Decode() bounds %v; header %+v", r, img.Header)
		}
		if int64(img.Width)*int64(img.Height) > lim.MaxPixels {
			t.Fatalf("Decode() accepted %dx%d over the pixel limit", img.Width, img.Height)
		}
	})
}
