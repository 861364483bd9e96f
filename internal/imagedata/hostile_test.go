package imagedata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"runtime"
	"strings"
	"testing"
	"time"
)

// webpVP8XHeader returns an extended WebP header whose canvas claims w×h
// (up to 2^24 each).
func webpVP8XHeader(w, h uint32) []byte {
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, 4+8+10)
	b = append(b, "WEBPVP8X"...)
	b = binary.LittleEndian.AppendUint32(b, 10)
	b = append(b, 0, 0, 0, 0)
	b = append(b, byte(w-1), byte((w-1)>>8), byte((w-1)>>16))
	return append(b, byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
}

// manyFrameGIF returns a 2×2 GIF of n frames, each a full LZW-coded image.
func manyFrameGIF(tb testing.TB, n int) []byte {
	tb.Helper()
	pal := color.Palette{color.Black, color.White}
	one := &gif.GIF{Image: []*image.Paletted{image.NewPaletted(image.Rect(0, 0, 2, 2), pal)}, Delay: []int{1}}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, one); err != nil {
		tb.Fatal(err)
	}
	b := buf.Bytes()
	head := 13 // header and screen descriptor
	if b[10]&gifColorTable != 0 {
		head += 3 << (b[10]&7 + 1)
	}
	frame := b[head : len(b)-1] // everything up to the trailer
	out := append([]byte(nil), b[:head]...)
	for range n {
		out = append(out, frame...)
	}
	return append(out, gifTrailer)
}

// hugeLaterFrames returns a 2×2 GIF whose first frame is real and whose n
// later frames each claim 65535×65535 pixels.
func hugeLaterFrames(tb testing.TB, n int) []byte {
	tb.Helper()
	b := manyFrameGIF(tb, 1)
	b = b[:len(b)-1]
	for range n {
		b = append(b, gifImage, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 2, 2, 0x44, 0x01, 0)
	}
	return append(b, gifTrailer)
}

// measure runs f once and returns the bytes it allocated (TotalAlloc, an
// upper bound on the extra memory whatever the GC does) and the wall time.
func measure(f func()) (uint64, time.Duration) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	wall := time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, wall
}

// TestHostileBombs: a few dozen bytes claiming 65535×65535 are refused from
// the header, before any pixel buffer exists.
func TestHostileBombs(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		dims string
	}{
		{"gif", gifHeader(65535, 65535), "65535×65535"},
		{"png", pngHeader(65535, 65535), "65535×65535"},
		{"jpeg", jpegHeader(65535, 65535), "65535×65535"},
		{"webp", webpVP8XHeader(65535, 65535), "65535×65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			alloc, wall := measure(func() { _, err = Decode(tt.data, DefaultLimits(), DecodeOptions{}) })
			if !errors.Is(err, ErrTooManyPixels) {
				t.Fatalf("Decode(%d bytes) error = %v; want ErrTooManyPixels", len(tt.data), err)
			}
			if msg := MessageOf(err); !strings.Contains(msg, tt.dims) || !strings.Contains(msg, "the limit is 50 megapixels") {
				t.Errorf("MessageOf() = %q; want the size and the limit", msg)
			}
			// The smallest pixel buffer for the claim would be 4 GB.
			if alloc > 1<<20 {
				t.Errorf("Decode allocated %d bytes; want under 1 MB", alloc)
			}
			// Decoding never started: the same error comes from Inspect.
			if _, ierr := Inspect(tt.data, DefaultLimits()); !errors.Is(ierr, ErrTooManyPixels) {
				t.Errorf("Inspect() error = %v; want ErrTooManyPixels", ierr)
			}
			t.Logf("%s bomb: %d bytes claiming %s, refused with %d bytes allocated in %v", tt.name, len(tt.data), tt.dims, alloc, wall)
		})
	}
}

// TestHostileManyFrames: only the first frame of a GIF is decoded; the
// others are counted without decoding and refused beyond MaxFrames.
func TestHostileManyFrames(t *testing.T) {
	many := manyFrameGIF(t, 10_000)

	// Over the default limit: refused from the block structure.
	var err error
	alloc, wall := measure(func() { _, err = Inspect(many, DefaultLimits()) })
	if !errors.Is(err, ErrTooManyFrames) || StatusOf(err) != 422 {
		t.Fatalf("Inspect(10,000 frames) error = %v; want ErrTooManyFrames (422)", err)
	}
	if msg := MessageOf(err); !strings.Contains(msg, "the limit is 1000 frames") {
		t.Errorf("MessageOf() = %q; want the limit named", msg)
	}
	t.Logf("10,000-frame GIF (%d bytes): refused with %d bytes allocated in %v", len(many), alloc, wall)
	if alloc > 64<<10 {
		t.Errorf("Inspect allocated %d bytes; want under 64 KB", alloc)
	}

	// The walk stops at the limit: it never looks past frame MaxFrames+1.
	if n, err := countGIFFrames(many, 1000); n != 1001 || !errors.Is(err, errGIFFrames) {
		t.Errorf("countGIFFrames(10,000 frames, 1000) = %d, %v; want 1001, errGIFFrames", n, err)
	}
	if n, err := countGIFFrames(many, 0); n != 10_000 || err != nil {
		t.Errorf("countGIFFrames(10,000 frames, no limit) = %d, %v; want 10000, nil", n, err)
	}

	// With no frame limit, decoding costs what one frame costs.
	lim := DefaultLimits()
	lim.MaxFrames = 0
	one := manyFrameGIF(t, 1)
	oneAlloc, _ := measure(func() { _, err = Decode(one, lim, DecodeOptions{}) })
	if err != nil {
		t.Fatalf("Decode(1 frame) error = %v", err)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"10,000 tiny frames", many},
		{"1,000 later frames claiming 65535×65535", hugeLaterFrames(t, 1000)},
	} {
		var img *Image
		alloc, wall := measure(func() { img, err = Decode(c.data, lim, DecodeOptions{}) })
		if err != nil {
			t.Fatalf("Decode(%s) error = %v", c.name, err)
		}
		if r := img.Image.Bounds(); r.Dx() != 2 || r.Dy() != 2 {
			t.Errorf("Decode(%s) bounds %v; want 2×2", c.name, r)
		}
		t.Logf("%s (%d bytes): decoded with %d bytes allocated (one frame: %d) in %v", c.name, len(c.data), alloc, oneAlloc, wall)
		if alloc > oneAlloc+16<<10 {
			t.Errorf("Decode(%s) allocated %d bytes; one frame takes %d: later frames were decoded", c.name, alloc, oneAlloc)
		}
	}
}

// TestHostileGIFStructure: junk where the first block should be is corrupt,
// as the decoder would find; junk after the first frame is never read.
func TestHostileGIFStructure(t *testing.T) {
	junk := []byte("GIF89a/*\x01\x00\x00\x00\x00*/=alert(1);")
	if _, err := Inspect(junk, DefaultLimits()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Inspect(GIF header + script) error = %v; want ErrCorrupt", err)
	}
	tail := append(manyFrameGIF(t, 1), "*/=alert(1);"...)
	tail[6], tail[7] = '/', '*'
	h, err := Inspect(tail, DefaultLimits())
	if err != nil || h.ContentType != "image/gif" {
		t.Errorf("Inspect(GIF/JS polyglot) = %+v, %v; want an image/gif", h, err)
	}
}
