package imagedata

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Sentinel error kinds. Every error returned by this package is an [*Error]
// whose Kind is one of these, so errors.Is(err, ErrTooLarge) works.
var (
	// ErrEmpty means the body held no bytes at all (HTTP 400).
	ErrEmpty = errors.New("imagedata: empty body")
	// ErrUnsupported means the bytes are not an image in a supported format
	// (HTTP 415).
	ErrUnsupported = errors.New("imagedata: unsupported format")
	// ErrTooLarge means the encoded image exceeds Limits.MaxBytes (HTTP 413).
	ErrTooLarge = errors.New("imagedata: image too large")
	// ErrTooManyPixels means the image dimensions exceed Limits.MaxPixels
	// (HTTP 422). It is detected from the header, before any pixel is decoded.
	ErrTooManyPixels = errors.New("imagedata: too many pixels")
	// ErrTooManyFrames means an animated image holds more frames than
	// Limits.MaxFrames (HTTP 422). It is detected without decoding pixels.
	ErrTooManyFrames = errors.New("imagedata: too many frames")
	// ErrCorrupt means the image data is truncated or corrupt (HTTP 422).
	ErrCorrupt = errors.New("imagedata: corrupt image")
)

// Error is the error type returned by this package.
type Error struct {
	// Kind is one of the package sentinels (ErrEmpty, ErrUnsupported, …).
	Kind error
	// Status is the HTTP status code that fits the error.
	Status int
	// Message is a sentence fit for the end user; it never contains
	// internal details.
	Message string
	// Cause is the underlying decoder error, if any. It is for logs only.
	Cause error
}

// Error implements error. The text includes the cause, so it is meant for
// logs; show Message to users.
func (e *Error) Error() string {
	if e.Cause != nil {
		return "imagedata: " + e.Message + ": " + e.Cause.Error()
	}
	return "imagedata: " + e.Message
}

// Unwrap returns the sentinel kind, so errors.Is matches it.
func (e *Error) Unwrap() error { return e.Kind }

// StatusOf returns the HTTP status for err: 200 for nil, the status carried
// by an [*Error] anywhere in the chain, and 500 for anything else.
func StatusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	for kind, status := range kindStatus {
		if errors.Is(err, kind) {
			return status
		}
	}
	return http.StatusInternalServerError
}

// MessageOf returns the user-facing message for err: the Message of an
// [*Error] in the chain, or a generic sentence for other errors.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	if err == nil {
		return ""
	}
	return "the image could not be processed"
}

var kindStatus = map[error]int{
	ErrEmpty:         http.StatusBadRequest,
	ErrUnsupported:   http.StatusUnsupportedMediaType,
	ErrTooLarge:      http.StatusRequestEntityTooLarge,
	ErrTooManyPixels: http.StatusUnprocessableEntity,
	ErrTooManyFrames: http.StatusUnprocessableEntity,
	ErrCorrupt:       http.StatusUnprocessableEntity,
}

func newError(kind error, cause error, format string, args ...any) *Error {
	return &Error{
		Kind:    kind,
		Status:  kindStatus[kind],
		Message: fmt.Sprintf(format, args...),
		Cause:   cause,
	}
}

func errEmpty() *Error {
	return newError(ErrEmpty, nil, "the request body is empty; send the image bytes")
}

// errUnsupported reports bytes that are no supported image. what, when not
// empty, names the format that was recognised but is not supported.
func errUnsupported(what string, cause error) *Error {
	if what != "" {
		return newError(ErrUnsupported, cause, "%s images are not supported; supported formats are %s", what, supportedList())
	}
	return newError(ErrUnsupported, cause, "the data is not a recognised image; supported formats are %s", supportedList())
}

func errTooLarge(size, limit int64) *Error {
	if size < 0 {
		return newError(ErrTooLarge, nil, "image is larger than the %s limit", formatBytes(limit))
	}
	return newError(ErrTooLarge, nil, "image is %s", SizeAndLimit(size, limit))
}

// SizeAndLimit says "30 MiB; the limit is 25 MiB", in bytes where rounding
// would make the two read alike ("25 MiB; the limit is 25 MiB").
func SizeAndLimit(size, limit int64) string {
	got, max := FormatBytes(size), FormatBytes(limit)
	if got == max {
		got, max = fmt.Sprintf("%d bytes", size), fmt.Sprintf("%d bytes", limit)
	}
	return got + "; the limit is " + max
}

func errTooManyPixels(w, h int, limit int64) *Error {
	mp := float64(int64(w)*int64(h)) / 1e6
	return newError(ErrTooManyPixels, nil, "image is %d×%d = %.1f megapixels; the limit is %s megapixels",
		w, h, mp, formatMegapixels(limit))
}

func errTooManyFrames(f Format, limit int) *Error {
	return newError(ErrTooManyFrames, nil, "the %s has more than %d frames; the limit is %d frames",
		strings.ToUpper(string(f)), limit, limit)
}

func errCorrupt(f Format, cause error) *Error {
	return newError(ErrCorrupt, cause, "the %s data is truncated or corrupt", strings.ToUpper(string(f)))
}

func supportedList() string {
	names := make([]string, len(supportedFormats))
	for i, f := range supportedFormats {
		names[i] = strings.ToUpper(string(f))
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// formatBytes renders n in binary units labelled the way users expect
// ("25 MB" for 25 MiB).
func formatBytes(n int64) string { return FormatBytes(n) }

// FormatBytes writes a size in binary units, as the limits are set (25 MiB
// is 25 << 20 bytes): "25 MiB", "1.5 KiB", "812 bytes".
func FormatBytes(n int64) string {
	const (
		kib = 1 << 10
		mib = 1 << 20
	)
	switch {
	case n >= mib:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/mib)) + " MiB"
	case n >= kib:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/kib)) + " KiB"
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

func formatMegapixels(n int64) string {
	return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64)
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }
