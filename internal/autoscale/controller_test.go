package autoscale

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glimpse-oss/glimpse/internal/queue"
)

type fakeDepth struct {
	d   queue.Depth
	err error
}

func (f *fakeDepth) Depth(context.Context) (queue.Depth, error) { return f.d, f.err }

type fakeActuator struct {
	n      int
	scales []int
	done   uint64
	err    error
}

func (f *fakeActuator) Scale(_ context.Context, n int) error {
	if f.err != nil {
		return f.err
	}
	f.n = n
	f.scales = append(f.scales, n)
	return nil
}
func (f *fakeActuator) Current(context.Context) (int, int, error) { return f.n, f.n, nil }
func (f *fakeActuator) Completed() uint64                         { return f.done }

func newTestController(t *testing.T, d *fakeDepth, a *fakeActuator) (*Controller, *prometheus.Registry) {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.Policy.Min, cfg.Policy.Max, cfg.Policy.ServiceRate = 1, 8, 10
	reg := prometheus.NewRegistry()
	c, err := New(cfg, Deps{Depth: d, Actuator: a, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestControllerScalesWithFakeClock(t *testing.T) {
	d, a := &fakeDepth{}, &fakeActuator{n: 1}
	c, reg := newTestController(t, d, a)
	ctx := context.Background()
	steps := []struct {
		pending int
		done    uint64
		want    int
	}{
		{0, 0, 1},
		{200, 0, 8}, // burst: straight to max
		{150, 50, 8},
		{0, 200, 8}, // drained: held by the panic and stable windows
	}
	for i, s := range steps {
		d.d = queue.Depth{Pending: uint64(s.pending)}
		a.done = s.done
		if _, err := c.Step(ctx, epoch.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		if a.n != s.want {
			t.Errorf("tick %d: %d workers; want %d", i, a.n, s.want)
		}
	}
	// Idle long enough: back to min.
	for i := 4; i < 60; i++ {
		if _, err := c.Step(ctx, epoch.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if a.n != 1 {
		t.Errorf("after a minute idle: %d workers; want 1", a.n)
	}
	if got := gauge(t, reg, "glimpse_autoscale_desired_workers"); got != 1 {
		t.Errorf("desired gauge = %g; want 1", got)
	}
	// One scale-up, then only scale-downs: no flapping.
	for i := 1; i < len(a.scales); i++ {
		if a.scales[0] != 8 || a.scales[i] >= a.scales[i-1] {
			t.Errorf("scale calls = %v; want 8, then only decreasing", a.scales)
			break
		}
	}
}

func TestControllerErrors(t *testing.T) {
	ctx := context.Background()
	d, a := &fakeDepth{err: errors.New("boom")}, &fakeActuator{n: 1}
	c, _ := newTestController(t, d, a)
	if _, err := c.Step(ctx, epoch); err == nil || !strings.HasPrefix(err.Error(), "autoscale: read depth") {
		t.Errorf("Step with a failing depth source = %v; want a read depth error", err)
	}
	d.err, d.d = nil, queue.Depth{Pending: 500}
	a.err = errors.New("no room")
	if _, err := c.Step(ctx, epoch.Add(time.Second)); err == nil || !strings.HasPrefix(err.Error(), "autoscale: scale to") {
		t.Errorf("Step with a failing actuator = %v; want a scale error", err)
	}
}

// Run ticks on the injected ticker and returns nil when ctx ends.
func TestControllerRunStopsOnCancel(t *testing.T) {
	d, a := &fakeDepth{}, &fakeActuator{n: 1}
	ticks := make(chan time.Time)
	now := epoch
	cfg := NewDefaultConfig()
	c, err := New(cfg, Deps{Depth: d, Actuator: a,
		Now:       func() time.Time { return now },
		NewTicker: func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	ticks <- epoch // the ticker is read: Run is looping
	ticks <- epoch
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v after cancel; want nil", err)
	}
}

func TestNeedsDeps(t *testing.T) {
	if _, err := New(NewDefaultConfig(), Deps{}); err == nil {
		t.Error("New without deps = nil error; want one")
	}
}
