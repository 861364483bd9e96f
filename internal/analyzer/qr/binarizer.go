package qr

import (
	"github.com/makiuchi-d/gozxing"

	"github.com/glimpse-oss/glimpse/internal/analyzer/kernel"
)

// binarizer is gozxing's HybridBinarizer (ZXing's local-threshold
// binarizer, which the QR readers are tuned for) computed faster: it gives
// the same matrix bit for bit (a test checks this), but builds each row's
// bits a 32-bit word at a time instead of setting them one call per pixel,
// which is most of the cost on a large photo. Rows for 1-D barcodes come
// from the global-histogram binarizer, as with HybridBinarizer.
type binarizer struct {
	*gozxing.GlobalHistogramBinarizer
	lum    *luminance
	matrix *gozxing.BitMatrix
}

var _ gozxing.Binarizer = (*binarizer)(nil)

// HybridBinarizer's constants: 8×8 blocks, and the contrast within a block
// below which it is taken for background.
const (
	blockPower      = 3
	blockSize       = 1 << blockPower
	minDimension    = 5 * blockSize
	minDynamicRange = 24
)

func newBinarizer(lum *luminance) *binarizer {
	return &binarizer{
		GlobalHistogramBinarizer: gozxing.NewGlobalHistgramBinarizer(lum).(*gozxing.GlobalHistogramBinarizer),
		lum:                      lum,
	}
}

// CreateBinarizer returns a binarizer of the same kind over source.
func (b *binarizer) CreateBinarizer(source gozxing.LuminanceSource) gozxing.Binarizer {
	if l, ok := source.(*luminance); ok {
		return newBinarizer(l)
	}
	return gozxing.NewHybridBinarizer(source)
}

// GetBlackMatrix returns the binarized image, computed on the first call.
func (b *binarizer) GetBlackMatrix() (*gozxing.BitMatrix, error) {
	if b.matrix != nil {
		return b.matrix, nil
	}
	w, h := b.lum.w, b.lum.h
	if w < minDimension || h < minDimension {
		m, err := b.GlobalHistogramBinarizer.GetBlackMatrix()
		if err != nil {
			return nil, err
		}
		b.matrix = m
		return m, nil
	}
	subW, subH := (w+blockSize-1)>>blockPower, (h+blockSize-1)>>blockPower
	thr := thresholds(blackPoints(b.lum.pix, subW, subH, w, h), subW, subH)

	m, err := gozxing.NewBitMatrix(w, h)
	if err != nil {
		return nil, err
	}
	// HybridBinarizer moves a last partial block back to end at the
	// image's edge, overlapping its neighbour, and a pixel two blocks cover
	// is black when either's threshold says so. Both blocks always have the
	// same threshold (the 5×5 neighbourhoods of the last two block columns,
	// and rows, are both moved in to the same place), so one pass over each
	// pixel with its own block's threshold gives the same bits.
	row := gozxing.NewBitArray(w)
	bits := row.GetBitArray()[:(w+31)/32]
	t := make([]uint8, w) // each pixel's threshold in the current block row
	for y := range h {
		if by := min(y>>blockPower, subH-1); y == 0 || by != min((y-1)>>blockPower, subH-1) {
			for bx, v := range thr[by*subW : (by+1)*subW] {
				x0 := min(bx<<blockPower, w-blockSize)
				for x := x0; x < x0+blockSize; x++ {
					t[x] = uint8(v) // a mean of black points: 0..255
				}
			}
		}
		kernel.Threshold(bits, b.lum.pix[y*w:(y+1)*w], t)
		m.SetRow(y, row)
	}
	b.matrix = m
	return m, nil
}

// blackPoints is HybridBinarizer's calculateBlackPoints: each 8×8 block's
// black point, subH rows of subW, row-major.
//
// The block statistics (kernel.BlockStats) are taken over the whole block:
// HybridBinarizer stops taking the minimum and maximum once they are more
// than minDynamicRange apart, but then they only grow apart, so the test
// below decides the same, and the minimum is used only when it does not
// stop.
func blackPoints(pix []uint8, subW, subH, w, h int) []int32 {
	bp := make([]int32, subW*subH)
	maxY, maxX := h-blockSize, w-blockSize
	// The blocks start at 0, 8, 16, …; a last partial one is moved back
	// to end at the edge, overlapping its neighbour.
	whole := w / blockSize
	sums := make([]int32, subW)
	lo, hi := make([]uint8, subW), make([]uint8, subW)
	for y := range subH {
		yoff := min(y<<blockPower, maxY)
		kernel.BlockStats(pix, w, yoff, whole, sums, lo, hi)
		if whole < subW {
			kernel.BlockStats(pix[maxX:], w, yoff, 1, sums[subW-1:], lo[subW-1:], hi[subW-1:])
		}
		for x := range subW {
			avg := int(sums[x]) >> (2 * blockPower)
			if l := int(lo[x]); int(hi[x])-l <= minDynamicRange {
				// A flat block: taken for background, half its minimum,
				// unless its neighbours' black points say it is darker.
				avg = l / 2
				if y > 0 && x > 0 {
					nb := (int(bp[(y-1)*subW+x]) + 2*int(bp[y*subW+x-1]) + int(bp[(y-1)*subW+x-1])) / 4
					if l < nb {
						avg = nb
					}
				}
			}
			bp[y*subW+x] = int32(avg)
		}
	}
	return bp
}

// thresholds is HybridBinarizer's calculateThresholdForBlock without the
// thresholding: each block's threshold, the mean black point of the 5×5
// blocks around it (moved inwards at the edges).
func thresholds(bp []int32, subW, subH int) []int32 {
	thr := make([]int32, subW*subH)
	clampTo := func(v, lo, hi int) int { return max(lo, min(v, hi)) }
	for y := range subH {
		top := clampTo(y, 2, subH-3)
		for x := range subW {
			left := clampTo(x, 2, subW-3)
			sum := int32(0)
			for z := -2; z <= 2; z++ {
				r := bp[(top+z)*subW+left-2 : (top+z)*subW+left+3]
				sum += r[0] + r[1] + r[2] + r[3] + r[4]
			}
			thr[y*subW+x] = sum / 25
		}
	}
	return thr
}
