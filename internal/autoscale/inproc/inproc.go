// Package inproc is the autoscale actuator for serve: it resizes an
// in-process *worker.Pool. Scaling in drains: a removed worker finishes the
// job it holds and takes no other.
package inproc

import (
	"context"
	"fmt"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
	"github.com/glimpse-oss/glimpse/internal/worker"
)

// Interface guards.
var (
	_ autoscale.Actuator          = (*Actuator)(nil)
	_ autoscale.CompletionCounter = (*Actuator)(nil)
)

// Pool is the slice of *worker.Pool the actuator needs.
type Pool interface {
	SetSize(n int) error
	Size() int
	Completed() uint64
}

var _ Pool = (*worker.Pool)(nil)

// Actuator scales a worker pool in this process.
type Actuator struct {
	pool Pool
}

// New returns an actuator over pool.
func New(pool Pool) *Actuator { return &Actuator{pool: pool} }

// Scale resizes the pool to n workers.
func (a *Actuator) Scale(ctx context.Context, n int) error {
	if n < 0 {
		return fmt.Errorf("inproc: scale to %d: want 0 or more", n)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.pool.SetSize(n)
}

// Current reports the pool's size; in-process workers are ready as soon as
// they exist (their pipeline is made before SetSize returns).
func (a *Actuator) Current(ctx context.Context) (running, ready int, err error) {
	n := a.pool.Size()
	return n, n, nil
}

// Completed counts the jobs the pool finished.
func (a *Actuator) Completed() uint64 { return a.pool.Completed() }
