package imagedata

import (
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// displayCorners lists, per EXIF orientation, which stored quadrant colour
// must appear at the display top-left, top-right, bottom-left and
// bottom-right. Written out by hand rather than derived from orient.
var displayCorners = map[int][4]color.RGBA{
	1: {qTL, qTR, qBL, qBR},
	2: {qTR, qTL, qBR, qBL}, // mirror horizontal
	3: {qBR, qBL, qTR, qTL}, // rotate 180
	4: {qBL, qBR, qTL, qTR}, // mirror vertical
	5: {qTL, qBL, qTR, qBR}, // transpose
	6: {qBL, qTL, qBR, qTR}, // rotate 90 clockwise
	7: {qBR, qTR, qBL, qTL}, // transverse
	8: {qTR, qBR, qTL, qBL}, // rotate 90 counter-clockwise
}

// checkCorners verifies the quadrant centres of a decoded display image.
func checkCorners(t *testing.T, m image.Image, o, w, h, tol int) {
	t.Helper()
	b := m.Bounds()
	if b.Min != (image.Point{}) {
		t.Errorf("bounds %v; want origin (0,0)", b)
	}
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	if b.Dx() != dw || b.Dy() != dh {
		t.Fatalf("size %dx%d; want %dx%d", b.Dx(), b.Dy(), dw, dh)
	}
	pts := [4]image.Point{{dw / 4, dh / 4}, {3 * dw / 4, dh / 4}, {dw / 4, 3 * dh / 4}, {3 * dw / 4, 3 * dh / 4}}
	names := [4]string{"top-left", "top-right", "bottom-left", "bottom-right"}
	for i, p := range pts {
		want := displayCorners[o][i]
		if got := m.At(p.X, p.Y); !near(got, want, tol) {
			t.Errorf("orientation %d %s at %v = %v; want %v", o, names[i], p, got, want)
		}
	}
}

func TestDecodeOrientation(t *testing.T) {
	const w, h = 64, 48
	jpg := encodeJPEG(t, quadrants(w, h), 95)
	for o := 1; o <= 8; o++ {
		for _, minSide := range []int{0, 16} {
			t.Run(fmt.Sprintf("spliced/%d/minside=%d", o, minSide), func(t *testing.T) {
				img, err := Decode(withOrientation(jpg, uint16(o)), DefaultLimits(), DecodeOptions{MinSide: minSide})
				if err != nil {
					t.Fatalf("Decode() error = %v", err)
				}
				if img.Orientation != o {
					t.Errorf("Orientation = %d; want %d", img.Orientation, o)
				}
				sw, sh := w, h
				if minSide > 0 && Backend() == "libjpeg-turbo" {
					sw, sh = w/2, h/2 // 1/2 keeps the short side at 24 >= 16
				}
				checkCorners(t, img.Image, o, sw, sh, 40)
			})
		}
	}
}

// TestDecodeOrientationExiftool cross-checks against files tagged by exiftool,
// so the EXIF writer is not our own splicer.
func TestDecodeOrientationExiftool(t *testing.T) {
	exiftool, err := exec.LookPath("exiftool")
	if err != nil {
		if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
			t.Fatal("exiftool not found")
		}
		t.Skip("exiftool not found")
	}
	jpg := encodeJPEG(t, quadrants(64, 48), 95)
	for _, o := range []int{3, 6, 8} {
		t.Run(fmt.Sprint(o), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "q.jpg")
			if err := os.WriteFile(p, jpg, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(exiftool, "-q", "-overwrite_original", "-n", fmt.Sprintf("-Orientation=%d", o), p).CombinedOutput()
			if err != nil {
				t.Fatalf("exiftool: %v: %s", err, out)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			img, err := Decode(b, DefaultLimits(), DecodeOptions{})
			if err != nil {
				t.Fatalf("Decode() error = %v", err)
			}
			if img.Orientation != o {
				t.Errorf("Orientation = %d; want %d", img.Orientation, o)
			}
			checkCorners(t, img.Image, o, 64, 48, 40)
		})
	}
}

// refAt returns the stored pixel shown at display (x, y) for orientation o,
// straight from the EXIF definitions.
func refAt(src image.Image, o, x, y int) color.Color {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	var sx, sy int
	switch o {
	case 1:
		sx, sy = x, y
	case 2:
		sx, sy = w-1-x, y
	case 3:
		sx, sy = w-1-x, h-1-y
	case 4:
		sx, sy = x, h-1-y
	case 5:
		sx, sy = y, x
	case 6:
		sx, sy = y, h-1-x
	case 7:
		sx, sy = w-1-y, h-1-x
	case 8:
		sx, sy = w-1-y, x
	}
	return src.At(b.Min.X+sx, b.Min.Y+sy)
}

func TestOrientTypes(t *testing.T) {
	const w, h = 13, 7 // odd sizes catch off-by-one errors
	tex := textured(w, h)
	fill := func(m interface{ Set(x, y int, c color.Color) }) {
		for y := range h {
			for x := range w {
				m.Set(x, y, tex.At(x, y))
			}
		}
	}
	mk := map[string]func() image.Image{
		"RGBA": func() image.Image { return tex },
		"NRGBA": func() image.Image {
			m := image.NewNRGBA(tex.Bounds())
			fill(m)
			return m
		},
		"RGBA64": func() image.Image {
			m := image.NewRGBA64(tex.Bounds())
			fill(m)
			return m
		},
		"NRGBA64": func() image.Image {
			m := image.NewNRGBA64(tex.Bounds())
			fill(m)
			return m
		},
		"Gray": func() image.Image {
			m := image.NewGray(tex.Bounds())
			fill(m)
			return m
		},
		"Gray16": func() image.Image {
			m := image.NewGray16(tex.Bounds())
			fill(m)
			return m
		},
		"CMYK": func() image.Image {
			m := image.NewCMYK(tex.Bounds())
			fill(m)
			return m
		},
		"Paletted": func() image.Image {
			m := image.NewPaletted(tex.Bounds(), palette.Plan9)
			fill(m)
			return m
		},
		"YCbCr": func() image.Image {
			m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio444)
			for y := range h {
				for x := range w {
					r, g, b, _ := tex.At(x, y).RGBA()
					yy, cb, cr := color.RGBToYCbCr(uint8(r>>8), uint8(g>>8), uint8(b>>8))
					m.Y[m.YOffset(x, y)], m.Cb[m.COffset(x, y)], m.Cr[m.COffset(x, y)] = yy, cb, cr
				}
			}
			return m
		},
		"RGBA sub-image": func() image.Image {
			big := textured(w+9, h+5)
			return big.SubImage(image.Rect(4, 3, 4+w, 3+h))
		},
		"RGBA unaligned Pix": func() image.Image {
			// Forces the byte-copy path instead of the uint32 one.
			buf := make([]byte, 1+len(tex.Pix))
			copy(buf[1:], tex.Pix)
			return &image.RGBA{Pix: buf[1:], Stride: tex.Stride, Rect: tex.Rect}
		},
		"Uniform-backed generic": func() image.Image {
			return uniformImage{color.RGBA{1, 2, 3, 255}, image.Rect(0, 0, w, h)}
		},
	}
	for name, f := range mk {
		for o := 1; o <= 8; o++ {
			t.Run(fmt.Sprintf("%s/%d", name, o), func(t *testing.T) {
				src := f()
				got := orient(src, o, nil)
				dw, dh := w, h
				if o >= 5 {
					dw, dh = h, w
				}
				if gb := got.Bounds(); gb.Dx() != dw || gb.Dy() != dh {
					t.Fatalf("orient() bounds %v; want %dx%d", gb, dw, dh)
				}
				off := got.Bounds().Min
				for y := range dh {
					for x := range dw {
						g := color.RGBA64Model.Convert(got.At(off.X+x, off.Y+y))
						want := color.RGBA64Model.Convert(refAt(src, o, x, y))
						if name == "YCbCr" {
							// Converted to 8-bit RGBA on the way; At keeps 16 bits.
							if !near(g, color.RGBAModel.Convert(want).(color.RGBA), 1) {
								t.Fatalf("orient() at (%d,%d) = %v; want %v", x, y, g, want)
							}
							continue
						}
						if g != want {
							t.Fatalf("orient() at (%d,%d) = %v; want %v", x, y, g, want)
						}
					}
				}
			})
		}
	}
}
