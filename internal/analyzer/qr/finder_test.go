package qr

import (
	"fmt"
	"image"
	"reflect"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// exactInput is an image the readers are compared on.
type exactInput struct {
	name string
	m    image.Image
}

// exactHints are the hint sets the readers are compared with: the default
// search and the thorough one, which reads rows at a different step.
var exactHints = []map[gozxing.DecodeHintType]interface{}{
	{},
	{gozxing.DecodeHintType_TRY_HARDER: true},
}

// binarized returns m as the bitmap our readers take and its black matrix.
func binarized(t testing.TB, m image.Image) (*gozxing.BinaryBitmap, *gozxing.BitMatrix) {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmap(newBinarizer(newLuminance(m)))
	if err != nil {
		t.Fatal(err)
	}
	matrix, err := bmp.GetBlackMatrix()
	if err != nil {
		t.Fatal(err)
	}
	return bmp, matrix
}

// exactInputs are the images on which our readers must match gozxing's:
// four photos, each as it is and with a code of several sizes, angles and
// JPEG qualities on it, and noise, large and tiny.
func exactInputs(t *testing.T) []exactInput {
	t.Helper()
	sym := qrSymbol(t, shopURL)
	var inputs []exactInput
	for _, bgName := range []string{"kite.jpg", "dog.jpg", "horses.jpg", "coffee.png"} {
		bg := photo(t, bgName, 1155, 866)
		inputs = append(inputs, exactInput{bgName, bg})
		for _, side := range []float64{45, 60, 110, 260} {
			for _, angle := range []float64{0, 22, 45} {
				for _, q := range []int{90, 40} {
					m := compose(bg, []placement{{sym: sym, side: side, cx: 300 + side, cy: 250 + side/2, angle: angle}})
					inputs = append(inputs, exactInput{fmt.Sprintf("%s/%g px/%g°/q%d", bgName, side, angle, q), decode(t, encodeJPEG(t, m, q)).Pixels})
				}
			}
		}
	}
	return append(inputs, exactInput{"noise", noise(640, 480)}, exactInput{"tiny noise", noise(50, 41)})
}

// TestSingleReaderMatchesGozxing checks that the single reader, with its
// run-walking finder-pattern search, finds exactly the finder patterns
// gozxing's FinderPatternFinder finds and returns exactly what gozxing's
// QRCodeReader returns (text, points, metadata, or an error): on codes of
// many sizes, angles and JPEG qualities placed on four photos, on photos
// and noise without a code, and with and without TRY_HARDER.
func TestSingleReaderMatchesGozxing(t *testing.T) {
	inputs := exactInputs(t)
	var found, patterns int
	for _, hints := range exactHints {
		for _, in := range inputs {
			bmp, matrix := binarized(t, in.m)
			wantInfo, wantErr := detector.NewFinderPatternFinder(matrix, nil).Find(hints)
			gotInfo, gotErr := findPatterns(matrix, hints)
			if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(gotInfo, wantInfo) {
				t.Errorf("%s (hints %v): patterns %v, %v; gozxing's %v, %v", in.name, hints, gotInfo, gotErr, wantInfo, wantErr)
			}
			if wantErr == nil {
				patterns++
			}
			want, wantDecErr := qrcode.NewQRCodeReader().Decode(bmp, hints)
			got, gotDecErr := newSingleReader().Decode(bmp, hints)
			if (gotDecErr == nil) != (wantDecErr == nil) {
				t.Errorf("%s (hints %v): error %v; gozxing's %v", in.name, hints, gotDecErr, wantDecErr)
				continue
			}
			if wantDecErr != nil {
				continue
			}
			found++
			if got.GetText() != want.GetText() || !reflect.DeepEqual(got.GetResultPoints(), want.GetResultPoints()) ||
				!reflect.DeepEqual(got.GetResultMetadata(), want.GetResultMetadata()) || got.GetBarcodeFormat() != want.GetBarcodeFormat() {
				t.Errorf("%s (hints %v): read %q at %v; gozxing reads %q at %v", in.name, hints, got.GetText(), got.GetResultPoints(), want.GetText(), want.GetResultPoints())
			}
		}
	}
	if found == 0 || patterns == 0 {
		t.Fatalf("nothing read (%d codes, %d pattern sets): the comparison proves nothing", found, patterns)
	}
	t.Logf("%d inputs × 2 hint sets: %d pattern sets and %d codes compared", len(inputs), patterns, found)
}
