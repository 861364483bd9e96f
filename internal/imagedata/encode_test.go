package imagedata

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
)

func TestEncodeJPEG(t *testing.T) {
	src := textured(333, 211)
	for _, tc := range []struct {
		name string
		m    *image.RGBA
	}{
		{"whole", src},
		// A sub-image starts inside its parent's pixels; only its rectangle
		// may be encoded.
		{"sub-image", src.SubImage(image.Rect(40, 30, 240, 190)).(*image.RGBA)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeJPEG(tc.m, 90)
			if err != nil {
				t.Fatalf("EncodeJPEG: %v", err)
			}
			got, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("the encoded bytes do not decode: %v", err)
			}
			r := tc.m.Bounds()
			if got.Bounds().Dx() != r.Dx() || got.Bounds().Dy() != r.Dy() {
				t.Fatalf("decoded %v; want %dx%d", got.Bounds(), r.Dx(), r.Dy())
			}
			// Quality 90 keeps every channel of this smooth pattern close.
			var sum, n float64
			for y := range r.Dy() {
				for x := range r.Dx() {
					wr, wg, wb, _ := tc.m.At(r.Min.X+x, r.Min.Y+y).RGBA()
					gr, gg, gb, _ := got.At(x, y).RGBA()
					for _, d := range []int{int(wr>>8) - int(gr>>8), int(wg>>8) - int(gg>>8), int(wb>>8) - int(gb>>8)} {
						sum += float64(max(d, -d))
						n++
					}
				}
			}
			if mean := sum / n; mean > 4 {
				t.Errorf("mean absolute error %.2f per channel; want ≤ 4", mean)
			}
		})
	}
	t.Run("lower quality, fewer bytes", func(t *testing.T) {
		hi, err1 := EncodeJPEG(src, 95)
		lo, err2 := EncodeJPEG(src, 30)
		if err1 != nil || err2 != nil {
			t.Fatalf("EncodeJPEG: %v, %v", err1, err2)
		}
		if len(lo) >= len(hi) {
			t.Errorf("quality 30 gave %d bytes, quality 95 %d; want fewer", len(lo), len(hi))
		}
	})
}

func TestEncodeJPEGRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       *image.RGBA
		quality int
	}{
		{"nil", nil, 80},
		{"empty", image.NewRGBA(image.Rect(0, 0, 0, 5)), 80},
		{"quality 0", textured(8, 8), 0},
		{"quality 101", textured(8, 8), 101},
	} {
		if b, err := EncodeJPEG(tc.m, tc.quality); err == nil {
			t.Errorf("%s: EncodeJPEG = %d bytes, nil; want an error", tc.name, len(b))
		}
	}
}

func BenchmarkEncodeJPEG(b *testing.B) {
	m := textured(320, 240)
	b.Run(Backend(), func(b *testing.B) {
		for b.Loop() {
			if _, err := EncodeJPEG(m, 80); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("image/jpeg", func(b *testing.B) {
		for b.Loop() {
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 80}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
