// Package thumbnail stores a small JPEG copy of each image, served at
// GET /v1/images/{id}/thumbnail.
package thumbnail

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxSide = 320
	DefaultQuality = 80
)

// ContentType is the media type of every thumbnail.
const ContentType = "image/jpeg"

// Blobs is where thumbnails are stored; *blobstore.Store satisfies it.
type Blobs interface {
	Put(ctx context.Context, key string, b []byte, contentType string) error
}

// Key is the blob key of an image's thumbnail.
func Key(imageID string) string { return job.ThumbnailKey(imageID) }

// Config configures an Analyzer.
type Config struct {
	// Blobs stores the thumbnails; required.
	Blobs Blobs
	// MaxSide bounds the thumbnail's longer side in pixels; 0 means
	// DefaultMaxSide. Smaller images are not enlarged.
	MaxSide int
	// Quality is the JPEG quality, 1 to 100; 0 means DefaultQuality.
	Quality int
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	var errs []error
	if c.Blobs == nil {
		errs = append(errs, errors.New("thumbnail: config has no blob store"))
	}
	if c.MaxSide < 0 {
		errs = append(errs, fmt.Errorf("thumbnail: max side %d is negative", c.MaxSide))
	}
	if c.Quality < 0 || c.Quality > 100 {
		errs = append(errs, fmt.Errorf("thumbnail: quality %d is outside 1..100", c.Quality))
	}
	return errors.Join(errs...)
}

// Analyzer makes and stores thumbnails. It is safe for concurrent use if
// its Blobs is.
type Analyzer struct {
	blobs   Blobs
	maxSide int
	quality int
}

var _ analyzer.Analyzer = (*Analyzer)(nil)

// New validates cfg and returns an Analyzer.
func New(cfg Config) (*Analyzer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Analyzer{blobs: cfg.Blobs, maxSide: cfg.MaxSide, quality: cfg.Quality}
	if a.maxSide == 0 {
		a.maxSide = DefaultMaxSide
	}
	if a.quality == 0 {
		a.quality = DefaultQuality
	}
	return a, nil
}

// Feature returns job.FeatureThumbnail.
func (a *Analyzer) Feature() job.Feature { return job.FeatureThumbnail }

// MinSide returns the configured MaxSide: an image whose shorter side is
// that long has a longer side at least as long, enough for the thumbnail.
func (a *Analyzer) MinSide() int { return a.maxSide }

// Analyze scales img so its longer side is at most MaxSide, encodes it as a
// JPEG, stores it at Key(img.ID) and sets res.Thumbnail. Transparent pixels
// are shown over white, as browsers show them.
func (a *Analyzer) Analyze(ctx context.Context, img *analyzer.Image, res *job.Result) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("thumbnail: %w", err)
	}
	if img == nil || img.Pixels == nil || img.Pixels.Bounds().Empty() {
		return errors.New("thumbnail: empty image")
	}
	if img.ID == "" {
		return errors.New("thumbnail: image has no id")
	}
	small := img.Fit(a.maxSide)
	b, err := imagedata.EncodeJPEG(overWhite(small), a.quality)
	if err != nil {
		return fmt.Errorf("thumbnail: encoding: %v", err)
	}
	key := Key(img.ID)
	if err := a.blobs.Put(ctx, key, b, ContentType); err != nil {
		return fmt.Errorf("thumbnail: storing %s: %w", key, err)
	}
	r := small.Bounds()
	res.Thumbnail = &job.Thumbnail{Key: key, Width: r.Dx(), Height: r.Dy(), ContentType: ContentType}
	return nil
}

// overWhite returns m composited over white: JPEG has no alpha, and the
// encoder would otherwise show transparent pixels as black. An opaque m is
// returned as is; otherwise m is copied, as it is shared.
func overWhite(m *image.RGBA) *image.RGBA {
	if m.Opaque() {
		return m
	}
	out := image.NewRGBA(image.Rect(0, 0, m.Rect.Dx(), m.Rect.Dy()))
	draw.Draw(out, out.Rect, m, m.Rect.Min, draw.Src)
	for i := 0; i+3 < len(out.Pix); i += 4 {
		// Premultiplied: white over is c + (255 - a) on each channel.
		p := out.Pix[i : i+4 : i+4]
		w := 255 - p[3]
		p[0] += w
		p[1] += w
		p[2] += w
		p[3] = 255
	}
	return out
}
