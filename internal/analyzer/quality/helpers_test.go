package quality

import (
	"image"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/testphotos"
)

// testPhotos are the photos of .deps/testdata the tests run on.
var testPhotos = testphotos.Names

func photo(tb testing.TB, name string) *image.RGBA { return testphotos.RGBA(tb, name) }

// newImage wraps decoded pixels as the worker would, upright and at full size.
func newImage(m image.Image) *analyzer.Image {
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	return analyzer.NewImage("test", nil, &imagedata.Image{
		Header: imagedata.Header{Format: imagedata.PNG, Width: w, Height: h, Orientation: 1},
		Image:  m,
	})
}
