package imagedata

import (
	"image"
	"slices"
	"sync"
)

// Buffers recycles pixel buffers from one image to the next. A freshly
// allocated buffer costs the memory's zeroing and, after the runtime has
// handed idle memory back to the system, a page fault for every 4 KB the
// first time it is touched: about a millisecond for the 4 MB of a 1 MP
// image's pixels, as much as a tenth of the job. A worker reuses the
// buffers of its last job instead (Decode and analyzer.Image take them
// from here and give them back when the job is done).
//
// A Buffers is safe for concurrent use: a job's analyzers allocate their
// working copies concurrently. A nil *Buffers allocates every buffer anew
// and lets Put drop them.
type Buffers struct {
	mu    sync.Mutex
	free  [][]byte
	held  int // bytes of capacity in free
	limit int
}

// NewBuffers returns a Buffers that keeps at most limit bytes of idle
// buffers.
func NewBuffers(limit int) *Buffers { return &Buffers{limit: limit} }

// Get returns a buffer of length n whose contents are undefined: the
// smallest idle one that fits, or a new one.
func (b *Buffers) Get(n int) []byte {
	if b != nil {
		b.mu.Lock()
		best := -1
		for i, p := range b.free {
			if cap(p) >= n && (best < 0 || cap(p) < cap(b.free[best])) {
				best = i
			}
		}
		if best >= 0 {
			p := b.free[best]
			b.free = slices.Delete(b.free, best, best+1)
			b.held -= cap(p)
			b.mu.Unlock()
			return p[:n]
		}
		b.mu.Unlock()
	}
	return make([]byte, n)
}

// Put gives p back for reuse; nobody may use it afterwards. When the idle
// buffers would exceed the limit, the smallest are let go first.
func (b *Buffers) Put(p []byte) {
	if b == nil || cap(p) == 0 || cap(p) > b.limit {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free = append(b.free, p[:0])
	b.held += cap(p)
	for b.held > b.limit {
		small := 0
		for i, q := range b.free {
			if cap(q) < cap(b.free[small]) {
				small = i
			}
		}
		b.held -= cap(b.free[small])
		b.free = slices.Delete(b.free, small, small+1)
	}
}

// RGBA returns an RGBA image of r's size, origin (0, 0), whose pixels are
// undefined: for a caller that writes every one.
func (b *Buffers) RGBA(r image.Rectangle) *image.RGBA {
	w, h := r.Dx(), r.Dy()
	return &image.RGBA{Pix: b.Get(4 * w * h), Stride: 4 * w, Rect: image.Rect(0, 0, w, h)}
}

// Gray is RGBA for a grey image.
func (b *Buffers) Gray(r image.Rectangle) *image.Gray {
	w, h := r.Dx(), r.Dy()
	return &image.Gray{Pix: b.Get(w * h), Stride: w, Rect: image.Rect(0, 0, w, h)}
}
