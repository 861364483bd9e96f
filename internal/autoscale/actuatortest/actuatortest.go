// Package actuatortest is the conformance suite every autoscale.Actuator
// runs: scaling out and in, idempotence, bounds and cancelled contexts.
package actuatortest

import (
	"context"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
)

// Harness makes a fresh actuator with no workers for one subtest. Settle,
// when non-nil, waits until the actuator's workers have reached a steady
// state (ready or gone) and is called after every Scale.
type Harness struct {
	New    func(t *testing.T) autoscale.Actuator
	Settle func(t *testing.T, a autoscale.Actuator)
}

// RunConformanceTests runs the suite.
func RunConformanceTests(t *testing.T, h Harness) {
	t.Helper()
	ctx := context.Background()
	settle := func(t *testing.T, a autoscale.Actuator) {
		t.Helper()
		if h.Settle != nil {
			h.Settle(t, a)
		}
	}
	current := func(t *testing.T, a autoscale.Actuator) (int, int) {
		t.Helper()
		running, ready, err := a.Current(ctx)
		if err != nil {
			t.Fatalf("Current: %v", err)
		}
		if ready > running || ready < 0 {
			t.Fatalf("Current = %d running, %d ready; want 0 ≤ ready ≤ running", running, ready)
		}
		return running, ready
	}

	t.Run("StartsEmpty", func(t *testing.T) {
		a := h.New(t)
		if running, _ := current(t, a); running != 0 {
			t.Errorf("running = %d on a new actuator; want 0", running)
		}
	})

	t.Run("ScaleSequence", func(t *testing.T) {
		a := h.New(t)
		for i, n := range []int{3, 3, 5, 1, 0, 2, 0} {
			if err := a.Scale(ctx, n); err != nil {
				t.Fatalf("step %d: Scale(%d): %v", i, n, err)
			}
			// Running counts the workers asked for at once: the
			// controller reads it on its next tick.
			if running, _ := current(t, a); running != n {
				t.Errorf("step %d: after Scale(%d) running = %d; want %d", i, n, running, n)
			}
			settle(t, a)
			if running, ready := current(t, a); running != n || ready != n {
				t.Errorf("step %d: settled after Scale(%d) = %d running, %d ready; want %d, %d", i, n, running, ready, n, n)
			}
		}
	})

	t.Run("NegativeIsAnError", func(t *testing.T) {
		a := h.New(t)
		if err := a.Scale(ctx, -1); err == nil {
			t.Error("Scale(-1) = nil; want an error")
		}
		if running, _ := current(t, a); running != 0 {
			t.Errorf("running = %d after a refused Scale; want 0", running)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		a := h.New(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := a.Scale(cctx, 2); err == nil {
			t.Error("Scale with a cancelled context = nil; want an error")
		}
		if running, _ := current(t, a); running != 0 {
			t.Errorf("running = %d after a cancelled Scale; want 0", running)
		}
	})
}

// Poll calls f until it returns true or wait passes; for Settle funcs.
func Poll(t *testing.T, wait time.Duration, f func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !f() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
