package analyzer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// DefaultTimeout bounds one analyzer on one image.
const DefaultTimeout = 20 * time.Second

// Pipeline runs the analyzers a job asks for over one shared image. Each
// analyzer runs under its own deadline; one that fails or times out leaves an
// entry in Result.Errors and the others still report. A Pipeline is owned by
// one worker and is not safe for concurrent use.
//
// The analyzers of one job run concurrently, at most GOMAXPROCS at a time
// unless SetParallel says otherwise, which shortens a job's wall time when
// cores are free and costs the same CPU either way. Each writes only its own
// fields of the Result, and they share working copies through Image.Fit,
// which gives the same pixels whatever the order, so a job's answers do not
// depend on how its analyzers were scheduled. A deadline starts when its
// analyzer starts.
type Pipeline struct {
	byFeature map[job.Feature]Analyzer
	order     []Analyzer
	timeout   time.Duration
	parallel  int
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

// SetParallel sets how many analyzers of one job may run at once: 1 runs
// them one after another, in the pipeline's order; n < 1 means GOMAXPROCS.
func (p *Pipeline) SetParallel(n int) { p.parallel = n }

// errNotRun marks an analyzer a job ended or crashed before starting.
var errNotRun = errors.New("analyzer: not run")

// Run runs the analyzers for features, writing into res, and returns when
// all that started have returned. It returns an error only when the job as
// a whole cannot go on: ctx ended, or an analyzer panicked (*PanicError;
// analyzers not yet started then do not start). Failures are settled in the
// pipeline's order, whatever order the analyzers finished in.
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
	var todo []Analyzer
	for _, a := range p.order {
		if want[a.Feature()] {
			todo = append(todo, a)
		}
	}
	errs := make([]error, len(todo))
	for i := range errs {
		errs[i] = errNotRun
	}
	n := p.parallel
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	// An analyzer alone in its job may use the cores the job would have
	// given the others (see Cores).
	if len(todo) == 1 {
		ctx = WithCores(ctx, n)
	}
	p.runConcurrently(ctx, min(n, len(todo)), todo, img, res, errs)
	for i, a := range todo {
		switch err := errs[i]; {
		case err == nil, err == errNotRun:
			// A skipped analyzer: ctx ended, returned below, or another
			// panicked, returned when the loop reaches it.
		case isPanic(err):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			setErr(res, a.Feature(), fmt.Sprintf("took longer than %v", p.timeout))
		default:
			setErr(res, a.Feature(), err.Error())
		}
	}
	return ctx.Err()
}

// runConcurrently runs todo with at most n at a time, started in order,
// recording each one's error in errs; with n = 1 each starts after the one
// before has returned. It starts no more after ctx ends or an analyzer
// panics, and returns when all it started have returned.
//
// With n = 1 — which includes every job asking for one feature, such as
// the default labels-only job — the analyzers run on the caller's
// goroutine: a goroutine per analyzer would only move the work, and the
// decoded pixels it reads, to another thread and core.
func (p *Pipeline) runConcurrently(ctx context.Context, n int, todo []Analyzer, img *Image, res *job.Result, errs []error) {
	if n == 1 {
		for i, a := range todo {
			if ctx.Err() != nil {
				return
			}
			errs[i] = p.runOne(ctx, a, img, res)
			if isPanic(errs[i]) {
				return
			}
		}
		return
	}
	sem := make(chan struct{}, n)
	var crashed atomic.Bool
	var wg sync.WaitGroup
	for i, a := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil || crashed.Load() {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := p.runOne(ctx, a, img, res)
			if isPanic(err) {
				crashed.Store(true)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
}

type coresKey struct{}

// WithCores returns ctx granting an analyzer n cores (see Cores), as the
// pipeline does for a job's only analyzer.
func WithCores(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, coresKey{}, n)
}

// Cores is how many cores an analyzer may keep busy at once with its ctx:
// all the job's when it is the job's only analyzer, else 1, as the job's
// other analyzers take the rest. An analyzer that can split its work uses
// it to shorten a one-feature job without slowing the others of a larger
// job.
func Cores(ctx context.Context) int {
	if n, ok := ctx.Value(coresKey{}).(int); ok && n > 1 {
		return n
	}
	return 1
}

func isPanic(err error) bool {
	var pe *PanicError
	return errors.As(err, &pe)
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
