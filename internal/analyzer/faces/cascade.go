package faces

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	pigo "github.com/esimov/pigo/core"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
)

// classifier evaluates pigo's face cascade: a sequence of binary decision
// trees over pixel-intensity comparisons, each adding its leaf's score and
// rejecting the window as soon as the running score falls to its threshold.
//
// It finds exactly the windows, with exactly the scores, that pigo's own
// RunCascade finds (a test checks this), about three and a half times
// faster: the pixel offsets each node compares depend only on the window
// size, so they are computed once per size rather than for every node of
// every window; the trees run breadth first across a row of windows (see
// scanRow); and the comparisons and rejections take no branches.
type classifier struct {
	trees int
	// codes holds for each tree and node (1 to leafs-1; node 0 is unused)
	// the two points it compares as row and column offsets in 1/256 of the
	// window size: r1, c1, r2, c2.
	codes []int8
	pred  []float32 // leaf scores, leafs per tree
	thr   []float32 // running-score threshold after each tree
	// planes holds the codes again as the vector kernel reads them: per
	// tree, four planes of leafs entries (node 0 unused), r1, c1, r2, c2.
	planes []int8
}

// Every tree of pigo's face cascade has depth 6: six comparisons from the
// root to one of 64 leafs, nodes numbered 1 to 63 and leafs 64 to 127.
const (
	depth = 6
	leafs = 1 << depth
)

// parseCascade reads a cascade in pigo's binary format: 8 bytes we skip,
// the tree depth and the number of trees (little-endian uint32), then for
// each tree its node codes (4 bytes for each of the 2^depth-1 nodes), its
// 2^depth leaf scores and its threshold (little-endian float32).
func parseCascade(b []byte) (*classifier, error) {
	if len(b) < 16 {
		return nil, errors.New("faces: cascade too short")
	}
	d := binary.LittleEndian.Uint32(b[8:])
	trees := int(binary.LittleEndian.Uint32(b[12:]))
	if d != depth || trees < 1 || trees > 1<<16 {
		return nil, fmt.Errorf("faces: cascade has %d trees of depth %d; want depth %d", trees, d, depth)
	}
	per := 4*(leafs-1) + 4*leafs + 4
	if len(b) != 16+trees*per {
		return nil, fmt.Errorf("faces: cascade is %d bytes; want %d", len(b), 16+trees*per)
	}
	c := &classifier{
		trees:  trees,
		codes:  make([]int8, trees*4*leafs),
		pred:   make([]float32, trees*leafs),
		thr:    make([]float32, trees),
		planes: make([]int8, trees*4*leafs),
	}
	pos := 16
	for t := range trees {
		for i, v := range b[pos : pos+4*(leafs-1)] {
			c.codes[t*4*leafs+4+i] = int8(v)
			node, k := 1+i/4, i%4
			c.planes[t*4*leafs+k*leafs+node] = int8(v)
		}
		pos += 4 * (leafs - 1)
		for i := range leafs {
			c.pred[t*leafs+i] = math.Float32frombits(binary.LittleEndian.Uint32(b[pos:]))
			pos += 4
		}
		c.thr[t] = math.Float32frombits(binary.LittleEndian.Uint32(b[pos:]))
		pos += 4
	}
	return c, nil
}

// scan returns the windows of pix (w×h, stride w) that the cascade takes
// for faces: those pigo's RunCascade visits with shiftFactor and
// scaleFactor, from minSize to maxSize, in the same order. It checks ctx
// between window sizes.
//
// Where the processor has AVX-512 (and the build has cgo) each size runs in
// a vector kernel that evaluates sixteen windows at once with the same
// arithmetic (cascade_avx512.go), about four times faster; elsewhere it
// runs in Go, row by row (scanRow).
//
// When ctx grants more than one core (analyzer.Cores: faces is its job's
// only analyzer), the sizes are scanned in two parts, the smaller sizes on
// the calling goroutine and the larger on another, each about half the
// windows; the detections come out in the same order either way.
func (c *classifier) scan(ctx context.Context, pix []uint8, w, h, minSize, maxSize int) ([]pigo.Detection, error) {
	var sizes []int
	for size := minSize; size <= maxSize; size = nextSize(size) {
		sizes = append(sizes, size)
	}
	simd := c.newSIMDScan(pix, w, h)
	if analyzer.Cores(ctx) < 2 {
		return c.scanSizes(ctx, simd, pix, w, h, sizes)
	}
	split := halfWindows(sizes, w, h)
	var (
		rest    []pigo.Detection
		restErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		rest, restErr = c.scanSizes(ctx, simd.fork(), pix, w, h, sizes[split:])
	}()
	dets, err := c.scanSizes(ctx, simd, pix, w, h, sizes[:split])
	<-done
	if err == nil {
		err = restErr
	}
	if err != nil {
		return nil, err
	}
	return append(dets, rest...), nil
}

// halfWindows returns how many of sizes, from the first, hold about half
// the windows of all of them in a w×h image.
func halfWindows(sizes []int, w, h int) int {
	windows := make([]int, len(sizes)) // cumulative
	total := 0
	for i, size := range sizes {
		step := max(int(shiftFactor*float64(size)), 1)
		half := size/2 + 1
		if w-half >= half && h-half >= half {
			total += ((w-2*half)/step + 1) * ((h-2*half)/step + 1)
		}
		windows[i] = total
	}
	for i, n := range windows {
		if 2*n >= total {
			return i + 1
		}
	}
	return len(sizes)
}

// scanSizes scans the windows of the given sizes, with the vector kernel
// simd when it is not nil.
func (c *classifier) scanSizes(ctx context.Context, simd *simdScan, pix []uint8, w, h int, sizes []int) ([]pigo.Detection, error) {
	var dets []pigo.Detection
	var offs []int64
	for _, size := range sizes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		step := max(int(shiftFactor*float64(size)), 1)
		half := size/2 + 1
		if simd != nil {
			dets = simd.size(size, step, half, w-half, half, dets)
			continue
		}
		win := c.window(size, w, offs)
		offs = win.offs
		for row := half; row <= h-half; row += step {
			dets = win.scanRow(pix, row, half, w-half, step, dets)
		}
	}
	return dets, nil
}

// useSIMD lets tests run the Go scan on a processor that has the vector
// kernel, to compare the two.
var useSIMD = true

// window is the classifier specialised to one window size in one image: the
// offsets, from the window's centre, of the two pixels each node compares.
// Trees are prepared on first use, as most windows are rejected by the
// first few.
type window struct {
	c     *classifier
	size  int
	dim   int     // image stride
	offs  []int64 // per tree and node: the two offsets, second in the high half
	ready int     // trees whose offsets are in offs

	// Scratch for scanRow: the windows still standing and their scores.
	centres []int32
	scores  []float32
}

func (c *classifier) window(size, dim int, offs []int64) *window {
	n := c.trees * leafs
	if cap(offs) < n {
		offs = make([]int64, n)
	}
	return &window{c: c, size: size, dim: dim, offs: offs[:n]}
}

// prepare computes the offsets of trees up to and including t. pigo
// computes a point as ((256·r + code·size) >> 8)·dim + ((256·c + code·size)
// >> 8); as 256·r is a multiple of 256 that is r·dim + c plus the offset
// ((code·size) >> 8)·dim + ((code·size) >> 8), arithmetic shifts included.
func (w *window) prepare(t int) {
	c := w.c
	for ; w.ready <= t; w.ready++ {
		codes := c.codes[w.ready*4*leafs : (w.ready+1)*4*leafs]
		offs := w.offs[w.ready*leafs : (w.ready+1)*leafs]
		for i := 1; i < leafs; i++ {
			k := codes[4*i : 4*i+4 : 4*i+4]
			o1 := int32((int(k[0])*w.size>>8)*w.dim + (int(k[1]) * w.size >> 8))
			o2 := int32((int(k[2])*w.size>>8)*w.dim + (int(k[3]) * w.size >> 8))
			offs[i] = int64(o2)<<32 | int64(uint32(o1))
		}
	}
}

// scanRow appends to dets the detections among the windows of w's size
// centred on row, at columns first, first+step, … up to last, in pix (an
// image of stride w.dim).
//
// It runs the cascade breadth first: each tree over every window of the row
// still standing, then the next tree over those it kept. A tree is a chain
// of dependent pixel reads, each waiting for the one before; taking one
// tree across many windows gives the processor independent chains to
// overlap, which makes the scan several times faster than finishing one
// window before starting the next. Each window's score is the same sum in
// the same order, so the result is the same.
func (w *window) scanRow(pix []uint8, row, first, last, step int, dets []pigo.Detection) []pigo.Detection {
	if last < first {
		return dets
	}
	c := w.c
	base := row * w.dim
	n := (last-first)/step + 1
	if cap(w.centres) < n {
		w.centres = make([]int32, n)
		w.scores = make([]float32, n)
	}
	centres, scores := w.centres[:n], w.scores[:n]
	for i := range centres {
		centres[i] = int32(base + first + i*step)
		scores[i] = 0
	}
	for t := 0; t < c.trees && n > 0; t++ {
		if t >= w.ready {
			w.prepare(t)
		}
		offs := (*[leafs]int64)(w.offs[t*leafs:])
		pred := (*[leafs]float32)(c.pred[t*leafs:])
		thr := c.thr[t]
		kept := 0
		i := 0
		// Four windows at a time: their chains interleave in the
		// instruction stream.
		for ; i+3 < n; i += 4 {
			c0, c1, c2, c3 := int(centres[i]), int(centres[i+1]), int(centres[i+2]), int(centres[i+3])
			i0, i1, i2, i3 := 1, 1, 1, 1
			i0, i1, i2, i3 = node(pix, c0, offs, i0), node(pix, c1, offs, i1), node(pix, c2, offs, i2), node(pix, c3, offs, i3)
			i0, i1, i2, i3 = node(pix, c0, offs, i0), node(pix, c1, offs, i1), node(pix, c2, offs, i2), node(pix, c3, offs, i3)
			i0, i1, i2, i3 = node(pix, c0, offs, i0), node(pix, c1, offs, i1), node(pix, c2, offs, i2), node(pix, c3, offs, i3)
			i0, i1, i2, i3 = node(pix, c0, offs, i0), node(pix, c1, offs, i1), node(pix, c2, offs, i2), node(pix, c3, offs, i3)
			i0, i1, i2, i3 = node(pix, c0, offs, i0), node(pix, c1, offs, i1), node(pix, c2, offs, i2), node(pix, c3, offs, i3)
			i0, i1, i2, i3 = node(pix, c0, offs, i0), node(pix, c1, offs, i1), node(pix, c2, offs, i2), node(pix, c3, offs, i3)
			q0 := scores[i] + pred[i0&(leafs-1)]
			q1 := scores[i+1] + pred[i1&(leafs-1)]
			q2 := scores[i+2] + pred[i2&(leafs-1)]
			q3 := scores[i+3] + pred[i3&(leafs-1)]
			// Keep a window when q > thr, again without a branch: write
			// it in any case and advance past it by the sign bit of thr-q
			// (never -0 or +0 for q > thr, as distinct floats differ).
			centres[kept], scores[kept] = int32(c0), q0
			kept += int(math.Float32bits(thr-q0) >> 31)
			centres[kept], scores[kept] = int32(c1), q1
			kept += int(math.Float32bits(thr-q1) >> 31)
			centres[kept], scores[kept] = int32(c2), q2
			kept += int(math.Float32bits(thr-q2) >> 31)
			centres[kept], scores[kept] = int32(c3), q3
			kept += int(math.Float32bits(thr-q3) >> 31)
		}
		for ; i < n; i++ {
			c0 := int(centres[i])
			i0 := 1
			for range depth {
				i0 = node(pix, c0, offs, i0)
			}
			q0 := scores[i] + pred[i0&(leafs-1)]
			centres[kept], scores[kept] = int32(c0), q0
			kept += int(math.Float32bits(thr-q0) >> 31)
		}
		n = kept
	}
	for i, centre := range centres[:n] {
		if q := scores[i] - c.thr[c.trees-1]; q > 0 {
			dets = append(dets, pigo.Detection{Row: row, Col: int(centre) - base, Scale: w.size, Q: q})
		}
	}
	return dets
}

// node takes the window centred at ctr from node idx of a tree to the child
// its comparison picks: 2·idx+1 when the first pixel is not brighter than
// the second, else 2·idx. The choice is computed without a branch, as its
// outcome is a coin toss the processor would mispredict half the time.
func node(pix []uint8, ctr int, offs *[leafs]int64, idx int) int {
	o := offs[idx&(leafs-1)]
	d := int(pix[ctr+int(o>>32)]) - int(pix[ctr+int(int32(o))])
	return 2*idx + 1 + d>>63
}
