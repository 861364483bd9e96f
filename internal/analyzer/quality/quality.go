// Package quality measures how technically good a photo is: sharpness (and
// whether it is blurry), RMS contrast, luma entropy, exposure and
// resolution — the analysis set the original OpenCV service returned.
//
// Every measure except resolution is taken on a shared grey copy whose
// longer side is at most 1000 pixels, so the figures are comparable between
// a 1 MP and a 12 MP upload of the same scene. Grey is the luma the job's
// analyzers share (analyzer.Image.Luma, read by qr and phash too, so one
// pass over the pixels serves all three): Rec. 709 weights in 8-bit fixed
// point. OpenCV's cvtColor uses Rec. 601's; the difference is a few levels
// on saturated colours and none on greys.
package quality

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/analyzer/kernel"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// Defaults for Config.
const (
	// DefaultBlurThreshold is the Laplacian variance under which a photo is
	// blurry; it is also the figure commonly used with OpenCV. On the 13
	// photos of .deps/testdata the sharp originals score 339 to 12,800 and
	// the same photos blurred with a Gaussian of σ = 2 px score 2.7 to 21,
	// so it separates them with a margin of 3.4× above and 4.7× below
	// (TestBlurSeparation prints them).
	DefaultBlurThreshold = 100
	// DefaultClipShare is the share of near-black (near-white) pixels at or
	// above which a photo is underexposed (overexposed).
	DefaultClipShare = 0.25
)

// A photo whose mean luma is below darkMean (above brightMean) is under-
// (over-)exposed even when few of its pixels are clipped: an evenly dim
// photo has no black to clip. The photos of .deps/testdata average 0.24 to
// 0.78, a night sky 0.075, and the same photos at 15% of their brightness
// at most 0.12.
const (
	darkMean   = 0.15
	brightMean = 0.85
)

// minDetail is the sharpness relative to contrast (the Laplacian's variance
// over the grey levels' variance, both on 0..255) at or above which a photo
// is not blurry, however low its sharpness: the Laplacian's variance grows
// with the square of the contrast, so a sharp photo that is dim or flat
// scores low on it. On the photos of .deps/testdata the sharp ones score
// 0.16 to 3.9, at any brightness; blurred with σ = 2 px, 0.002 to 0.015,
// and 0.012 to 0.098 when also dimmed to 15% (their 8-bit steps are then a
// large part of what detail is left).
const minDetail = 0.12

// Luma bounds of the clipped pixels: luma < 0.05 is near-black and luma >
// 0.95 near-white, which on 8-bit grey is <= 12 and >= 243.
const (
	darkMax   = 12
	brightMin = 243
)

// Exposure verdicts.
const (
	ExposureOK    = "ok"
	ExposureUnder = "under"
	ExposureOver  = "over"
)

// workSide is the longer side of the copy the measures are taken on.
const workSide = analyzer.LargeSide

// Config tunes the verdicts; a zero field takes its default.
type Config struct {
	// BlurThreshold is the sharpness (Laplacian variance on 8-bit grey)
	// under which Blurry is set. Default DefaultBlurThreshold.
	BlurThreshold float64
	// ClipShare is the share of near-black pixels (luma < 0.05) at or above
	// which Exposure is "under", and of near-white pixels (luma > 0.95) at
	// or above which it is "over". When both shares reach it the larger one
	// decides, and equal shares (a high-contrast scene, not a badly exposed
	// one) are "ok". Default DefaultClipShare.
	ClipShare float64
}

var _ analyzer.Analyzer = (*Analyzer)(nil)

// Analyzer fills Result.Quality. It is not safe for concurrent use: it
// reuses a buffer from one image to the next.
type Analyzer struct {
	cfg  Config
	grey []uint8
}

// New returns a quality analyzer. It rejects negative settings and a
// ClipShare above 1.
func New(cfg Config) (*Analyzer, error) {
	if cfg.BlurThreshold < 0 || cfg.ClipShare < 0 || cfg.ClipShare > 1 {
		return nil, fmt.Errorf("quality: invalid config %+v: BlurThreshold must be >= 0 and ClipShare in [0,1]", cfg)
	}
	if cfg.BlurThreshold == 0 {
		cfg.BlurThreshold = DefaultBlurThreshold
	}
	if cfg.ClipShare == 0 {
		cfg.ClipShare = DefaultClipShare
	}
	return &Analyzer{cfg: cfg}, nil
}

// Feature returns job.FeatureQuality.
func (a *Analyzer) Feature() job.Feature { return job.FeatureQuality }

// MinSide returns 500: the measures want a copy about 1000 pixels long.
func (a *Analyzer) MinSide() int { return 500 }

// Analyze measures a ~1000 px shared copy of img and stores the result in
// res.Quality.
func (a *Analyzer) Analyze(ctx context.Context, img *analyzer.Image, res *job.Result) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("quality: %w", err)
	}
	// An image at most half as large again as the working size is measured
	// as it is: resampling it would cost more than the measures themselves.
	side := workSide
	if b := img.Pixels.Bounds(); max(b.Dx(), b.Dy()) <= workSide*3/2 {
		side = max(b.Dx(), b.Dy())
	}
	g := img.Luma(side)
	if g.Bounds().Empty() {
		return errors.New("quality: empty image")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("quality: %w", err)
	}
	q := a.measure(g)
	w, h := img.DisplaySize()
	q.Megapixels = float64(w) * float64(h) / 1e6
	res.Quality = &q
	return nil
}

// measure computes every measure but Megapixels on the grey image m.
func (a *Analyzer) measure(m *image.Gray) job.Quality {
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	g := m.Pix
	if m.Stride != w {
		a.grey = a.grey[:0]
		for y := range h {
			a.grey = append(a.grey, m.Pix[y*m.Stride:y*m.Stride+w]...)
		}
		g = a.grey
	}

	var hist [256]int
	for _, v := range g {
		hist[v]++
	}
	n := float64(len(g))
	var sum, sum2, entropy float64
	for v, c := range hist {
		if c == 0 {
			continue
		}
		fc, fv := float64(c), float64(v)/255
		sum += fc * fv
		sum2 += fc * fv * fv
		p := fc / n
		entropy -= p * math.Log2(p)
	}
	mean := sum / n
	var dark, bright int
	for _, c := range hist[:darkMax+1] {
		dark += c
	}
	for _, c := range hist[brightMin:] {
		bright += c
	}

	q := job.Quality{
		Sharpness:    laplacianVariance(g, w, h),
		Contrast:     math.Sqrt(max(sum2/n-mean*mean, 0)),
		Entropy:      entropy,
		Underexposed: float64(dark) / n,
		Overexposed:  float64(bright) / n,
		Exposure:     ExposureOK,
	}
	detail := 0.0
	if v := q.Contrast * q.Contrast * 255 * 255; v > 0 {
		detail = q.Sharpness / v
	}
	q.Blurry = q.Sharpness < a.cfg.BlurThreshold && detail < minDetail
	switch clip := a.cfg.ClipShare; {
	case mean < darkMean, q.Underexposed >= clip && q.Underexposed > q.Overexposed:
		q.Exposure = ExposureUnder
	case mean > brightMean, q.Overexposed >= clip && q.Overexposed > q.Underexposed:
		q.Exposure = ExposureOver
	}
	return q
}

// laplacianVariance is the variance of the 4-neighbour Laplacian of the w×h
// grey plane g over its interior pixels (OpenCV's Laplacian with ksize 1,
// on 0..255 values). It is 0 for images narrower or shorter than 3 pixels.
func laplacianVariance(g []uint8, w, h int) float64 {
	if w < 3 || h < 3 {
		return 0
	}
	sum, sum2 := kernel.Laplacian(g, w, h)
	n := float64((w - 2) * (h - 2))
	mean := float64(sum) / n
	return max(float64(sum2)/n-mean*mean, 0)
}
