// Package phash computes the 64-bit DCT perceptual hash of an image, the
// fingerprint behind near-duplicate search: photos that look alike (the same
// shot re-encoded, resized or slightly retouched) get hashes a few bits
// apart, unrelated photos about 32 bits apart.
//
// The hash is computed on the image's luma (the plane the job's analyzers
// share, analyzer.Image.Luma) shrunk to 32×32 by averaging (ignoring the
// aspect ratio): whole blocks first, then by area. a 2-D DCT-II gives its frequencies, the
// lowest 8×8 of them are kept, and each bit says whether its coefficient is
// above the median of the 63 that are not the DC term. The DC term (mean
// brightness) carries no shape and its bit, the most significant, is always
// 0.
package phash

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/analyzer/kernel"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// ErrMalformed is wrapped by the errors of [Parse] and [Distance] when a
// hash is not 16 hexadecimal digits.
var ErrMalformed = errors.New("phash: malformed hash")

const (
	// side is the side of the grey square the DCT runs on.
	side = 32
	// keep is the side of the block of low frequencies that makes the hash.
	keep = 8
	// workSide is the longer side below which the luma is no longer
	// reduced by whole blocks before the area average to side×side. It is
	// several times side so that the area average, not the block
	// reduction's rounding, decides what reaches the DCT.
	workSide = 128
)

var _ analyzer.Analyzer = (*Analyzer)(nil)

// Analyzer fills Result.PHash. It keeps no state and is safe for
// concurrent use.
type Analyzer struct{}

// New returns a perceptual-hash analyzer.
func New() *Analyzer { return &Analyzer{} }

// Feature returns job.FeaturePHash.
func (a *Analyzer) Feature() job.Feature { return job.FeaturePHash }

// MinSide returns 64: the hash needs only a small copy.
func (a *Analyzer) MinSide() int { return 64 }

// Analyze hashes a small shared copy of img and stores the hash as 16
// lower-case hexadecimal digits in res.PHash.
func (a *Analyzer) Analyze(ctx context.Context, img *analyzer.Image, res *job.Result) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("phash: %w", err)
	}
	// The luma of the decoded image itself, not of a smaller copy: a hash
	// is compared bit by bit, and one made through another copy would
	// carry that copy's rounding. The luma plane is shared with qr and
	// quality, and a quarter the size of the pixels.
	g := img.Luma(analyzer.FullResolution)
	if g.Bounds().Empty() {
		return errors.New("phash: empty image")
	}
	res.PHash = Format(Hash(g))
	return nil
}

// Hash returns the perceptual hash of the grey image m.
func Hash(m *image.Gray) uint64 {
	var g [side * side]float64
	shrinkGrey(reduce(m), &g)

	// Separable orthonormal DCT-II, computing only the kept frequencies:
	// first along rows (32 rows × 8 frequencies), then along columns.
	var rows [side * keep]float64 // rows[y*keep+v]
	for y := range side {
		r := g[y*side : (y+1)*side]
		for v := range keep {
			c := cosTable[v*side : (v+1)*side]
			var s float64
			for x, p := range r {
				s += p * c[x]
			}
			rows[y*keep+v] = s
		}
	}
	var coef [keep * keep]float64 // coef[u*keep+v]
	for u := range keep {
		c := cosTable[u*side : (u+1)*side]
		for v := range keep {
			var s float64
			for y := range side {
				s += rows[y*keep+v] * c[y]
			}
			coef[u*keep+v] = s
		}
	}

	// A flat image has no frequencies but the DC: its others are rounding
	// noise of the sums (about 1e-13), which would set bits at random. Every
	// flat image hashes to 0 instead.
	flat := true
	for _, c := range coef[1:] {
		flat = flat && math.Abs(c) < 1e-6
	}
	if flat {
		return 0
	}
	ac := make([]float64, 0, keep*keep-1)
	ac = append(ac, coef[1:]...)
	slices.Sort(ac)
	median := ac[len(ac)/2] // the 32nd of 63
	var h uint64
	for i := 1; i < keep*keep; i++ {
		if coef[i] > median {
			h |= 1 << (keep*keep - 1 - i)
		}
	}
	return h
}

// cosTable holds the orthonormal DCT-II basis: cosTable[u*side+x] is
// c(u)·cos(π(2x+1)u / 2N) for the kept frequencies u.
var cosTable = func() []float64 {
	t := make([]float64, keep*side)
	for u := range keep {
		cu := math.Sqrt(2.0 / side)
		if u == 0 {
			cu = math.Sqrt(1.0 / side)
		}
		for x := range side {
			t[u*side+x] = cu * math.Cos(math.Pi*float64(2*x+1)*float64(u)/(2*side))
		}
	}
	return t
}()

// reduce returns m shrunk by a whole factor k, each pixel the rounded mean
// of a k×k block (edge rows and columns that do not fill a block are
// dropped): the largest k that leaves at least the copy a workSide-long fit
// of m would be along both sides (so a very long, thin image keeps its thin
// side, and k never exceeds it), and m itself when that is below 2.
func reduce(m *image.Gray) *image.Gray {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	tw, th := workSide, max(1, (h*workSide+w/2)/max(w, 1))
	if h > w {
		tw, th = max(1, (w*workSide+h/2)/h), workSide
	}
	// An image that would want a larger block than the kernel takes is
	// averaged the rest of the way by shrinkGrey.
	k := min(w/tw, h/th, kernel.MaxGrayBox)
	if k < 2 {
		return m
	}
	ow, oh := w/k, h/k
	out := image.NewGray(image.Rect(0, 0, ow, oh))
	kernel.BoxReduceGray(out.Pix, out.Stride, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, ow, oh, k)
	return out
}

// shrinkGrey area-averages m (0..255) into the side×side grid g, each cell
// the mean of the source area it covers.
func shrinkGrey(m *image.Gray, g *[side * side]float64) {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	xs, ys := areaWeights(w), areaWeights(h)
	// Horizontal pass: every source row into side columns.
	tmp := make([]float64, h*side)
	for y := range h {
		row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
		t := tmp[y*side : (y+1)*side]
		for i, sp := range xs {
			var s float64
			for j, wt := range sp.w {
				s += float64(row[sp.first+j]) * wt
			}
			t[i] = s
		}
	}
	// Vertical pass.
	for i, sp := range ys {
		for x := range side {
			var s float64
			for j, wt := range sp.w {
				s += tmp[(sp.first+j)*side+x] * wt
			}
			g[i*side+x] = s
		}
	}
}

// span is the run of source pixels one output cell averages, with each
// pixel's weight (the weights sum to 1).
type span struct {
	first int
	w     []float64
}

// areaWeights maps n source pixels onto side cells by area coverage.
func areaWeights(n int) []span {
	spans := make([]span, side)
	scale := float64(n) / side
	for i := range spans {
		lo, hi := float64(i)*scale, float64(i+1)*scale
		first := int(lo)
		last := min(int(math.Ceil(hi)), n) // exclusive
		sp := span{first: first, w: make([]float64, 0, last-first)}
		for x := first; x < last; x++ {
			sp.w = append(sp.w, (min(hi, float64(x+1))-max(lo, float64(x)))/scale)
		}
		spans[i] = sp
	}
	return spans
}

// Format writes h as 16 lower-case hexadecimal digits.
func Format(h uint64) string { return fmt.Sprintf("%016x", h) }

// Parse reads a hash written by [Format]: exactly 16 hexadecimal digits
// (either case).
func Parse(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("%w: %q is not 16 hex digits", ErrMalformed, s)
	}
	h, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not 16 hex digits", ErrMalformed, s)
	}
	return h, nil
}

// Distance returns the Hamming distance between two hashes written by
// [Format]: the number of differing bits, 0 (identical) to 64.
func Distance(a, b string) (int, error) {
	x, err := Parse(a)
	if err != nil {
		return 0, err
	}
	y, err := Parse(b)
	if err != nil {
		return 0, err
	}
	return bits.OnesCount64(x ^ y), nil
}
