// Package faces finds faces with pigo's pixel-intensity-comparison cascade
// (github.com/esimov/pigo), evaluated by its own faster code (see
// classifier). It runs on a grey copy of the image whose longer side is at
// most 640 pixels and reports boxes in display pixels.
package faces

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"image"
	"math"
	"slices"
	"sync"

	pigo "github.com/esimov/pigo/core"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/analyzer/kernel"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// WorkingSide is the longer side of the copy the detector runs on, and the
// shorter side the analyzer asks the decoder for (see MinSide).
const WorkingSide = analyzer.SmallSide

// DefaultMinConfidence is the Confidence a face needs to be reported when
// Config.MinConfidence is 0. It was tuned on the photos in .deps/testdata,
// each also mirrored and scaled to 640, 480 and 320 px: no cluster on a
// faceless photo (landscapes, objects, animals, people seen from behind)
// scored above 5, while astronaut.png's face scores 65 to 110 at 100 to
// 330 px and still 18 when shrunk to 25 px, near the smallest face searched
// for. 10 sits between the two, twice the worst false score.
const DefaultMinConfidence = 10

// DefaultMinFace is the smallest face searched for when Config.MinFace is 0, as
// a fraction of the image's shorter side. At WorkingSide the cascade's
// smallest window (minWindow) is about 4% of a 4:3 photo's shorter side; a
// smaller MinFace makes the working copy larger, so that MinFace of its
// shorter side is minWindow pixels, and the search costs about
// (DefaultMinFace / MinFace)² as much.
const DefaultMinFace = 0.05

// Cascade scan parameters. The confidence scale depends on them (a face's
// Confidence is the sum of the scores of the overlapping windows that hit
// it, so a denser scan gives higher numbers): changing any of them means
// re-tuning DefaultMinConfidence.
const (
	// shiftFactor moves the detection window by this fraction of its side.
	shiftFactor = 0.1
	// scaleFactor grows the window by this factor from one scale to the next.
	scaleFactor = 1.1
	// iouThreshold merges raw detections that overlap by more than this.
	iouThreshold = 0.2
	// maxOverlap is how much of a weaker face's box may lie inside a
	// stronger one's before the weaker is dropped as a duplicate.
	maxOverlap = 0.5
	// minWindow is the smallest window side in working pixels; the cascade
	// is unreliable below it.
	minWindow = 20
)

//go:embed cascade/facefinder
var cascadeFile []byte

// cascade is parsed once per process: it is immutable data embedded in the
// binary, and a parsed classifier is only read, so every Analyzer shares it.
var cascade struct {
	once sync.Once
	c    *classifier
	err  error
}

func loadCascade() (*classifier, error) {
	cascade.once.Do(func() {
		cascade.c, cascade.err = parseCascade(cascadeFile)
	})
	return cascade.c, cascade.err
}

// Config configures an Analyzer. The zero value is ready to use.
type Config struct {
	// MinConfidence is the smallest Confidence reported; 0 means
	// DefaultMinConfidence.
	MinConfidence float64
	// MinFace is the smallest face side searched for, as a fraction of the
	// image's shorter side, in (0, 1]; 0 means DefaultMinFace.
	MinFace float64
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	var errs []error
	if c.MinConfidence < 0 || math.IsNaN(c.MinConfidence) {
		errs = append(errs, fmt.Errorf("faces: min confidence %v is negative", c.MinConfidence))
	}
	if c.MinFace < 0 || c.MinFace > 1 || math.IsNaN(c.MinFace) {
		errs = append(errs, fmt.Errorf("faces: min face %v is outside (0, 1]", c.MinFace))
	}
	return errors.Join(errs...)
}

// Analyzer detects faces. It is safe for concurrent use.
type Analyzer struct {
	cls           *classifier
	minConfidence float64
	minFace       float64
}

var _ analyzer.Analyzer = (*Analyzer)(nil)

// New validates cfg and returns an Analyzer; the first call in a process
// parses the embedded cascade.
func New(cfg Config) (*Analyzer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cls, err := loadCascade()
	if err != nil {
		return nil, err
	}
	a := &Analyzer{cls: cls, minConfidence: cfg.MinConfidence, minFace: cfg.MinFace}
	if a.minConfidence == 0 {
		a.minConfidence = DefaultMinConfidence
	}
	if a.minFace == 0 {
		a.minFace = DefaultMinFace
	}
	return a, nil
}

// Feature returns job.FeatureFaces.
func (a *Analyzer) Feature() job.Feature { return job.FeatureFaces }

// MinSide returns the shorter side the working copy may need: WorkingSide,
// or more for a MinFace below the cascade's reach at WorkingSide.
func (a *Analyzer) MinSide() int {
	return max(WorkingSide, int(math.Ceil(minWindow/a.minFace)))
}

// workingSide is the longer side of the copy a w×h image is searched on:
// WorkingSide, or for a MinFace below DefaultMinFace as much more as makes
// MinFace of its shorter side minWindow pixels, and never more than the
// image's own. (At the default a long panorama's copy stays WorkingSide, so
// its smallest face is a larger share of its shorter side: the default's
// cost does not grow with the aspect.)
func (a *Analyzer) workingSide(w, h int) int {
	long, short := max(w, h), min(w, h)
	if short == 0 || a.minFace >= DefaultMinFace {
		return WorkingSide
	}
	need := int(math.Ceil(minWindow / a.minFace * float64(long) / float64(short)))
	return min(max(WorkingSide, need), max(long, WorkingSide))
}

// Analyze sets res.Faces to the faces found in img, most confident first,
// or to an empty slice when there are none. Boxes are in display pixels and
// clamped to the image. Confidence is pigo's cluster score: the sum of the
// cascade scores of the detection windows merged into the box. It is
// unbounded and grows with the face's size and clarity: clear faces score
// about 30 to 110, faces near the smallest size about 15 to 40, and the
// default threshold is DefaultMinConfidence.
func (a *Analyzer) Analyze(ctx context.Context, img *analyzer.Image, res *job.Result) error {
	dets, work, err := a.detect(ctx, img)
	if err != nil {
		return err
	}
	dw, dh := img.DisplaySize()
	sx := float64(dw) / float64(work.Dx())
	sy := float64(dh) / float64(work.Dy())
	faces := make([]job.Face, 0, len(dets))
	for _, d := range suppress(dets, float32(a.minConfidence)) {
		if f, ok := toFace(d, sx, sy, dw, dh); ok {
			faces = append(faces, f)
		}
	}
	res.Faces = faces
	return nil
}

// toFace turns a detection in working pixels into a box in display pixels
// (sx, sy display pixels per working pixel) clamped to the dw×dh display.
// It reports false when nothing of the box is left inside the image.
func toFace(d pigo.Detection, sx, sy float64, dw, dh int) (job.Face, bool) {
	half := float64(d.Scale) / 2
	x0 := clamp(int(math.Round((float64(d.Col)-half)*sx)), 0, dw)
	y0 := clamp(int(math.Round((float64(d.Row)-half)*sy)), 0, dh)
	x1 := clamp(int(math.Round((float64(d.Col)+half)*sx)), 0, dw)
	y1 := clamp(int(math.Round((float64(d.Row)+half)*sy)), 0, dh)
	if x1 <= x0 || y1 <= y0 {
		return job.Face{}, false
	}
	return job.Face{X: x0, Y: y0, W: x1 - x0, H: y1 - y0, Confidence: float64(d.Q)}, true
}

// suppress drops the detections scoring below minQ, then every detection
// that mostly overlaps a better one, and returns the rest best first (ties
// top to bottom, left to right). pigo's clustering can leave two clusters
// on one face, a weaker and a stronger, when its raw windows chain across
// the face; this keeps the stronger.
func suppress(dets []pigo.Detection, minQ float32) []pigo.Detection {
	var kept []pigo.Detection
	for _, d := range dets {
		if d.Q >= minQ {
			kept = append(kept, d)
		}
	}
	slices.SortFunc(kept, func(p, q pigo.Detection) int {
		return cmp.Or(cmp.Compare(q.Q, p.Q), cmp.Compare(p.Row, q.Row), cmp.Compare(p.Col, q.Col))
	})
	out := kept[:0]
	for _, d := range kept {
		if !slices.ContainsFunc(out, func(k pigo.Detection) bool { return overlap(d, k) > maxOverlap }) {
			out = append(out, d)
		}
	}
	return out
}

// overlap is the area of the intersection of a's and b's boxes over the
// area of the smaller box, so a box nested inside another overlaps it by 1.
func overlap(a, b pigo.Detection) float64 {
	ix := min(a.Col+a.Scale/2, b.Col+b.Scale/2) - max(a.Col-a.Scale/2, b.Col-b.Scale/2)
	iy := min(a.Row+a.Scale/2, b.Row+b.Scale/2) - max(a.Row-a.Scale/2, b.Row-b.Scale/2)
	if ix <= 0 || iy <= 0 {
		return 0
	}
	s := min(a.Scale, b.Scale)
	return float64(ix*iy) / float64(s*s)
}

// detect runs the cascade over the working copy of img and returns the
// clustered detections, in working-copy pixels, with no confidence filter.
func (a *Analyzer) detect(ctx context.Context, img *analyzer.Image) ([]pigo.Detection, image.Rectangle, error) {
	if err := ctx.Err(); err != nil {
		return nil, image.Rectangle{}, fmt.Errorf("faces: %w", err)
	}
	if img == nil || img.Pixels == nil || img.Pixels.Bounds().Empty() {
		return nil, image.Rectangle{}, errors.New("faces: empty image")
	}
	pb := img.Pixels.Bounds()
	work := img.Fit(a.workingSide(pb.Dx(), pb.Dy()))
	r := work.Bounds()
	w, h := r.Dx(), r.Dy()
	short := min(w, h)
	minSize := max(minWindow, int(a.minFace*float64(short)))
	if minSize > short {
		// Too small to hold even the smallest window.
		return nil, r, nil
	}
	dets, err := a.cls.scan(ctx, grey(work), w, h, minSize, short)
	if err != nil {
		return nil, r, fmt.Errorf("faces: %w", err)
	}
	return clusterDetections(dets), r, nil
}

// clusterDetections merges overlapping raw detections with pigo's
// clustering, which needs no state from a cascade.
func clusterDetections(dets []pigo.Detection) []pigo.Detection {
	return (&pigo.Pigo{}).ClusterDetections(dets, iouThreshold)
}

// nextSize is the window size after size, as pigo's RunCascade steps it: by
// scaleFactor, but by at least 2 pixels.
func nextSize(size int) int {
	return int(float64(size) + math.Max(2, float64(size)*scaleFactor-float64(size)))
}

// grey converts m to 8-bit luma (ITU-R BT.601 weights, as pigo's own
// conversion) in one row-major slice with stride m's width.
func grey(m *image.RGBA) []uint8 {
	r := m.Bounds()
	w, h := r.Dx(), r.Dy()
	out := make([]uint8, w*h)
	for y := range h {
		kernel.Grey601(out[y*w:(y+1)*w], m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):])
	}
	return out
}

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }
