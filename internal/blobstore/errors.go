package blobstore

import "errors"

// ErrNotFound is returned when a key holds no blob.
var ErrNotFound = errors.New("blobstore: not found")

// ErrBadKey is returned for keys that are empty, start with "/", or have
// an empty, "." or ".." segment.
var ErrBadKey = errors.New("blobstore: bad key")

// ErrBadURL is returned by Open for a URL it cannot use.
var ErrBadURL = errors.New("blobstore: bad url")

// ErrNoSigning is returned by SignedURL and KeyFromSignedURL on stores
// that cannot sign URLs.
var ErrNoSigning = errors.New("blobstore: signed urls not supported")

// ErrBadSignature is returned by KeyFromSignedURL and CheckSignedRequest
// for a signed URL that is forged, expired, or used with another method or
// Content-Type than it was signed for.
var ErrBadSignature = errors.New("blobstore: bad signature")
