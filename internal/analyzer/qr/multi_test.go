package qr

import (
	"errors"
	"fmt"
	"image"
	"reflect"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common/reedsolomon"
	"github.com/makiuchi-d/gozxing/multi"
	multiqr "github.com/makiuchi-d/gozxing/multi/qrcode"
	multidetector "github.com/makiuchi-d/gozxing/multi/qrcode/detector"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/encoder"
)

// TestMultiReaderMatchesGozxing checks that the multi reader, with its
// run-walking finder-pattern search and its port of gozxing's selection of
// triples and structured append joining, finds exactly the finder pattern
// triples gozxing's MultiFinderPatternFinder finds and returns exactly what
// gozxing's QRCodeMultiReader returns: the same results in the same order
// (text, bytes, points, metadata, format) or the same error. It runs on the
// single reader's cases, with and without TRY_HARDER, and on images with
// several codes: of different sizes and angles, of the same size (equal
// module sizes, whose sort order matters), mirrored, and the parts of a
// structured append message, alone and with another code.
func TestMultiReaderMatchesGozxing(t *testing.T) {
	inputs := append(exactInputs(t), multiCodeInputs(t)...)
	var patternSets, results, severalCodes, joined int
	for _, hints := range exactHints {
		for _, in := range inputs {
			bmp, matrix := binarized(t, in.m)
			wantInfos, wantErr := multidetector.NewMultiFinderPatternFinder(matrix, nil).FindMulti(hints)
			gotInfos, gotErr := findMultiPatterns(matrix, hints)
			if !reflect.DeepEqual(errorChain(gotErr), errorChain(wantErr)) || !reflect.DeepEqual(gotInfos, wantInfos) {
				t.Errorf("%s (hints %v): %d pattern sets, error %v; gozxing's %d, %v", in.name, hints, len(gotInfos), errorChain(gotErr), len(wantInfos), errorChain(wantErr))
			}
			patternSets += len(wantInfos)

			want, wantErr := multiqr.NewQRCodeMultiReader().DecodeMultiple(bmp, hints)
			got, gotErr := newMultiReader().DecodeMultiple(bmp, hints)
			if !reflect.DeepEqual(errorChain(gotErr), errorChain(wantErr)) {
				t.Errorf("%s (hints %v): error %v; gozxing's %v", in.name, hints, errorChain(gotErr), errorChain(wantErr))
			}
			if diff := diffResults(got, want); diff != "" {
				t.Errorf("%s (hints %v): %s", in.name, hints, diff)
			}
			results += len(want)
			if len(want) > 1 {
				severalCodes++
			}
			for _, r := range want {
				if len(r.GetResultPoints()) == 0 {
					joined++
				}
			}
		}
	}
	if patternSets == 0 || results == 0 || severalCodes == 0 || joined == 0 {
		t.Fatalf("too little read (%d pattern sets, %d results, %d images with several, %d structured append joins): the comparison proves little",
			patternSets, results, severalCodes, joined)
	}
	t.Logf("%d inputs × %d hint sets: %d pattern sets and %d results compared (%d reads of several codes, %d structured append joins)",
		len(inputs), len(exactHints), patternSets, results, severalCodes, joined)
}

// BenchmarkMultiReader measures the multi readers alone, ours and
// gozxing's, on a photo without a code (the binarized image is made once
// and cached by the bitmap), with the hints the analyzer uses.
func BenchmarkMultiReader(b *testing.B) {
	hints := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
	for _, sz := range []struct {
		name string
		w, h int
	}{{"1MP", 1152, 864}, {"12MP", 4000, 3000}} {
		bmp, _ := binarized(b, photo(b, "kite.jpg", sz.w, sz.h))
		for _, mr := range []struct {
			name string
			r    multi.MultipleBarcodeReader
		}{{"runs", newMultiReader()}, {"gozxing", multiqr.NewQRCodeMultiReader()}} {
			b.Run(sz.name+"/"+mr.name, func(b *testing.B) {
				for b.Loop() {
					_, _ = mr.r.DecodeMultiple(bmp, hints)
				}
			})
		}
	}
}

// multiCodeInputs are photos with several codes on them, for the multi
// reader's selection of triples and joining of structured append parts.
func multiCodeInputs(t *testing.T) []exactInput {
	t.Helper()
	texts := []string{shopURL, "https://shop.example/p/98765?ref=shelf&lang=fr", "WIFI:S:glimpse;T:WPA;P:correct horse;;", "tel:+33123456789"}
	syms := make([]symbol, len(texts))
	for i, text := range texts {
		syms[i] = qrSymbol(t, text)
	}
	message := []string{"glimpse:part one;", "glimpse:part two;", "glimpse:part three"}
	parts := structuredAppend(t, message)
	scenes := []struct {
		name  string
		place []placement
	}{
		{"two codes", []placement{
			{sym: syms[0], side: 220, cx: 280, cy: 280},
			{sym: syms[1], side: 230, cx: 830, cy: 560, angle: 30},
		}},
		{"three codes", []placement{
			{sym: syms[0], side: 190, cx: 220, cy: 220, angle: 10},
			{sym: syms[1], side: 215, cx: 900, cy: 230, angle: -20},
			{sym: syms[2], side: 200, cx: 580, cy: 640, angle: 90},
		}},
		{"four equal codes", []placement{
			{sym: syms[0], side: 160, cx: 250, cy: 220},
			{sym: syms[1], side: 160, cx: 700, cy: 220},
			{sym: syms[2], side: 160, cx: 250, cy: 620},
			{sym: syms[3], side: 160, cx: 700, cy: 620},
		}},
		{"mirrored and plain", []placement{
			{sym: mirror(syms[2]), side: 200, cx: 300, cy: 400, angle: 15},
			{sym: syms[3], side: 180, cx: 850, cy: 420},
		}},
		{"structured append", []placement{
			{sym: parts[2], side: 150, cx: 200, cy: 300},
			{sym: parts[0], side: 150, cx: 560, cy: 300},
			{sym: parts[1], side: 150, cx: 920, cy: 300, angle: 20},
		}},
		{"structured append and a code", []placement{
			{sym: parts[1], side: 140, cx: 180, cy: 200},
			{sym: syms[0], side: 200, cx: 560, cy: 560, angle: 45},
			{sym: parts[2], side: 140, cx: 900, cy: 180},
			{sym: parts[0], side: 140, cx: 180, cy: 650, angle: -10},
		}},
	}
	var inputs []exactInput
	// Finder patterns alone, spaced about as far apart as the least and the
	// most modules the multi finder accepts along a code's edge (9 and 180).
	for _, g := range []struct{ n, spacing, px int }{{3, 8, 4}, {3, 10, 4}, {3, 12, 4}, {2, 176, 3}, {2, 184, 3}} {
		inputs = append(inputs, exactInput{fmt.Sprintf("finder grid/%d×%d/%d modules apart", g.n, g.n, g.spacing), finderGrid(g.n, g.spacing, g.px)})
	}
	for _, bgName := range []string{"kite.jpg", "dog.jpg"} {
		bg := photo(t, bgName, 1155, 866)
		for _, sc := range scenes {
			for _, q := range []int{90, 60} {
				m := compose(bg, sc.place)
				inputs = append(inputs, exactInput{fmt.Sprintf("%s/%s/q%d", bgName, sc.name, q), decode(t, encodeJPEG(t, m, q)).Pixels})
			}
		}
	}
	return inputs
}

// finderGrid is an n×n grid of finder patterns, their centres spacing
// modules apart, a module px pixels: triples of centres of every shape the
// multi finder judges, with no code to read.
func finderGrid(n, spacing, px int) *image.Gray {
	const margin = 8 // modules from the edge to the first centre
	side := (2*margin + (n-1)*spacing) * px
	m := image.NewGray(image.Rect(0, 0, side, side))
	for i := range m.Pix {
		m.Pix[i] = 255
	}
	for row := range n {
		for col := range n {
			cx, cy := margin+col*spacing, margin+row*spacing
			for y := -3; y <= 3; y++ {
				for x := -3; x <= 3; x++ {
					// Black ring (Chebyshev distance 3) and 3×3 core.
					if d := max(abs(x), abs(y)); d == 3 || d <= 1 {
						fillModule(m, cx+x, cy+y, px)
					}
				}
			}
		}
	}
	return m
}

// fillModule blackens module (x, y) of px pixels in m.
func fillModule(m *image.Gray, x, y, px int) {
	for dy := range px {
		for dx := range px {
			m.Pix[(y*px+dy)*m.Stride+x*px+dx] = 0
		}
	}
}

func abs(x int) int { return max(x, -x) }

// errorChain describes err and the errors it wraps, type and message, so
// that two errors can be compared; nil for no error.
func errorChain(err error) []string {
	var chain []string
	for ; err != nil; err = errors.Unwrap(err) {
		chain = append(chain, fmt.Sprintf("%T: %v", err, err.Error()))
	}
	return chain
}

// diffResults describes how the results got differ from want, "" when
// they are the same in every respect but their timestamp.
func diffResults(got, want []*gozxing.Result) string {
	if (got == nil) != (want == nil) || len(got) != len(want) {
		return fmt.Sprintf("%d results %v; gozxing's %d %v", len(got), got, len(want), want)
	}
	for i, w := range want {
		g := got[i]
		if g.GetText() != w.GetText() || !reflect.DeepEqual(g.GetRawBytes(), w.GetRawBytes()) || g.GetNumBits() != w.GetNumBits() ||
			!reflect.DeepEqual(g.GetResultPoints(), w.GetResultPoints()) || !reflect.DeepEqual(g.GetResultMetadata(), w.GetResultMetadata()) ||
			g.GetBarcodeFormat() != w.GetBarcodeFormat() {
			return fmt.Sprintf("result %d: %q at %v (%v); gozxing's %q at %v (%v)", i,
				g.GetText(), g.GetResultPoints(), g.GetResultMetadata(), w.GetText(), w.GetResultPoints(), w.GetResultMetadata())
		}
	}
	return ""
}

// mirror returns s flipped left to right, a code seen from behind.
func mirror(s symbol) symbol {
	b := s.img.Bounds()
	m := image.NewGray(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			m.SetGray(b.Max.X-1-(x-b.Min.X), y, s.img.GrayAt(x, y))
		}
	}
	code := image.Rect(b.Max.X-(s.code.Max.X-b.Min.X), s.code.Min.Y, b.Max.X-(s.code.Min.X-b.Min.X), s.code.Max.Y)
	return symbol{img: m, code: code}
}

// structuredAppend returns the symbols of a structured append message, one
// part each, built bit by bit as gozxing's encoder cannot write the
// structured append header: a version 2-M symbol (one error correction
// block) holding the header (mode 3, part index, number of parts less one,
// parity of the whole message) then the part in byte mode.
func structuredAppend(t *testing.T, message []string) []symbol {
	t.Helper()
	var parity byte
	for _, part := range message {
		for _, c := range []byte(part) {
			parity ^= c
		}
	}
	version, err := decoder.Version_GetVersionForNumber(2)
	if err != nil {
		t.Fatal(err)
	}
	level := decoder.ErrorCorrectionLevel_M
	ecBlocks := version.GetECBlocksForLevel(level)
	if ecBlocks.GetNumBlocks() != 1 {
		t.Fatalf("version 2-M has %d blocks; the bits are not interleaved here", ecBlocks.GetNumBlocks())
	}
	nData := version.GetTotalCodewords() - ecBlocks.GetTotalECCodewords()
	syms := make([]symbol, len(message))
	for i, part := range message {
		bits := gozxing.NewEmptyBitArray()
		for _, f := range [][2]int{{3, 4}, {i, 4}, {len(message) - 1, 4}, {int(parity), 8}, {4, 4}, {len(part), 8}} {
			_ = bits.AppendBits(f[0], f[1])
		}
		for _, c := range []byte(part) {
			_ = bits.AppendBits(int(c), 8)
		}
		if bits.GetSize()+4 > nData*8 {
			t.Fatalf("part %q does not fit version 2-M", part)
		}
		_ = bits.AppendBits(0, 4) // terminator
		for bits.GetSize()%8 != 0 {
			bits.AppendBit(false)
		}
		for k := 0; bits.GetSizeInBytes() < nData; k++ {
			_ = bits.AppendBits([]int{0xec, 0x11}[k%2], 8) // padding codewords
		}
		syms[i] = symbolOfBits(t, bits, nData, version, level)
	}
	return syms
}

// symbolOfBits adds the error correction codewords to the nData data
// codewords in bits and lays the whole out as a symbol of version and
// level, with mask 2 and a quiet zone of 4 modules.
func symbolOfBits(t *testing.T, bits *gozxing.BitArray, nData int, version *decoder.Version, level decoder.ErrorCorrectionLevel) symbol {
	t.Helper()
	data := make([]byte, nData)
	bits.ToBytes(0, data, 0, nData)
	codewords := make([]int, version.GetTotalCodewords())
	for k, b := range data {
		codewords[k] = int(b)
	}
	if err := reedsolomon.NewReedSolomonEncoder(reedsolomon.GenericGF_QR_CODE_FIELD_256).Encode(codewords, len(codewords)-nData); err != nil {
		t.Fatal(err)
	}
	all := gozxing.NewEmptyBitArray()
	for _, c := range codewords {
		_ = all.AppendBits(c, 8)
	}
	dim := version.GetDimensionForVersion()
	layout := encoder.NewByteMatrix(dim, dim)
	if err := encoder.MatrixUtil_buildMatrix(all, level, version, 2, layout); err != nil {
		t.Fatal(err)
	}
	const quiet = 4
	bm, err := gozxing.NewBitMatrix(dim+2*quiet, dim+2*quiet)
	if err != nil {
		t.Fatal(err)
	}
	for y := range dim {
		for x := range dim {
			if layout.Get(x, y) == 1 {
				bm.Set(quiet+x, quiet+y)
			}
		}
	}
	return render(bm, image.Rect(quiet, quiet, quiet+dim, quiet+dim))
}
