package exif

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
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

// gradient returns a w×h test picture.
func gradient(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	return m
}

func encodeJPEG(tb testing.TB, m image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func encodePNG(tb testing.TB, m image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// withEXIF returns a copy of src (a file with extension ext) after exiftool
// has written args into it.
func withEXIF(tb testing.TB, src []byte, ext string, args ...string) []byte {
	tb.Helper()
	exiftool := tool(tb, "exiftool")
	path := filepath.Join(tb.TempDir(), "img."+ext)
	if err := os.WriteFile(path, src, 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exiftool, append(append([]string{"-q", "-q", "-overwrite_original"}, args...), path)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("exiftool %q: %v\n%s", args, err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// analyze runs the analyzer on b the way the worker does: the header from
// imagedata.Inspect, no pixels.
func analyze(tb testing.TB, b []byte) (*job.EXIF, error) {
	tb.Helper()
	h, err := imagedata.Inspect(b, imagedata.DefaultLimits())
	if err != nil {
		tb.Fatalf("Inspect: %v", err)
	}
	var res job.Result
	err = New().Analyze(context.Background(), &analyzer.Image{Bytes: b, Header: h}, &res)
	return res.EXIF, err
}

func ptr(f float64) *float64 { return &f }

// diff describes how got differs from want; GPS values are compared to 1e-6
// degrees (and metres).
func diff(got, want *job.EXIF) string {
	if got == nil || want == nil {
		if got != want {
			return fmt.Sprintf("EXIF = %+v; want %+v", got, want)
		}
		return ""
	}
	var d string
	str := func(name, g, w string) {
		if g != w {
			d += fmt.Sprintf("%s = %q; want %q\n", name, g, w)
		}
	}
	num := func(name string, g, w *float64) {
		switch {
		case g == nil && w == nil:
		case g == nil || w == nil:
			d += fmt.Sprintf("%s = %v; want %v\n", name, deref(g), deref(w))
		case math.Abs(*g-*w) > 1e-6:
			d += fmt.Sprintf("%s = %.9f; want %.9f\n", name, *g, *w)
		}
	}
	str("TakenAt", got.TakenAt, want.TakenAt)
	str("Make", got.Make, want.Make)
	str("Model", got.Model, want.Model)
	num("Latitude", got.Latitude, want.Latitude)
	num("Longitude", got.Longitude, want.Longitude)
	num("Altitude", got.Altitude, want.Altitude)
	if got.Orientation != want.Orientation {
		d += fmt.Sprintf("Orientation = %d; want %d\n", got.Orientation, want.Orientation)
	}
	return d
}

func deref(f *float64) any {
	if f == nil {
		return "absent"
	}
	return *f
}

func gps(lat, lon float64) []string {
	ns, ew := "N", "E"
	if lat < 0 {
		ns = "S"
	}
	if lon < 0 {
		ew = "W"
	}
	return []string{
		fmt.Sprintf("-GPSLatitude=%.7f", math.Abs(lat)), "-GPSLatitudeRef=" + ns,
		fmt.Sprintf("-GPSLongitude=%.7f", math.Abs(lon)), "-GPSLongitudeRef=" + ew,
	}
}

func TestAnalyzeJPEG(t *testing.T) {
	src := encodeJPEG(t, gradient(64, 48))
	tests := []struct {
		name string
		args []string
		want *job.EXIF
	}{
		{"paris N/E", gps(48.8584, 2.2945), &job.EXIF{Latitude: ptr(48.8584), Longitude: ptr(2.2945)}},
		{"buenos aires S/W", gps(-34.6037, -58.3816), &job.EXIF{Latitude: ptr(-34.6037), Longitude: ptr(-58.3816)}},
		{"sydney S/E", gps(-33.8568, 151.2153), &job.EXIF{Latitude: ptr(-33.8568), Longitude: ptr(151.2153)}},
		{"new york N/W", gps(40.6892, -74.0445), &job.EXIF{Latitude: ptr(40.6892), Longitude: ptr(-74.0445)}},
		{"equator and meridian", gps(0, 0), &job.EXIF{Latitude: ptr(0), Longitude: ptr(0)}},
		{"latitude without longitude", []string{"-GPSLatitude=10.5", "-GPSLatitudeRef=N"}, &job.EXIF{}},
		{"above sea level", []string{"-GPSAltitude=35.5", "-GPSAltitudeRef#=0"}, &job.EXIF{Altitude: ptr(35.5)}},
		{"below sea level", []string{"-GPSAltitude=430.25", "-GPSAltitudeRef#=1"}, &job.EXIF{Altitude: ptr(-430.25)}},
		{"altitude without ref", []string{"-GPSAltitude=12"}, &job.EXIF{Altitude: ptr(12)}},
		{"sea level", []string{"-GPSAltitude=0", "-GPSAltitudeRef#=0"}, &job.EXIF{Altitude: ptr(0)}},
		{
			"offset +02:00",
			[]string{"-DateTimeOriginal=2024:05:17 14:03:11", "-OffsetTimeOriginal=+02:00"},
			&job.EXIF{TakenAt: "2024-05-17T14:03:11+02:00"},
		},
		{
			"offset -05:00",
			[]string{"-DateTimeOriginal=2023:12:31 23:59:59", "-OffsetTimeOriginal=-05:00"},
			&job.EXIF{TakenAt: "2023-12-31T23:59:59-05:00"},
		},
		{"no offset", []string{"-DateTimeOriginal=2024:05:17 14:03:11"}, &job.EXIF{TakenAt: "2024-05-17T14:03:11"}},
		{
			"OffsetTime when OffsetTimeOriginal is absent",
			[]string{"-DateTimeOriginal=2024:05:17 14:03:11", "-OffsetTime=+09:30"},
			&job.EXIF{TakenAt: "2024-05-17T14:03:11+09:30"},
		},
		{
			"original wins over digitized and modified",
			[]string{"-DateTimeOriginal=2024:05:17 14:03:11", "-CreateDate=2024:05:18 08:00:00", "-ModifyDate=2025:01:01 00:00:00"},
			&job.EXIF{TakenAt: "2024-05-17T14:03:11"},
		},
		{
			"digitized when original is absent",
			[]string{"-CreateDate=2024:05:18 08:00:00", "-OffsetTimeDigitized=-03:00", "-ModifyDate=2025:01:01 00:00:00"},
			&job.EXIF{TakenAt: "2024-05-18T08:00:00-03:00"},
		},
		{
			"DateTime as the last resort",
			[]string{"-ModifyDate=2025:01:01 10:20:30", "-OffsetTime=+00:00"},
			&job.EXIF{TakenAt: "2025-01-01T10:20:30Z"},
		},
		{
			"all-zero placeholder date",
			[]string{"-DateTimeOriginal=0000:00:00 00:00:00", "-Make=Canon"},
			&job.EXIF{Make: "Canon"},
		},
		{"orientation 1", []string{"-Orientation#=1"}, &job.EXIF{Orientation: 1}},
		{"orientation 3", []string{"-Orientation#=3"}, &job.EXIF{Orientation: 3}},
		{"orientation 6", []string{"-Orientation#=6"}, &job.EXIF{Orientation: 6}},
		{"orientation 8", []string{"-Orientation#=8"}, &job.EXIF{Orientation: 8}},
		{"make and model", []string{"-Make=Canon", "-Model=Canon EOS 5D"}, &job.EXIF{Make: "Canon", Model: "Canon EOS 5D"}},
		{"padded make and model", []string{"-Make=  NIKON CORPORATION  ", "-Model=NIKON D750   "}, &job.EXIF{Make: "NIKON CORPORATION", Model: "NIKON D750"}},
		{"unrelated tags only", []string{"-Artist=Someone", "-ExposureTime=1/125"}, &job.EXIF{}},
		{
			"everything",
			append(gps(-33.8568, 151.2153),
				"-GPSAltitude=58", "-GPSAltitudeRef#=0",
				"-DateTimeOriginal=2024:05:17 14:03:11", "-OffsetTimeOriginal=+10:00",
				"-Make=Apple", "-Model=iPhone 15 Pro", "-Orientation#=6"),
			&job.EXIF{
				TakenAt:  "2024-05-17T14:03:11+10:00",
				Latitude: ptr(-33.8568), Longitude: ptr(151.2153), Altitude: ptr(58),
				Make: "Apple", Model: "iPhone 15 Pro", Orientation: 6,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := withEXIF(t, src, "jpg", tt.args...)
			got, err := analyze(t, b)
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if d := diff(got, tt.want); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestAnalyzeFormats(t *testing.T) {
	args := append(gps(40.6892, -74.0445), "-GPSAltitude=93", "-GPSAltitudeRef#=0",
		"-DateTimeOriginal=2024:07:04 21:15:00", "-OffsetTimeOriginal=-04:00",
		"-Make=Google", "-Model=Pixel 8", "-Orientation#=8")
	want := &job.EXIF{
		TakenAt:  "2024-07-04T21:15:00-04:00",
		Latitude: ptr(40.6892), Longitude: ptr(-74.0445), Altitude: ptr(93),
		Make: "Google", Model: "Pixel 8", Orientation: 8,
	}
	tests := []struct {
		name string
		src  []byte
		ext  string
	}{
		{"jpeg", encodeJPEG(t, gradient(64, 48)), "jpg"},
		{"png", encodePNG(t, gradient(64, 48)), "png"},
		{"webp", readTestdata(t, "plain.webp"), "webp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := withEXIF(t, tt.src, tt.ext, args...)
			got, err := analyze(t, b)
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if d := diff(got, want); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestAnalyzeNoEXIF(t *testing.T) {
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, gradient(16, 16), nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"jpeg", encodeJPEG(t, gradient(64, 48))},
		{"png", encodePNG(t, gradient(64, 48))},
		{"webp", readTestdata(t, "plain.webp")},
		{"gif", gifBuf.Bytes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := analyze(t, tt.b)
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			// Asked for and absent: an empty object, not a missing one.
			if got == nil || *got != (job.EXIF{}) {
				t.Errorf("EXIF = %+v; want {}", got)
			}
		})
	}
}

func TestAnalyzeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var res job.Result
	b := encodeJPEG(t, gradient(8, 8))
	err := New().Analyze(ctx, &analyzer.Image{Bytes: b, Header: imagedata.Header{Format: imagedata.JPEG}}, &res)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Analyze with a canceled context = %v; want context.Canceled", err)
	}
}

func TestFeatureAndMinSide(t *testing.T) {
	a := New()
	if got := a.Feature(); got != job.FeatureEXIF {
		t.Errorf("Feature() = %q; want %q", got, job.FeatureEXIF)
	}
	if got := a.MinSide(); got != analyzer.NoPixels {
		t.Errorf("MinSide() = %d; want %d", got, analyzer.NoPixels)
	}
}

// ifdEntry is one 12-byte TIFF directory entry; value holds the 4-byte value
// or offset field.
type ifdEntry struct {
	tag, typ uint16
	count    uint32
	value    uint32
}

// tiff builds a little-endian TIFF header followed by the directories dirs,
// each at the offset given, padded with extra bytes; it is the payload of an
// EXIF APP1 segment after "Exif\x00\x00".
func tiff(size int, dirs map[uint32][]ifdEntry, ifd0 uint32) []byte {
	b := make([]byte, size)
	copy(b, "II*\x00")
	binary.LittleEndian.PutUint32(b[4:], ifd0)
	for off, entries := range dirs {
		p := int(off)
		binary.LittleEndian.PutUint16(b[p:], uint16(len(entries)))
		p += 2
		for _, e := range entries {
			binary.LittleEndian.PutUint16(b[p:], e.tag)
			binary.LittleEndian.PutUint16(b[p+2:], e.typ)
			binary.LittleEndian.PutUint32(b[p+4:], e.count)
			binary.LittleEndian.PutUint32(b[p+8:], e.value)
			p += 12
		}
		// The next-IFD offset stays 0.
	}
	return b
}

// jpegWithAPP1 returns the JPEG j with an APP1 EXIF segment holding payload
// inserted after SOI; payload is cut to fit one segment.
func jpegWithAPP1(j, payload []byte) []byte {
	const maxPayload = 0xffff - 2 - 6
	if len(payload) > maxPayload {
		payload = payload[:maxPayload]
	}
	out := make([]byte, 0, len(j)+len(payload)+10)
	out = append(out, 0xff, 0xd8, 0xff, 0xe1)
	out = binary.BigEndian.AppendUint16(out, uint16(2+6+len(payload)))
	out = append(out, "Exif\x00\x00"...)
	out = append(out, payload...)
	return append(out, j[2:]...)
}

// Tag numbers and types used by the hostile fixtures.
const (
	tagMake      = 0x010f
	tagOrient    = 0x0112
	tagExifIFD   = 0x8769
	tagGPSIFD    = 0x8825
	tagSubIFDs   = 0x014a
	tagGPSLat    = 0x0002
	typeASCII    = 2
	typeShort    = 3
	typeLong     = 4
	typeRational = 5
)

func TestAnalyzeHostile(t *testing.T) {
	j := encodeJPEG(t, gradient(16, 16))
	manyTags := make([]ifdEntry, 4000)
	for i := range manyTags {
		manyTags[i] = ifdEntry{tag: uint16(0xc000 + i), typ: typeShort, count: 1, value: 1}
	}
	tests := []struct {
		name    string
		payload []byte
		want    *job.EXIF // nil: no answer, with or without an error
	}{
		{"empty", nil, nil},
		{"bad byte order", []byte("XX*\x00\x08\x00\x00\x00"), nil},
		{"truncated header", []byte("II*\x00"), nil},
		{"ifd0 beyond the end", tiff(16, nil, 0xfffffff0), nil},
		{"ifd entries beyond the end", tiff(12, map[uint32][]ifdEntry{8: nil}, 8)[:10], nil},
		{"huge entry count", append(tiff(10, nil, 8)[:8], 0xff, 0xff), nil},
		{
			"exif ifd pointing at ifd0",
			tiff(64, map[uint32][]ifdEntry{8: {
				{tag: tagOrient, typ: typeShort, count: 1, value: 6},
				{tag: tagExifIFD, typ: typeLong, count: 1, value: 8},
				{tag: tagGPSIFD, typ: typeLong, count: 1, value: 8},
			}}, 8),
			&job.EXIF{Orientation: 6},
		},
		{
			"sub-ifds pointing at themselves",
			tiff(64, map[uint32][]ifdEntry{8: {
				{tag: tagOrient, typ: typeShort, count: 1, value: 3},
				{tag: tagSubIFDs, typ: typeLong, count: 2, value: 8},
			}}, 8),
			&job.EXIF{Orientation: 3},
		},
		{
			"value offset beyond the end",
			tiff(64, map[uint32][]ifdEntry{8: {
				{tag: tagMake, typ: typeASCII, count: 40, value: 0x7fffffff},
			}}, 8),
			nil,
		},
		{
			"oversized value",
			tiff(64, map[uint32][]ifdEntry{8: {
				{tag: tagMake, typ: typeASCII, count: 0xffff, value: 30},
				{tag: tagOrient, typ: typeShort, count: 1, value: 8},
			}}, 8),
			&job.EXIF{Orientation: 8},
		},
		{
			"unknown type",
			tiff(64, map[uint32][]ifdEntry{8: {{tag: tagOrient, typ: 99, count: 1, value: 6}}}, 8),
			nil,
		},
		{"thousands of tags", tiff(10+12*len(manyTags)+4, map[uint32][]ifdEntry{8: manyTags}, 8), nil},
		{
			"orientation out of range",
			tiff(64, map[uint32][]ifdEntry{8: {{tag: tagOrient, typ: typeShort, count: 1, value: 9}}}, 8),
			nil,
		},
		{
			"gps latitude with a zero denominator",
			tiff(128, map[uint32][]ifdEntry{
				8:  {{tag: tagGPSIFD, typ: typeLong, count: 1, value: 26}},
				26: {{tag: tagGPSLat, typ: typeRational, count: 3, value: 60}},
			}, 8),
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := jpegWithAPP1(j, tt.payload)
			got, err := Read(imagedata.JPEG, b)
			if d := diff(got, tt.want); d != "" {
				t.Errorf("%s(error %v)", d, err)
			}
			if got != nil && err != nil {
				t.Errorf("Read = %+v and error %v; want one or the other", got, err)
			}
		})
	}
}

// FuzzEXIF feeds arbitrary bytes to the analyzer as the payload of a JPEG's
// EXIF segment. It must never panic; whatever it returns must hold only
// valid values.
func FuzzEXIF(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("II*\x00\x08\x00\x00\x00"))
	f.Add([]byte("MM\x00*\x00\x00\x00\x08"))
	f.Add(tiff(64, map[uint32][]ifdEntry{8: {
		{tag: tagOrient, typ: typeShort, count: 1, value: 6},
		{tag: tagExifIFD, typ: typeLong, count: 1, value: 8},
		{tag: tagGPSIFD, typ: typeLong, count: 1, value: 8},
		{tag: tagMake, typ: typeASCII, count: 6, value: 40},
	}}, 8))
	f.Add(tiff(128, map[uint32][]ifdEntry{
		8:  {{tag: tagGPSIFD, typ: typeLong, count: 1, value: 26}},
		26: {{tag: tagGPSLat, typ: typeRational, count: 3, value: 60}, {tag: 0x0001, typ: typeASCII, count: 2, value: 'S'}},
	}, 8))
	j := encodeJPEG(f, gradient(16, 16))
	a := New()
	f.Fuzz(func(t *testing.T, payload []byte) {
		b := jpegWithAPP1(j, payload)
		var res job.Result
		err := a.Analyze(context.Background(), &analyzer.Image{Bytes: b, Header: imagedata.Header{Format: imagedata.JPEG}}, &res)
		e := res.EXIF
		if e == nil {
			return
		}
		if err != nil {
			t.Errorf("Analyze set EXIF %+v and returned %v", e, err)
		}
		if e.Orientation < 0 || e.Orientation > 8 {
			t.Errorf("Orientation = %d; want 0..8", e.Orientation)
		}
		if (e.Latitude == nil) != (e.Longitude == nil) {
			t.Errorf("Latitude %v, Longitude %v; want both or neither", deref(e.Latitude), deref(e.Longitude))
		}
		if e.Latitude != nil && !(math.Abs(*e.Latitude) <= 90 && math.Abs(*e.Longitude) <= 180) {
			t.Errorf("position (%v, %v) out of range", *e.Latitude, *e.Longitude)
		}
		if e.Altitude != nil && (math.IsNaN(*e.Altitude) || math.IsInf(*e.Altitude, 0)) {
			t.Errorf("Altitude = %v; want a finite number", *e.Altitude)
		}
	})
}

func BenchmarkAnalyze(b *testing.B) {
	src := encodeJPEG(b, gradient(4000, 3000))
	img := withEXIF(b, src, "jpg", append(gps(48.8584, 2.2945),
		"-GPSAltitude=35", "-GPSAltitudeRef#=0",
		"-DateTimeOriginal=2024:05:17 14:03:11", "-OffsetTimeOriginal=+02:00",
		"-Make=Canon", "-Model=Canon EOS 5D", "-Orientation#=6",
		"-ExposureTime=1/125", "-FNumber=2.8", "-ISO=200", "-FocalLength=50", "-Artist=Glimpse")...)
	h, err := imagedata.Inspect(img, imagedata.DefaultLimits())
	if err != nil {
		b.Fatal(err)
	}
	a := New()
	im := &analyzer.Image{Bytes: img, Header: h}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		var res job.Result
		if err := a.Analyze(ctx, im, &res); err != nil || res.EXIF == nil {
			b.Fatalf("Analyze = %+v, %v", res.EXIF, err)
		}
	}
}
