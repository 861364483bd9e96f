// Package analyzer runs the analyses a job asks for over one decoded image.
//
// Each analysis is an Analyzer in its own sub-package (classify, qr, exif,
// faces, colors, quality, phash, thumbnail). The worker decodes an image once,
// at the smallest size every requested analyzer can work with, and hands all
// of them the same *Image; analyzers that want a smaller working copy ask for
// one with Fit, which computes each size once and shares it.
package analyzer

import (
	"context"
	"image"
	"sync"
	"sync/atomic"

	"golang.org/x/image/draw"

	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// Resolution needs, for MinSide.
const (
	// FullResolution asks for the image decoded at its stored size.
	FullResolution = 0
	// NoPixels means the analyzer reads only the encoded bytes.
	NoPixels = -1
)

// Analyzer computes one feature of an image.
//
// Analyze writes its answer into its own field of res and nothing else; it
// must honour ctx (the pipeline gives each analyzer its own deadline) and
// must not modify img's pixels. An Analyzer need not be safe for concurrent
// use: each worker owns its own set.
type Analyzer interface {
	// Feature names the feature this analyzer answers.
	Feature() job.Feature
	// MinSide is the smallest shorter side of the decoded image the analyzer
	// can work with: a positive number of pixels, FullResolution, or NoPixels.
	MinSide() int
	Analyze(ctx context.Context, img *Image, res *job.Result) error
}

// Image is one decoded image shared by the analyzers of a job.
type Image struct {
	// ID is the image's id; Bytes its original encoded bytes.
	ID    string
	Bytes []byte
	// Header is what the header said: format, stored size, orientation.
	Header imagedata.Header
	// Pixels is the decoded image in display orientation. It may be smaller
	// than the display size when the decoder scaled it (see Scale).
	Pixels image.Image

	mu   sync.Mutex
	fits map[int]*fitEntry
}

type fitEntry struct {
	once sync.Once
	img  *image.RGBA
	done atomic.Bool
}

// ready returns the copy once it is made, nil before.
func (e *fitEntry) ready() *image.RGBA {
	if !e.done.Load() {
		return nil
	}
	return e.img
}

// NewImage wraps a decoded image.
func NewImage(id string, b []byte, dec *imagedata.Image) *Image {
	return &Image{ID: id, Bytes: b, Header: dec.Header, Pixels: dec.Image}
}

// DisplaySize is the image's full size after orientation, whatever size it
// was decoded at. Analyzers report positions in these coordinates.
func (im *Image) DisplaySize() (w, h int) { return im.Header.DisplaySize() }

// Scale is the factor from Pixels coordinates to display coordinates
// (1 when decoded at full size, 8 for a 1/8 DCT-scaled JPEG).
func (im *Image) Scale() float64 {
	w, _ := im.DisplaySize()
	pw := im.Pixels.Bounds().Dx()
	if pw == 0 {
		return 1
	}
	return float64(w) / float64(pw)
}

// Fit returns a copy of Pixels whose longer side is at most maxSide, scaled
// with an area-averaging filter; the same copy is shared by every caller
// asking for the same size, so callers must not modify it. When Pixels is
// already small enough Fit returns it converted to RGBA (still shared).
func (im *Image) Fit(maxSide int) *image.RGBA {
	im.mu.Lock()
	if im.fits == nil {
		im.fits = map[int]*fitEntry{}
	}
	e, ok := im.fits[maxSide]
	if !ok {
		e = &fitEntry{}
		im.fits[maxSide] = e
	}
	im.mu.Unlock()
	e.once.Do(func() {
		e.img = fit(im.source(maxSide), maxSide)
		e.done.Store(true)
	})
	return e.img
}

// source picks what to shrink for Fit(maxSide): the smallest copy already
// made that is still at least twice as large (an area average of an area
// average loses nothing visible at that ratio, and reads far fewer pixels),
// else the decoded image itself.
func (im *Image) source(maxSide int) image.Image {
	im.mu.Lock()
	defer im.mu.Unlock()
	var best *image.RGBA
	for _, e := range im.fits {
		c := e.ready()
		if c == nil {
			continue
		}
		side := max(c.Bounds().Dx(), c.Bounds().Dy())
		if side >= 2*maxSide && (best == nil || side < max(best.Bounds().Dx(), best.Bounds().Dy())) {
			best = c
		}
	}
	if best == nil {
		return im.Pixels
	}
	return best
}

func fit(src image.Image, maxSide int) *image.RGBA {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if maxSide > 0 && (w > maxSide || h > maxSide) {
		if w >= h {
			w, h = maxSide, max(1, (h*maxSide+w/2)/w)
		} else {
			w, h = max(1, (w*maxSide+h/2)/h), maxSide
		}
	}
	rgba := toRGBA(src)
	if w == b.Dx() && h == b.Dy() {
		return rgba
	}
	// Average k×k blocks first (an area filter, so no aliasing), then finish
	// the last factor below 2 with bilinear interpolation.
	if k := min(rgba.Bounds().Dx()/w, rgba.Bounds().Dy()/h); k >= 2 {
		rgba = boxReduce(rgba, k)
	}
	if rgba.Bounds().Dx() == w && rgba.Bounds().Dy() == h {
		return rgba
	}
	return areaResize(rgba, w, h)
}

// span is the source range one output pixel covers and each source pixel's
// share of it.
type span struct {
	first   int
	weights []float32
}

// areaSpans maps n source pixels onto m ≤ n output pixels, each output
// pixel the overlap-weighted mean of the source pixels it covers.
func areaSpans(n, m int) []span {
	scale := float64(n) / float64(m)
	out := make([]span, m)
	for i := range out {
		start, end := float64(i)*scale, float64(i+1)*scale
		first := int(start)
		last := min(int(end-1e-9), n-1)
		ws := make([]float32, last-first+1)
		for j := first; j <= last; j++ {
			lo, hi := max(start, float64(j)), min(end, float64(j+1))
			ws[j-first] = float32((hi - lo) / scale)
		}
		out[i] = span{first, ws}
	}
	return out
}

// areaResize shrinks src to w×h with a separable area filter (every source
// pixel counts in proportion to its overlap), for factors below about 2.
// Weights are 16-bit fixed point; each source row is filtered horizontally
// once and added into the output rows it overlaps.
func areaResize(src *image.RGBA, w, h int) *image.RGBA {
	sw, sh := src.Bounds().Dx(), src.Bounds().Dy()
	xs, ys := areaSpans(sw, w), areaSpans(sh, h)
	// Flatten the horizontal spans: for output x, taps tapStart[x]..tapStart[x+1].
	tapStart := make([]int, w+1)
	var tapSrc []int
	var tapW []uint32
	for x, sp := range xs {
		tapStart[x] = len(tapSrc)
		for k, wt := range sp.weights {
			tapSrc = append(tapSrc, (sp.first+k)*4)
			tapW = append(tapW, uint32(wt*65536+0.5))
		}
	}
	tapStart[w] = len(tapSrc)
	// rowsOf[j] lists the output rows source row j feeds, with weights.
	type feed struct {
		oy int
		w  uint32
	}
	rowsOf := make([][]feed, sh)
	for oy, sp := range ys {
		for k, wt := range sp.weights {
			rowsOf[sp.first+k] = append(rowsOf[sp.first+k], feed{oy, uint32(wt*65536 + 0.5)})
		}
	}
	lastSrc := make([]int, h)
	for oy, sp := range ys {
		lastSrc[oy] = sp.first + len(sp.weights) - 1
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	row := make([]uint32, w*4)   // one source row filtered horizontally, 16.16 fixed point >> 8
	acc := make([]uint64, w*4*2) // two output rows in flight
	flushed := 0
	for j := 0; j < sh; j++ {
		if len(rowsOf[j]) == 0 {
			continue
		}
		srow := src.Pix[j*src.Stride : j*src.Stride+sw*4]
		for x := 0; x < w; x++ {
			var r, g, b, a uint32
			for t := tapStart[x]; t < tapStart[x+1]; t++ {
				o, wt := tapSrc[t], tapW[t]
				r += wt * uint32(srow[o])
				g += wt * uint32(srow[o+1])
				b += wt * uint32(srow[o+2])
				a += wt * uint32(srow[o+3])
			}
			row[x*4], row[x*4+1], row[x*4+2], row[x*4+3] = r>>8, g>>8, b>>8, a>>8
		}
		for _, f := range rowsOf[j] {
			slot := acc[(f.oy%2)*w*4 : (f.oy%2+1)*w*4]
			for i, v := range row {
				slot[i] += uint64(v) * uint64(f.w)
			}
		}
		// Output rows whose last source row this was are complete.
		for ; flushed < h && lastSrc[flushed] <= j; flushed++ {
			slot := acc[(flushed%2)*w*4 : (flushed%2+1)*w*4]
			out := dst.Pix[flushed*dst.Stride : flushed*dst.Stride+w*4]
			for i, v := range slot {
				out[i] = uint8(min((v+(1<<23))>>24, 255))
			}
			clear(slot)
		}
	}
	return dst
}

// toRGBA returns src as an *image.RGBA with its origin at (0,0), converting
// only when it is not one already.
func toRGBA(src image.Image) *image.RGBA {
	b := src.Bounds()
	if rgba, ok := src.(*image.RGBA); ok && b.Min == (image.Point{}) {
		return rgba
	}
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	return dst
}

// boxReduce shrinks src by the integer factor k, each output pixel the mean
// of a k×k block (edge rows and columns that do not fill a block are dropped).
func boxReduce(src *image.RGBA, k int) *image.RGBA {
	w, h := src.Bounds().Dx()/k, src.Bounds().Dy()/k
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	acc := make([]uint32, w*4)
	n := uint32(k * k)
	for y := 0; y < h; y++ {
		clear(acc)
		for dy := 0; dy < k; dy++ {
			row := src.Pix[(y*k+dy)*src.Stride:]
			for x := 0; x < w; x++ {
				a := acc[x*4 : x*4+4 : x*4+4]
				p := row[x*k*4 : (x*k+k)*4]
				for j := 0; j < len(p); j += 4 {
					a[0] += uint32(p[j])
					a[1] += uint32(p[j+1])
					a[2] += uint32(p[j+2])
					a[3] += uint32(p[j+3])
				}
			}
		}
		out := dst.Pix[y*dst.Stride:]
		for i, v := range acc {
			out[i] = uint8((v + n/2) / n)
		}
	}
	return dst
}
