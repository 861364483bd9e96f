package qr

import (
	"strconv"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// singleReader is gozxing's QRCodeReader (for images, not pure barcodes)
// with its finder-pattern search made faster: findPatterns walks each
// scanned row by runs of equal pixels instead of pixel by pixel, which is
// most of the reader's time on a photo with no code (about 1.7 ms of 1 MP,
// and the reader runs on every such photo). Everything else is gozxing's:
// the centres are confirmed and kept by its FinderPatternFinder, the code
// is located and sampled by its Detector and read by its Decoder, so it
// returns what QRCodeReader returns (a test checks this on codes of every
// size, angle and quality the tests use, and on photos without one).
type singleReader struct {
	decoder *decoder.Decoder
}

func newSingleReader() *singleReader { return &singleReader{decoder: decoder.NewDecoder()} }

// Decode is QRCodeReader.Decode without the PURE_BARCODE path.
func (r *singleReader) Decode(image *gozxing.BinaryBitmap, hints map[gozxing.DecodeHintType]interface{}) (*gozxing.Result, error) {
	blackMatrix, err := image.GetBlackMatrix()
	if err != nil {
		return nil, err
	}
	if _, ok := hints[gozxing.DecodeHintType_NEED_RESULT_POINT_CALLBACK]; ok {
		// The detector reports points through a callback only Detect
		// sets from the hints: leave that case to gozxing's reader.
		return qrcode.NewQRCodeReader().Decode(image, hints)
	}
	info, err := findPatterns(blackMatrix, hints)
	if err != nil {
		return nil, err
	}
	detectorResult, err := detector.NewDetector(blackMatrix).ProcessFinderPatternInfo(info)
	if err != nil {
		return nil, err
	}
	return r.result(detectorResult, hints)
}

// result decodes the sampled bits, as the end of QRCodeReader.Decode does.
func (r *singleReader) result(det *common.DetectorResult, hints map[gozxing.DecodeHintType]interface{}) (*gozxing.Result, error) {
	decoderResult, err := r.decoder.Decode(det.GetBits(), hints)
	if err != nil {
		return nil, err
	}
	result := qrResult(det, decoderResult)
	// Only the single reader reports the symbology identifier.
	result.PutMetadata(gozxing.ResultMetadataType_SYMBOLOGY_IDENTIFIER, "]Q"+strconv.Itoa(decoderResult.GetSymbologyModifier()))
	return result, nil
}

// qrResult is the result both gozxing QR readers make of a decoded code:
// its text and bytes, the detector's points (in reading order when the
// code was mirrored) and the metadata the decoder found.
func qrResult(det *common.DetectorResult, decoderResult *common.DecoderResult) *gozxing.Result {
	points := det.GetPoints()
	if metadata, ok := decoderResult.GetOther().(*decoder.QRCodeDecoderMetaData); ok {
		metadata.ApplyMirroredCorrection(points)
	}
	result := gozxing.NewResult(decoderResult.GetText(), decoderResult.GetRawBytes(), points, gozxing.BarcodeFormat_QR_CODE)
	// The multi reader tests byteSegments != nil where the single one
	// tests len > 0: the same, as the decoder gives nil for none.
	if byteSegments := decoderResult.GetByteSegments(); len(byteSegments) > 0 {
		result.PutMetadata(gozxing.ResultMetadataType_BYTE_SEGMENTS, byteSegments)
	}
	if ecLevel := decoderResult.GetECLevel(); ecLevel != "" {
		result.PutMetadata(gozxing.ResultMetadataType_ERROR_CORRECTION_LEVEL, ecLevel)
	}
	if decoderResult.HasStructuredAppend() {
		result.PutMetadata(gozxing.ResultMetadataType_STRUCTURED_APPEND_SEQUENCE, decoderResult.GetStructuredAppendSequenceNumber())
		result.PutMetadata(gozxing.ResultMetadataType_STRUCTURED_APPEND_PARITY, decoderResult.GetStructuredAppendParity())
	}
	return result
}

// findPatterns is FinderPatternFinder.Find: the same rows, the same state
// machine over black and white pixels (walkRow), the same calls into the
// finder at the same pixels, so the same patterns. What is Find's own is
// the row stepping: after a confirmed centre it reads every other row, may
// jump ahead to where the next finder pattern should be, and stops once it
// has three centres it trusts.
func findPatterns(image *gozxing.BitMatrix, hints map[gozxing.DecodeHintType]interface{}) (*detector.FinderPatternInfo, error) {
	f := detector.NewFinderPatternFinder(image, nil)
	maxI, maxJ := image.GetHeight(), image.GetWidth()
	iSkip := rowStep(maxI, hints)
	// hasSkipped mirrors the finder's own flag, which FindRowSkip sets
	// when it finds two confirmed centres.
	hasSkipped := false
	done := false
	sc := make([]int, 5)
	var row *gozxing.BitArray
	for i := iSkip - 1; i < maxI && !done; i += iSkip {
		row = image.GetRow(i, row)
		walkRow(f, row, i, sc, func(sc []int) bool {
			// A centre: read every other row from now on, and until two
			// centres are trusted, jump to where the next one may be.
			iSkip = 2
			if hasSkipped {
				done = f.HaveMultiplyConfirmedCenters()
				return false
			}
			if confirmedCenters(f) >= 2 {
				hasSkipped = true
			}
			if rowSkip := f.FindRowSkip(); rowSkip > sc[2] {
				i += rowSkip - sc[2] - iSkip
				return true // Find moves j to the end of the row
			}
			return false
		})
		if detector.FinderPatternFinder_foundPatternCross(sc) && f.HandlePossibleCenter(sc, i, maxJ) {
			iSkip = sc[0]
			if hasSkipped {
				done = f.HaveMultiplyConfirmedCenters()
			}
		}
	}
	fps, err := f.SelectBestPatterns()
	if err != nil {
		return nil, err
	}
	return patternInfo(fps[0], fps[1], fps[2]), nil
}

// rowStep is the distance between the rows the finders read at first: the
// height of the smallest finder pattern centre (3 modules) they expect,
// taking the densest code (97 modules a side) to fill at least a quarter of
// the image height; or every third row when trying harder, to find codes
// of any size and density.
func rowStep(height int, hints map[gozxing.DecodeHintType]interface{}) int {
	_, tryHarder := hints[gozxing.DecodeHintType_TRY_HARDER]
	iSkip := (3 * height) / (4 * detector.FinderPatternFinder_MAX_MODULES)
	if iSkip < detector.FinderPatternFinder_MIN_SKIP || tryHarder {
		iSkip = detector.FinderPatternFinder_MIN_SKIP
	}
	return iSkip
}

// walkRow runs the finders' state machine over row i, as the inner loops
// of FinderPatternFinder.Find and MultiFinderPatternFinder.FindMulti do:
// sc counts the five modules of a finder pattern (black, white, black,
// white, black in ratio 1:1:3:1:1), and at the first white pixel after a
// fifth module that looks right the finder is asked to confirm a centre
// (HandlePossibleCenter) at exactly the pixel where the gozxing loops ask.
// A run of pixels of one colour changes the state only at its first
// pixel; the rest of the run only adds to the count it reached, so the row
// is walked by runs (BitArray.GetNextSet and GetNextUnset, a word at a
// time) instead of pixel by pixel.
//
// Each confirmed centre is reported to onCentre with the counts of its
// pattern, before they are cleared; the finders differ only in what they
// do then. When onCentre returns true the rest of the row is skipped, as
// Find does when it jumps rows. sc is left holding the counts at the end
// of the row, which the caller checks for a pattern touching the edge.
func walkRow(f *detector.FinderPatternFinder, row *gozxing.BitArray, i int, sc []int, onCentre func(sc []int) (leaveRow bool)) {
	clear(sc)
	cs := 0 // the module being counted, 0..4; odd ones are white
	maxJ := row.GetSize()
	for j := 0; j < maxJ; {
		if row.Get(j) {
			end := row.GetNextUnset(j)
			if cs&1 == 1 {
				cs++
			}
			sc[cs] += end - j
			j = end
			continue
		}
		end := row.GetNextSet(j)
		n := end - j // white pixels from j
		switch {
		case cs&1 == 1:
			sc[cs] += n
		case cs != 4:
			cs++
			sc[cs] += n
		case !detector.FinderPatternFinder_foundPatternCross(sc):
			shiftCounts2(sc) // counts pixel j as the first of module 3
			cs = 3
			sc[3] += n - 1
		case !f.HandlePossibleCenter(sc, i, j):
			shiftCounts2(sc)
			cs = 3
			sc[3] += n - 1
		default:
			// A confirmed centre at pixel j, which neither finder counts.
			leave := onCentre(sc)
			cs = 0
			clear(sc)
			if leave {
				return
			}
			// The run's other white pixels start module 1 afresh.
			if n > 1 {
				cs = 1
				sc[1] = n - 1
			}
		}
		j = end
	}
}

// patternInfo orders three finder patterns as bottom-left, top-left and
// top-right, as both finders do before handing them to the detector.
func patternInfo(a, b, c *detector.FinderPattern) *detector.FinderPatternInfo {
	bl, tl, tr := gozxing.ResultPoint_OrderBestPatterns(a, b, c)
	return detector.NewFinderPatternInfo(bl.(*detector.FinderPattern), tl.(*detector.FinderPattern), tr.(*detector.FinderPattern))
}

// shiftCounts2 is FinderPatternFinder_doShiftCounts2: the last three
// counts move down two, and module 3 starts with one pixel.
func shiftCounts2(sc []int) {
	sc[0], sc[1], sc[2], sc[3], sc[4] = sc[2], sc[3], sc[4], 1, 0
}

// confirmedCenters counts the centres the finder has seen often enough to
// trust, as FindRowSkip does.
func confirmedCenters(f *detector.FinderPatternFinder) int {
	n := 0
	for _, c := range f.GetPossibleCenters() {
		if c.GetCount() >= detector.FinderPatternFinder_CENTER_QUORUM {
			n++
		}
	}
	return n
}
