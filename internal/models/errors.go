package models

import "errors"

// ErrNotFound means no model (or no ONNX Runtime library) was found in any of
// the places searched. The wrapping error lists those places and how to get
// the missing file.
var ErrNotFound = errors.New("models: not found")

// ErrDigestMismatch means a model or labels file exists but its SHA-256 is not
// one the spec accepts: the file is corrupt, truncated or a different version.
var ErrDigestMismatch = errors.New("models: sha-256 mismatch")

// ErrInvalidSpec means a Spec (usually read from a model.json) is incomplete
// or inconsistent.
var ErrInvalidSpec = errors.New("models: invalid spec")

// ErrUnsupportedPlatform means FetchRuntime has no ONNX Runtime build for the
// running OS and architecture.
var ErrUnsupportedPlatform = errors.New("models: unsupported platform")
