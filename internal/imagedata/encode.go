package imagedata

import (
	"errors"
	"fmt"
	"image"
)

// EncodeJPEG encodes m as a baseline JPEG at quality (1 to 100) with 4:2:0
// chroma, through libjpeg-turbo when it is compiled in (see [Backend]),
// else image/jpeg. Alpha is ignored: composite a translucent m over a
// background first.
func EncodeJPEG(m *image.RGBA, quality int) ([]byte, error) {
	if m == nil || m.Bounds().Empty() {
		return nil, errors.New("imagedata: encode: empty image")
	}
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("imagedata: encode: quality %d is outside 1..100", quality)
	}
	b, err := compressJPEG(m, quality)
	if err != nil {
		return nil, fmt.Errorf("imagedata: encode: %w", err)
	}
	return b, nil
}
