//go:build turbojpeg && cgo

package imagedata

/*
#cgo pkg-config: libturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"runtime"
	"sync"
	"unsafe"
)

// Backend names the JPEG decoder compiled in: "libjpeg-turbo" when built
// with the turbojpeg tag and cgo, "pure-go" otherwise.
func Backend() string { return "libjpeg-turbo" }

// decodeJPEG decodes with libjpeg-turbo, DCT-scaled so that the shorter side
// stays >= minSide. Whatever turbo refuses (CMYK/YCCK, corrupt or truncated
// data, even a warning) goes to image/jpeg at full size, so this backend
// accepts every file the pure-Go one does and reports the same errors.
func decodeJPEG(b []byte, h Header, minSide int, bufs *Buffers) (m image.Image, pooled bool, err error) {
	if m, err = turboDecode(b, h, minSide, bufs); err == nil {
		return m, bufs != nil, nil
	}
	m, err = decodeJPEGStd(b)
	return m, false, err
}

// tjHandle owns one libjpeg-turbo handle. The cleanup frees the handle when
// its sync.Pool drops it, so pooled handles cannot leak.
type tjHandle struct {
	h C.tjhandle
}

// tjHandles is a pool of handles made by init (nil when it fails).
func tjHandles(init func() C.tjhandle) *sync.Pool {
	return &sync.Pool{
		New: func() any {
			h := init()
			if h == nil {
				return nil
			}
			t := &tjHandle{h: h}
			runtime.AddCleanup(t, func(h C.tjhandle) { C.tjDestroy(h) }, h)
			return t
		},
	}
}

var (
	tjPool    = tjHandles(func() C.tjhandle { return C.tjInitDecompress() })
	tjEncPool = tjHandles(func() C.tjhandle { return C.tjInitCompress() })
)

// errTurbo marks a libjpeg-turbo failure; it never leaves this package.
var errTurbo = errors.New("libjpeg-turbo")

// flags: stop at the first warning (truncated data) rather than return a
// half-grey image, and cap progressive scans against CPU bombs.
const tjFlags = C.TJFLAG_STOPONWARNING | C.TJFLAG_LIMITSCANS

func turboDecode(b []byte, h Header, minSide int, bufs *Buffers) (image.Image, error) {
	d, _ := tjPool.Get().(*tjHandle)
	if d == nil {
		return nil, fmt.Errorf("%w: cannot create handle", errTurbo)
	}
	defer tjPool.Put(d)

	buf := (*C.uchar)(unsafe.Pointer(unsafe.SliceData(b)))
	size := C.ulong(len(b))
	var w, ht, subsamp, cs C.int
	if C.tjDecompressHeader3(d.h, buf, size, &w, &ht, &subsamp, &cs) != 0 {
		return nil, d.err()
	}
	if cs == C.TJCS_CMYK || cs == C.TJCS_YCCK {
		return nil, fmt.Errorf("%w: CMYK is left to image/jpeg", errTurbo)
	}
	// Inspect checked the limits on image/jpeg's reading of the header; never
	// decode a size it did not see.
	if int(w) != h.Width || int(ht) != h.Height {
		return nil, fmt.Errorf("%w: header %dx%d disagrees with %dx%d", errTurbo, w, ht, h.Width, h.Height)
	}
	sw, sh := scaledSize(int(w), int(ht), minSide)
	m := bufs.RGBA(image.Rect(0, 0, sw, sh)) // every pixel is written
	rc := C.tjDecompress2(d.h, buf, size, (*C.uchar)(unsafe.Pointer(&m.Pix[0])),
		C.int(sw), C.int(m.Stride), C.int(sh), C.TJPF_RGBA, tjFlags)
	runtime.KeepAlive(b)
	if rc != 0 {
		return nil, d.err()
	}
	return m, nil
}

func (d *tjHandle) err() error {
	return fmt.Errorf("%w: %s", errTurbo, C.GoString(C.tjGetErrorStr2(d.h)))
}

// scaledSize picks the smallest of the power-of-two reductions libjpeg-turbo
// offers (1/8, 1/4, 1/2) that keeps the shorter side >= minSide, or full
// size. The other n/8 factors exist but have no SIMD IDCT, so they are slower.
func scaledSize(w, h, minSide int) (int, int) {
	if minSide <= 0 {
		return w, h
	}
	var n C.int
	sfs := unsafe.Slice(C.tjGetScalingFactors(&n), int(n))
	bw, bh := w, h
	for _, sf := range sfs {
		num, den := int(sf.num), int(sf.denom)
		if num != 1 || den <= 1 {
			continue
		}
		// TJSCALED rounds up.
		cw, ch := (w*num+den-1)/den, (h*num+den-1)/den
		if min(cw, ch) >= minSide && cw*ch < bw*bh {
			bw, bh = cw, ch
		}
	}
	return bw, bh
}

// compressJPEG encodes m with libjpeg-turbo: 4:2:0 chroma, the same
// subsampling image/jpeg writes, several times faster.
func compressJPEG(m *image.RGBA, quality int) ([]byte, error) {
	e, _ := tjEncPool.Get().(*tjHandle)
	if e == nil {
		return nil, fmt.Errorf("%w: cannot create handle", errTurbo)
	}
	defer tjEncPool.Put(e)
	r := m.Bounds()
	var out *C.uchar
	var size C.ulong
	rc := C.tjCompress2(e.h, (*C.uchar)(unsafe.Pointer(&m.Pix[m.PixOffset(r.Min.X, r.Min.Y)])),
		C.int(r.Dx()), C.int(m.Stride), C.int(r.Dy()), C.TJPF_RGBA, &out, &size, C.TJSAMP_420, C.int(quality), 0)
	runtime.KeepAlive(m)
	if out != nil {
		defer C.tjFree(out)
	}
	if rc != 0 {
		return nil, e.err()
	}
	return C.GoBytes(unsafe.Pointer(out), C.int(size)), nil
}
