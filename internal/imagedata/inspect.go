package imagedata

import (
	"bytes"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"

	"github.com/bep/imagemeta"
	"golang.org/x/image/webp"
)

// Format is an image format recognised by its magic bytes.
type Format string

// Supported formats.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	GIF  Format = "gif"
	WebP Format = "webp"
)

// supportedFormats lists the formats in the order used in messages.
var supportedFormats = []Format{JPEG, PNG, GIF, WebP}

// ContentType returns the MIME type of f, e.g. "image/jpeg", or "" if f is
// not a supported format.
func (f Format) ContentType() string {
	switch f {
	case JPEG, PNG, GIF, WebP:
		return "image/" + string(f)
	}
	return ""
}

// Header is what [Inspect] learns without decoding pixels.
type Header struct {
	Format      Format
	ContentType string // "image/jpeg", "image/png", "image/gif" or "image/webp"
	// Width and Height are the dimensions as stored, before orientation.
	Width, Height int
	// Orientation is the EXIF orientation 1..8; 1 when absent or invalid.
	Orientation int
}

// DisplaySize returns the dimensions after the EXIF orientation is applied:
// orientations 5 to 8 swap width and height.
func (h Header) DisplaySize() (w, ht int) {
	if h.Orientation >= 5 && h.Orientation <= 8 {
		return h.Height, h.Width
	}
	return h.Width, h.Height
}

// Inspect identifies the format of b from its magic bytes (never from a file
// name or Content-Type), reads the dimensions from the header only, reads the
// EXIF orientation and enforces lim. It decodes no pixels, so it is cheap
// enough to run on every upload before the bytes are stored.
func Inspect(b []byte, lim Limits) (Header, error) {
	if len(b) == 0 {
		return Header{}, errEmpty()
	}
	if err := lim.checkBytes(int64(len(b))); err != nil {
		return Header{}, err
	}
	f, other := sniff(b)
	if f == "" {
		return Header{}, errUnsupported(other, nil)
	}
	if w, h, ok := webpCanvas(b); ok {
		// x/image/webp calls canvases over 2^31 pixels invalid; name the
		// limit instead, as for the other formats.
		if err := lim.checkPixels(w, h); err != nil {
			return Header{}, err
		}
	}
	cfg, err := decodeConfig(f, b)
	if err != nil {
		return Header{}, err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return Header{}, errCorrupt(f, errors.New("zero image dimension"))
	}
	h := Header{
		Format:      f,
		ContentType: f.ContentType(),
		Width:       cfg.Width,
		Height:      cfg.Height,
		Orientation: 1,
	}
	if err := lim.checkPixels(h.Width, h.Height); err != nil {
		return Header{}, err
	}
	if f == GIF {
		// Only the first frame is decoded, but a file of thousands of
		// frames is refused before anyone stores it.
		n, err := countGIFFrames(b, lim.MaxFrames)
		if errors.Is(err, errGIFFrames) {
			return Header{}, lim.checkFrames(f, n)
		}
		if err != nil {
			return Header{}, errCorrupt(f, err)
		}
	}
	h.Orientation = readOrientation(f, b)
	return h, nil
}

// sniff returns the supported format of b, or "" and, when it recognises
// one, the name of an unsupported format.
func sniff(b []byte) (f Format, other string) {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return JPEG, ""
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, ""
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return GIF, ""
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return WebP, ""
	}
	// Recognise a few common formats we do not support, for a better message.
	switch {
	case bytes.HasPrefix(b, []byte("BM")) && len(b) >= 26:
		return "", "BMP"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "", "TIFF"
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		switch string(b[8:12]) {
		case "heic", "heix", "hevc", "heim", "heis", "mif1", "msf1":
			return "", "HEIC"
		case "avif", "avis":
			return "", "AVIF"
		}
	case bytes.HasPrefix(b, []byte("\xff\x0a")), bytes.HasPrefix(b, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n")):
		return "", "JPEG XL"
	case bytes.HasPrefix(b, []byte("%PDF-")):
		return "", "PDF"
	case bytes.HasPrefix(b, []byte("8BPS")):
		return "", "Photoshop"
	}
	return "", ""
}

// webpCanvas returns the canvas size of an extended (VP8X) WebP.
func webpCanvas(b []byte) (w, h int, ok bool) {
	if len(b) < 30 || string(b[0:4]) != "RIFF" || string(b[8:16]) != "WEBPVP8X" {
		return 0, 0, false
	}
	w = int(b[24]) | int(b[25])<<8 | int(b[26])<<16
	h = int(b[27]) | int(b[28])<<8 | int(b[29])<<16
	return w + 1, h + 1, true
}

// decodeConfig reads the dimensions of b from its header.
func decodeConfig(f Format, b []byte) (image.Config, error) {
	r := bytes.NewReader(b)
	var (
		cfg image.Config
		err error
	)
	switch f {
	case JPEG:
		cfg, err = jpeg.DecodeConfig(r)
	case PNG:
		cfg, err = png.DecodeConfig(r)
	case GIF:
		cfg, err = gif.DecodeConfig(r)
	case WebP:
		cfg, err = webp.DecodeConfig(r)
	}
	if err != nil {
		return image.Config{}, classify(f, err)
	}
	return cfg, nil
}

// classify maps a decoder error to ErrUnsupported (a valid file using a
// feature the decoder lacks) or ErrCorrupt (anything else, including
// io.ErrUnexpectedEOF from truncated data).
func classify(f Format, err error) error {
	var (
		je jpeg.UnsupportedError
		pe png.UnsupportedError
	)
	switch {
	case errors.As(err, &je), errors.As(err, &pe), isWebPUnsupported(f, err):
		return newError(ErrUnsupported, err, "this %s variant is not supported (%s)", f.ContentType(), err.Error())
	}
	return errCorrupt(f, err)
}

// isWebPUnsupported reports the "not implemented" errors of x/image/webp,
// which has no exported error type (e.g. animated WebP).
func isWebPUnsupported(f Format, err error) bool {
	return f == WebP && bytes.Contains([]byte(err.Error()), []byte("not implemented"))
}

// Bounds on the EXIF walk of readOrientation. Orientation is a single SHORT
// in IFD0, so a file that needs more than this to reach it is hostile.
const (
	orientMaxTags    = 256
	orientMaxTagSize = 64
)

// readOrientation returns the EXIF orientation of b, or 1. Metadata problems
// never reject an image: browsers ignore broken EXIF too. The walk is bounded
// by orientMaxTags tags and skips values over orientMaxTagSize bytes, so
// nested IFD pointers or huge claimed counts cost next to nothing.
func readOrientation(f Format, b []byte) int {
	var mf imagemeta.ImageFormat
	switch f {
	case JPEG:
		mf = imagemeta.JPEG
	case PNG:
		mf = imagemeta.PNG
	case WebP:
		mf = imagemeta.WebP
	default:
		return 1
	}
	o := 1
	_, err := imagemeta.Decode(imagemeta.Options{
		R:            bytes.NewReader(b),
		ImageFormat:  mf,
		Sources:      imagemeta.EXIF,
		LimitNumTags: orientMaxTags,
		LimitTagSize: orientMaxTagSize,
		ShouldHandleTag: func(ti imagemeta.TagInfo) bool {
			return ti.Tag == "Orientation" && ti.Namespace == "IFD0"
		},
		HandleTag: func(ti imagemeta.TagInfo) error {
			if v, ok := toInt(ti.Value); ok && v >= 1 && v <= 8 {
				o = v
			}
			return imagemeta.ErrStopWalking
		},
	})
	if err != nil {
		return 1
	}
	return o
}

func toInt(v any) (int, bool) {
	switch v := v.(type) {
	case uint16:
		return int(v), true
	case uint32:
		return int(v), true
	case uint8:
		return int(v), true
	case int:
		return v, true
	case int64:
		return int(v), true
	}
	return 0, false
}
