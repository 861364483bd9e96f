package qr

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/oned"
	"github.com/makiuchi-d/gozxing/qrcode"
	"golang.org/x/image/draw"
	"golang.org/x/image/math/f64"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
)

// tool returns the path of an external program the test needs. A missing
// tool skips the test, or fails it when GLIMPSE_STRICT_TESTS=1 (as in CI).
func tool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
			tb.Fatalf("%s not found: %v", name, err)
		}
		tb.Skipf("%s not found: %v", name, err)
	}
	return p
}

// photoDir finds .deps/testdata, the real photos fetched by the setup
// script, walking up from the working directory.
func photoDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		p := filepath.Join(dir, ".deps", "testdata")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
				tb.Fatal(".deps/testdata not found; run the setup script")
			}
			tb.Skip(".deps/testdata not found; run the setup script")
		}
		dir = parent
	}
}

// photo decodes one of the real photos, scaled to w×h when w > 0.
func photo(tb testing.TB, name string, w, h int) *image.RGBA {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(photoDir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	m, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("decoding %s: %v", name, err)
	}
	if w <= 0 {
		w, h = m.Bounds().Dx(), m.Bounds().Dy()
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), m, m.Bounds(), draw.Src, nil)
	return dst
}

// symbol is a code rendered at k pixels per module with its quiet zone;
// code is where the symbol proper (without quiet zone) lies in it.
type symbol struct {
	img  *image.Gray
	code image.Rectangle
}

// qrSymbol encodes text as a QR code with gozxing's encoder.
func qrSymbol(tb testing.TB, text string) symbol {
	tb.Helper()
	bm, err := qrcode.NewQRCodeWriter().Encode(text, gozxing.BarcodeFormat_QR_CODE, 0, 0, nil)
	if err != nil {
		tb.Fatal(err)
	}
	const quiet = 4 // gozxing's default quiet zone, in modules
	return render(bm, image.Rect(quiet, quiet, bm.GetWidth()-quiet, bm.GetHeight()-quiet))
}

// barSymbol encodes text as a 1-D barcode of format f, bars h modules tall.
func barSymbol(tb testing.TB, text string, f gozxing.BarcodeFormat) symbol {
	tb.Helper()
	var w gozxing.Writer
	switch f {
	case gozxing.BarcodeFormat_EAN_13:
		w = oned.NewEAN13Writer()
	case gozxing.BarcodeFormat_CODE_128:
		w = oned.NewCode128Writer()
	default:
		tb.Fatalf("no writer for %v", f)
	}
	row, err := w.Encode(text, f, 0, 1, nil)
	if err != nil {
		tb.Fatal(err)
	}
	const quiet, h = 10, 40
	bm, _ := gozxing.NewBitMatrix(row.GetWidth()+2*quiet, h+2*quiet)
	for y := range h {
		for x := range row.GetWidth() {
			if row.Get(x, 0) {
				bm.Set(quiet+x, quiet+y)
			}
		}
	}
	return render(bm, image.Rect(quiet, quiet, quiet+row.GetWidth(), quiet+h))
}

// modulePx is how many pixels a module gets before a symbol is placed; the
// placement then scales it with a bilinear filter, which blurs edges the way
// a camera does.
const modulePx = 8

func render(bm *gozxing.BitMatrix, code image.Rectangle) symbol {
	w, h := bm.GetWidth(), bm.GetHeight()
	m := image.NewGray(image.Rect(0, 0, w*modulePx, h*modulePx))
	for y := range m.Bounds().Dy() {
		for x := range m.Bounds().Dx() {
			v := uint8(255)
			if bm.Get(x/modulePx, y/modulePx) {
				v = 20
			}
			m.Pix[y*m.Stride+x] = v
		}
	}
	return symbol{img: m, code: image.Rectangle{code.Min.Mul(modulePx), code.Max.Mul(modulePx)}}
}

// placement puts a symbol on a picture: the symbol proper is side pixels
// wide, centred at (cx, cy), turned clockwise by angle degrees.
type placement struct {
	sym         symbol
	side        float64
	cx, cy      float64
	angle       float64
	text        string
	wantCorners bool // QR: the analyzer reports the four corners
}

// transform maps symbol pixels to picture pixels.
func (p placement) transform() f64.Aff3 {
	s := p.side / float64(p.sym.code.Dx())
	sin, cos := math.Sincos(p.angle * math.Pi / 180)
	c := p.sym.code
	qx, qy := float64(c.Min.X+c.Max.X)/2, float64(c.Min.Y+c.Max.Y)/2
	return f64.Aff3{
		s * cos, -s * sin, p.cx - s*(cos*qx-sin*qy),
		s * sin, s * cos, p.cy - s*(sin*qx+cos*qy),
	}
}

// corners returns where the symbol's corners land, clockwise from its
// top-left as it reads.
func (p placement) corners() [4][2]float64 {
	t := p.transform()
	c := p.sym.code
	var out [4][2]float64
	for i, q := range [4]image.Point{c.Min, {c.Max.X, c.Min.Y}, c.Max, {c.Min.X, c.Max.Y}} {
		x, y := float64(q.X), float64(q.Y)
		out[i] = [2]float64{t[0]*x + t[1]*y + t[2], t[3]*x + t[4]*y + t[5]}
	}
	return out
}

// compose draws the placements onto a copy of bg.
func compose(bg *image.RGBA, ps []placement) *image.RGBA {
	dst := image.NewRGBA(bg.Bounds())
	copy(dst.Pix, bg.Pix)
	for _, p := range ps {
		draw.BiLinear.Transform(dst, p.transform(), p.sym.img, p.sym.img.Bounds(), draw.Src, nil)
	}
	return dst
}

func encodeJPEG(tb testing.TB, m image.Image, quality int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// decode decodes b the way the worker does for an analyzer asking for full
// resolution.
func decode(tb testing.TB, b []byte) *analyzer.Image {
	tb.Helper()
	dec, err := imagedata.Decode(b, imagedata.DefaultLimits(), imagedata.DecodeOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return analyzer.NewImage("test", b, dec)
}

// withOrientation inserts an EXIF segment recording orientation o after the
// SOI marker of the JPEG j.
func withOrientation(j []byte, o uint16) []byte {
	var tiff []byte
	tiff = append(tiff, "MM\x00\x2a\x00\x00\x00\x08"...)
	tiff = binary.BigEndian.AppendUint16(tiff, 1) // one entry
	tiff = binary.BigEndian.AppendUint16(tiff, 0x0112)
	tiff = binary.BigEndian.AppendUint16(tiff, 3) // SHORT
	tiff = binary.BigEndian.AppendUint32(tiff, 1)
	tiff = binary.BigEndian.AppendUint16(tiff, o)
	tiff = append(tiff, 0, 0, 0, 0, 0, 0) // padding, next IFD 0
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := []byte{0xff, 0xd8, 0xff, 0xe1}
	out = binary.BigEndian.AppendUint16(out, uint16(len(seg)+2))
	out = append(out, seg...)
	return append(out, j[2:]...)
}

// rotateCCW returns m turned 90 degrees counter-clockwise: what a camera
// stores for a picture it tags with orientation 6.
func rotateCCW(m *image.RGBA) *image.RGBA {
	b := m.Bounds()
	r := image.NewRGBA(image.Rect(0, 0, b.Dy(), b.Dx()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			r.SetRGBA(y, b.Dx()-1-x, m.RGBAAt(x, y))
		}
	}
	return r
}

// noise is a picture of random grey levels, a worst case for false codes.
func noise(w, h int) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	var s uint32 = 1
	for i := range m.Pix {
		s = s*1664525 + 1013904223
		m.Pix[i] = uint8(s >> 24)
	}
	return m
}
