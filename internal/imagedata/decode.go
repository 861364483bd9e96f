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
	// Buffers, when set, provides the buffers of the pixels where the
	// decoder lets Decode choose them (libjpeg-turbo's output, a rotation);
	// Image.Release gives them back.
	Buffers *Buffers
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

	// bufs holds Image's pixel buffer when it came from DecodeOptions.Buffers.
	bufs *Buffers
}

// Release gives the pixel buffer back to the Buffers it came from, if it
// came from one; nobody may use the pixels afterwards. Releasing twice, or
// an Image whose pixels came from elsewhere, does nothing.
func (im *Image) Release() {
	if im.bufs == nil {
		return
	}
	if m, ok := im.Image.(*image.RGBA); ok {
		im.bufs.Put(m.Pix)
	}
	im.bufs, im.Image = nil, nil
}

// Decode checks b with [Inspect], so limits are enforced before any pixel is
// decoded, then decodes it once and applies the EXIF orientation. For GIF it
// returns the first frame, composed onto the logical screen.
func Decode(b []byte, lim Limits, opt DecodeOptions) (*Image, error) {
	h, err := Inspect(b, lim)
	if err != nil {
		return nil, err
	}
	m, pooled, err := decodePixels(b, h, opt)
	if err != nil {
		return nil, err
	}
	out := &Image{Header: h, Image: m}
	if pooled {
		out.bufs = opt.Buffers
	}
	if o := orient(m, h.Orientation, opt.Buffers); o != m {
		if pooled {
			opt.Buffers.Put(m.(*image.RGBA).Pix)
		}
		out.Image = o
		out.bufs = nil
		if _, ok := o.(*image.RGBA); ok && opt.Buffers != nil {
			out.bufs = opt.Buffers
		}
	}
	return out, nil
}

// decodePixels runs the format's decoder. A panic inside a decoder is turned
// into ErrCorrupt: hostile input must never take the process down. pooled
// reports that m is an *image.RGBA whose buffer came from opt.Buffers.
func decodePixels(b []byte, h Header, opt DecodeOptions) (m image.Image, pooled bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, pooled, err = nil, false, errCorrupt(h.Format, fmt.Errorf("decoder panic: %v", r))
		}
	}()
	switch h.Format {
	case JPEG:
		m, pooled, err = decodeJPEG(b, h, opt.MinSide, opt.Buffers)
	case PNG:
		m, err = png.Decode(bytes.NewReader(b))
	case GIF:
		m, err = decodeGIF(b, h)
	case WebP:
		m, err = webp.Decode(bytes.NewReader(b))
	default:
		return nil, false, errUnsupported("", nil)
	}
	if err != nil {
		if _, ok := err.(*Error); ok {
			return nil, false, err
		}
		return nil, false, classify(h.Format, err)
	}
	// The pixels must never exceed what Inspect checked against the limits.
	if r := m.Bounds(); r.Dx() > h.Width || r.Dy() > h.Height || r.Empty() {
		return nil, false, errCorrupt(h.Format, fmt.Errorf("decoded %v, header says %dx%d", r, h.Width, h.Height))
	}
	return m, pooled, nil
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
