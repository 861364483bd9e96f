package qr

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/multi"
	multiqr "github.com/makiuchi-d/gozxing/multi/qrcode"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

const shopURL = "https://shop.example/p/1234?ref=qr"

var shopParts = &job.URLParts{Scheme: "https", Host: "shop.example", Path: "/p/1234", Query: "ref=qr"}

// checkCodes compares got with the placements: one code per placement, in
// any order, same text and format, and for QR codes the four corners within
// 5% of the code's side of where it was placed (points are scaled by scale,
// the display size over the composed picture's size).
func checkCodes(t *testing.T, got []job.Code, want []placement, format string, scale float64) {
	t.Helper()
	if got == nil {
		t.Fatal("QR = nil; want a non-nil slice")
	}
	if len(got) != len(want) {
		t.Fatalf("found %d codes %+v; want %d", len(got), got, len(want))
	}
	for _, p := range want {
		i := indexOf(got, p.text)
		if i < 0 {
			t.Errorf("code %q not found in %+v", p.text, got)
			continue
		}
		c := got[i]
		if c.Format != format {
			t.Errorf("code %q: Format = %q; want %q", p.text, c.Format, format)
		}
		if !p.wantCorners {
			// 1-D: the ends of a scan line, inside the symbol.
			cs := p.corners()
			minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
			for _, w := range cs {
				minX, maxX = min(minX, w[0]*scale), max(maxX, w[0]*scale)
				minY, maxY = min(minY, w[1]*scale), max(maxY, w[1]*scale)
			}
			m := 0.05 * p.side * scale
			for k, q := range c.Points {
				if q.X < minX-m || q.X > maxX+m || q.Y < minY-m || q.Y > maxY+m {
					t.Errorf("code %q point %d = (%.1f, %.1f); want inside (%.0f, %.0f)-(%.0f, %.0f)",
						p.text, k, q.X, q.Y, minX, minY, maxX, maxY)
				}
			}
			continue
		}
		if len(c.Points) != 4 {
			t.Errorf("code %q: %d points; want 4 corners", p.text, len(c.Points))
			continue
		}
		tol := 0.05 * p.side * scale
		for k, w := range p.corners() {
			wx, wy := w[0]*scale, w[1]*scale
			if d := math.Hypot(c.Points[k].X-wx, c.Points[k].Y-wy); d > tol {
				t.Errorf("code %q corner %d = (%.1f, %.1f); want (%.1f, %.1f) ± %.1f (off by %.1f)",
					p.text, k, c.Points[k].X, c.Points[k].Y, wx, wy, tol, d)
			}
		}
	}
}

func indexOf(codes []job.Code, text string) int {
	for i, c := range codes {
		if c.Text == text {
			return i
		}
	}
	return -1
}

func TestAnalyzePhotos(t *testing.T) {
	sym := qrSymbol(t, shopURL)
	large := photo(t, "kite.jpg", 1600, 1200)
	type tc struct {
		name    string
		bg      *image.RGBA
		place   []placement
		quality int
	}
	var tests []tc
	// A code filling a good part of a 2 MP photo: found in the working copy.
	for _, angle := range []float64{0, 15, 45, 90} {
		for _, q := range []int{95, 75, 50} {
			tests = append(tests, tc{
				name:    fmt.Sprintf("large/%g°/q%d", angle, q),
				bg:      large,
				place:   []placement{{sym: sym, side: 360, cx: 900, cy: 560, angle: angle, text: shopURL, wantCorners: true}},
				quality: q,
			})
		}
	}
	// A ~150 px code in a 12 MP photo: too small for the working copy, so
	// only the full-size read finds it.
	huge := photo(t, "kite.jpg", 4000, 3000)
	for _, c := range []struct {
		angle   float64
		quality int
	}{{0, 75}, {15, 75}, {45, 75}, {90, 75}, {15, 95}, {15, 50}} {
		tests = append(tests, tc{
			name:    fmt.Sprintf("small/%g°/q%d", c.angle, c.quality),
			bg:      huge,
			place:   []placement{{sym: sym, side: 150, cx: 2900, cy: 1100, angle: c.angle, text: shopURL, wantCorners: true}},
			quality: c.quality,
		})
	}
	other := "https://shop.example/p/98765?ref=shelf&lang=fr"
	tests = append(tests, tc{
		name: "two codes",
		bg:   large,
		place: []placement{
			{sym: sym, side: 300, cx: 380, cy: 380, angle: 0, text: shopURL, wantCorners: true},
			{sym: qrSymbol(t, other), side: 320, cx: 1150, cy: 780, angle: 30, text: other, wantCorners: true},
		},
		quality: 85,
	})
	third := "WIFI:S:glimpse;T:WPA;P:correct horse;;"
	tests = append(tests, tc{
		name: "three codes",
		bg:   large,
		place: []placement{
			{sym: sym, side: 260, cx: 300, cy: 300, angle: 10, text: shopURL, wantCorners: true},
			{sym: qrSymbol(t, other), side: 300, cx: 1250, cy: 320, angle: -20, text: other, wantCorners: true},
			{sym: qrSymbol(t, third), side: 280, cx: 800, cy: 880, angle: 90, text: third, wantCorners: true},
		},
		quality: 85,
	})

	a := New(Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := decode(t, encodeJPEG(t, compose(tt.bg, tt.place), tt.quality))
			var res job.Result
			if err := a.Analyze(context.Background(), img, &res); err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			checkCodes(t, res.QR, tt.place, "QR_CODE", 1)
			for _, c := range res.QR {
				if c.Text == shopURL && (c.URL == nil || *c.URL != *shopParts) {
					t.Errorf("URL of %q = %+v; want %+v", c.Text, c.URL, shopParts)
				}
				if c.Text == third && c.URL != nil {
					t.Errorf("URL of %q = %+v; want nil", c.Text, c.URL)
				}
			}
		})
	}
}

func TestAnalyzeNoCode(t *testing.T) {
	dir := photoDir(t)
	names, err := filepath.Glob(filepath.Join(dir, "*.[jp][pn]g"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no photos in %s: %v", dir, err)
	}
	type tc struct {
		name string
		b    []byte
	}
	var tests []tc
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		tests = append(tests, tc{filepath.Base(n), b})
	}
	blank := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for i := range blank.Pix {
		blank.Pix[i] = 255
	}
	tests = append(tests,
		tc{"blank", encodeJPEG(t, blank, 90)},
		tc{"noise", encodeJPEG(t, noise(1200, 900), 90)},
		tc{"tiny", encodeJPEG(t, image.NewRGBA(image.Rect(0, 0, 1, 1)), 90)},
	)
	a := New(Config{Barcodes: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res job.Result
			if err := a.Analyze(context.Background(), decode(t, tt.b), &res); err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if res.QR == nil || len(res.QR) != 0 {
				t.Errorf("QR = %#v; want an empty non-nil slice", res.QR)
			}
		})
	}
}

// TestAnalyzeOrientation stores a photo turned for EXIF orientation 6: the
// points must come out in display coordinates.
func TestAnalyzeOrientation(t *testing.T) {
	display := photo(t, "dog.jpg", 1200, 900)
	p := placement{sym: qrSymbol(t, shopURL), side: 300, cx: 820, cy: 300, angle: 20, text: shopURL, wantCorners: true}
	stored := rotateCCW(compose(display, []placement{p}))
	img := decode(t, withOrientation(encodeJPEG(t, stored, 85), 6))
	if w, h := img.DisplaySize(); w != 1200 || h != 900 {
		t.Fatalf("DisplaySize() = %dx%d; want 1200x900", w, h)
	}
	var res job.Result
	if err := New(Config{}).Analyze(context.Background(), img, &res); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	checkCodes(t, res.QR, []placement{p}, "QR_CODE", 1)
}

// TestAnalyzeScaledPixels gives the analyzer pixels at half the display size,
// as when the worker decoded a JPEG with DCT scaling: points are scaled up.
func TestAnalyzeScaledPixels(t *testing.T) {
	p := placement{sym: qrSymbol(t, shopURL), side: 240, cx: 500, cy: 420, angle: 15, text: shopURL, wantCorners: true}
	pixels := compose(photo(t, "horses.jpg", 1000, 800), []placement{p})
	img := &analyzer.Image{
		Header: imagedata.Header{Format: imagedata.JPEG, Width: 2000, Height: 1600, Orientation: 1},
		Pixels: pixels,
	}
	var res job.Result
	if err := New(Config{}).Analyze(context.Background(), img, &res); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	checkCodes(t, res.QR, []placement{p}, "QR_CODE", 2)
}

func TestAnalyzeMaxCodes(t *testing.T) {
	bg := photo(t, "eagle.jpg", 1200, 800)
	var ps []placement
	for i := range 3 {
		text := fmt.Sprintf("code %d", i)
		ps = append(ps, placement{sym: qrSymbol(t, text), side: 200, cx: 200 + 380*float64(i), cy: 400, text: text})
	}
	img := decode(t, encodeJPEG(t, compose(bg, ps), 90))
	tests := []struct {
		max, want int
	}{{0, 3}, {1, 1}, {2, 2}, {3, 3}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.max), func(t *testing.T) {
			var res job.Result
			if err := New(Config{MaxCodes: tt.max}).Analyze(context.Background(), img, &res); err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if got := len(res.QR); got != tt.want {
				t.Errorf("MaxCodes %d: found %d codes; want %d", tt.max, got, tt.want)
			}
		})
	}
}

func TestAnalyzeBarcodes(t *testing.T) {
	bg := photo(t, "coffee.png", 1200, 800)
	ean := placement{sym: barSymbol(t, "4006381333931", gozxing.BarcodeFormat_EAN_13), side: 380, cx: 330, cy: 400, text: "4006381333931"}
	upc := placement{sym: barSymbol(t, "0036000291452", gozxing.BarcodeFormat_EAN_13), side: 380, cx: 330, cy: 400, text: "036000291452"}
	c128 := placement{sym: barSymbol(t, "GLIMPSE-42", gozxing.BarcodeFormat_CODE_128), side: 380, cx: 850, cy: 400, angle: 90, text: "GLIMPSE-42"}
	tests := []struct {
		name   string
		place  placement
		format string
	}{
		{"ean-13", ean, "EAN_13"},
		{"upc-a", upc, "UPC_A"},
		{"code 128 vertical", c128, "CODE_128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := decode(t, encodeJPEG(t, compose(bg, []placement{tt.place}), 85))
			var res job.Result
			if err := New(Config{Barcodes: true}).Analyze(context.Background(), img, &res); err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			checkCodes(t, res.QR, []placement{tt.place}, tt.format, 1)
			if len(res.QR) == 1 && len(res.QR[0].Points) != 2 {
				t.Errorf("Points = %v; want the 2 ends of the scan line", res.QR[0].Points)
			}
			res = job.Result{}
			if err := New(Config{}).Analyze(context.Background(), img, &res); err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if len(res.QR) != 0 {
				t.Errorf("without Barcodes: QR = %+v; want none", res.QR)
			}
		})
	}
}

// TestZbarAgrees cross-checks one fixture with zbarimg, an independent
// decoder.
func TestZbarAgrees(t *testing.T) {
	zbarimg := tool(t, "zbarimg")
	p := placement{sym: qrSymbol(t, shopURL), side: 360, cx: 900, cy: 560, angle: 15, text: shopURL, wantCorners: true}
	b := encodeJPEG(t, compose(photo(t, "kite.jpg", 1600, 1200), []placement{p}), 75)
	path := filepath.Join(t.TempDir(), "code.jpg")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(zbarimg, "-q", "--raw", "-Sdisable", "-Sqrcode.enable", path).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	ref := strings.TrimRight(string(out), "\n")
	var res job.Result
	if err := New(Config{}).Analyze(context.Background(), decode(t, b), &res); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	if len(res.QR) != 1 || res.QR[0].Text != ref {
		t.Errorf("QR = %+v; want one code %q as zbarimg reads it", res.QR, ref)
	}
}

func TestAnalyzeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	img := decode(t, encodeJPEG(t, noise(64, 64), 90))
	var res job.Result
	err := New(Config{}).Analyze(ctx, img, &res)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze with a canceled context = %v; want context.Canceled", err)
	}
	if res.QR != nil {
		t.Errorf("QR = %+v; want nil after an error", res.QR)
	}
}

func TestFeatureAndMinSide(t *testing.T) {
	a := New(Config{})
	if got := a.Feature(); got != job.FeatureQR {
		t.Errorf("Feature() = %q; want %q", got, job.FeatureQR)
	}
	if got := a.MinSide(); got != analyzer.FullResolution {
		t.Errorf("MinSide() = %d; want %d", got, analyzer.FullResolution)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		text string
		want *job.URLParts
	}{
		{shopURL, shopParts},
		{"HTTPS://Shop.Example:8443/P/1?Ref=QR", &job.URLParts{Scheme: "https", Host: "shop.example:8443", Path: "/P/1", Query: "Ref=QR"}},
		{"http://example.com", &job.URLParts{Scheme: "http", Host: "example.com"}},
		{" https://example.com/a%20b \n", &job.URLParts{Scheme: "https", Host: "example.com", Path: "/a b"}},
		{"https:///no-host", nil},
		{"shop.example/p/1", nil},
		{"ftp://example.com/file", nil},
		{"mailto:someone@example.com", nil},
		{"WIFI:S:glimpse;T:WPA;P:secret;;", nil},
		{"4006381333931", nil},
		{"http://[::1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := parseURL(tt.text)
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Errorf("parseURL(%q) = %+v; want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestLuminance(t *testing.T) {
	rgba := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i * 10)
	}
	for i := 3; i < len(rgba.Pix); i += 4 {
		rgba.Pix[i] = 255
	}
	want := newLuminance(rgba).pix
	nrgba := image.NewNRGBA(rgba.Bounds())
	copy(nrgba.Pix, rgba.Pix)
	gotGeneric := newLuminance(generic{rgba}).pix
	if string(gotGeneric) != string(want) {
		t.Errorf("generic luminance = %v; want %v", gotGeneric, want)
	}
	if got := newLuminance(nrgba).pix; string(got) != string(want) {
		t.Errorf("NRGBA luminance = %v; want %v", got, want)
	}

	// The lane-parallel RGBA path against the formula, pixel by pixel, on
	// premultiplied colours of every opacity and an odd width.
	odd := image.NewRGBA(image.Rect(0, 0, 101, 7))
	var s uint32 = 7
	for i := 0; i < len(odd.Pix); i += 4 {
		s = s*1664525 + 1013904223
		a := uint8(s >> 24)
		for c := range 3 {
			s = s*1664525 + 1013904223
			odd.Pix[i+c] = uint8(uint32(a) * (s >> 24) / 255)
		}
		odd.Pix[i+3] = a
	}
	got := newLuminance(odd.SubImage(image.Rect(1, 1, 100, 7))).pix
	for i, v := range got {
		x, y := 1+i%99, 1+i/99
		p := odd.RGBAAt(x, y)
		if want := byte((54*uint(p.R)+183*uint(p.G)+19*uint(p.B)+128)>>8 + 255 - uint(p.A)); v != want {
			t.Fatalf("luminance at (%d, %d) of %v = %d; want %d", x, y, p, v, want)
		}
	}

	l := &luminance{pix: []byte{1, 2, 3, 4, 5, 6}, w: 3, h: 2}
	r, _ := l.RotateCounterClockwise()
	// 1 2 3      3 6
	// 4 5 6  ->  2 5
	//            1 4
	if got := r.GetMatrix(); string(got) != string([]byte{3, 6, 2, 5, 1, 4}) || r.GetWidth() != 2 || r.GetHeight() != 3 {
		t.Errorf("RotateCounterClockwise = %v (%dx%d); want [3 6 2 5 1 4] (2x3)", got, r.GetWidth(), r.GetHeight())
	}
	c, err := l.Crop(1, 0, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.GetMatrix(); string(got) != string([]byte{2, 3, 5, 6}) {
		t.Errorf("Crop(1, 0, 2, 2) = %v; want [2 3 5 6]", got)
	}
	if _, err := l.Crop(2, 0, 2, 1); err == nil {
		t.Error("Crop outside the image: no error")
	}
}

// generic hides an image's concrete type, forcing the At path.
type generic struct{ image.Image }

// BenchmarkAnalyze measures a whole Analyze on a decoded JPEG, including the
// working copy (a fresh analyzer.Image per iteration, so Fit is not cached),
// once with our multi reader (multi=runs) and once with gozxing's
// QRCodeMultiReader (multi=gozxing), which it replaces.
func BenchmarkAnalyze(b *testing.B) {
	sizes := []struct {
		name       string
		w, h, side int
	}{
		{"1MP", 1152, 864, 200},
		{"12MP", 4000, 3000, 300},
	}
	sym := qrSymbol(b, shopURL)
	for _, sz := range sizes {
		bg := photo(b, "kite.jpg", sz.w, sz.h)
		p := placement{sym: sym, side: float64(sz.side), cx: float64(sz.w) * 0.7, cy: float64(sz.h) * 0.4, angle: 15, text: shopURL}
		scenes := []struct {
			name string
			img  *image.RGBA
			want int
		}{
			{"code", compose(bg, []placement{p}), 1},
			{"none", bg, 0},
		}
		for _, sc := range scenes {
			dec, err := imagedata.Decode(encodeJPEG(b, sc.img, 85), imagedata.DefaultLimits(), imagedata.DecodeOptions{})
			if err != nil {
				b.Fatal(err)
			}
			for _, cfg := range []struct {
				name string
				cfg  Config
			}{{"qr", Config{}}, {"qr+1d", Config{Barcodes: true}}} {
				// Our multi reader and gozxing's side by side, so that
				// their ratio is measured in the same run on a noisy
				// machine.
				for _, mr := range []struct {
					name string
					new  func() multi.MultipleBarcodeReader
				}{
					{"multi=runs", func() multi.MultipleBarcodeReader { return newMultiReader() }},
					{"multi=gozxing", multiqr.NewQRCodeMultiReader},
				} {
					b.Run(sz.name+"/"+sc.name+"/"+cfg.name+"/"+mr.name, func(b *testing.B) {
						a := New(cfg.cfg)
						a.multi = mr.new()
						ctx := context.Background()
						for b.Loop() {
							var res job.Result
							if err := a.Analyze(ctx, analyzer.NewImage("bench", nil, dec), &res); err != nil {
								b.Fatal(err)
							}
							if len(res.QR) != sc.want {
								b.Fatalf("found %d codes; want %d", len(res.QR), sc.want)
							}
						}
					})
				}
			}
		}
	}
}
