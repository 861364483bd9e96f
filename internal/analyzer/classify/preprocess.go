package classify

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sync"

	"github.com/glimpse-oss/glimpse/internal/models"
)

// Preprocess writes img as the input tensor spec describes into dst, which
// must hold at least 3·Size·Size values (it panics otherwise).
//
// The image is resized so that its shorter side is spec.ResizeSide(), the
// centre Size×Size square is cropped, and each channel is scaled to [0,1]
// and normalised with spec.Mean and spec.Std, in spec.Layout order. Only the
// crop is ever computed; the resized image is never materialised.
//
// Resampling is separable: an area average along an axis that shrinks (so
// a 12-megapixel photo is averaged, not aliased) and bilinear interpolation
// along one that grows, like OpenCV's INTER_AREA. Measured on 2 cores, an
// antialiased bilinear (Pillow-style triangle) filter cost 1.1–4.5× as much
// for no change in the test photos' labels.
//
// *image.RGBA, *image.NRGBA, *image.YCbCr and *image.Gray are read from
// their pixel buffers; other types go through At. Scratch buffers are pooled,
// so the fast paths do not allocate in steady state. Transparent pixels are
// composited over black, as image.Image's premultiplied colours are.
func Preprocess(img image.Image, spec models.Spec, dst []float32) {
	size := spec.Size
	plane := size * size
	if len(dst) < 3*plane {
		panic(fmt.Sprintf("classify: Preprocess dst holds %d values, needs %d", len(dst), 3*plane))
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 || size <= 0 {
		clear(dst[:3*plane])
		return
	}
	side := spec.ResizeSide()
	rw, rh := side, side
	if w < h {
		rh = max(size, int(math.Round(float64(h)*float64(side)/float64(w))))
	} else {
		rw = max(size, int(math.Round(float64(w)*float64(side)/float64(h))))
	}

	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.kx.build(w, rw, (rw-size)/2, size)
	sc.ky.build(h, rh, (rh-size)/2, size)
	x0 := int(sc.kx.start[0])
	x1 := int(sc.kx.start[size-1]) + int(sc.kx.n[size-1])
	span := x1 - x0
	sc.acc = grow(sc.acc, 3*span)
	acc := sc.acc[:3*span]

	var mul, add [3]float32
	for c := range 3 {
		mul[c] = 1 / (255 * spec.Std[c])
		add[c] = -spec.Mean[c] / spec.Std[c]
	}
	nhwc := spec.Layout == models.LayoutNHWC

	rows := newRowReader(img, sc, x0, span)
	for oy := range size {
		clear(acc)
		ys := int(sc.ky.start[oy])
		for t, wt := range sc.ky.weights(oy) {
			rows.accumulate(ys+t, wt, acc)
		}
		for ox := range size {
			xs := 3 * (int(sc.kx.start[ox]) - x0)
			var r, g, bl float32
			for t, wt := range sc.kx.weights(ox) {
				p := acc[xs+3*t : xs+3*t+3]
				r += wt * p[0]
				g += wt * p[1]
				bl += wt * p[2]
			}
			r = r*mul[0] + add[0]
			g = g*mul[1] + add[1]
			bl = bl*mul[2] + add[2]
			if nhwc {
				i := 3 * (oy*size + ox)
				dst[i], dst[i+1], dst[i+2] = r, g, bl
			} else {
				i := oy*size + ox
				dst[i], dst[plane+i], dst[2*plane+i] = r, g, bl
			}
		}
	}
}

// scratch holds the buffers one Preprocess call needs.
type scratch struct {
	kx, ky kernel
	acc    []float32 // one row of the crop's source span, RGB interleaved
	cx     []int32   // YCbCr: chroma offset of each column in the span
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// grow returns s with length at least n, reusing its storage when it can.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// filter is a resampling filter: its support radius at scale 1 and its
// weight function.
type filter struct {
	support float64
	weight  func(x float64) float64
}

// Resampling filters. triangle is bilinear interpolation; box is an area
// average when shrinking.
var (
	triangle = filter{1, func(x float64) float64 { return max(0, 1-math.Abs(x)) }}
	box      = filter{0.5, func(x float64) float64 {
		if x > -0.5 && x <= 0.5 {
			return 1
		}
		return 0
	}}
)

// shrinkFilter is the filter Preprocess uses along an axis that shrinks;
// along one that grows it interpolates with triangle. A variable so that
// benchmarks can compare filters.
var shrinkFilter = box

// kernel maps each output index along one axis to a run of source indices
// and their weights.
type kernel struct {
	start []int32   // first source index (relative to the image's Min)
	n     []int32   // number of source indices
	w     []float32 // weights, taps per output index
	taps  int
}

// weights returns output index o's weights.
func (k *kernel) weights(o int) []float32 {
	return k.w[o*k.taps : o*k.taps+int(k.n[o])]
}

// build computes the kernel for resizing srcLen pixels to resized pixels
// and keeping out of them starting at off.
func (k *kernel) build(srcLen, resized, off, out int) {
	scale := float64(srcLen) / float64(resized)
	f := triangle
	if scale > 1 {
		f = shrinkFilter
	}
	fscale := max(scale, 1)
	support := f.support * fscale
	k.taps = int(math.Ceil(support))*2 + 1
	k.start = grow(k.start, out)
	k.n = grow(k.n, out)
	k.w = grow(k.w, out*k.taps)
	for o := range out {
		center := (float64(o+off) + 0.5) * scale
		lo := max(0, int(math.Floor(center-support+0.5)))
		hi := min(srcLen, int(math.Floor(center+support+0.5)))
		hi = min(hi, lo+k.taps)
		ws := k.w[o*k.taps : o*k.taps+k.taps]
		var sum float64
		for j := lo; j < hi; j++ {
			v := f.weight((float64(j) + 0.5 - center) / fscale)
			ws[j-lo] = float32(v)
			sum += v
		}
		if sum == 0 { // can only happen at a degenerate edge: take the nearest pixel
			lo, hi = min(int(center), srcLen-1), min(int(center), srcLen-1)+1
			ws[0], sum = 1, 1
		}
		for j := range hi - lo {
			ws[j] = float32(float64(ws[j]) / sum)
		}
		k.start[o], k.n[o] = int32(lo), int32(hi-lo)
	}
}

// rowReader adds weighted source rows, restricted to the crop's column span,
// into an RGB accumulator.
type rowReader struct {
	img  image.Image
	min  image.Point
	x0   int // first column of the span, relative to min
	span int
	cx   []int32 // YCbCr chroma column offsets
}

func newRowReader(img image.Image, sc *scratch, x0, span int) rowReader {
	r := rowReader{img: img, min: img.Bounds().Min, x0: x0, span: span}
	if m, ok := img.(*image.YCbCr); ok {
		hd, _ := chromaDiv(m.SubsampleRatio)
		sc.cx = grow(sc.cx, span)
		for j := range span {
			x := r.min.X + x0 + j
			sc.cx[j] = int32(x/hd - r.min.X/hd)
		}
		r.cx = sc.cx[:span]
	}
	return r
}

// chromaDiv returns the horizontal and vertical chroma subsampling factors.
func chromaDiv(s image.YCbCrSubsampleRatio) (int, int) {
	switch s {
	case image.YCbCrSubsampleRatio422:
		return 2, 1
	case image.YCbCrSubsampleRatio420:
		return 2, 2
	case image.YCbCrSubsampleRatio440:
		return 1, 2
	case image.YCbCrSubsampleRatio411:
		return 4, 1
	case image.YCbCrSubsampleRatio410:
		return 4, 2
	}
	return 1, 1
}

// accumulate adds w times source row y (relative to min) into acc.
func (r *rowReader) accumulate(y int, w float32, acc []float32) {
	n := r.span
	acc = acc[:3*n]
	switch m := r.img.(type) {
	case *image.RGBA:
		o := y*m.Stride + 4*r.x0
		accumulate4(m.Pix[o:o+4*n], w, acc)
	case *image.NRGBA:
		o := y*m.Stride + 4*r.x0
		p := m.Pix[o : o+4*n]
		for j := range n {
			q := p[4*j : 4*j+4]
			a := acc[3*j : 3*j+3]
			if q[3] == 0xff {
				a[0] += w * float32(q[0])
				a[1] += w * float32(q[1])
				a[2] += w * float32(q[2])
			} else {
				wa := w * float32(q[3]) / 255
				a[0] += wa * float32(q[0])
				a[1] += wa * float32(q[1])
				a[2] += wa * float32(q[2])
			}
		}
	case *image.YCbCr:
		_, vd := chromaDiv(m.SubsampleRatio)
		yo := y*m.YStride + r.x0
		ys := m.Y[yo : yo+n]
		co := ((r.min.Y+y)/vd - r.min.Y/vd) * m.CStride
		cb, cr := m.Cb[co:], m.Cr[co:]
		for j, yy := range ys {
			c := r.cx[j]
			rr, gg, bb := color.YCbCrToRGB(yy, cb[c], cr[c])
			a := acc[3*j : 3*j+3]
			a[0] += w * float32(rr)
			a[1] += w * float32(gg)
			a[2] += w * float32(bb)
		}
	case *image.Gray:
		o := y*m.Stride + r.x0
		for j, v := range m.Pix[o : o+n] {
			f := w * float32(v)
			a := acc[3*j : 3*j+3]
			a[0] += f
			a[1] += f
			a[2] += f
		}
	default:
		accumulateGeneric(r.img, r.min.X+r.x0, r.min.Y+y, w, acc)
	}
}

// accumulate4 adds w times the RGB of 4-byte pixels p into acc.
func accumulate4(p []uint8, w float32, acc []float32) {
	n := len(acc) / 3
	p = p[:4*n]
	for j := range n {
		q := p[4*j : 4*j+4]
		a := acc[3*j : 3*j+3]
		a[0] += w * float32(q[0])
		a[1] += w * float32(q[1])
		a[2] += w * float32(q[2])
	}
}

// accumulateGeneric is accumulate for any image type, through At.
func accumulateGeneric(img image.Image, x, y int, w float32, acc []float32) {
	w /= 257 // 16-bit to 8-bit scale
	for j := range len(acc) / 3 {
		r, g, b, _ := img.At(x+j, y).RGBA()
		a := acc[3*j : 3*j+3]
		a[0] += w * float32(r)
		a[1] += w * float32(g)
		a[2] += w * float32(b)
	}
}
