package store

import (
	"errors"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// Errors callers test for with errors.Is.
var (
	// ErrNotFound means no row matched (or it belongs to another tenant).
	ErrNotFound = errors.New("store: not found")
	// ErrUnauthorized means an API key is unknown or revoked.
	ErrUnauthorized = errors.New("store: unknown or revoked api key")
	// ErrBadCursor means a pagination cursor could not be parsed.
	ErrBadCursor = errors.New("store: bad cursor")
)

// ListOptions filters and pages ListImages. Results are newest first.
type ListOptions struct {
	Tenant string     // required
	Status job.Status // optional
	Label  string     // optional: images having this label among their stored labels (case-insensitive exact)
	// Feature filters; zero values mean no filter.
	QRURL       string    // images whose first QR URL starts with this
	TakenAfter  time.Time // EXIF time taken at or after
	TakenBefore time.Time // EXIF time taken before
	Near        *Near     // EXIF GPS position within Near.Km of a point
	HasFaces    *bool     // images with (true) or without (false) detected faces

	Cursor string // opaque, from Page.Next
	Limit  int    // 1..1000; 0 means 50
}

// Page is one page of ListImages.
type Page struct {
	Images []*job.Image
	Next   string // empty on the last page
}

// Key is an API key's record; the secret itself is never stored, only its SHA-256.
type Key struct {
	ID        string
	Tenant    string
	Name      string
	CreatedAt time.Time
	RevokedAt *time.Time
	LastUsed  *time.Time
}
