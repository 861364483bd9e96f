package imagedata

import (
	"fmt"
	"image"
	"image/draw"
	"testing"

	xdraw "golang.org/x/image/draw"
)

// benchJPEG returns a w×h JPEG: a real photo upscaled when .deps/testdata is
// there (realistic entropy), else a synthetic texture.
func benchJPEG(b *testing.B, w, h int) []byte {
	b.Helper()
	var src image.Image = textured(w, h)
	if photo, err := Decode(readPhotoOptional("dog.jpg"), DefaultLimits(), DecodeOptions{}); err == nil {
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		xdraw.ApproxBiLinear.Scale(dst, dst.Bounds(), photo.Image, photo.Image.Bounds(), draw.Src, nil)
		src = dst
	}
	return encodeJPEG(b, src, 90)
}

func BenchmarkDecode(b *testing.B) {
	b.Logf("backend: %s", Backend())
	sizes := []struct {
		name string
		w, h int
	}{
		{"1MP", 1200, 900},
		{"12MP", 4000, 3000},
	}
	for _, s := range sizes {
		jpg := benchJPEG(b, s.w, s.h)
		for _, minSide := range []int{0, 256} {
			name := fmt.Sprintf("%s/full", s.name)
			if minSide > 0 {
				name = fmt.Sprintf("%s/minside=%d", s.name, minSide)
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(len(jpg)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Decode(jpg, DefaultLimits(), DecodeOptions{MinSide: minSide}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		// EXIF orientation 6 adds a rotation pass after the decode.
		b.Run(s.name+"/full/orientation=6", func(b *testing.B) {
			o6 := withOrientation(jpg, 6)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(o6, DefaultLimits(), DecodeOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkInspect(b *testing.B) {
	jpg := withOrientation(encodeJPEG(b, textured(1200, 900), 90), 6)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Inspect(jpg, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOrient(b *testing.B) {
	m := textured(4000, 3000)
	for _, o := range []int{3, 6} {
		b.Run(fmt.Sprintf("12MP/RGBA/%d", o), func(b *testing.B) {
			for b.Loop() {
				orient(m, o, nil)
			}
		})
	}
}
