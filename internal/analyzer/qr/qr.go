// Package qr finds QR codes, and optionally common 1-D barcodes, in an image
// with github.com/makiuchi-d/gozxing.
//
// It is tuned for phone photos of codes: a code may be rotated, small in a
// large photo, and JPEG-compressed. It first reads a downscaled working copy
// (~1000 px, shared with other analyzers through analyzer.Image.Fit), which
// is fast and enough for most photos, and reads the full-size image only when
// the copy yields nothing. An image at most 1.5 times the working size is read
// once, directly. Several codes in one image are all reported: after
// gozxing's multi-code reader (multiReader, an exact and faster equivalent),
// each code found is painted out and the image read again, a bounded number
// of times.
package qr

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"net/url"
	"slices"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/multi"
	"github.com/makiuchi-d/gozxing/oned"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"

	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/job"
)

// Defaults for Config.
const (
	DefaultWorkingSide = analyzer.LargeSide
	DefaultMaxCodes    = 16
)

// Config configures an Analyzer. The zero value is the default.
type Config struct {
	// WorkingSide is the longer side of the downscaled copy read first;
	// 0 means DefaultWorkingSide.
	WorkingSide int
	// MaxCodes bounds the codes reported for one image, and so the number of
	// re-reads; 0 means DefaultMaxCodes.
	MaxCodes int
	// Barcodes also looks for 1-D barcodes: EAN-13, UPC-A and Code 128, at
	// most one EAN-13/UPC-A and one Code 128 per image, horizontal or
	// vertical (not turned in between). Their points are the two ends of the
	// scan line that read them.
	Barcodes bool
}

// Analyzer answers job.FeatureQR. It is not safe for concurrent use (the
// gozxing readers keep state); give each worker its own.
type Analyzer struct {
	side, maxCodes int
	hints          map[gozxing.DecodeHintType]any // for QR codes
	oneDHints      map[gozxing.DecodeHintType]any
	multi          multi.MultipleBarcodeReader // a multiReader; gozxing's own in benchmarks
	single         *singleReader
	oneD           []gozxing.Reader
}

var _ analyzer.Analyzer = (*Analyzer)(nil)

// New returns an Analyzer configured by cfg.
func New(cfg Config) *Analyzer {
	a := &Analyzer{
		side:     cmp.Or(max(cfg.WorkingSide, 0), DefaultWorkingSide),
		maxCodes: cmp.Or(max(cfg.MaxCodes, 0), DefaultMaxCodes),
		hints:    map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true},
		multi:    newMultiReader(),
		single:   newSingleReader(),
	}
	if cfg.Barcodes {
		// EAN-8 and UPC-E are left out: short, they are read in noise.
		upcean := []gozxing.BarcodeFormat{gozxing.BarcodeFormat_EAN_13, gozxing.BarcodeFormat_UPC_A}
		// The EAN/UPC reader reads POSSIBLE_FORMATS both when made and
		// when decoding: with UPC_A among them, a 13-digit EAN starting
		// with 0 is reported as the 12-digit UPC-A it is.
		a.oneDHints = map[gozxing.DecodeHintType]any{
			gozxing.DecodeHintType_TRY_HARDER:       true,
			gozxing.DecodeHintType_POSSIBLE_FORMATS: upcean,
		}
		a.oneD = []gozxing.Reader{
			oned.NewMultiFormatUPCEANReader(a.oneDHints),
			oned.NewCode128Reader(),
		}
	}
	return a
}

// Feature returns job.FeatureQR.
func (a *Analyzer) Feature() job.Feature { return job.FeatureQR }

// MinSide returns analyzer.FullResolution: a code that is small in a large
// photo can only be read at full size.
func (a *Analyzer) MinSide() int { return analyzer.FullResolution }

// Analyze sets res.QR to the codes found in img, an empty non-nil slice when
// there are none. Codes are in reading order of their centres (top to bottom,
// then left to right) and their points are in display pixels. It returns an
// error only when ctx ends, which it checks between reads.
func (a *Analyzer) Analyze(ctx context.Context, img *analyzer.Image, res *job.Result) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("qr: %w", err)
	}
	if img.Pixels == nil {
		return errors.New("qr: image has no pixels")
	}
	dw, dh := img.DisplaySize()
	if b := img.Pixels.Bounds(); max(b.Dx(), b.Dy()) <= a.side*3/2 {
		// Hardly larger than the working copy: reading it directly costs
		// about the same as making the copy and sees more.
		codes, err := a.scan(ctx, img.Luma(analyzer.FullResolution), dw, dh)
		if err != nil {
			return err
		}
		report(codes, res)
		return nil
	}
	codes, err := a.scan(ctx, img.Luma(a.side), dw, dh)
	if err != nil {
		return err
	}
	if len(codes) == 0 {
		if codes, err = a.scan(ctx, img.Luma(analyzer.FullResolution), dw, dh); err != nil {
			return err
		}
	}
	report(codes, res)
	return nil
}

// report sets res.QR to codes in reading order.
func report(codes []found, res *job.Result) {
	slices.SortStableFunc(codes, func(p, q found) int {
		return cmp.Or(cmp.Compare(p.centre.y, q.centre.y), cmp.Compare(p.centre.x, q.centre.x))
	})
	res.QR = make([]job.Code, len(codes))
	for i, c := range codes {
		res.QR[i] = c.code
	}
}

// point is a position in the pixels of the image being read.
type point struct{ x, y float64 }

// found is one code and where it is in the image being read.
type found struct {
	code   job.Code
	centre point // in display pixels, for ordering
}

// scan reads every code in g, the luma of the image (shared: scan paints
// found codes out of a copy). dw×dh is the display size, to which the
// points are scaled from g's size.
func (a *Analyzer) scan(ctx context.Context, g *image.Gray, dw, dh int) ([]found, error) {
	b := g.Bounds()
	if b.Empty() {
		return nil, nil
	}
	lum := sharedLuminance(g)
	sx, sy := float64(dw)/float64(b.Dx()), float64(dh)/float64(b.Dy())
	toDisplay := func(p point) job.Point { return job.Point{X: p.x * sx, Y: p.y * sy} }

	var out []found
	add := func(r *gozxing.Result, poly []point) {
		c := job.Code{
			Text:   r.GetText(),
			Format: r.GetBarcodeFormat().String(),
			URL:    parseURL(r.GetText()),
		}
		for _, p := range poly {
			c.Points = append(c.Points, toDisplay(p))
		}
		ctr := centroid(poly)
		out = append(out, found{code: c, centre: point{ctr.x * sx, ctr.y * sy}})
	}

	// QR codes: the multi reader first, then painting out what was found
	// and reading again, until a read finds nothing new. A code found again
	// (its centre inside one already found, or the same text when there is
	// no shape to compare, as when it could not be painted out) is not new.
	var polys [][]point
	again := func(poly []point, text string) bool {
		for i, q := range polys {
			if inside(q, centroid(poly)) || (len(poly) < 3 && out[i].code.Text == text) {
				return true
			}
		}
		return false
	}
	for len(out) < a.maxCodes {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("qr: %w", err)
		}
		progress := false
		for _, r := range a.readQR(lum, len(out) == 0) {
			if len(out) >= a.maxCodes {
				break
			}
			poly, module := qrCorners(r)
			// Paint out the code and one and a half modules around it.
			lum.fill(expand(poly, 1.5*module))
			if again(poly, r.GetText()) {
				continue
			}
			polys = append(polys, poly)
			add(r, poly)
			progress = true
		}
		if !progress {
			break
		}
	}

	for _, rd := range a.oneD {
		if len(out) >= a.maxCodes {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("qr: %w", err)
		}
		bmp, err := gozxing.NewBinaryBitmap(newBinarizer(lum))
		if err != nil {
			break
		}
		r, err := rd.Decode(bmp, a.oneDHints)
		if err != nil {
			continue
		}
		add(r, rawPoints(r.GetResultPoints()))
	}
	return out, nil
}

// readQR returns the QR codes the multi reader finds in lum, or failing that
// and when single is set the one the single reader finds. The single
// reader's finder-pattern search differs and may succeed where the multi
// reader gives up; it is tried only until a first code is found, as it costs
// another detection pass.
func (a *Analyzer) readQR(lum *luminance, single bool) []*gozxing.Result {
	bmp, err := gozxing.NewBinaryBitmap(newBinarizer(lum))
	if err != nil {
		return nil
	}
	if rs, err := a.multi.DecodeMultiple(bmp, a.hints); err == nil && len(rs) > 0 {
		return rs
	}
	if !single {
		return nil
	}
	if r, err := a.single.Decode(bmp, a.hints); err == nil {
		return []*gozxing.Result{r}
	}
	return nil
}

// moduleSizer is implemented by gozxing's finder patterns.
type moduleSizer interface{ GetEstimatedModuleSize() float64 }

// qrCorners returns the four outer corners of the QR code r (top-left,
// top-right, bottom-right, bottom-left as the code reads) and its module size
// in pixels. gozxing gives the centres of the bottom-left, top-left and
// top-right finder patterns (then maybe the alignment pattern); finder
// centres lie 3.5 modules inside the edges and dimension-7 modules apart.
// When the dimension is unknown it falls back on the finder patterns' own
// module size estimate, which is too large for a turned code (up to √2 at 45
// degrees); without either it returns the points as they are.
func qrCorners(r *gozxing.Result) (corners []point, module float64) {
	pts := r.GetResultPoints()
	if len(pts) < 3 {
		return rawPoints(pts), 0
	}
	bl, tl, tr := pt(pts[0]), pt(pts[1]), pt(pts[2])
	br := point{tr.x + bl.x - tl.x, tr.y + bl.y - tl.y}
	q := []point{tl, tr, br, bl}
	if dim := dimension(r); dim > 7 {
		module = (math.Hypot(tr.x-tl.x, tr.y-tl.y) + math.Hypot(bl.x-tl.x, bl.y-tl.y)) / 2 / float64(dim-7)
	} else {
		module = moduleSize(pts)
	}
	if module == 0 {
		return rawPoints(pts), 0
	}
	return expand(q, 3.5*module), module
}

// dimension returns the number of modules on a side of the QR code r, 0 when
// unknown. The error correction level and the number of data codewords
// (the length of the raw bytes) together fix the version.
func dimension(r *gozxing.Result) int {
	lvl, _ := r.GetResultMetadata()[gozxing.ResultMetadataType_ERROR_CORRECTION_LEVEL].(string)
	ec, err := decoder.ErrorCorrectionLevel_ValueOf(lvl)
	if err != nil {
		return 0
	}
	n := len(r.GetRawBytes())
	for v := 1; v <= 40; v++ {
		ver, err := decoder.Version_GetVersionForNumber(v)
		if err != nil {
			return 0
		}
		if ver.GetTotalCodewords()-ver.GetECBlocksForLevel(ec).GetTotalECCodewords() == n {
			return ver.GetDimensionForVersion()
		}
	}
	return 0
}

// moduleSize is the mean module size of the finder patterns among pts, 0
// when unknown.
func moduleSize(pts []gozxing.ResultPoint) float64 {
	var sum float64
	var n int
	for _, p := range pts {
		if m, ok := p.(moduleSizer); ok {
			sum += m.GetEstimatedModuleSize()
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// expand moves each corner of the quadrilateral q outwards by d along both
// of its edges.
func expand(q []point, d float64) []point {
	out := make([]point, len(q))
	for i, c := range q {
		prev, next := q[(i+len(q)-1)%len(q)], q[(i+1)%len(q)]
		u, v := unit(c, prev), unit(c, next)
		out[i] = point{c.x + d*(u.x+v.x), c.y + d*(u.y+v.y)}
	}
	return out
}

// unit is the unit vector from b towards a, or zero when they coincide.
func unit(a, b point) point {
	dx, dy := a.x-b.x, a.y-b.y
	n := math.Hypot(dx, dy)
	if n == 0 {
		return point{}
	}
	return point{dx / n, dy / n}
}

// centroid is the mean of the points of poly.
func centroid(poly []point) point {
	var c point
	for _, p := range poly {
		c.x += p.x / float64(len(poly))
		c.y += p.y / float64(len(poly))
	}
	return c
}

// inside reports whether p lies inside the convex polygon poly (of three or
// more points, in either winding).
func inside(poly []point, p point) bool {
	if len(poly) < 3 {
		return false
	}
	var pos, neg bool
	for i, a := range poly {
		b := poly[(i+1)%len(poly)]
		cross := (b.x-a.x)*(p.y-a.y) - (b.y-a.y)*(p.x-a.x)
		pos = pos || cross > 0
		neg = neg || cross < 0
	}
	return !(pos && neg)
}

func pt(p gozxing.ResultPoint) point { return point{p.GetX(), p.GetY()} }

func rawPoints(pts []gozxing.ResultPoint) []point {
	out := make([]point, len(pts))
	for i, p := range pts {
		out[i] = pt(p)
	}
	return out
}

// parseURL returns the parts of text when it is an absolute http or https
// URL with a host, else nil. The scheme and host are lower-cased; the host
// keeps its port.
func parseURL(text string) *job.URLParts {
	u, err := url.Parse(strings.TrimSpace(text))
	if err != nil || u.Host == "" {
		return nil
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return nil
	}
	return &job.URLParts{
		Scheme: scheme,
		Host:   strings.ToLower(u.Host),
		Path:   u.Path,
		Query:  u.RawQuery,
	}
}
