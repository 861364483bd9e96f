package imagedata

import (
	"bytes"
	"fmt"
	"image"
	"testing"
)

// TestDecodeWithBuffers checks that a decode into recycled buffers, full of
// another image's pixels, gives exactly the pixels of a decode into fresh
// memory, in every orientation and at a scaled size, and that Release gives
// the buffer back for the next decode.
func TestDecodeWithBuffers(t *testing.T) {
	src := textured(301, 203)
	jpg := encodeJPEG(t, src, 90)
	bufs := NewBuffers(64 << 20)
	for o := 1; o <= 8; o++ {
		for _, minSide := range []int{0, 60} {
			t.Run(fmt.Sprintf("orientation %d, min side %d", o, minSide), func(t *testing.T) {
				b := jpg
				if o > 1 {
					b = withOrientation(jpg, uint16(o))
				}
				// Dirty buffers of every size the decode might take.
				for _, n := range []int{4 * 301 * 203, 4 * 151 * 102, 4 * 76 * 51} {
					dirty := bytes.Repeat([]byte{0xa5}, n)
					bufs.Put(dirty)
				}
				opt := DecodeOptions{MinSide: minSide}
				want, err := Decode(b, DefaultLimits(), opt)
				if err != nil {
					t.Fatal(err)
				}
				opt.Buffers = bufs
				got, err := Decode(b, DefaultLimits(), opt)
				if err != nil {
					t.Fatal(err)
				}
				g, ok1 := got.Image.(*image.RGBA)
				w, ok2 := want.Image.(*image.RGBA)
				if !ok1 || !ok2 {
					t.Skipf("decoded as %T: only libjpeg-turbo's RGBA output is recycled", want.Image)
				}
				if g.Rect != w.Rect || !bytes.Equal(g.Pix, w.Pix) {
					t.Fatalf("decode into recycled buffers differs from a fresh decode (%v vs %v)", g.Rect, w.Rect)
				}
				held := bufs.held
				got.Release()
				if bufs.held <= held {
					t.Errorf("Release kept the buffer (held %d → %d bytes)", held, bufs.held)
				}
				got.Release() // a second release does nothing
				if got.Image != nil {
					t.Error("Release left the pixels in place")
				}
			})
		}
	}
}

func TestBuffersLimit(t *testing.T) {
	b := NewBuffers(100)
	b.Put(make([]byte, 60))
	b.Put(make([]byte, 30))
	b.Put(make([]byte, 50)) // 140 > 100: the 30 goes first, then 60 + 50 = 110 still: the 50 goes
	if b.held > 100 {
		t.Errorf("held %d bytes; want at most 100", b.held)
	}
	if p := b.Get(55); cap(p) < 55 {
		t.Errorf("Get(55) returned capacity %d", cap(p))
	}
	b.Put(make([]byte, 1000)) // over the limit on its own: dropped
	if b.held > 100 {
		t.Errorf("held %d bytes after a buffer larger than the limit; want at most 100", b.held)
	}
	var none *Buffers
	if p := none.Get(10); len(p) != 10 {
		t.Errorf("nil Buffers Get(10) has length %d", len(p))
	}
	none.Put(make([]byte, 10)) // must not panic
}
