package imagedata

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
)

// DecodeOptions tunes [Decode].
type DecodeOptions struct {
	// MinSide > 0 lets the decoder return a smaller image whose shorter side
	// is still >= MinSide. Only the libjpeg-turbo backend uses it, through
	// DCT scaling by 1/2, 1/4 or 1/8, which is much cheaper than a full
	// decode followed by a resize. The pure-Go backend and the other formats
	// ignore it and return full size: the caller resizes anyway, and a
	// separate downscale here would only add a pass. 0 means full size.
	MinSide int
}

// Image is a decoded image.
type Image struct {
	// Header describes the encoded image; Width and Height are the stored
	// dimensions, which may be larger than Image when MinSide scaled a JPEG.
	Header
	// Image holds the pixels, already rotated and flipped to display
	// orientation, with bounds starting at (0, 0). The concrete type depends
	// on the format and backend: *image.RGBA for JPEG through libjpeg-turbo,
	// *image.YCbCr, *image.Gray or *image.CMYK for JPEG through image/jpeg
	// (*image.RGBA once rotated), *image.Paletted for GIF, and so on.
	Image image.Image
}

// Decode checks b with [Inspect], so limits are enforced before any pixel is
// decoded, then decodes it once and applies the EXIF orientation. For GIF it
// returns the first frame, composed onto the logical screen.
func Decode(b []byte, lim Limits, opt DecodeOptions) (*Image, error) {
	h, err := Inspect(b, lim)
	if err != nil {
		return nil, err
	}
	m, err := decodePixels(b, h, opt)
	if err != nil {
		return nil, err
	}
	return &Image{Header: h, Image: orient(m, h.Orientation)}, nil
}

// decodePixels runs the format's decoder. A panic inside a decoder is turned
// into ErrCorrupt: hostile input must never take the process down.
func decodePixels(b []byte, h Header, opt DecodeOptions) (m image.Image, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, errCorrupt(h.Format, fmt.Errorf("decoder panic: %v", r))
		}
	}()
	switch h.Format {
	case JPEG:
		m, err = decodeJPEG(b, h, opt.MinSide)
	case PNG:
		m, err = png.Decode(bytes.NewReader(b))
	case GIF:
		m, err = decodeGIF(b, h)
	case WebP:
		m, err = webp.Decode(bytes.NewReader(b))
	default:
		return nil, errUnsupported("", nil)
	}
	if err != nil {
		if _, ok := err.(*Error); ok {
			return nil, err
		}
		return nil, classify(h.Format, err)
	}
	// The pixels must never exceed what Inspect checked against the limits.
	if r := m.Bounds(); r.Dx() > h.Width || r.Dy() > h.Height || r.Empty() {
		return nil, errCorrupt(h.Format, fmt.Errorf("decoded %v, header says %dx%d", r, h.Width, h.Height))
	}
	return m, nil
}

// decodeJPEGStd decodes a JPEG at full size with image/jpeg.
func decodeJPEGStd(b []byte) (image.Image, error) {
	m, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, classify(JPEG, err)
	}
	return m, nil
}

// decodeGIF returns the first frame. A frame smaller than the logical screen
// is drawn onto a transparent canvas of the screen size, as browsers show it.
func decodeGIF(b []byte, h Header) (image.Image, error) {
	m, err := gif.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	screen := image.Rect(0, 0, h.Width, h.Height)
	if m.Bounds() == screen {
		return m, nil
	}
	canvas := image.NewNRGBA(screen)
	draw.Draw(canvas, m.Bounds(), m, m.Bounds().Min, draw.Src)
	return canvas, nil
}
