// Package analyzer runs the analyses a job asks for over one decoded image.
//
// Each analysis is an Analyzer in its own sub-package (classify, qr, exif,
// faces, colors, quality, phash, thumbnail). The worker decodes an image once,
// at the smallest size every requested analyzer can work with, and hands all
// of them the same *Image; analyzers that want a smaller working copy ask for
// one with Fit, which computes each size once and shares it. A job's
// analyzers run concurrently (see Pipeline).
package analyzer

import (
	"context"
	"image"
	"sync"

	"golang.org/x/image/draw"

	"github.com/glimpse-oss/glimpse/internal/analyzer/kernel"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// Sizes of the working copies analyzers share: an analyzer that can work on
// one of them asks Fit for it rather than for a size of its own, so that a
// job resamples the image once per size, not once per analyzer.
const (
	// SmallSide is the longer side of the small copy: faces runs on it, and
	// labels, thumbnails, colours and hashes are made from it.
	SmallSide = 640
	// LargeSide is the longer side of the large luma plane (Luma): quality
	// measures it and qr reads it before the full image.
	LargeSide = 1000
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
// Analyze writes its answer into its own field of res and nothing else (the
// analyzers of one job run concurrently, on the same res and img); it must
// honour ctx (the pipeline gives each analyzer its own deadline) and must
// not modify img's pixels. An Analyzer need not be safe for concurrent use:
// each worker owns its own set, and a job runs each analyzer once.
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
	// Buffers, when set before the analyzers run, provides the buffers of
	// the working copies Fit and Luma make; Release gives them back, with
	// the decoded pixels' own.
	Buffers *imagedata.Buffers

	dec   *imagedata.Image
	mu    sync.Mutex
	fits  map[fitKey]*shared[*image.RGBA]
	lumas map[int]*shared[*image.Gray]
}

// shared is a value made once, by the first caller that needs it, and
// handed to every caller after (a working copy or a luma plane).
type shared[V any] struct {
	once sync.Once
	v    V
}

// entry returns the entry of k in *m, adding it on first use; mu guards m.
func entry[K comparable, V any](mu *sync.Mutex, m *map[K]*shared[V], k K) *shared[V] {
	mu.Lock()
	defer mu.Unlock()
	if *m == nil {
		*m = map[K]*shared[V]{}
	}
	e, ok := (*m)[k]
	if !ok {
		e = &shared[V]{}
		(*m)[k] = e
	}
	return e
}

// NewImage wraps a decoded image.
func NewImage(id string, b []byte, dec *imagedata.Image) *Image {
	return &Image{ID: id, Bytes: b, Header: dec.Header, Pixels: dec.Image, dec: dec}
}

// Release gives the buffers of the working copies back to Buffers, and the
// decoded pixels' to theirs (imagedata.Image.Release), once the analyzers
// are done: nothing may use the image afterwards.
func (im *Image) Release() {
	im.mu.Lock()
	defer im.mu.Unlock()
	pixels := im.Pixels
	var own []byte
	if m, ok := pixels.(*image.RGBA); ok {
		own = m.Pix
	}
	for _, e := range im.fits {
		if e.v != nil && !sameBuffer(e.v.Pix, own) {
			im.Buffers.Put(e.v.Pix)
		}
	}
	for _, e := range im.lumas {
		if e.v != nil {
			im.Buffers.Put(e.v.Pix)
		}
	}
	im.fits, im.lumas, im.Pixels = nil, nil, nil
	if im.dec != nil {
		im.dec.Release()
		im.dec = nil
	}
}

// sameBuffer reports whether a and b share their first byte.
func sameBuffer(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
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
// already small enough Fit returns it converted to RGBA (still shared, and
// Pixels itself when it is RGBA already). Fit is safe for concurrent use.
//
// Copies at most half SmallSide (thumbnails, colours) are made from the
// SmallSide copy when Pixels is larger, which reads far fewer pixels; an
// area average of an area average at a ratio of two or more takes nothing
// visible from the result. Which copy is made from what depends on the
// sizes alone, not on which copies other analyzers asked for first, so that
// analyzers running concurrently see the same pixels every time.
func (im *Image) Fit(maxSide int) *image.RGBA {
	b := im.Pixels.Bounds()
	return im.fit(maxSide, 2*maxSide <= SmallSide && max(b.Dx(), b.Dy()) > SmallSide)
}

type fitKey struct {
	side  int  // longer side; 0 for Pixels as they are
	small bool // made from the SmallSide copy
}

func (im *Image) fit(maxSide int, fromSmall bool) *image.RGBA {
	b := im.Pixels.Bounds()
	if maxSide <= 0 || maxSide >= max(b.Dx(), b.Dy()) {
		maxSide, fromSmall = 0, false // every size at least as large as Pixels is Pixels
	}
	e := entry(&im.mu, &im.fits, fitKey{maxSide, fromSmall})
	e.once.Do(func() {
		switch {
		case maxSide == 0:
			e.v = toRGBA(im.Pixels, im.Buffers)
		case fromSmall:
			w, h := fitSize(b.Dx(), b.Dy(), maxSide)
			e.v = fit(im.fit(SmallSide, false), w, h, im.Buffers)
		default:
			w, h := fitSize(b.Dx(), b.Dy(), maxSide)
			e.v = fit(im.fit(0, false), w, h, im.Buffers)
		}
	})
	return e.v
}

// Luma returns the image's luma at the size Fit(maxSide) has, one byte per
// pixel (stride = width), made once per size and shared like the copies
// Fit returns: callers must not modify it. The luma is Rec. 709's in 8-bit
// fixed point, (54R + 183G + 19B) / 256, of the pixels composited over
// white, so that a transparent area reads as paper rather than ink. qr
// reads it, quality measures it and phash hashes it: one pass over the
// pixels for all three instead of one each. Smaller sizes are the full
// plane area-averaged down as Fit averages RGBA (the luma is linear in
// the pixels, so this differs from the luma of Fit(maxSide) by rounding
// only), which reads a quarter of the bytes and makes no RGBA copy.
func (im *Image) Luma(maxSide int) *image.Gray {
	b := im.Pixels.Bounds()
	if maxSide <= 0 || maxSide >= max(b.Dx(), b.Dy()) {
		maxSide = 0
	}
	e := entry(&im.mu, &im.lumas, maxSide)
	e.once.Do(func() {
		if maxSide == 0 {
			e.v = lumaOf(im.Fit(0), im.Buffers)
			return
		}
		w, h := fitSize(b.Dx(), b.Dy(), maxSide)
		if e.v = fitGray(im.Luma(0), w, h, im.Buffers); e.v == nil {
			e.v = lumaOf(im.Fit(maxSide), im.Buffers)
		}
	})
	return e.v
}

// fitGray shrinks the grey plane src (origin (0,0), stride = width) to
// w×h as fit shrinks RGBA: k×k block means first, then an area filter
// for the last factor, below 2. It returns nil where areaResizeGray does.
func fitGray(src *image.Gray, w, h int, bufs *imagedata.Buffers) *image.Gray {
	sw, sh := src.Bounds().Dx(), src.Bounds().Dy()
	w, h = min(w, sw), min(h, sh)
	if k := min(sw/w, sh/h, kernel.MaxGrayBox); k >= 2 {
		reduced := bufs.Gray(image.Rect(0, 0, sw/k, sh/k)) // every pixel is written
		kernel.BoxReduceGray(reduced.Pix, reduced.Stride, src.Pix, src.Stride, sw/k, sh/k, k)
		if sw/k == w && sh/k == h {
			return reduced
		}
		out := fitGray(reduced, w, h, bufs)
		bufs.Put(reduced.Pix)
		return out
	}
	if sw == w && sh == h {
		// Never so for Luma's call (fitSize shrinks the longer side) nor
		// for the call after a box reduction (handled above): returning
		// src would hand one buffer to two owners, each releasing it.
		return src
	}
	return areaResizeGray(src, w, h, bufs)
}

// LumaOf returns the luma of m as Luma computes it.
func LumaOf(m *image.RGBA) *image.Gray { return lumaOf(m, nil) }

// lumaOf is LumaOf into a buffer from bufs.
func lumaOf(m *image.RGBA, bufs *imagedata.Buffers) *image.Gray {
	r := m.Bounds()
	g := bufs.Gray(r) // every pixel is written
	for y := range r.Dy() {
		kernel.Luma(g.Pix[y*g.Stride:y*g.Stride+r.Dx()], m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):])
	}
	return g
}

// fitSize is the size of a w×h image scaled so that its longer side is
// maxSide, its aspect kept.
func fitSize(w, h, maxSide int) (int, int) {
	if w >= h {
		return maxSide, max(1, (h*maxSide+w/2)/w)
	}
	return max(1, (w*maxSide+h/2)/h), maxSide
}

// fit shrinks src, an RGBA image with its origin at (0,0), to w×h: it
// averages k×k blocks first, then takes the last factor, below 2, with an
// area filter too, so nothing aliases.
//
// Its result, and its intermediate copy, take their buffers from bufs
// (which may be nil); the intermediate goes back there.
func fit(src *image.RGBA, w, h int, bufs *imagedata.Buffers) *image.RGBA {
	w, h = min(w, src.Bounds().Dx()), min(h, src.Bounds().Dy())
	if k := min(src.Bounds().Dx()/w, src.Bounds().Dy()/h); k >= 2 {
		reduced := boxReduce(src, k, bufs)
		if reduced.Bounds().Dx() == w && reduced.Bounds().Dy() == h {
			return reduced
		}
		out := areaResize(reduced, w, h, bufs)
		bufs.Put(reduced.Pix)
		return out
	}
	if src.Bounds().Dx() == w && src.Bounds().Dy() == h {
		return src
	}
	return areaResize(src, w, h, bufs)
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
// pixel counts in proportion to its overlap), for factors below 2 (fit
// takes the rest with boxReduce first), where an output pixel covers at
// most three source pixels along each axis; beyond that it hands over to
// areaResizeAny. Weights are fixed point and sum exactly to one along each
// axis, so a flat image stays flat.
//
// It filters vertically first, each output row the weighted sum of its
// source rows, then horizontally, in fixed point (kernel.ResizeRow).
func areaResize(src *image.RGBA, w, h int, bufs *imagedata.Buffers) *image.RGBA {
	sw, sh := src.Bounds().Dx(), src.Bounds().Dy()
	xs, ys := areaSpans(sw, w), areaSpans(sh, h)
	if maxTaps(xs) > 3 || maxTaps(ys) > 3 {
		return areaResizeAny(src, w, h)
	}
	dst := bufs.RGBA(image.Rect(0, 0, w, h)) // every row is written
	resizeRows(src.Pix, src.Stride, sw, dst.Pix, dst.Stride, xs, ys, false)
	return dst
}

// areaResizeGray is areaResize for grey planes. It returns nil when an
// output pixel would cover more than three source pixels along an axis,
// which fitGray's box reduction should leave to no size fitSize makes;
// Luma then takes the luma of Fit's copy rather than a wrong plane.
func areaResizeGray(src *image.Gray, w, h int, bufs *imagedata.Buffers) *image.Gray {
	sw := src.Bounds().Dx()
	xs, ys := areaSpans(sw, w), areaSpans(src.Bounds().Dy(), h)
	if maxTaps(xs) > 3 || maxTaps(ys) > 3 {
		return nil
	}
	dst := bufs.Gray(image.Rect(0, 0, w, h)) // every row is written
	resizeRows(src.Pix, src.Stride, sw, dst.Pix, dst.Stride, xs, ys, true)
	return dst
}

// resizeRows runs kernel.ResizeRow over every output row of dst, the
// spans xs and ys (at most three taps each) mapping it onto src, sw
// pixels wide.
func resizeRows(src []uint8, srcStride, sw int, dst []uint8, dstStride int, xs, ys []span, gray bool) {
	ch, w := 4, len(xs)
	if gray {
		ch = 1
	}
	// Horizontal taps; unused taps read the first pixel with weight 0.
	row := kernel.ResizeRow{Idx: make([]int32, 3*w), Wt: make([]uint32, 3*w), Gray: gray}
	for x, sp := range xs {
		ws := fixedWeights(sp.weights, 1<<15)
		for k := range 3 {
			row.Idx[3*x+k] = int32(sp.first)
			if k < len(ws) {
				row.Idx[3*x+k] += int32(k)
				row.Wt[3*x+k] = ws[k]
			}
		}
	}
	for oy, sp := range ys {
		ws := fixedWeights(sp.weights, 1<<8)
		for k := range 3 {
			j := sp.first
			row.W[k] = 0
			if k < len(ws) {
				j += k
				row.W[k] = ws[k]
			}
			row.Rows[k] = src[j*srcStride : j*srcStride+ch*sw]
		}
		row.Out = dst[oy*dstStride : oy*dstStride+ch*w]
		row.Filter()
	}
}

func maxTaps(spans []span) int {
	n := 0
	for _, sp := range spans {
		n = max(n, len(sp.weights))
	}
	return n
}

// fixedWeights rounds weights (which sum to 1) to integers summing exactly
// to one, the largest taking up the rounding error.
func fixedWeights(weights []float32, one uint32) []uint32 {
	out := make([]uint32, len(weights))
	var sum uint32
	big := 0
	for i, wt := range weights {
		out[i] = uint32(float64(wt)*float64(one) + 0.5)
		sum += out[i]
		if wt > weights[big] {
			big = i
		}
	}
	out[big] += one - sum
	return out
}

// areaResizeAny is areaResize for any factor: it handles output pixels that
// cover more than three source pixels, which areaResize does not.
// Weights are 16-bit fixed point; each source row is filtered horizontally
// once and added into the output rows it overlaps.
func areaResizeAny(src *image.RGBA, w, h int) *image.RGBA {
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
func toRGBA(src image.Image, bufs *imagedata.Buffers) *image.RGBA {
	b := src.Bounds()
	if rgba, ok := src.(*image.RGBA); ok && b.Min == (image.Point{}) {
		return rgba
	}
	dst := bufs.RGBA(image.Rect(0, 0, b.Dx(), b.Dy())) // draw.Src writes every pixel
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	return dst
}

// boxReduce shrinks src by the integer factor k, each output pixel the mean
// of a k×k block (edge rows and columns that do not fill a block are
// dropped), rounded to nearest (kernel.BoxReduce).
func boxReduce(src *image.RGBA, k int, bufs *imagedata.Buffers) *image.RGBA {
	if k > 257 {
		return boxReduceAny(src, k)
	}
	w, h := src.Bounds().Dx()/k, src.Bounds().Dy()/k
	dst := bufs.RGBA(image.Rect(0, 0, w, h)) // every pixel is written
	kernel.BoxReduce(dst.Pix, dst.Stride, src.Pix, src.Stride, w, h, k)
	return dst
}

// boxReduceAny is boxReduce for any k, one channel at a time.
func boxReduceAny(src *image.RGBA, k int) *image.RGBA {
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
