package imagedata_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/jpeg"
	"runtime"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/analyzer/exif"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// EXIF tags and types used to build hostile segments.
const (
	tagOrientation = 0x0112
	tagMake        = 0x010f
	tagSubIFDs     = 0x014a
	tagExifIFD     = 0x8769
	tagGPSIFD      = 0x8825
	tagInteropIFD  = 0xa005
	typeASCII      = 2
	typeShort      = 3
	typeLong       = 4
)

type ifdEntry struct {
	tag, typ     uint16
	count, value uint32
}

// putIFD writes a little-endian IFD of entries at off in b and returns the
// offset just past it.
func putIFD(b []byte, off int, entries []ifdEntry) int {
	binary.LittleEndian.PutUint16(b[off:], uint16(len(entries)))
	p := off + 2
	for _, e := range entries {
		binary.LittleEndian.PutUint16(b[p:], e.tag)
		binary.LittleEndian.PutUint16(b[p+2:], e.typ)
		binary.LittleEndian.PutUint32(b[p+4:], e.count)
		binary.LittleEndian.PutUint32(b[p+8:], e.value)
		p += 12
	}
	return p + 4 // next-IFD offset, left 0
}

// nestedIFDs returns a TIFF payload of about size bytes: IFD0 is full of
// entries, and every IFD pointer there is (SubIFDs, Exif, GPS, Interop)
// leads back to IFD0, the SubIFDs one as an array of as many offsets as fit
// in a 4 KB value. A naive walker visits IFD0 thousands of times.
func nestedIFDs(size int) []byte {
	b := make([]byte, size)
	copy(b, "II*\x00")
	binary.LittleEndian.PutUint32(b[4:], 8)
	const subs = 1000
	arr := size - 4*subs
	for i := range subs {
		binary.LittleEndian.PutUint32(b[arr+4*i:], 8)
	}
	entries := []ifdEntry{
		{tag: tagSubIFDs, typ: typeLong, count: subs, value: uint32(arr)},
		{tag: tagExifIFD, typ: typeLong, count: 1, value: 8},
		{tag: tagGPSIFD, typ: typeLong, count: 1, value: 8},
		{tag: tagInteropIFD, typ: typeLong, count: 1, value: 8},
	}
	for len(entries) < (arr-8-6)/12 {
		// Unknown tags whose values are too large to read: each costs the
		// walker a lookup and a skip.
		entries = append(entries, ifdEntry{tag: uint16(0xc000 + len(entries)), typ: typeLong, count: 0x8000, value: 8})
	}
	entries = append(entries[:len(entries)-1], ifdEntry{tag: tagOrientation, typ: typeShort, count: 1, value: 6})
	putIFD(b, 8, entries)
	return b
}

// hugeCount returns a TIFF payload whose IFD0 claims 65535 entries and
// whose entries claim values of billions of bytes.
func hugeCount() []byte {
	b := make([]byte, 256)
	copy(b, "II*\x00")
	binary.LittleEndian.PutUint32(b[4:], 8)
	putIFD(b, 8, []ifdEntry{
		{tag: tagMake, typ: typeASCII, count: 0xffffffff, value: 8},
		{tag: tagSubIFDs, typ: typeLong, count: 0x3fffffff, value: 8},
		{tag: tagOrientation, typ: typeShort, count: 0x7fffffff, value: 8},
	})
	binary.LittleEndian.PutUint16(b[8:], 0xffff)
	return b
}

// withAPP1 returns a small JPEG with an EXIF APP1 segment holding payload.
func withAPP1(t *testing.T, payload []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 16, 16)), nil); err != nil {
		t.Fatal(err)
	}
	j := buf.Bytes()
	if len(payload) > 0xffff-8 {
		t.Fatalf("payload of %d bytes does not fit one segment", len(payload))
	}
	out := []byte{0xff, 0xd8, 0xff, 0xe1}
	out = binary.BigEndian.AppendUint16(out, uint16(2+6+len(payload)))
	out = append(out, "Exif\x00\x00"...)
	out = append(out, payload...)
	return append(out, j[2:]...)
}

// cost runs f once and returns the bytes it allocated and the wall time.
// TotalAlloc counts every allocation, freed or not, so it bounds the extra
// memory from above whatever the GC does meanwhile.
func cost(f func()) (allocated uint64, wall time.Duration) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	wall = time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, wall
}

// TestHostileEXIF checks that imagedata's orientation read (part of every
// Inspect) and the exif analyzer stay bounded on hostile EXIF segments.
func TestHostileEXIF(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		// Allocation ceilings. Inspect reads at most 256 tags of at most 64
		// bytes; the analyzer at most 2000 tags of 4 KB.
		maxInspect, maxAnalyze uint64
	}{
		{"60 KB of nested IFD pointers", nestedIFDs(60_000), 1 << 20, 16 << 20},
		{"huge counts", hugeCount(), 256 << 10, 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := withAPP1(t, tt.payload)
			var (
				h   imagedata.Header
				err error
			)
			alloc, wall := cost(func() { h, err = imagedata.Inspect(b, imagedata.DefaultLimits()) })
			if err != nil {
				t.Fatalf("Inspect() error = %v; hostile EXIF must not reject the image", err)
			}
			t.Logf("Inspect: %d-byte file, orientation %d, %d bytes allocated, %v wall", len(b), h.Orientation, alloc, wall)
			if alloc > tt.maxInspect {
				t.Errorf("Inspect allocated %d bytes; want at most %d", alloc, tt.maxInspect)
			}

			a := exif.New()
			var res job.Result
			alloc, wall = cost(func() {
				err = a.Analyze(context.Background(), &analyzer.Image{Bytes: b, Header: h}, &res)
			})
			t.Logf("exif analyzer: result %+v, error %v, %d bytes allocated, %v wall", res.EXIF, err, alloc, wall)
			if alloc > tt.maxAnalyze {
				t.Errorf("exif analyzer allocated %d bytes; want at most %d", alloc, tt.maxAnalyze)
			}
		})
	}
}
