// Package colors summarises an image's colour: its dominant colours, mean
// brightness and saturation, and a luma histogram.
//
// Everything is measured on a shared copy whose longer side is at most 100
// pixels (10,000 pixels at most), which is plenty for colour statistics and
// keeps the analysis well under a millisecond.
//
// Dominant colours come from k-means in RGB with k-means++ seeding from a
// fixed seed, so the same image always gives the same answer. It runs on
// the distinct colours at 5 bits per channel (each at the exact mean of its
// pixels, weighted by their count), which is about 10× faster than running
// on every pixel. Clusters whose
// centres end up nearly identical are merged, and colours covering less than
// 1% of the image are left out.
package colors

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/job"
)

const (
	// workSide is the longer side of the copy the colours are measured on.
	workSide = 100
	// k is the number of k-means clusters before merging.
	k = 5
	// maxIter bounds the Lloyd iterations; they usually settle in under 10.
	maxIter = 30
	// mergeDist is the RGB distance (0..255 per channel) under which two
	// cluster centres count as the same colour.
	mergeDist = 24
	// minFraction is the smallest share a reported colour covers.
	minFraction = 0.01
	// minAlpha is the alpha (0..255) below which a pixel is transparent and
	// left out of every measure.
	minAlpha = 8
	// bins is the number of luma histogram bins.
	bins = 16
)

var _ analyzer.Analyzer = (*Analyzer)(nil)

// Analyzer fills Result.Colors. It is not safe for concurrent use: it
// reuses its scratch buffers from one image to the next.
type Analyzer struct {
	px      []rgb   // opaque pixels, un-premultiplied
	slot    []int32 // quantised colour → index in entries + 1; all 0 between calls
	entries []entry // distinct quantised colours of px
	assign  []uint8 // cluster of each entry
}

// rgb is one colour, each channel in 0..255.
type rgb [3]float32

// New returns a colour analyzer.
func New() *Analyzer { return &Analyzer{} }

// Feature returns job.FeatureColors.
func (a *Analyzer) Feature() job.Feature { return job.FeatureColors }

// MinSide returns 64: colour statistics need only a small copy.
func (a *Analyzer) MinSide() int { return 64 }

// Analyze measures a small shared copy of img and stores the summary in
// res.Colors.
func (a *Analyzer) Analyze(ctx context.Context, img *analyzer.Image, res *job.Result) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("colors: %w", err)
	}
	m := img.Fit(workSide)
	if m.Bounds().Empty() {
		return errors.New("colors: empty image")
	}
	c := a.summarize(m)
	res.Colors = &c
	return nil
}

// summarize computes the colour summary of m.
func (a *Analyzer) summarize(m *image.RGBA) job.Colors {
	a.collect(m)
	out := job.Colors{Histogram: make([]float64, bins)}
	var bright, sat float64
	for _, p := range a.px {
		y := luma(p)
		bright += y
		out.Histogram[min(int(y*bins), bins-1)]++
		hi := max(p[0], p[1], p[2])
		if hi > 0 {
			sat += float64(hi-min(p[0], p[1], p[2])) / float64(hi)
		}
	}
	n := float64(len(a.px))
	out.Brightness = bright / n
	out.Saturation = sat / n
	for i := range out.Histogram {
		out.Histogram[i] /= n
	}
	out.Dominant = a.dominant()
	return out
}

// collect gathers m's opaque pixels, un-premultiplied, into a.px. When the
// whole image is transparent every pixel is taken as it is stored.
func (a *Analyzer) collect(m *image.RGBA) {
	b := m.Bounds()
	a.px = a.px[:0]
	for _, opaqueOnly := range []bool{true, false} {
		for y := range b.Dy() {
			row := m.Pix[y*m.Stride : y*m.Stride+4*b.Dx()]
			for i := 0; i < len(row); i += 4 {
				r, g, bl, al := row[i], row[i+1], row[i+2], row[i+3]
				switch {
				case al == 255 || !opaqueOnly:
					a.px = append(a.px, rgb{float32(r), float32(g), float32(bl)})
				case al >= minAlpha:
					s := 255 / float32(al)
					a.px = append(a.px, rgb{float32(r) * s, float32(g) * s, float32(bl) * s})
				}
			}
		}
		if len(a.px) > 0 {
			return
		}
	}
}

// luma is the Rec. 709 luma of p in [0,1].
func luma(p rgb) float64 {
	return (0.2126*float64(p[0]) + 0.7152*float64(p[1]) + 0.0722*float64(p[2])) / 255
}

// cluster is one k-means cluster: its centre and how many pixels it holds.
type cluster struct {
	c rgb
	n int
}

// entry is one distinct quantised colour: the mean of its pixels and how
// many there are.
type entry struct {
	c rgb
	n int
}

// quantBits is the precision per channel of the colours k-means groups.
// Pixels that agree on these bits are clustered as one weighted entry (a
// photo's 10,000 pixels fall into about 2,000), with their exact mean.
const quantBits = 5

// distinct groups a.px by quantised colour into a.entries.
func (a *Analyzer) distinct() {
	if a.slot == nil {
		a.slot = make([]int32, 1<<(3*quantBits))
	}
	type acc struct {
		sum [3]float32
		n   int
	}
	sums := make([]acc, 0, 1024)
	keys := make([]int, 0, 1024)
	for _, p := range a.px {
		key := int(p[0])>>(8-quantBits)<<(2*quantBits) | int(p[1])>>(8-quantBits)<<quantBits | int(p[2])>>(8-quantBits)
		i := a.slot[key] - 1
		if i < 0 {
			i = int32(len(sums))
			a.slot[key] = i + 1
			sums = append(sums, acc{})
			keys = append(keys, key)
		}
		e := &sums[i]
		e.sum[0] += p[0]
		e.sum[1] += p[1]
		e.sum[2] += p[2]
		e.n++
	}
	a.entries = a.entries[:0]
	for i, e := range sums {
		n := float32(e.n)
		a.entries = append(a.entries, entry{c: rgb{e.sum[0] / n, e.sum[1] / n, e.sum[2] / n}, n: e.n})
		a.slot[keys[i]] = 0 // leave the table clear for the next image
	}
}

// dominant clusters a.px with k-means and returns the clusters as swatches,
// largest first.
func (a *Analyzer) dominant() []job.Swatch {
	a.distinct()
	es := a.entries
	cs := seed(es)
	a.assign = slices.Grow(a.assign[:0], len(es))[:len(es)]
	for i := range a.assign {
		a.assign[i] = 255
	}
	for range maxIter {
		changed := false
		var sum [k][3]float64
		var cnt [k]int
		for i, e := range es {
			best, bestD := 0, float32(math.MaxFloat32)
			for j := range cs {
				if d := dist2(e.c, cs[j].c); d < bestD {
					best, bestD = j, d
				}
			}
			if a.assign[i] != uint8(best) {
				a.assign[i] = uint8(best)
				changed = true
			}
			for ch := range 3 {
				sum[best][ch] += float64(e.c[ch]) * float64(e.n)
			}
			cnt[best] += e.n
		}
		for j := range cs {
			cs[j].n = cnt[j]
			if cnt[j] > 0 {
				for ch := range 3 {
					cs[j].c[ch] = float32(sum[j][ch] / float64(cnt[j]))
				}
			}
		}
		if !changed {
			break
		}
	}
	cs = merge(cs)

	total := float64(len(a.px))
	var out []job.Swatch
	for _, c := range cs {
		f := float64(c.n) / total
		if f < minFraction {
			continue
		}
		out = append(out, job.Swatch{Hex: hex(c.c), Fraction: f})
	}
	slices.SortStableFunc(out, func(x, y job.Swatch) int {
		switch {
		case x.Fraction > y.Fraction:
			return -1
		case x.Fraction < y.Fraction:
			return 1
		}
		return 0
	})
	return out
}

// seed picks up to k initial centres among es by k-means++: each new centre
// is drawn with probability proportional to its pixel count times its
// squared distance from the nearest centre so far. The generator has a
// fixed seed, so the result depends on the pixels only. Fewer than k centres
// are returned when the image has fewer distinct colours.
func seed(es []entry) []cluster {
	r := rand.New(rand.NewPCG(0x676c696d, 0x70736521))
	pick := func(weight func(i int) float64) int {
		var total float64
		for i := range es {
			total += weight(i)
		}
		if total == 0 {
			return -1
		}
		target := r.Float64() * total
		for i := range es {
			target -= weight(i)
			if target < 0 {
				return i
			}
		}
		return len(es) - 1
	}
	first := pick(func(i int) float64 { return float64(es[i].n) })
	cs := []cluster{{c: es[first].c}}
	d := make([]float32, len(es))
	for i, e := range es {
		d[i] = dist2(e.c, cs[0].c)
	}
	for len(cs) < k {
		i := pick(func(i int) float64 { return float64(d[i]) * float64(es[i].n) })
		if i < 0 {
			break
		}
		c := es[i].c
		cs = append(cs, cluster{c: c})
		for i, e := range es {
			d[i] = min(d[i], dist2(e.c, c))
		}
	}
	return cs
}

// merge joins clusters whose centres are closer than mergeDist, closest
// pair first, and drops empty ones.
func merge(cs []cluster) []cluster {
	cs = slices.DeleteFunc(cs, func(c cluster) bool { return c.n == 0 })
	for {
		bi, bj, bd := -1, -1, float32(mergeDist*mergeDist)
		for i := range cs {
			for j := i + 1; j < len(cs); j++ {
				if d := dist2(cs[i].c, cs[j].c); d < bd {
					bi, bj, bd = i, j, d
				}
			}
		}
		if bi < 0 {
			return cs
		}
		x, y := cs[bi], cs[bj]
		n := x.n + y.n
		for ch := range 3 {
			x.c[ch] = (x.c[ch]*float32(x.n) + y.c[ch]*float32(y.n)) / float32(n)
		}
		x.n = n
		cs[bi] = x
		cs = slices.Delete(cs, bj, bj+1)
	}
}

// dist2 is the squared RGB distance between p and q.
func dist2(p, q rgb) float32 {
	dr, dg, db := p[0]-q[0], p[1]-q[1], p[2]-q[2]
	return dr*dr + dg*dg + db*db
}

// hex formats c as "#rrggbb".
func hex(c rgb) string {
	ch := func(v float32) int { return int(min(max(math.Round(float64(v)), 0), 255)) }
	return fmt.Sprintf("#%02x%02x%02x", ch(c[0]), ch(c[1]), ch(c[2]))
}
