// Package standard lists the analyzers a Glimpse worker runs: every feature
// this build knows, explicitly, in the order the pipeline starts them.
package standard

import (
	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"github.com/glimpse-oss/glimpse/internal/analyzer/classify"
	"github.com/glimpse-oss/glimpse/internal/analyzer/colors"
	"github.com/glimpse-oss/glimpse/internal/analyzer/exif"
	"github.com/glimpse-oss/glimpse/internal/analyzer/faces"
	"github.com/glimpse-oss/glimpse/internal/analyzer/phash"
	"github.com/glimpse-oss/glimpse/internal/analyzer/qr"
	"github.com/glimpse-oss/glimpse/internal/analyzer/quality"
	"github.com/glimpse-oss/glimpse/internal/analyzer/thumbnail"
	"github.com/glimpse-oss/glimpse/internal/models"
)

// Options tune the analyzers; the zero value takes every default.
type Options struct {
	// FacesMinSize is faces.Config.MinFace: the smallest face searched
	// for, as a fraction of the image's shorter side.
	FacesMinSize float64
}

// New makes one worker's pipeline. Each analyzer in it belongs to that
// worker alone (the classifier's ONNX session is not shareable). blobs
// receives thumbnails.
func New(model *models.Model, blobs thumbnail.Blobs, opt Options) (*analyzer.Pipeline, error) {
	cls, err := classify.New(classify.Config{Model: model})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*analyzer.Pipeline, error) {
		cls.Close()
		return nil, err
	}
	fc, err := faces.New(faces.Config{MinFace: opt.FacesMinSize})
	if err != nil {
		return fail(err)
	}
	qa, err := quality.New(quality.Config{})
	if err != nil {
		return fail(err)
	}
	th, err := thumbnail.New(thumbnail.Config{Blobs: blobs})
	if err != nil {
		return fail(err)
	}
	// A job's analyzers run concurrently, each taking the next free core in
	// this order. The long ones come first (on 1 MP photos labels and faces
	// take 5-7 ms each, qr about 3, the rest about 1 or less), so that none
	// is left to run alone at the end, but qr between labels and faces:
	// those two read the same small copy, and the second to start would
	// wait while the first makes it.
	p, err := analyzer.NewPipeline(analyzer.DefaultTimeout,
		cls, qr.New(qr.Config{}), fc, colors.New(), qa, phash.New(), th, exif.New())
	if err != nil {
		return fail(err)
	}
	return p, nil
}
