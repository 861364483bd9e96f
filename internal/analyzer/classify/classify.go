// Package classify labels images with an ONNX image classifier run by ONNX
// Runtime: it turns an image into the model's input tensor (resize, centre
// crop, normalise), runs the model and returns the top classes with their
// probabilities.
package classify

import (
	"context"
	"errors"
	"fmt"
	"github.com/glimpse-oss/glimpse/internal/analyzer"
	"image"
	"math"
	"slices"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/models"
)

// runtimeState records the one attempt per process to load ONNX Runtime.
var runtimeState struct {
	once sync.Once
	err  error
}

// InitRuntime loads the ONNX Runtime shared library at libPath and creates
// the process-wide ORT environment. An empty libPath is resolved with
// models.FindRuntime. Only the first call does the work: it is safe to call
// from many goroutines and repeatedly, later calls return the first call's
// result (even if they pass another path), so a failure is reported the same
// way every time.
func InitRuntime(libPath string) error {
	runtimeState.once.Do(func() {
		runtimeState.err = initRuntime(libPath)
	})
	return runtimeState.err
}

func initRuntime(libPath string) error {
	if ort.IsInitialized() {
		return nil
	}
	path, err := models.FindRuntime(libPath)
	if err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("classify: loading onnx runtime %s: %v", path, err)
	}
	return nil
}

// Config configures a Classifier.
type Config struct {
	// Model is the located model to run; required.
	Model *models.Model
	// TopK is how many labels Classify returns; 0 means 5.
	TopK int
	// Threads is the number of ONNX Runtime intra-op threads; 0 means 1.
	// Scale throughput with more Classifiers (one per worker), not threads.
	Threads int
}

// Classifier runs one ONNX Runtime session with input and output tensors
// allocated once. It is NOT safe for concurrent use: give each worker
// goroutine its own Classifier.
type Classifier struct {
	spec   models.Spec
	labels []string
	topK   int

	session *ort.AdvancedSession
	input   *ort.Tensor[float32]
	output  *ort.Tensor[float32]
	probs   []float32 // scratch for the softmax
	top     []int     // scratch for the top-K indices
}

// New loads cfg.Model into a new ONNX Runtime session. InitRuntime must have
// succeeded. The session runs with cfg.Threads intra-op threads, one
// inter-op thread, sequential execution and no spinning, so idle workers do
// not burn CPU. New checks that the model's tensors match the Spec and that
// the output has one value per label.
func New(cfg Config) (*Classifier, error) {
	if !ort.IsInitialized() {
		return nil, ErrNotInitialized
	}
	m := cfg.Model
	if m == nil {
		return nil, errors.New("classify: config has no model")
	}
	if err := m.Spec.Validate(); err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	if len(m.Labels) == 0 {
		return nil, fmt.Errorf("%w: %s has no labels", ErrBadModel, m.Spec.Name)
	}
	topK := cfg.TopK
	if topK <= 0 {
		topK = 5
	}
	topK = min(topK, len(m.Labels))
	threads := cfg.Threads
	if threads <= 0 {
		threads = 1
	}

	opts, err := sessionOptions(threads)
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if err := checkModel(m, opts); err != nil {
		return nil, err
	}

	c := &Classifier{
		spec:   m.Spec,
		labels: m.Labels,
		topK:   topK,
		probs:  make([]float32, len(m.Labels)),
		top:    make([]int, 0, topK+1),
	}
	s := int64(m.Spec.Size)
	inShape := ort.NewShape(1, 3, s, s)
	if m.Spec.Layout == models.LayoutNHWC {
		inShape = ort.NewShape(1, s, s, 3)
	}
	if c.input, err = ort.NewEmptyTensor[float32](inShape); err != nil {
		return nil, fmt.Errorf("classify: input tensor: %v", err)
	}
	if c.output, err = ort.NewEmptyTensor[float32](ort.NewShape(1, int64(len(m.Labels)))); err != nil {
		c.Close()
		return nil, fmt.Errorf("classify: output tensor: %v", err)
	}
	c.session, err = ort.NewAdvancedSession(m.Path,
		[]string{m.Spec.Input}, []string{m.Spec.Output},
		[]ort.Value{c.input}, []ort.Value{c.output}, opts)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("classify: loading %s: %v", m.Path, err)
	}
	return c, nil
}

// sessionOptions builds the ORT session options Glimpse runs with.
func sessionOptions(threads int) (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("classify: session options: %v", err)
	}
	set := []error{
		opts.SetIntraOpNumThreads(threads),
		opts.SetInterOpNumThreads(1),
		opts.SetExecutionMode(ort.ExecutionModeSequential),
		opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"),
		opts.AddSessionConfigEntry("session.inter_op.allow_spinning", "0"),
	}
	if err := errors.Join(set...); err != nil {
		opts.Destroy()
		return nil, fmt.Errorf("classify: session options: %v", err)
	}
	return opts, nil
}

// checkModel compares the model's declared inputs and outputs with its Spec
// and labels, so that a wrong model.json fails with a clear message.
func checkModel(m *models.Model, opts *ort.SessionOptions) error {
	ins, outs, err := ort.GetInputOutputInfoWithOptions(m.Path, opts)
	if err != nil {
		return fmt.Errorf("classify: reading %s: %v", m.Path, err)
	}
	in := findInfo(ins, m.Spec.Input)
	if in == nil {
		return fmt.Errorf("%w: %s has no input %q (inputs: %v)", ErrBadModel, m.Path, m.Spec.Input, infoNames(ins))
	}
	out := findInfo(outs, m.Spec.Output)
	if out == nil {
		return fmt.Errorf("%w: %s has no output %q (outputs: %v)", ErrBadModel, m.Path, m.Spec.Output, infoNames(outs))
	}
	if in.DataType != ort.TensorElementDataTypeFloat || out.DataType != ort.TensorElementDataTypeFloat {
		return fmt.Errorf("%w: %s: input and output must be float32 tensors", ErrBadModel, m.Path)
	}
	s := int64(m.Spec.Size)
	want := []int64{-1, 3, s, s}
	if m.Spec.Layout == models.LayoutNHWC {
		want = []int64{-1, s, s, 3}
	}
	if !dimsMatch(in.Dimensions, want) {
		return fmt.Errorf("%w: %s input %q has shape %v, spec wants %v", ErrBadModel, m.Path, m.Spec.Input, in.Dimensions, want)
	}
	if want := []int64{-1, int64(len(m.Labels))}; !dimsMatch(out.Dimensions, want) {
		return fmt.Errorf("%w: %s output %q has shape %v but there are %d labels", ErrBadModel, m.Path, m.Spec.Output, out.Dimensions, len(m.Labels))
	}
	return nil
}

func findInfo(infos []ort.InputOutputInfo, name string) *ort.InputOutputInfo {
	for i := range infos {
		if infos[i].Name == name {
			return &infos[i]
		}
	}
	return nil
}

func infoNames(infos []ort.InputOutputInfo) []string {
	names := make([]string, len(infos))
	for i, in := range infos {
		names[i] = in.Name
	}
	return names
}

// dimsMatch compares a model's dimensions with wanted ones; a dynamic
// dimension (negative) on either side matches anything, except that the
// batch dimension must accept 1.
func dimsMatch(got ort.Shape, want []int64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] >= 0 && want[i] >= 0 && got[i] != want[i] {
			return false
		}
		if i == 0 && got[0] > 1 {
			return false
		}
	}
	return true
}

// Name returns the model's name.
func (c *Classifier) Name() string { return c.spec.Name }

// MinSide returns the shortest shorter side worth decoding an image to: the
// model resizes the shorter side to this length anyway. Decoders that can
// scale while decoding (JPEG DCT scaling) may stop at the smallest scale
// whose shorter side is at least MinSide.
func (c *Classifier) MinSide() int { return c.spec.ResizeSide() }

// Classify returns the TopK most probable labels for img, highest score
// first. With Spec.Softmax the scores are softmax probabilities; otherwise
// the model's outputs as they are. The context is checked before and after
// inference, which takes a few milliseconds and is not interrupted.
func (c *Classifier) Classify(ctx context.Context, img image.Image) ([]job.Label, error) {
	if c.session == nil {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	if img == nil || img.Bounds().Empty() {
		return nil, ErrEmptyImage
	}
	Preprocess(img, c.spec, c.input.GetData())
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	if err := c.session.Run(); err != nil {
		return nil, fmt.Errorf("classify: %s: %v", c.spec.Name, err)
	}
	scores := c.output.GetData()
	if c.spec.Softmax {
		softmax(scores, c.probs)
		scores = c.probs
	}
	c.top = topK(scores, c.topK, c.top[:0])
	labels := make([]job.Label, len(c.top))
	for i, k := range c.top {
		labels[i] = job.Label{Label: c.labels[k], Score: float64(scores[k])}
	}
	return labels, nil
}

// softmax writes the softmax of logits into dst, subtracting the maximum
// first so that exp cannot overflow.
func softmax(logits, dst []float32) {
	maxv := float32(math.Inf(-1))
	for _, v := range logits {
		maxv = max(maxv, v)
	}
	var sum float64
	for i, v := range logits {
		e := math.Exp(float64(v - maxv))
		dst[i] = float32(e)
		sum += e
	}
	inv := float32(1 / sum)
	for i := range dst[:len(logits)] {
		dst[i] *= inv
	}
}

// topK appends to dst the indices of the k largest scores, largest first;
// ties go to the lower index. dst needs capacity k+1 to stay allocation-free.
func topK(scores []float32, k int, dst []int) []int {
	for i, v := range scores {
		if len(dst) == k && v <= scores[dst[k-1]] {
			continue
		}
		// Insert i keeping dst sorted by descending score.
		j := len(dst)
		for j > 0 && scores[dst[j-1]] < v {
			j--
		}
		dst = slices.Insert(dst, j, i)
		if len(dst) > k {
			dst = dst[:k]
		}
	}
	return dst
}

// Close releases the session and its tensors. The Classifier cannot be used
// afterwards; calling Close again does nothing.
func (c *Classifier) Close() error {
	var errs []error
	if c.session != nil {
		errs = append(errs, c.session.Destroy())
		c.session = nil
	}
	if c.input != nil {
		errs = append(errs, c.input.Destroy())
		c.input = nil
	}
	if c.output != nil {
		errs = append(errs, c.output.Destroy())
		c.output = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("classify: close: %w", err)
	}
	return nil
}

var _ analyzer.Analyzer = (*Classifier)(nil)

// Feature reports that a Classifier answers job.FeatureLabels.
func (c *Classifier) Feature() job.Feature { return job.FeatureLabels }

// Analyze labels img into res.Labels. When img was decoded far larger than
// the model needs (another feature asked for full resolution), it classifies
// a shared downscaled copy instead of resampling megapixels itself: the
// small one (analyzer.SmallSide) when its shorter side still has the
// pixels the model resizes to, else one twice that size.
func (c *Classifier) Analyze(ctx context.Context, img *analyzer.Image, res *job.Result) error {
	src := img.Pixels
	b := src.Bounds()
	need := c.MinSide()
	if short := min(b.Dx(), b.Dy()); short > 2*need {
		long := max(b.Dx(), b.Dy())
		if short*analyzer.SmallSide >= need*long {
			src = img.Fit(analyzer.SmallSide)
		} else {
			src = img.Fit((long*2*need + short - 1) / short)
		}
	}
	labels, err := c.Classify(ctx, src)
	if err != nil {
		return err
	}
	res.Labels = labels
	res.Model = c.Name()
	return nil
}
