package qr

import (
	"errors"
	"image"
	"image/draw"

	"github.com/makiuchi-d/gozxing"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
)

// luminance is a grey copy of an image, row-major with no padding, as
// gozxing reads it. gozxing's own source from an image.Image goes through
// At for every pixel, which costs an allocation per pixel; this one reads the
// pixel buffers of the common types directly.
type luminance struct {
	pix  []byte
	w, h int
	// shared says pix belongs to someone else (the job's shared luma):
	// fill copies it before its first write.
	shared bool
}

var _ gozxing.LuminanceSource = (*luminance)(nil)

// sharedLuminance reads g, the luma a job's analyzers share
// (analyzer.Image.Luma), without copying it.
func sharedLuminance(g *image.Gray) *luminance {
	b := g.Bounds()
	if g.Stride != b.Dx() || b.Min != (image.Point{}) {
		return newLuminance(g)
	}
	return &luminance{pix: g.Pix[:b.Dx()*b.Dy()], w: b.Dx(), h: b.Dy(), shared: true}
}

// newLuminance returns the luma of m as analyzer.LumaOf computes it (the
// plane a job's analyzers share), converting m to RGBA first when it is
// another type.
func newLuminance(m image.Image) *luminance {
	b := m.Bounds()
	rgba, ok := m.(*image.RGBA)
	if !ok {
		rgba = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Bounds(), m, b.Min, draw.Src)
	}
	g := analyzer.LumaOf(rgba)
	return &luminance{pix: g.Pix, w: b.Dx(), h: b.Dy()}
}

// GetRow returns row y, in row when it is long enough.
func (l *luminance) GetRow(y int, row []byte) ([]byte, error) {
	if y < 0 || y >= l.h {
		return row, errors.New("qr: luminance row out of range")
	}
	if len(row) < l.w {
		row = make([]byte, l.w)
	}
	copy(row, l.pix[y*l.w:(y+1)*l.w])
	return row, nil
}

// GetMatrix returns the whole image; callers must not modify it.
func (l *luminance) GetMatrix() []byte { return l.pix }

// GetWidth returns the width in pixels.
func (l *luminance) GetWidth() int { return l.w }

// GetHeight returns the height in pixels.
func (l *luminance) GetHeight() int { return l.h }

// IsCropSupported reports true.
func (l *luminance) IsCropSupported() bool { return true }

// Crop returns a copy of the given rectangle.
func (l *luminance) Crop(left, top, width, height int) (gozxing.LuminanceSource, error) {
	if left < 0 || top < 0 || width < 0 || height < 0 || left+width > l.w || top+height > l.h {
		return nil, errors.New("qr: crop rectangle outside the image")
	}
	c := &luminance{pix: make([]byte, width*height), w: width, h: height}
	for y := range height {
		copy(c.pix[y*width:(y+1)*width], l.pix[(top+y)*l.w+left:])
	}
	return c, nil
}

// IsRotateSupported reports true: the 1-D readers rotate by 90 degrees to
// find vertical barcodes.
func (l *luminance) IsRotateSupported() bool { return true }

// Invert returns a view with black and white swapped.
func (l *luminance) Invert() gozxing.LuminanceSource { return gozxing.NewInvertedLuminanceSource(l) }

// RotateCounterClockwise returns a copy turned 90 degrees counter-clockwise.
func (l *luminance) RotateCounterClockwise() (gozxing.LuminanceSource, error) {
	r := &luminance{pix: make([]byte, l.w*l.h), w: l.h, h: l.w}
	for y := range l.h {
		for x := range l.w {
			// (x, y) moves to (y, w-1-x).
			r.pix[(l.w-1-x)*r.w+y] = l.pix[y*l.w+x]
		}
	}
	return r, nil
}

// RotateCounterClockwise45 is not supported.
func (l *luminance) RotateCounterClockwise45() (gozxing.LuminanceSource, error) {
	return nil, errors.New("qr: 45 degree rotation not supported")
}

// String renders the image as text, for debugging.
func (l *luminance) String() string { return gozxing.LuminanceSourceString(l) }

// fill paints the convex polygon poly (in pixel coordinates) white, so that
// a code already read is not found again.
func (l *luminance) fill(poly []point) {
	if len(poly) < 3 {
		return
	}
	minY, maxY := poly[0].y, poly[0].y
	for _, p := range poly[1:] {
		minY, maxY = min(minY, p.y), max(maxY, p.y)
	}
	if l.shared {
		l.pix, l.shared = append([]byte(nil), l.pix...), false
	}
	y0, y1 := max(0, int(minY)), min(l.h-1, int(maxY)+1)
	for y := y0; y <= y1; y++ {
		fy := float64(y) + 0.5
		// Intersect the scan line with every edge; a convex polygon gives
		// one span.
		xl, xr := float64(l.w), -1.0
		for i, a := range poly {
			b := poly[(i+1)%len(poly)]
			if (a.y <= fy) == (b.y <= fy) {
				continue
			}
			x := a.x + (fy-a.y)*(b.x-a.x)/(b.y-a.y)
			xl, xr = min(xl, x), max(xr, x)
		}
		x0, x1 := max(0, int(xl)), min(l.w-1, int(xr)+1)
		row := l.pix[y*l.w : (y+1)*l.w]
		for x := x0; x <= x1; x++ {
			row[x] = 255
		}
	}
}
