package procs

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
	"github.com/glimpse-oss/glimpse/internal/autoscale/actuatortest"
)

// The test binary doubles as a fake worker process when this is set: it
// waits for SIGTERM, records that it drained in GLIMPSE_FAKE_WORKER_DIR and
// exits 0 — or, with GLIMPSE_FAKE_WORKER=crash, exits 3 at once.
const fakeEnv = "GLIMPSE_FAKE_WORKER"

func TestMain(m *testing.M) {
	switch os.Getenv(fakeEnv) {
	case "":
		os.Exit(m.Run())
	case "crash":
		os.Exit(3)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		markReady()
		select {}
	default:
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		markReady()
		<-sig
		dir := os.Getenv("GLIMPSE_FAKE_WORKER_DIR")
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.drained", os.Getpid())), nil, 0o644); err != nil {
			os.Exit(2)
		}
		os.Exit(0)
	}
}

// markReady tells the test that the fake worker handles SIGTERM now.
func markReady() {
	dir := os.Getenv("GLIMPSE_FAKE_WORKER_DIR")
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.ready", os.Getpid())), nil, 0o644); err != nil {
		os.Exit(2)
	}
}

// waitReady waits until n fake workers have installed their signal handling.
func waitReady(t *testing.T, dir string, n int) {
	t.Helper()
	ok := actuatortest.Poll(t, 10*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "*.ready"))
		return len(files) >= n
	})
	if !ok {
		t.Fatalf("%d fake workers not ready after 10s", n)
	}
}

func newFake(t *testing.T, mode string, stop time.Duration) (*Actuator, string) {
	t.Helper()
	dir := t.TempDir()
	a, err := New(Config{
		Path:        os.Args[0],
		Args:        []string{"-test.run=^$"},
		Env:         []string{fakeEnv + "=" + mode, "GLIMPSE_FAKE_WORKER_DIR=" + dir},
		StopTimeout: stop,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Close(ctx)
	})
	return a, dir
}

func TestConformance(t *testing.T) {
	actuatortest.RunConformanceTests(t, actuatortest.Harness{
		New: func(t *testing.T) autoscale.Actuator {
			a, _ := newFake(t, "worker", time.Minute)
			return a
		},
	})
}

// Scaling in sends SIGTERM: every stopped process drains and exits cleanly.
func TestScaleInDrains(t *testing.T) {
	a, dir := newFake(t, "worker", time.Minute)
	ctx := context.Background()
	if err := a.Scale(ctx, 3); err != nil {
		t.Fatal(err)
	}
	waitReady(t, dir, 3)
	if err := a.Scale(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if !actuatortest.Poll(t, 10*time.Second, func() bool { return a.Draining() == 0 }) {
		t.Fatalf("Draining() = %d after 10s; want 0", a.Draining())
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.drained"))
	if len(files) != 3 || a.Killed() != 0 {
		t.Errorf("%d processes drained, %d killed; want 3 and 0", len(files), a.Killed())
	}
}

// A process that ignores SIGTERM is killed after StopTimeout.
func TestStopTimeoutKills(t *testing.T) {
	a, dir := newFake(t, "ignore-term", 50*time.Millisecond)
	ctx := context.Background()
	if err := a.Scale(ctx, 1); err != nil {
		t.Fatal(err)
	}
	waitReady(t, dir, 1)
	if err := a.Scale(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if !actuatortest.Poll(t, 10*time.Second, func() bool { return a.Draining() == 0 }) {
		t.Fatal("the process ignoring SIGTERM was not killed")
	}
	if a.Killed() != 1 {
		t.Errorf("Killed() = %d; want 1", a.Killed())
	}
}

// A process that dies on its own leaves the running set, so that the next
// tick starts a replacement.
func TestCrashedProcessIsDropped(t *testing.T) {
	a, _ := newFake(t, "crash", time.Minute)
	if err := a.Scale(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	ok := actuatortest.Poll(t, 10*time.Second, func() bool {
		running, _, _ := a.Current(context.Background())
		return running == 0
	})
	if !ok {
		running, _, _ := a.Current(context.Background())
		t.Errorf("running = %d after both processes crashed; want 0", running)
	}
}

func TestNeedsCommand(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a command = nil error; want one")
	}
}
