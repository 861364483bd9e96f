package qr

import (
	"math"
	"sort"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
	"github.com/makiuchi-d/gozxing/multi"
	multidetector "github.com/makiuchi-d/gozxing/multi/qrcode/detector"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// multiReader is gozxing's QRCodeMultiReader with its finder-pattern search
// (MultiFinderPatternFinder.FindMulti) made faster the way singleReader's
// is: the scanned rows are walked by runs of equal pixels (walkRow), which
// saves about 1 ms of a 1 MP photo and 8 ms of a 12 MP one, and the multi
// reader runs first on every image. The rest is gozxing's or a faithful
// port of it: its FinderPatternFinder confirms the centres, selectTriples
// (unexported in gozxing) picks the triples of centres that may be codes,
// its Detector samples them and its Decoder reads them, and structured
// append parts are joined as QRCodeMultiReader joins them. So it returns
// what QRCodeMultiReader returns, in the same order (a test checks this on
// the single reader's cases and on several codes in one image).
type multiReader struct {
	decoder *decoder.Decoder
}

var _ multi.MultipleBarcodeReader = (*multiReader)(nil)

func newMultiReader() *multiReader { return &multiReader{decoder: decoder.NewDecoder()} }

// DecodeMultipleWithoutHint completes multi.MultipleBarcodeReader.
func (r *multiReader) DecodeMultipleWithoutHint(image *gozxing.BinaryBitmap) ([]*gozxing.Result, error) {
	return r.DecodeMultiple(image, nil)
}

// DecodeMultiple is QRCodeMultiReader.DecodeMultiple: every code the
// detector locates and the decoder reads, in the order of the triples of
// finder patterns, structured append parts joined into one result at the
// end. A code that does not decode is skipped. Like gozxing's, it returns an
// empty slice rather than nil, even with an error.
func (r *multiReader) DecodeMultiple(image *gozxing.BinaryBitmap, hints map[gozxing.DecodeHintType]interface{}) ([]*gozxing.Result, error) {
	results := []*gozxing.Result{}
	matrix, err := image.GetBlackMatrix()
	if err != nil {
		return results, err
	}
	located, err := detectMulti(matrix, hints)
	if err != nil {
		return results, err
	}
	for _, det := range located {
		decoded, err := r.decoder.Decode(det.GetBits(), hints)
		if err != nil {
			// gozxing skips reading failures only, tested by a plain type
			// assertion (not errors.As): anything else ends the read.
			if _, ok := err.(gozxing.ReaderException); ok {
				continue
			}
			return results, err
		}
		results = append(results, qrResult(det, decoded))
	}
	return joinStructuredAppend(results), nil
}

// detectMulti is MultiDetector.DetectMulti: the sampled grid of every triple
// of finder patterns the detector can make a code of. The result point
// callback goes to the finder only; gozxing's multi detector never hands it
// to the detector proper.
func detectMulti(image *gozxing.BitMatrix, hints map[gozxing.DecodeHintType]interface{}) ([]*common.DetectorResult, error) {
	infos, err := findMultiPatterns(image, hints)
	if err != nil {
		return nil, gozxing.WrapNotFoundException(err)
	}
	d := detector.NewDetector(image)
	var located []*common.DetectorResult
	for _, info := range infos {
		if det, err := d.ProcessFinderPatternInfo(info); err == nil {
			located = append(located, det)
		}
	}
	return located, nil
}

// findMultiPatterns is MultiFinderPatternFinder.FindMulti: the same rows
// (every rowStep-th, without the single finder's skipping or early stop)
// walked by the same state machine (walkRow), so the finder confirms the
// same centres; then every triple of them that could be a code, each
// ordered as bottom-left, top-left, top-right.
func findMultiPatterns(image *gozxing.BitMatrix, hints map[gozxing.DecodeHintType]interface{}) ([]*detector.FinderPatternInfo, error) {
	callback, _ := hints[gozxing.DecodeHintType_NEED_RESULT_POINT_CALLBACK].(gozxing.ResultPointCallback)
	f := detector.NewFinderPatternFinder(image, callback)
	maxI, maxJ := image.GetHeight(), image.GetWidth()
	iSkip := rowStep(maxI, hints)
	sc := make([]int, 5)
	var row *gozxing.BitArray
	for i := iSkip - 1; i < maxI; i += iSkip {
		row = image.GetRow(i, row)
		walkRow(f, row, i, sc, stayInRow)
		if detector.FinderPatternFinder_foundPatternCross(sc) {
			f.HandlePossibleCenter(sc, i, maxJ)
		}
	}
	triples, err := selectTriples(f.GetPossibleCenters())
	if err != nil {
		return nil, err
	}
	infos := make([]*detector.FinderPatternInfo, len(triples))
	for k, t := range triples {
		// Ordered again even when selectTriples ordered it: with equal
		// distances a second ordering can permute, and gozxing orders twice.
		infos[k] = patternInfo(t[0], t[1], t[2])
	}
	return infos, nil
}

// stayInRow is the multi finder's reaction to a confirmed centre: none, it
// reads on along the row.
func stayInRow([]int) bool { return false }

// selectTriples is MultiFinderPatternFinder.selectMultipleBestPatterns:
// all the triples of centres that may be the finder patterns of one code, a
// centre possibly in several. Exactly three centres are one triple as they
// are. More are sorted by module size, largest first, so that each centre
// is only paired with the next ones while their module sizes stay close;
// a triple is kept when its shape fits a code (codeShape). The sort is
// sort.Slice on the finder's own slice, as in gozxing: its order of equal
// module sizes decides the order of the triples and so of the results.
func selectTriples(centres []*detector.FinderPattern) ([][3]*detector.FinderPattern, error) {
	n := len(centres)
	if n < 3 {
		return nil, gozxing.NewNotFoundException("Couldn't find enough finder patterns (%d)", n)
	}
	if n == 3 {
		return [][3]*detector.FinderPattern{{centres[0], centres[1], centres[2]}}, nil
	}
	sort.Slice(centres, func(a, b int) bool {
		// gozxing's comparison: b's size minus a's is negative.
		return centres[b].GetEstimatedModuleSize()-centres[a].GetEstimatedModuleSize() < 0
	})
	var triples [][3]*detector.FinderPattern
	for i1 := 0; i1 < n-2; i1++ {
		p1 := centres[i1]
		for i2 := i1 + 1; i2 < n-1; i2++ {
			p2 := centres[i2]
			if !closeModuleSizes(p1, p2) {
				break // sorted: the next ones are further off still
			}
			for i3 := i2 + 1; i3 < n; i3++ {
				p3 := centres[i3]
				if !closeModuleSizes(p2, p3) {
					break
				}
				if t, ok := codeShape(p1, p2, p3); ok {
					triples = append(triples, t)
				}
			}
		}
	}
	if len(triples) == 0 {
		return nil, gozxing.NewNotFoundException()
	}
	return triples, nil
}

// closeModuleSizes reports whether two centres, a's module at least as large
// as b's, may belong to one code: their module sizes differ by at most half
// a pixel or by less than 5% of the smaller. The quotient is left as
// gozxing computes it (NaN included), not simplified.
func closeModuleSizes(a, b *detector.FinderPattern) bool {
	ma, mb := a.GetEstimatedModuleSize(), b.GetEstimatedModuleSize()
	ratio := (ma - mb) / math.Min(ma, mb)
	diff := math.Abs(ma - mb)
	return !(diff > multidetector.DIFF_MODSIZE_CUTOFF && ratio >= multidetector.DIFF_MODSIZE_CUTOFF_PERCENT)
}

// codeShape orders three centres, p1 the one with the largest modules, as
// bottom-left, top-left and top-right, and reports whether they are placed
// like the finder patterns of one code: the two edges from the top-left
// span a plausible number of modules (of p1's size), are within 10% of
// each other, and the diagonal is within 10% of what a right angle at the
// top-left gives. Every float operation is gozxing's, in its order, and
// each test rejects as gozxing's does (a NaN quotient passes it).
func codeShape(p1, p2, p3 *detector.FinderPattern) ([3]*detector.FinderPattern, bool) {
	bl, tl, tr := gozxing.ResultPoint_OrderBestPatterns(p1, p2, p3)
	dA := gozxing.ResultPoint_Distance(tl, bl)
	dC := gozxing.ResultPoint_Distance(tr, bl)
	dB := gozxing.ResultPoint_Distance(tl, tr)
	modules := (dA + dB) / (p1.GetEstimatedModuleSize() * 2.0)
	if modules > multidetector.MAX_MODULE_COUNT_PER_EDGE || modules < multidetector.MIN_MODULE_COUNT_PER_EDGE {
		return [3]*detector.FinderPattern{}, false
	}
	if math.Abs((dA-dB)/math.Min(dA, dB)) >= 0.1 {
		return [3]*detector.FinderPattern{}, false
	}
	dRight := math.Sqrt(dA*dA + dB*dB)
	if math.Abs((dC-dRight)/math.Min(dC, dRight)) >= 0.1 {
		return [3]*detector.FinderPattern{}, false
	}
	return [3]*detector.FinderPattern{bl.(*detector.FinderPattern), tl.(*detector.FinderPattern), tr.(*detector.FinderPattern)}, true
}

// joinStructuredAppend is QRCodeMultiReader's processStructuredAppend: when
// some results are parts of a structured append message, they are replaced
// by one result, after the others, whose text, bytes and byte segment are
// the parts' in sequence order, and which has no points.
func joinStructuredAppend(results []*gozxing.Result) []*gozxing.Result {
	var parts, others []*gozxing.Result
	for _, r := range results {
		if _, ok := r.GetResultMetadata()[gozxing.ResultMetadataType_STRUCTURED_APPEND_SEQUENCE]; ok {
			parts = append(parts, r)
		} else {
			others = append(others, r)
		}
	}
	if len(parts) == 0 {
		return results
	}
	// sort.Slice, not a stable sort, as gozxing: parts with the same
	// sequence number come out in its order.
	sort.Slice(parts, func(a, b int) bool { return appendSequence(parts[a]) < appendSequence(parts[b]) })
	return append(others, joinParts(parts))
}

// appendSequence is a structured append part's sequence metadata (its index
// and the number of parts), 0 if missing.
func appendSequence(r *gozxing.Result) int {
	n, _ := r.GetResultMetadata()[gozxing.ResultMetadataType_STRUCTURED_APPEND_SEQUENCE].(int)
	return n
}

// joinParts concatenates the parts of a structured append message. The raw
// bytes and points are empty non-nil slices when there are none, and the
// byte segments metadata is one segment, set only when not empty, as in
// gozxing.
func joinParts(parts []*gozxing.Result) *gozxing.Result {
	var text []byte
	raw := []byte{}
	var segment []byte
	for _, p := range parts {
		text = append(text, p.GetText()...)
		raw = append(raw, p.GetRawBytes()...)
		segments, _ := p.GetResultMetadata()[gozxing.ResultMetadataType_BYTE_SEGMENTS].([][]byte)
		for _, s := range segments {
			segment = append(segment, s...)
		}
	}
	joined := gozxing.NewResult(string(text), raw, []gozxing.ResultPoint{}, gozxing.BarcodeFormat_QR_CODE)
	if len(segment) > 0 {
		joined.PutMetadata(gozxing.ResultMetadataType_BYTE_SEGMENTS, [][]byte{segment})
	}
	return joined
}
