// Package kernel holds the inner loops over pixels that the analyzers share:
// luma, grey, the Laplacian's sums and a row of the area resize. Where the
// build has cgo on amd64 they run as C compiled three times, for AVX-512,
// AVX2 and the baseline, the loader picking the one the processor runs
// (kernel_cgo.go); elsewhere they run as the Go functions of kernel_go.go.
// Both give the same bytes, integer for integer: the tests compare them.
package kernel

import (
	"slices"
	"unsafe"
)

// impl is the set of implementations in use; cgoKernels says whether it
// is the C one.
var (
	impl       = goImpl
	cgoKernels bool
)

// kernels is a set of implementations of the loops.
type kernels struct {
	boxReduce  func(dst []uint8, dstStride int, src []uint8, srcStride, w, h, k int)
	boxGray    func(dst []uint8, dstStride int, src []uint8, srcStride, w, h, k int)
	blockStats func(pix []uint8, w, yoff, n int, sum []int32, lo, hi []uint8)
	threshold  func(bits []uint32, pix, t []uint8)
	luma       func(dst, row []uint8)
	grey601    func(dst, row []uint8)
	laplacian  func(g []uint8, w, h int) (sum, sum2 int64)
	resizeRow  func(r *ResizeRow)
}

var goImpl = kernels{boxReduce: boxReduceGo, boxGray: boxGrayGo, blockStats: blockStatsGo, threshold: thresholdGo, luma: lumaGo, grey601: grey601Go, laplacian: laplacianGo, resizeRow: resizeRowGo}

// Luma writes the luma of the premultiplied RGBA pixels of row into dst,
// one per byte of dst, composited over white: (54R + 183G + 19B + 128) /
// 256 + 255 - A, Rec. 709's weights in 8-bit fixed point. Row must hold
// 4·len(dst) bytes.
func Luma(dst, row []uint8) {
	_ = row[:4*len(dst)]
	impl.luma(dst, row)
}

// Grey601 writes the Rec. 601 luma of the RGBA pixels of row into dst, one
// per byte of dst, alpha ignored: (19595R + 38470G + 7471B + 2¹⁵) / 2¹⁶,
// as pigo converts. Row must hold 4·len(dst) bytes.
func Grey601(dst, row []uint8) {
	_ = row[:4*len(dst)]
	impl.grey601(dst, row)
}

// Laplacian returns the sum and the sum of squares of the 4-neighbour
// Laplacian (up + down + left + right - 4·centre) over the interior pixels
// of the w×h grey plane g (stride w); zero when w or h is below 3.
func Laplacian(g []uint8, w, h int) (sum, sum2 int64) {
	if w < 3 || h < 3 {
		return 0, 0
	}
	_ = g[:w*h]
	return impl.laplacian(g, w, h)
}

// ResizeRow is one output row of an area resize whose output pixels cover
// at most three source pixels along each axis, in fixed point: vertically,
// each source byte the sum of the three rows' bytes weighted W (8-bit
// weights summing to 256), then horizontally, each output byte (Σ
// Wt[3x+k]·value[Idx[3x+k]] + 2²²) >> 23 over the RGBA pixels the taps
// name (15-bit weights summing to 2¹⁵). With Gray set the pixels are one
// byte each instead of RGBA's four.
type ResizeRow struct {
	Rows [3][]uint8 // the source rows, 4·SrcWidth bytes each (Gray: SrcWidth)
	W    [3]uint32
	Idx  []int32  // 3 per output pixel: source pixel index
	Wt   []uint32 // 3 per output pixel
	Out  []uint8  // 4 per output pixel (Gray: 1)
	Gray bool
	tmp  []uint16
	// checked is the Idx last checked to lie inside the rows, for the
	// row length, output width and pixel kind in memo, so that a resize
	// checks its taps once, not once per row. Callers must not change Idx
	// in place between rows.
	checked []int32
	memo    memoKey
	// bases, made with the check, holds for each four output pixels the
	// first source pixel of their taps, when the taps of every four lie
	// within 16 source pixels (always so below a factor of 2); nil
	// otherwise. The C kernel then takes four output pixels at a time.
	bases []int32
}

// memoKey is what ResizeRow's tap check and bases depend on besides Idx.
type memoKey struct {
	n, out int
	gray   bool
}

// tapSpan is how many source pixels the taps of four output pixels may
// span for ResizeRow's four-pixel kernel.
const tapSpan = 16

// Filter computes r.Out.
func (r *ResizeRow) Filter() {
	n := len(r.Rows[0])
	for k := range r.Rows {
		r.Rows[k] = r.Rows[k][:n]
	}
	ch := 4
	if r.Gray {
		ch = 1
	}
	_ = r.Idx[:3*(len(r.Out)/ch)]
	_ = r.Wt[:3*(len(r.Out)/ch)]
	if len(r.tmp) < n+4*tapSpan {
		// The padding lets the four-pixel kernel read 16 whole pixels
		// from any base inside the row.
		r.tmp = make([]uint16, n+4*tapSpan)
	}
	memo := memoKey{n: n, out: len(r.Out), gray: r.Gray}
	if len(r.checked) != len(r.Idx) || unsafe.SliceData(r.checked) != unsafe.SliceData(r.Idx) || r.memo != memo {
		for _, i := range r.Idx {
			if i < 0 || ch*int(i)+ch > n {
				panic("kernel: resize tap outside the row")
			}
		}
		r.checked, r.memo, r.bases = r.Idx, memo, nil
		if !r.Gray {
			r.bases = blockBases(r.Idx, len(r.Out)/4)
		}
	}
	impl.resizeRow(r)
}

// blockBases returns ResizeRow.bases for the taps idx of w output pixels.
func blockBases(idx []int32, w int) []int32 {
	bases := make([]int32, w/4)
	for b := range bases {
		taps := idx[12*b : 12*b+12]
		lo, hi := slices.Min(taps), slices.Max(taps)
		if hi-lo >= tapSpan {
			return nil
		}
		bases[b] = lo
	}
	return bases
}

// BlockStats computes, for the 8×8 blocks of the grey plane pix (stride
// w) whose top row is yoff and whose left columns are 0, 8, 16, … (n
// blocks), each block's sum, minimum and maximum. The blocks must lie
// inside the plane.
func BlockStats(pix []uint8, w, yoff, n int, sum []int32, lo, hi []uint8) {
	_ = pix[(yoff+7)*w+8*n-1]
	_, _, _ = sum[:n], lo[:n], hi[:n]
	impl.blockStats(pix, w, yoff, n, sum, lo, hi)
}

// Threshold sets bit x of bits (bit x&31 of word x>>5) when pix[x] <= t[x],
// for x below len(pix), and clears the others of those words.
func Threshold(bits []uint32, pix, t []uint8) {
	_ = bits[:(len(pix)+31)/32]
	_ = t[:len(pix)]
	impl.threshold(bits, pix, t)
}

// BoxReduce shrinks the RGBA pixels of src (stride srcStride) by the
// integer factor k, 2 ≤ k ≤ 257, into w×h pixels of dst (stride dstStride):
// each channel of an output pixel is the mean of its k×k block, rounded to
// nearest, (Σ + k²/2) / k².
func BoxReduce(dst []uint8, dstStride int, src []uint8, srcStride, w, h, k int) {
	if k < 2 || k > 257 {
		panic("kernel: box factor outside 2..257")
	}
	if w <= 0 || h <= 0 {
		return
	}
	_ = src[(h*k-1)*srcStride+4*w*k-1]
	_ = dst[(h-1)*dstStride+4*w-1]
	impl.boxReduce(dst, dstStride, src, srcStride, w, h, k)
}

// MaxGrayBox is the largest factor BoxReduceGray takes: its sums must stay
// within 32 bits.
const MaxGrayBox = 4096

// BoxReduceGray is BoxReduce for a grey image, one byte per pixel, for
// any k ≥ 2 up to MaxGrayBox.
func BoxReduceGray(dst []uint8, dstStride int, src []uint8, srcStride, w, h, k int) {
	if k < 2 || k > MaxGrayBox {
		panic("kernel: box factor outside 2..MaxGrayBox")
	}
	if w <= 0 || h <= 0 {
		return
	}
	_ = src[(h*k-1)*srcStride+w*k-1]
	_ = dst[(h-1)*dstStride+w-1]
	impl.boxGray(dst, dstStride, src, srcStride, w, h, k)
}
