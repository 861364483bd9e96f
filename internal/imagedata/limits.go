package imagedata

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Limits bounds what an upload may cost. A zero field means no limit.
type Limits struct {
	// MaxBytes is the largest accepted encoded size in bytes.
	MaxBytes int64
	// MaxPixels is the largest accepted width×height, as stored in the header.
	MaxPixels int64
	// MaxFrames is the most frames an animated GIF may hold. Only the first
	// frame is ever decoded; the others are counted by walking the block
	// structure, which reads no pixel data and allocates nothing.
	MaxFrames int
	// BodyTimeout bounds how long an upload body may take to arrive: the
	// reader of a request body gives up BodyTimeout after it starts, plus
	// one second for every BodyMinRate bytes received, so a fast upload of
	// any accepted size finishes while a client trickling bytes is cut off.
	// It is enforced by the HTTP layer, not by this package.
	BodyTimeout time.Duration
	// BodyMinRate, in bytes per second, is the rate at which received bytes
	// extend BodyTimeout. Zero means the deadline never extends.
	BodyMinRate int64
}

// DefaultLimits returns the service defaults: 25 MB (25 MiB), 50
// megapixels, 1000 frames, and a body deadline of 60 s extended by 1 s per
// 16 KB received (a 25 MB upload may take up to about 27 minutes, a client
// sending nothing is cut off after 60 s).
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:    25 << 20,
		MaxPixels:   50_000_000,
		MaxFrames:   1000,
		BodyTimeout: 60 * time.Second,
		BodyMinRate: 16 << 10,
	}
}

// BodyDeadline returns when reading a body that started at start and has
// delivered n bytes must end, or the zero time when BodyTimeout is 0.
func (l Limits) BodyDeadline(start time.Time, n int64) time.Time {
	if l.BodyTimeout <= 0 {
		return time.Time{}
	}
	d := start.Add(l.BodyTimeout)
	if l.BodyMinRate > 0 {
		d = d.Add(time.Duration(float64(n) / float64(l.BodyMinRate) * float64(time.Second)))
	}
	return d
}

// DescribeBodyTimeout renders the body time limit for error messages, e.g.
// "60s plus 1s per 16 KB received".
func (l Limits) DescribeBodyTimeout() string {
	if l.BodyMinRate <= 0 {
		return l.BodyTimeout.String()
	}
	return fmt.Sprintf("%s plus 1s per %s received", l.BodyTimeout, formatBytes(l.BodyMinRate))
}

// checkBytes enforces MaxBytes on an encoded size.
func (l Limits) checkBytes(n int64) error {
	if l.MaxBytes > 0 && n > l.MaxBytes {
		return errTooLarge(n, l.MaxBytes)
	}
	return nil
}

// checkPixels enforces MaxPixels on header dimensions.
func (l Limits) checkPixels(w, h int) error {
	if l.MaxPixels > 0 && int64(w)*int64(h) > l.MaxPixels {
		return errTooManyPixels(w, h, l.MaxPixels)
	}
	return nil
}

// checkFrames enforces MaxFrames on a frame count.
func (l Limits) checkFrames(f Format, n int) error {
	if l.MaxFrames > 0 && n > l.MaxFrames {
		return errTooManyFrames(f, l.MaxFrames)
	}
	return nil
}

// ReadAll reads r up to lim.MaxBytes. If r holds more, it returns ErrTooLarge
// after reading at most MaxBytes+1 bytes; the rest is left unread. An empty
// body is ErrEmpty. A read error from r is returned wrapped as is, except an
// *http.MaxBytesError, which becomes ErrTooLarge.
func ReadAll(r io.Reader, lim Limits) ([]byte, error) {
	src := r
	if lim.MaxBytes > 0 {
		src = io.LimitReader(r, lim.MaxBytes+1)
	}
	var buf bytes.Buffer
	if l, ok := r.(interface{ Len() int }); ok {
		n := int64(l.Len())
		if lim.MaxBytes > 0 {
			n = min(n, lim.MaxBytes+1)
		}
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(src); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge(-1, mbe.Limit)
		}
		return nil, fmt.Errorf("imagedata: read body: %w", err)
	}
	if buf.Len() == 0 {
		return nil, errEmpty()
	}
	if lim.MaxBytes > 0 && int64(buf.Len()) > lim.MaxBytes {
		return nil, errTooLarge(-1, lim.MaxBytes)
	}
	return buf.Bytes(), nil
}
