package analyzer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// DefaultTimeout bounds one analyzer on one image.
const DefaultTimeout = 20 * time.Second

// Pipeline runs the analyzers a job asks for over one shared image. Each
// analyzer runs under its own deadline; one that fails or times out leaves an
// entry in Result.Errors and the others still report. A Pipeline is owned by
// one worker and is not safe for concurrent use.
type Pipeline struct {
	byFeature map[job.Feature]Analyzer
	order     []Analyzer
	timeout   time.Duration
}

// PanicError is an analyzer's panic, recovered. It is not recorded as a
// feature error: the pipeline returns it, so that the worker retries the job
// and dead-letters a poison image after the retry limit instead of hiding a
// crash.
type PanicError struct {
	Feature job.Feature
	Value   any
	Stack   []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("analyzer: %s crashed: %v", e.Feature, e.Value)
}

// NewPipeline makes a pipeline over analyzers, one per feature; timeout <= 0
// means DefaultTimeout.
func NewPipeline(timeout time.Duration, analyzers ...Analyzer) (*Pipeline, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	p := &Pipeline{byFeature: map[job.Feature]Analyzer{}, timeout: timeout}
	for _, a := range analyzers {
		f := a.Feature()
		if _, dup := p.byFeature[f]; dup {
			return nil, fmt.Errorf("analyzer: two analyzers for feature %q", f)
		}
		p.byFeature[f] = a
		p.order = append(p.order, a)
	}
	return p, nil
}

// Has reports whether the pipeline can answer f.
func (p *Pipeline) Has(f job.Feature) bool { _, ok := p.byFeature[f]; return ok }

// MinSide is the decode size the requested features need: FullResolution
// when any needs it, NoPixels when none needs pixels, else the largest
// positive MinSide among them.
func (p *Pipeline) MinSide(features []job.Feature) int {
	need := NoPixels
	for _, f := range features {
		a, ok := p.byFeature[f]
		if !ok {
			continue
		}
		switch m := a.MinSide(); {
		case m == FullResolution:
			return FullResolution
		case m > need:
			need = m
		}
	}
	return need
}

// Run runs the analyzers for features, in the pipeline's order, writing into
// res. It returns an error only when the job as a whole cannot go on: ctx
// ended, or an analyzer panicked (*PanicError).
func (p *Pipeline) Run(ctx context.Context, img *Image, features []job.Feature, res *job.Result) error {
	want := map[job.Feature]bool{}
	for _, f := range features {
		want[f] = true
	}
	for f := range want {
		if !p.Has(f) {
			setErr(res, f, "this server has no analyzer for it")
		}
	}
	for _, a := range p.order {
		f := a.Feature()
		if !want[f] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := p.runOne(ctx, a, img, res)
		var pe *PanicError
		switch {
		case err == nil:
		case errors.As(err, &pe):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			setErr(res, f, fmt.Sprintf("took longer than %v", p.timeout))
		default:
			setErr(res, f, err.Error())
		}
	}
	return nil
}

func (p *Pipeline) runOne(ctx context.Context, a Analyzer, img *Image, res *job.Result) (err error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Feature: a.Feature(), Value: r, Stack: debug.Stack()}
		}
	}()
	return a.Analyze(ctx, img, res)
}

// Close closes every analyzer that holds resources.
func (p *Pipeline) Close() error {
	var errs []error
	for _, a := range p.order {
		if c, ok := a.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

func setErr(res *job.Result, f job.Feature, msg string) {
	if res.Errors == nil {
		res.Errors = map[job.Feature]string{}
	}
	res.Errors[f] = msg
}
