package pump

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bep/imagemeta"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/glimpse-oss/glimpse/internal/imagedata"
)

// smallConfig keeps the photos small so the tests stay quick.
func smallConfig() Config {
	c := NewDefaultConfig()
	c.Width, c.Height = 640, 480
	c.Seed = 42
	return c
}

func newPump(t *testing.T, c Config) *Pump {
	t.Helper()
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeterministic(t *testing.T) {
	a, b := newPump(t, smallConfig()), newPump(t, smallConfig())
	other := smallConfig()
	other.Seed++
	c := newPump(t, other)
	for i := 1; i <= 4; i++ {
		pa, err := a.Photo(i)
		if err != nil {
			t.Fatal(err)
		}
		// Make b's photos in another order: each depends only on its index.
		if _, err := b.Photo(5 - i); err != nil {
			t.Fatal(err)
		}
		pb2, _ := b.Photo(i)
		if !bytes.Equal(pa.Data, pb2.Data) || pa.Entry != pb2.Entry {
			t.Errorf("photo %d differs between two pumps with the same seed", i)
		}
		pc, _ := c.Photo(i)
		if bytes.Equal(pa.Data, pc.Data) {
			t.Errorf("photo %d is the same with seeds 42 and 43", i)
		}
	}
}

// decodeQR reads the QR code of a JPEG's stored pixels (the reader finds
// codes at any rotation).
func decodeQR(t *testing.T, b []byte) string {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return "error: " + err.Error()
	}
	return res.GetText()
}

func TestQRDecodesToManifest(t *testing.T) {
	p := newPump(t, smallConfig())
	for i := 1; i <= 12; i++ {
		ph, err := p.Photo(i)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeQR(t, ph.Data); got != ph.Entry.QR {
			t.Errorf("photo %d (orientation %d): QR = %q; want %q", i, ph.Entry.Orientation, got, ph.Entry.QR)
		}
	}
}

func TestQROnPhotoBackground(t *testing.T) {
	dir := t.TempDir()
	bg := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for y := range 200 {
		for x := range 300 {
			bg.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, bg, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "bg.jpg")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c := smallConfig()
	c.Backgrounds = []string{path}
	ph, err := newPump(t, c).Photo(1)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeQR(t, ph.Data); got != ph.Entry.QR {
		t.Errorf("QR = %q; want %q", got, ph.Entry.QR)
	}
}

// readEXIF reads the tags of a JPEG with bep/imagemeta.
func readEXIF(t *testing.T, b []byte) imagemeta.Tags {
	t.Helper()
	var tags imagemeta.Tags
	_, err := imagemeta.Decode(imagemeta.Options{
		R:           bytes.NewReader(b),
		ImageFormat: imagemeta.JPEG,
		Sources:     imagemeta.EXIF,
		HandleTag:   func(ti imagemeta.TagInfo) error { tags.Add(ti); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

// exifCases cover all four hemispheres, offsets of both signs and a half
// hour, the date line and the poles' neighbourhood, and every orientation.
var exifCases = []struct {
	name        string
	lat, lon    float64
	at          time.Time
	orientation int
}{
	{"paris", 48.8583701, 2.2944813, time.Date(2024, 5, 17, 14, 3, 11, 0, time.FixedZone("", 2*3600)), 1},
	{"sao paulo", -23.5505199, -46.6333094, time.Date(2024, 1, 2, 23, 59, 59, 0, time.FixedZone("", -3*3600)), 6},
	{"mumbai", 19.0759837, 72.8776559, time.Date(2023, 12, 31, 0, 0, 0, 0, time.FixedZone("", 5*3600+1800)), 8},
	{"fiji date line", -17.7134, 179.9999999, time.Date(2024, 2, 29, 12, 0, 0, 0, time.FixedZone("", 12*3600)), 3},
	{"alaska", 64.2008413, -149.4936733, time.Date(2024, 7, 4, 9, 30, 0, 0, time.FixedZone("", -9*3600)), 1},
	{"near the pole", 89.9999999, -0.0000001, time.Date(2024, 3, 1, 6, 0, 0, 0, time.UTC), 6},
}

// withEXIF writes a small JPEG carrying e.
func withEXIF(t *testing.T, e EXIF) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 16, 8)), nil); err != nil {
		t.Fatal(err)
	}
	app1, err := e.APP1()
	if err != nil {
		t.Fatal(err)
	}
	b, err := InsertSegment(buf.Bytes(), app1)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEXIFRoundTripImagemeta(t *testing.T) {
	for _, tc := range exifCases {
		t.Run(tc.name, func(t *testing.T) {
			gps, err := NewGPS(tc.lat, tc.lon)
			if err != nil {
				t.Fatal(err)
			}
			b := withEXIF(t, EXIF{Make: "Apple", Model: "iPhone 15", Orientation: tc.orientation, TakenAt: tc.at, GPS: gps})
			tags := readEXIF(t, b)
			lat, lon, err := tags.GetLatLong()
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(lat-tc.lat) > 1e-6 || math.Abs(lon-tc.lon) > 1e-6 {
				t.Errorf("position = %.8f,%.8f; want %.8f,%.8f within 1e-6°", lat, lon, tc.lat, tc.lon)
			}
			wlat, wlon := gps.Degrees()
			if math.Abs(lat-wlat) > 1e-12 || math.Abs(lon-wlon) > 1e-12 {
				t.Errorf("position = %.12f,%.12f; Degrees says %.12f,%.12f", lat, lon, wlat, wlon)
			}
			ex := tags.EXIF()
			want := map[string]any{
				"Make":               "Apple",
				"Model":              "iPhone 15",
				"DateTimeOriginal":   tc.at.Format("2006:01:02 15:04:05"),
				"OffsetTimeOriginal": tc.at.Format("-07:00"),
			}
			for k, v := range want {
				if got := ex[k].Value; got != v {
					t.Errorf("%s = %v; want %v", k, got, v)
				}
			}
			if got := ex["Orientation"].Value; got != uint16(tc.orientation) {
				t.Errorf("Orientation = %v (%T); want %d", got, got, tc.orientation)
			}
			h, err := imagedata.Inspect(b, imagedata.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if h.Orientation != tc.orientation {
				t.Errorf("imagedata reads orientation %d; want %d", h.Orientation, tc.orientation)
			}
		})
	}
}

func TestEXIFRoundTripExiftool(t *testing.T) {
	tool, err := exec.LookPath("exiftool")
	if err != nil {
		if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
			t.Fatal("exiftool is not installed (apt-get install libimage-exiftool-perl)")
		}
		t.Skip("exiftool is not installed")
	}
	dir := t.TempDir()
	for i, tc := range exifCases {
		gps, err := NewGPS(tc.lat, tc.lon)
		if err != nil {
			t.Fatal(err)
		}
		b := withEXIF(t, EXIF{Make: "Canon", Model: "Canon EOS R6", Orientation: tc.orientation, TakenAt: tc.at, GPS: gps})
		path := filepath.Join(dir, tc.name+".jpg")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(tool, "-n", "-json", "-warning", "-Make", "-Model", "-Orientation", "-DateTimeOriginal",
			"-OffsetTimeOriginal", "-GPSLatitude", "-GPSLongitude", path).Output()
		if err != nil {
			t.Fatalf("exiftool: %v", err)
		}
		var got []struct {
			Make, Model, DateTimeOriginal, OffsetTimeOriginal, Warning string
			Orientation                                                int
			GPSLatitude, GPSLongitude                                  float64
		}
		if err := json.Unmarshal(out, &got); err != nil || len(got) != 1 {
			t.Fatalf("exiftool said %s: %v", out, err)
		}
		g := got[0]
		if g.Warning != "" {
			t.Errorf("case %d %s: exiftool warns %q", i, tc.name, g.Warning)
		}
		if g.Make != "Canon" || g.Model != "Canon EOS R6" || g.Orientation != tc.orientation ||
			g.DateTimeOriginal != tc.at.Format("2006:01:02 15:04:05") || g.OffsetTimeOriginal != tc.at.Format("-07:00") {
			t.Errorf("case %s: exiftool read %+v", tc.name, g)
		}
		if math.Abs(g.GPSLatitude-tc.lat) > 1e-6 || math.Abs(g.GPSLongitude-tc.lon) > 1e-6 {
			t.Errorf("case %s: exiftool position %.8f,%.8f; want %.8f,%.8f", tc.name, g.GPSLatitude, g.GPSLongitude, tc.lat, tc.lon)
		}
	}
}

func TestManifestMatchesEXIF(t *testing.T) {
	p := newPump(t, smallConfig())
	for i := 1; i <= 6; i++ {
		ph, err := p.Photo(i)
		if err != nil {
			t.Fatal(err)
		}
		tags := readEXIF(t, ph.Data)
		lat, lon, err := tags.GetLatLong()
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(lat-ph.Entry.Lat) > 1e-9 || math.Abs(lon-ph.Entry.Lon) > 1e-9 {
			t.Errorf("photo %d: EXIF position %.9f,%.9f; manifest %.9f,%.9f", i, lat, lon, ph.Entry.Lat, ph.Entry.Lon)
		}
		taken, err := time.Parse(time.RFC3339, ph.Entry.TakenAt)
		if err != nil {
			t.Fatal(err)
		}
		ex := tags.EXIF()
		if got, want := ex["DateTimeOriginal"].Value, taken.Format("2006:01:02 15:04:05"); got != want {
			t.Errorf("photo %d: DateTimeOriginal %v; want %v", i, got, want)
		}
		if got, want := ex["OffsetTimeOriginal"].Value, taken.Format("-07:00"); got != want {
			t.Errorf("photo %d: OffsetTimeOriginal %v; want %v", i, got, want)
		}
		c := smallConfig()
		if taken.Before(c.From) || !taken.Before(c.Until) {
			t.Errorf("photo %d taken %s, outside [%s, %s)", i, taken, c.From, c.Until)
		}
	}
}

// Photos carry their city's offset on the day they were taken, daylight
// saving included, whatever the machine's time zone database.
func TestCityTimeZones(t *testing.T) {
	for _, tt := range []struct {
		city     string
		month    time.Month
		offset   string
		lat, lon float64
		zone     string
	}{
		{"Paris", time.May, "+02:00", 48.8566, 2.3522, "Europe/Paris"},
		{"Paris", time.January, "+01:00", 48.8566, 2.3522, "Europe/Paris"},
		{"New York", time.May, "-04:00", 40.7128, -74.0060, "America/New_York"},
		{"Sydney", time.May, "+10:00", -33.8688, 151.2093, "Australia/Sydney"},
		{"Sydney", time.January, "+11:00", -33.8688, 151.2093, "Australia/Sydney"},
	} {
		c := smallConfig()
		c.Cities = []City{{Name: tt.city, Lat: tt.lat, Lon: tt.lon, Weight: 1, Zone: tt.zone}}
		c.From = time.Date(2024, tt.month, 10, 0, 0, 0, 0, time.UTC)
		c.Until = c.From.Add(48 * time.Hour)
		p := newPump(t, c)
		ph, err := p.Photo(1)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(ph.Entry.TakenAt, tt.offset) {
			t.Errorf("%s in %s: taken_at %s; want the offset %s", tt.city, tt.month, ph.Entry.TakenAt, tt.offset)
		}
	}
	if _, err := New(Config{Cities: []City{{Name: "Nowhere", Weight: 1, Zone: "Mars/Olympus_Mons"}}}); err == nil {
		t.Error("New with an unknown time zone: no error")
	}
}

// TestOrientation checks the stored pixels against the EXIF definition:
// which stored corner a viewer shows at the display's top-left and
// top-right.
func TestOrientation(t *testing.T) {
	const w, h = 6, 4
	display := image.NewRGBA(image.Rect(0, 0, w, h))
	red, green := color.RGBA{255, 0, 0, 255}, color.RGBA{0, 255, 0, 255}
	display.Set(0, 0, red)     // display top-left
	display.Set(w-1, 0, green) // display top-right
	cases := []struct {
		o                      int
		sw, sh                 int
		redX, redY, grnX, grnY int // where they must be stored
	}{
		{1, w, h, 0, 0, w - 1, 0},
		{3, w, h, w - 1, h - 1, 0, h - 1},
		// 6: the viewer turns the stored image 90° clockwise, so the
		// stored bottom-left becomes the top-left.
		{6, h, w, 0, w - 1, 0, 0},
		// 8: turned 90° anticlockwise, the stored top-right becomes the
		// top-left.
		{8, h, w, h - 1, 0, h - 1, w - 1},
	}
	for _, tc := range cases {
		s := storedForOrientation(display, tc.o)
		if b := s.Bounds(); b.Dx() != tc.sw || b.Dy() != tc.sh {
			t.Errorf("orientation %d: stored %dx%d; want %dx%d", tc.o, b.Dx(), b.Dy(), tc.sw, tc.sh)
			continue
		}
		if s.RGBAAt(tc.redX, tc.redY) != red || s.RGBAAt(tc.grnX, tc.grnY) != green {
			t.Errorf("orientation %d: display top-left not at stored (%d,%d) or top-right not at (%d,%d)",
				tc.o, tc.redX, tc.redY, tc.grnX, tc.grnY)
		}
	}
}

// TestRotatedPhotosDisplayUpright checks with the server's own decoder that
// turned photos come out at the configured (landscape) size.
func TestRotatedPhotosDisplayUpright(t *testing.T) {
	c := smallConfig()
	c.Rotated = 1
	p := newPump(t, c)
	seen := map[int]bool{}
	for i := 1; i <= 12; i++ {
		ph, err := p.Photo(i)
		if err != nil {
			t.Fatal(err)
		}
		o := ph.Entry.Orientation
		seen[o] = true
		img, err := imagedata.Decode(ph.Data, imagedata.DefaultLimits(), imagedata.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if w, h := img.DisplaySize(); w != c.Width || h != c.Height {
			t.Errorf("photo %d (orientation %d) displays %dx%d; want %dx%d", i, o, w, h, c.Width, c.Height)
		}
		if b := img.Image.Bounds(); b.Dx() != c.Width || b.Dy() != c.Height {
			t.Errorf("photo %d (orientation %d) decodes to %dx%d; want %dx%d", i, o, b.Dx(), b.Dy(), c.Width, c.Height)
		}
	}
	for _, o := range []int{3, 6, 8} {
		if !seen[o] {
			t.Errorf("no photo with orientation %d among 12 with Rotated=1", o)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Config)
		ok     bool
	}{
		{"default", func(*Config) {}, true},
		{"empty range", func(c *Config) { c.Until = c.From }, false},
		{"no products", func(c *Config) { c.Products = 0 }, false},
		{"tiny", func(c *Config) { c.Width = 100 }, false},
		{"quality inverted", func(c *Config) { c.QualityMin, c.QualityMax = 90, 80 }, false},
		{"rotated share", func(c *Config) { c.Rotated = 1.5 }, false},
		{"no shop", func(c *Config) { c.Shop = "" }, false},
	}
	for _, tc := range cases {
		c := NewDefaultConfig()
		tc.modify(&c)
		_, err := New(c)
		if (err == nil) != tc.ok {
			t.Errorf("%s: New() error = %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestNewGPS(t *testing.T) {
	cases := []struct {
		lat, lon       float64
		latRef, lonRef string
	}{
		{48.85, 2.35, "N", "E"},
		{-33.87, 151.21, "S", "E"},
		{40.71, -74.01, "N", "W"},
		{-23.55, -46.63, "S", "W"},
		{59.99999999999, 0, "N", "E"}, // seconds round up into the next degree
	}
	for _, tc := range cases {
		g, err := NewGPS(tc.lat, tc.lon)
		if err != nil {
			t.Fatal(err)
		}
		if g.LatRef != tc.latRef || g.LonRef != tc.lonRef {
			t.Errorf("NewGPS(%g, %g) refs %s%s; want %s%s", tc.lat, tc.lon, g.LatRef, g.LonRef, tc.latRef, tc.lonRef)
		}
		if g.Lat[1] >= 60 || g.Lat[2] >= 60*SecondsDenom || g.Lon[1] >= 60 || g.Lon[2] >= 60*SecondsDenom {
			t.Errorf("NewGPS(%g, %g) = %v %v: a part overflows", tc.lat, tc.lon, g.Lat, g.Lon)
		}
		lat, lon := g.Degrees()
		if math.Abs(lat-tc.lat) > 1e-7 || math.Abs(lon-tc.lon) > 1e-7 {
			t.Errorf("NewGPS(%g, %g).Degrees() = %g, %g", tc.lat, tc.lon, lat, lon)
		}
	}
	if _, err := NewGPS(91, 0); err == nil {
		t.Error("NewGPS(91, 0) succeeded")
	}
}

// TestStory checks the skews: popular products, daytime hours, cities.
func TestStory(t *testing.T) {
	p := newPump(t, smallConfig())
	products := map[string]int{}
	night, day := 0, 0
	for i := 1; i <= 2000; i++ {
		r := rand.New(rand.NewPCG(42, uint64(i)))
		k := p.products.pick(r)
		products[productPath(k)]++
		h := p.hours.pick(r)
		switch {
		case h >= 1 && h < 6:
			night++
		case h >= 10 && h < 20:
			day++
		}
	}
	if first, tenth := products[productPath(0)], products[productPath(9)]; first < 5*tenth {
		t.Errorf("product 1 drawn %d times, product 10 %d: want a Zipf-like skew", first, tenth)
	}
	if day < 10*night {
		t.Errorf("%d photos between 10:00 and 20:00, %d between 01:00 and 06:00: want a daily rhythm", day, night)
	}
}
