package qr

import (
	"fmt"
	"image"
	"testing"

	"github.com/makiuchi-d/gozxing"
)

// TestBinarizerMatchesHybrid checks that binarizer gives gozxing's
// HybridBinarizer's matrix bit for bit: on a photo with a code, on noise,
// on flat and half-flat pictures (the flat-block rules), and at sizes that
// are and are not multiples of the 8-pixel block, down to the smallest the
// local method takes and below, where both fall back on the histogram.
func TestBinarizerMatchesHybrid(t *testing.T) {
	withCode := compose(photo(t, "kite.jpg", 1000, 750), []placement{{sym: qrSymbol(t, shopURL), side: 200, cx: 500, cy: 300, angle: 20}})
	halfFlat := image.NewGray(image.Rect(0, 0, 203, 157))
	for i := range halfFlat.Pix {
		if i%203 > 100 {
			halfFlat.Pix[i] = uint8(40 + i%7)
		} else {
			halfFlat.Pix[i] = 200
		}
	}
	for _, tc := range []struct {
		name string
		m    image.Image
	}{
		{"photo with code", withCode},
		{"photo crop", withCode.SubImage(image.Rect(3, 5, 998, 700))},
		{"noise 1200x900", noise(1200, 900)},
		{"noise 41x45", noise(41, 45)},
		{"noise 40x40", noise(40, 40)},
		{"noise 39x60", noise(39, 60)},
		{"noise 8x8", noise(8, 8)},
		{"flat", image.NewUniform(image.Black)},
		{"half flat", halfFlat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			if u, ok := m.(*image.Uniform); ok {
				g := image.NewGray(image.Rect(0, 0, 97, 66))
				for i := range g.Pix {
					r, _, _, _ := u.RGBA()
					g.Pix[i] = uint8(r >> 8)
				}
				m = g
			}
			lum := newLuminance(m)
			want, wantErr := gozxing.NewHybridBinarizer(lum).GetBlackMatrix()
			got, gotErr := newBinarizer(lum).GetBlackMatrix()
			if (gotErr != nil) != (wantErr != nil) {
				t.Fatalf("error %v; HybridBinarizer's %v", gotErr, wantErr)
			}
			if wantErr != nil {
				return
			}
			if d := diff(got, want); d != "" {
				t.Error(d)
			}
		})
	}
}

func diff(got, want *gozxing.BitMatrix) string {
	if got.GetWidth() != want.GetWidth() || got.GetHeight() != want.GetHeight() {
		return fmt.Sprintf("matrix is %dx%d; want %dx%d", got.GetWidth(), got.GetHeight(), want.GetWidth(), want.GetHeight())
	}
	n := 0
	first := ""
	for y := range want.GetHeight() {
		for x := range want.GetWidth() {
			if got.Get(x, y) != want.Get(x, y) {
				if n == 0 {
					first = fmt.Sprintf("(%d, %d) is %v", x, y, got.Get(x, y))
				}
				n++
			}
		}
	}
	if n > 0 {
		return fmt.Sprintf("%d pixels differ, first %s", n, first)
	}
	return ""
}
