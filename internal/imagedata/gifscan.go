package imagedata

import (
	"errors"
	"fmt"
)

// GIF block introducers and the flag that announces a colour table.
const (
	gifExtension  = 0x21
	gifImage      = 0x2C
	gifTrailer    = 0x3B
	gifColorTable = 0x80
)

// errGIFFrames stops countGIFFrames once max frames have been passed.
var errGIFFrames = errors.New("frame limit reached")

// countGIFFrames walks the block structure of the GIF b and returns the
// number of image descriptors (frames) it holds, stopping as soon as the
// count exceeds max (when max > 0). It reads only block headers and
// sub-block lengths: no LZW data is decoded, nothing is allocated, and each
// step moves forward by at least one byte, so the work is linear in len(b)
// at worst and usually far less.
//
// Junk before the first frame is an error, because the decoder would fail
// on it too; junk or truncation after the first frame ends the walk, since
// the decoder never reads past the first frame.
func countGIFFrames(b []byte, max int) (int, error) {
	const lsdEnd = 13 // "GIF89a" + logical screen descriptor
	if len(b) < lsdEnd {
		return 0, nil // decodeConfig already failed on this
	}
	p := lsdEnd
	if b[10]&gifColorTable != 0 {
		p += 3 << (b[10]&7 + 1)
	}
	n := 0
	for p < len(b) {
		switch b[p] {
		case gifTrailer:
			return n, nil
		case gifExtension:
			p += 2 // introducer, label
		case gifImage:
			n++
			if max > 0 && n > max {
				return n, errGIFFrames
			}
			if p+10 > len(b) {
				return n, nil
			}
			flags := b[p+9]
			p += 10
			if flags&gifColorTable != 0 {
				p += 3 << (flags&7 + 1)
			}
			p++ // LZW minimum code size
		default:
			if n == 0 {
				return 0, fmt.Errorf("gif: unknown block type 0x%02x at offset %d", b[p], p)
			}
			return n, nil
		}
		// Skip the data sub-blocks up to their zero-length terminator.
		for p < len(b) {
			size := int(b[p])
			p += 1 + size
			if size == 0 {
				break
			}
		}
	}
	return n, nil
}
