//go:build !turbojpeg || !cgo

package imagedata

import (
	"bytes"
	"image"
	"image/jpeg"
)

// Backend names the JPEG decoder compiled in: "libjpeg-turbo" when built
// with the turbojpeg tag and cgo, "pure-go" otherwise.
func Backend() string { return "pure-go" }

// decodeJPEG decodes at full size with image/jpeg; minSide is ignored (see
// DecodeOptions.MinSide).
func decodeJPEG(b []byte, _ Header, _ int, _ *Buffers) (m image.Image, pooled bool, err error) {
	m, err = decodeJPEGStd(b)
	return m, false, err
}

// compressJPEG encodes m with image/jpeg (4:2:0 chroma, as libjpeg-turbo's
// backend also writes).
func compressJPEG(m *image.RGBA, quality int) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
