package classify

import "errors"

// ErrNotInitialized means New was called before a successful InitRuntime.
var ErrNotInitialized = errors.New("classify: onnx runtime not initialized; call InitRuntime first")

// ErrBadModel means the model's inputs or outputs do not match its Spec or
// its labels.
var ErrBadModel = errors.New("classify: model does not match its spec")

// ErrEmptyImage means Classify was given an image with no pixels.
var ErrEmptyImage = errors.New("classify: empty image")

// ErrClosed means the Classifier was used after Close.
var ErrClosed = errors.New("classify: classifier closed")
