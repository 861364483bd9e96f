// Package models finds, verifies and describes the ONNX image classifiers
// Glimpse runs, and the ONNX Runtime shared library that runs them.
//
// A model lives in a directory together with its labels file. The directory
// may hold a model.json describing a custom model (a Spec as JSON); without
// one the directory is expected to hold the default model, see Default.
// Every file is checked against the SHA-256 digests its Spec accepts before
// it is used.
package models

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// SpecFile is the name of the optional file in a model directory that
// describes a custom model.
const SpecFile = "model.json"

// Layouts of the input tensor a Spec may ask for.
const (
	LayoutNCHW = "NCHW" // [N, 3, H, W], planar; what ONNX Model Zoo models use
	LayoutNHWC = "NHWC" // [N, H, W, 3], interleaved; common for TensorFlow exports
)

// Spec describes an ONNX image classifier: enough to run any such model, not
// only the default. The zero value is not valid; see Validate.
type Spec struct {
	// Name identifies the model in results and logs.
	Name string `json:"name"`
	// File is the .onnx file, relative to the model directory.
	File string `json:"file"`
	// SHA256 lists the accepted lowercase hex digests of File.
	SHA256 []string `json:"sha256"`
	// Labels is the labels file, relative to the model directory: one class
	// name per line, in output index order.
	Labels string `json:"labels"`
	// LabelsSHA256 lists the accepted lowercase hex digests of Labels.
	LabelsSHA256 []string `json:"labels_sha256"`
	// Input and Output name the model's input and output tensors.
	Input  string `json:"input"`
	Output string `json:"output"`
	// Size is the side of the square input, e.g. 224.
	Size int `json:"size"`
	// ResizeShorter is the length the image's shorter side is resized to
	// before the centre Size×Size crop, e.g. 256. Zero means Size (no crop
	// along the shorter side).
	ResizeShorter int `json:"resize_shorter,omitempty"`
	// Mean and Std normalise each RGB channel after scaling it to [0,1]:
	// v = (c/255 - Mean) / Std.
	Mean [3]float32 `json:"mean"`
	Std  [3]float32 `json:"std"`
	// Layout is LayoutNCHW or LayoutNHWC; empty means LayoutNCHW.
	Layout string `json:"layout,omitempty"`
	// Softmax says the outputs are logits to be turned into probabilities.
	// Leave it false for a model whose output already sums to one.
	Softmax bool `json:"softmax"`
}

// Default returns the spec of the model Glimpse ships with: MobileNetV2-1.0
// (int8 quantised, opset 12) from the ONNX Model Zoo, with the 1000 ImageNet
// class names.
func Default() Spec {
	return Spec{
		Name:          "mobilenetv2-12-int8",
		File:          "mobilenetv2-12-int8.onnx",
		SHA256:        []string{"83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f"},
		Labels:        "imagenet_classes.txt",
		LabelsSHA256:  []string{"1b0c1e842afe63343c3d11a78c69e19ee2be9d80d19c5080ea0863f3ef66451e"},
		Input:         "input",
		Output:        "output",
		Size:          224,
		ResizeShorter: 256,
		Mean:          [3]float32{0.485, 0.456, 0.406},
		Std:           [3]float32{0.229, 0.224, 0.225},
		Layout:        LayoutNCHW,
		Softmax:       true,
	}
}

// maxSize bounds Size and ResizeShorter; no classifier needs more and it
// keeps a typo in model.json from asking for gigabytes of tensor.
const maxSize = 4096

// ResizeSide returns the length the shorter side is resized to before the
// centre crop: ResizeShorter, or Size when that is zero.
func (s Spec) ResizeSide() int {
	if s.ResizeShorter == 0 {
		return s.Size
	}
	return s.ResizeShorter
}

// Validate reports the first problem that makes s unusable, wrapping
// ErrInvalidSpec. An empty Layout is accepted and means LayoutNCHW.
func (s Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, args...))
	}
	switch {
	case s.Name == "":
		return bad("name is empty")
	case s.File == "" || !filepath.IsLocal(s.File):
		return bad("file %q must be a path inside the model directory", s.File)
	case s.Labels == "" || !filepath.IsLocal(s.Labels):
		return bad("labels %q must be a path inside the model directory", s.Labels)
	case s.Input == "" || s.Output == "":
		return bad("input and output tensor names are required")
	case s.Size <= 0 || s.Size > maxSize:
		return bad("size %d is outside 1..%d", s.Size, maxSize)
	case s.ResizeShorter != 0 && (s.ResizeShorter < s.Size || s.ResizeShorter > maxSize):
		return bad("resize_shorter %d must be 0 or between size %d and %d", s.ResizeShorter, s.Size, maxSize)
	case s.Layout != "" && s.Layout != LayoutNCHW && s.Layout != LayoutNHWC:
		return bad("layout %q is neither %s nor %s", s.Layout, LayoutNCHW, LayoutNHWC)
	}
	for i, v := range s.Std {
		if !(v > 0) {
			return bad("std[%d] is %v; it must be positive", i, v)
		}
	}
	if err := checkDigests("sha256", s.SHA256); err != nil {
		return err
	}
	return checkDigests("labels_sha256", s.LabelsSHA256)
}

// checkDigests requires at least one digest and each to be 64 lowercase hex
// digits.
func checkDigests(field string, ds []string) error {
	if len(ds) == 0 {
		return fmt.Errorf("%w: %s lists no accepted digest", ErrInvalidSpec, field)
	}
	for _, d := range ds {
		b, err := hex.DecodeString(d)
		if err != nil || len(b) != 32 || hex.EncodeToString(b) != d {
			return fmt.Errorf("%w: %s entry %q is not 64 lowercase hex digits", ErrInvalidSpec, field, d)
		}
	}
	return nil
}

// ReadSpec reads and validates a model.json file. Unknown fields are refused
// so that a misspelt key is not silently ignored.
func ReadSpec(path string) (Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return Spec{}, fmt.Errorf("models: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("%w: %v (in %s)", ErrInvalidSpec, err, path)
	}
	if s.Layout == "" {
		s.Layout = LayoutNCHW
	}
	if err := s.Validate(); err != nil {
		return Spec{}, fmt.Errorf("%w (in %s)", err, path)
	}
	return s, nil
}
