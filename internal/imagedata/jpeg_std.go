//go:build !turbojpeg || !cgo

package imagedata

import "image"

// Backend names the JPEG decoder compiled in: "libjpeg-turbo" when built
// with the turbojpeg tag and cgo, "pure-go" otherwise.
func Backend() string { return "pure-go" }

// decodeJPEG decodes at full size with image/jpeg; minSide is ignored (see
// DecodeOptions.MinSide).
func decodeJPEG(b []byte, _ Header, _ int) (image.Image, error) {
	return decodeJPEGStd(b)
}
