package pump

import (
	"image"
	"math"
	"math/rand/v2"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	xdraw "golang.org/x/image/draw"
)

// hash2 is a deterministic hash of a lattice point to [0,1).
func hash2(seed uint64, x, y int) float64 {
	h := seed ^ uint64(int64(x))*0x9E3779B97F4A7C15 ^ uint64(int64(y))*0xC2B2AE3D27D4EB4F
	h ^= h >> 33
	h *= 0xFF51AFD7ED558CCD
	h ^= h >> 33
	h *= 0xC4CEB9FE1A85EC53
	h ^= h >> 33
	return float64(h>>11) / (1 << 53)
}

// valueNoise is smooth noise in [0,1) with features about cell pixels wide.
func valueNoise(seed uint64, x, y, cell float64) float64 {
	fx, fy := x/cell, y/cell
	ix, iy := int(math.Floor(fx)), int(math.Floor(fy))
	tx, ty := fx-float64(ix), fy-float64(iy)
	tx, ty = tx*tx*(3-2*tx), ty*ty*(3-2*ty)
	a, b := hash2(seed, ix, iy), hash2(seed, ix+1, iy)
	c, d := hash2(seed, ix, iy+1), hash2(seed, ix+1, iy+1)
	return (a*(1-tx)+b*tx)*(1-ty) + (c*(1-tx)+d*tx)*ty
}

// surfaces are base colours of the procedural backgrounds: tables, desks,
// counters and fabrics.
var surfaces = []struct {
	base  [3]float64
	grain bool // wood-like streaks
}{
	{[3]float64{150, 104, 68}, true},   // oak
	{[3]float64{96, 64, 44}, true},     // walnut
	{[3]float64{170, 168, 160}, false}, // concrete
	{[3]float64{64, 84, 110}, false},   // denim
	{[3]float64{196, 186, 168}, false}, // linen
	{[3]float64{52, 56, 60}, false},    // slate
}

// texture paints a procedural surface: fractal noise over a base colour,
// streaks for wood, and a soft light falling from one side.
func texture(rng *rand.Rand, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	s := surfaces[rng.IntN(len(surfaces))]
	seed := rng.Uint64()
	lx, ly := rng.Float64()*float64(w), rng.Float64()*float64(h)
	diag := math.Hypot(float64(w), float64(h))
	streak := 4 + rng.Float64()*8
	for y := range h {
		for x := range w {
			fx, fy := float64(x), float64(y)
			n := 0.5*valueNoise(seed, fx, fy, 96) + 0.3*valueNoise(seed+1, fx, fy, 24) + 0.2*valueNoise(seed+2, fx, fy, 5)
			v := 0.75 + 0.5*n
			if s.grain {
				v *= 0.85 + 0.15*math.Sin(fy/streak+6*valueNoise(seed+3, fx, fy, 140))
			}
			light := 1.1 - 0.35*math.Hypot(fx-lx, fy-ly)/diag
			i := img.PixOffset(x, y)
			for c := range 3 {
				img.Pix[i+c] = clamp8(s.base[c] * v * light)
			}
			img.Pix[i+3] = 255
		}
	}
	return img
}

// photoBackground scales src to cover w×h and crops at a random offset.
func photoBackground(rng *rand.Rand, src image.Image, w, h int) *image.RGBA {
	sb := src.Bounds()
	scale := math.Max(float64(w)/float64(sb.Dx()), float64(h)/float64(sb.Dy()))
	sw, sh := int(math.Ceil(float64(sb.Dx())*scale)), int(math.Ceil(float64(sb.Dy())*scale))
	ox, oy := rng.IntN(sw-w+1), rng.IntN(sh-h+1)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.ApproxBiLinear.Scale(img, image.Rect(-ox, -oy, sw-ox, sh-oy), src, sb, xdraw.Src, nil)
	return img
}

// qrMatrix encodes text as a QR code with error correction level M and a
// four-module quiet zone, one pixel per module.
func qrMatrix(text string) (*gozxing.BitMatrix, error) {
	hints := map[gozxing.EncodeHintType]any{
		gozxing.EncodeHintType_ERROR_CORRECTION: "M",
		gozxing.EncodeHintType_MARGIN:           4,
	}
	return qrcode.NewQRCodeWriter().Encode(text, gozxing.BarcodeFormat_QR_CODE, 0, 0, hints)
}

// card is a printed QR code lying on the surface.
type card struct {
	m        *gozxing.BitMatrix
	module   float64 // pixels per module
	angle    float64 // radians
	cx, cy   float64 // centre in the image
	paper    [3]float64
	ink      [3]float64
	shadowDx float64
	shadowDy float64
}

// draw paints the card's shadow, then the card, anti-aliased with 3×3
// samples per pixel.
func (c *card) draw(img *image.RGBA) {
	side := float64(c.m.GetWidth()) * c.module
	half := side / 2
	reach := half*math.Sqrt2 + math.Hypot(c.shadowDx, c.shadowDy) + 2
	b := img.Bounds()
	x0, x1 := max(b.Min.X, int(c.cx-reach)), min(b.Max.X, int(c.cx+reach)+1)
	y0, y1 := max(b.Min.Y, int(c.cy-reach)), min(b.Max.Y, int(c.cy+reach)+1)
	sin, cos := math.Sincos(c.angle)
	// local maps an image point into card coordinates (0..side).
	local := func(x, y float64) (u, v float64) {
		dx, dy := x-c.cx, y-c.cy
		return cos*dx + sin*dy + half, -sin*dx + cos*dy + half
	}
	const ss = 3
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			var shadow, paper, ink float64
			for sy := range ss {
				for sx := range ss {
					px := float64(x) + (float64(sx)+0.5)/ss
					py := float64(y) + (float64(sy)+0.5)/ss
					u, v := local(px, py)
					if u >= 0 && v >= 0 && u < side && v < side {
						if c.m.Get(int(u/c.module), int(v/c.module)) {
							ink++
						} else {
							paper++
						}
						continue
					}
					if u, v := local(px-c.shadowDx, py-c.shadowDy); u >= 0 && v >= 0 && u < side && v < side {
						shadow++
					}
				}
			}
			if shadow+paper+ink == 0 {
				continue
			}
			i := img.PixOffset(x, y)
			for ch := range 3 {
				bg := float64(img.Pix[i+ch])
				bgShare := (ss*ss - shadow - paper - ink) / (ss * ss)
				v := bg*bgShare + bg*0.55*shadow/(ss*ss) + c.paper[ch]*paper/(ss*ss) + c.ink[ch]*ink/(ss*ss)
				img.Pix[i+ch] = clamp8(v)
			}
		}
	}
}

// grain adds sensor noise of the given strength.
func grain(rng *rand.Rand, img *image.RGBA, strength float64) {
	for i := 0; i < len(img.Pix); i += 4 {
		n := rng.NormFloat64() * strength
		for c := range 3 {
			img.Pix[i+c] = clamp8(float64(img.Pix[i+c]) + n)
		}
	}
}

func clamp8(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// storedForOrientation returns the pixels to store so that a viewer
// applying EXIF orientation o (1, 3, 6 or 8) shows img upright.
func storedForOrientation(img *image.RGBA, o int) *image.RGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	var out *image.RGBA
	var at func(x, y int) (int, int) // stored (x, y) → display point
	switch o {
	case 3: // the viewer turns 180°
		out = image.NewRGBA(image.Rect(0, 0, w, h))
		at = func(x, y int) (int, int) { return w - 1 - x, h - 1 - y }
	case 6: // the viewer turns 90° clockwise, so store it turned anticlockwise
		out = image.NewRGBA(image.Rect(0, 0, h, w))
		at = func(x, y int) (int, int) { return w - 1 - y, x }
	case 8: // the viewer turns 90° anticlockwise, so store it turned clockwise
		out = image.NewRGBA(image.Rect(0, 0, h, w))
		at = func(x, y int) (int, int) { return y, h - 1 - x }
	default:
		return img
	}
	ob := out.Bounds()
	for y := range ob.Dy() {
		for x := range ob.Dx() {
			dx, dy := at(x, y)
			copy(out.Pix[out.PixOffset(x, y):out.PixOffset(x, y)+4], img.Pix[img.PixOffset(dx, dy):img.PixOffset(dx, dy)+4])
		}
	}
	return out
}
