package natsembed

import "errors"

// ErrNoDir is returned by Start when Config.Dir is empty.
var ErrNoDir = errors.New("natsembed: store dir is required")

// ErrNoJetStream is returned by Start when the server came up without
// JetStream, e.g. because the store dir is unusable.
var ErrNoJetStream = errors.New("natsembed: jetstream did not start")
