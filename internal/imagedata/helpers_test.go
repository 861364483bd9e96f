package imagedata

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// Quadrant colours of the asymmetric test pattern, as stored.
var (
	qTL = color.RGBA{255, 0, 0, 255}     // red
	qTR = color.RGBA{0, 255, 0, 255}     // green
	qBL = color.RGBA{0, 0, 255, 255}     // blue
	qBR = color.RGBA{255, 255, 255, 255} // white
)

// quadrants returns a w×h RGBA image with one colour per quadrant.
func quadrants(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(m, image.Rect(0, 0, w/2, h/2), image.NewUniform(qTL), image.Point{}, draw.Src)
	draw.Draw(m, image.Rect(w/2, 0, w, h/2), image.NewUniform(qTR), image.Point{}, draw.Src)
	draw.Draw(m, image.Rect(0, h/2, w/2, h), image.NewUniform(qBL), image.Point{}, draw.Src)
	draw.Draw(m, image.Rect(w/2, h/2, w, h), image.NewUniform(qBR), image.Point{}, draw.Src)
	return m
}

// textured returns a w×h image with smooth gradients plus fine detail, so
// JPEG encodes it to realistic sizes and scaled decodes can be compared.
func textured(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			i := m.PixOffset(x, y)
			m.Pix[i+0] = uint8(x * 255 / w)
			m.Pix[i+1] = uint8(y * 255 / h)
			m.Pix[i+2] = uint8((x/7 + y/5) * 37 % 256 / 2)
			m.Pix[i+3] = 255
		}
	}
	return m
}

func encodeJPEG(tb testing.TB, m image.Image, quality int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		tb.Fatalf("jpeg.Encode: %v", err)
	}
	return buf.Bytes()
}

func encodePNG(tb testing.TB, m image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		tb.Fatalf("png.Encode: %v", err)
	}
	return buf.Bytes()
}

func encodeGIF(tb testing.TB, m image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := gif.Encode(&buf, m, nil); err != nil {
		tb.Fatalf("gif.Encode: %v", err)
	}
	return buf.Bytes()
}

// withOrientation returns a copy of the JPEG jpg with an EXIF APP1 segment
// holding only IFD0 Orientation = o, inserted right after SOI.
func withOrientation(jpg []byte, o uint16) []byte {
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00\x2a")                       // big-endian TIFF header
	binary.Write(&tiff, binary.BigEndian, uint32(8))     // offset of IFD0
	binary.Write(&tiff, binary.BigEndian, uint16(1))     // one entry
	binary.Write(&tiff, binary.BigEndian, uint16(0x112)) // Orientation
	binary.Write(&tiff, binary.BigEndian, uint16(3))     // SHORT
	binary.Write(&tiff, binary.BigEndian, uint32(1))     // count
	binary.Write(&tiff, binary.BigEndian, o)             // value, left-justified
	binary.Write(&tiff, binary.BigEndian, uint16(0))     // padding
	binary.Write(&tiff, binary.BigEndian, uint32(0))     // no IFD1

	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	seg = append(seg, payload...)

	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// pngHeader returns a PNG signature and a valid IHDR claiming w×h, with no
// image data: a decompression bomb in 33 bytes.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 0, 17)
	ihdr = append(ihdr, "IHDR"...)
	ihdr = binary.BigEndian.AppendUint32(ihdr, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0) // 8-bit RGBA, no interlace
	b := []byte("\x89PNG\r\n\x1a\n")
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}

// gifHeader returns a GIF header whose logical screen is w×h.
func gifHeader(w, h uint16) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	return append(b, 0, 0, 0)
}

// jpegHeader returns SOI, a baseline SOF0 claiming w×h and the start of an
// SOS segment: no tables, no entropy-coded data.
func jpegHeader(w, h uint16) []byte {
	b := []byte{0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8}
	b = binary.BigEndian.AppendUint16(b, h)
	b = binary.BigEndian.AppendUint16(b, w)
	b = append(b, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)
	return append(b, 0xFF, 0xDA, 0, 12)
}

// webpLosslessHeader returns a VP8L WebP header claiming w×h (max 16384).
func webpLosslessHeader(w, h uint32) []byte {
	bits := (w - 1) | (h-1)<<14
	chunk := []byte{0x2f}
	chunk = binary.LittleEndian.AppendUint32(chunk, bits)
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(4+8+len(chunk)+1))
	b = append(b, "WEBPVP8L"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(chunk)))
	return append(b, append(chunk, 0)...)
}

// photoDir returns .deps/testdata, found by walking up from the working
// directory. Without it the test is skipped, or fails under
// GLIMPSE_STRICT_TESTS=1.
func photoDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		p := filepath.Join(dir, ".deps", "testdata")
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
		tb.Fatal(".deps/testdata not found; run scripts/setup.sh")
	}
	tb.Skip(".deps/testdata not found; run scripts/setup.sh")
	return ""
}

func readPhoto(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(photoDir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// near reports whether c is within tol of want on every channel.
func near(c color.Color, want color.RGBA, tol int) bool {
	r, g, b, _ := c.RGBA()
	d := func(x uint32, y uint8) bool {
		v := int(x>>8) - int(y)
		return v >= -tol && v <= tol
	}
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}

// uniformImage lets a test feed orient an image type it has no fast path for.
type uniformImage struct {
	c color.Color
	r image.Rectangle
}

func (u uniformImage) ColorModel() color.Model { return color.RGBAModel }
func (u uniformImage) Bounds() image.Rectangle { return u.r }
func (u uniformImage) At(int, int) color.Color { return u.c }

// readPhotoOptional returns a photo from .deps/testdata, or nil when absent.
func readPhotoOptional(name string) []byte {
	dir, err := os.Getwd()
	if err != nil {
		return nil
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, ".deps", "testdata", name)); err == nil {
			return b
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}
