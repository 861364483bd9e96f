package durable

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeFS stands in for syncfs: it counts the flushes that started and
// finished, can hold a flush until released, and can fail one.
type fakeFS struct {
	started  atomic.Int64
	finished atomic.Int64
	hold     chan struct{} // when non-nil, each flush waits for a value
	entered  chan struct{} // when non-nil, told that a flush started
	fail     atomic.Int64  // the flush (1-based) that returns errDisk
}

var errDisk = errors.New("disk on fire")

func (f *fakeFS) sync() error {
	n := f.started.Add(1)
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.hold != nil {
		<-f.hold
	}
	f.finished.Add(1)
	if f.fail.Load() == n {
		return errDisk
	}
	return nil
}

func newFake(f *fakeFS) *Syncer { return &Syncer{sync: f.sync} }

// TestSyncWaitsForAFlushThatStartedAfterIt is the promise callers rely on:
// a Sync never returns on the strength of a flush that was already running
// when it was called, since that flush may have missed the caller's writes.
func TestSyncWaitsForAFlushThatStartedAfterIt(t *testing.T) {
	f := &fakeFS{hold: make(chan struct{}), entered: make(chan struct{}, 16)}
	s := newFake(f)
	ctx := context.Background()

	first := make(chan error)
	go func() { first <- s.Sync(ctx) }()
	<-f.entered // flush 1 runs and holds

	// Called while flush 1 runs: it must wait for flush 2.
	second := make(chan error)
	go func() { second <- s.Sync(ctx) }()
	waitCallers(t, s, 2)
	f.hold <- struct{}{} // flush 1 ends
	if err := <-first; err != nil {
		t.Fatalf("first Sync: %v", err)
	}
	select {
	case err := <-second:
		t.Fatalf("second Sync returned (%v) with only the flush that predates it finished", err)
	case <-f.entered: // flush 2 started
	}
	f.hold <- struct{}{}
	if err := <-second; err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	if n := f.started.Load(); n != 2 {
		t.Errorf("%d flushes; want 2", n)
	}
}

// TestSyncGroupsCallers checks the group commit: every caller that arrives
// while a flush runs is served by the one next flush.
func TestSyncGroupsCallers(t *testing.T) {
	f := &fakeFS{hold: make(chan struct{}), entered: make(chan struct{}, 16)}
	s := newFake(f)
	ctx := context.Background()

	go s.Sync(ctx)
	<-f.entered
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.Sync(ctx) }()
	}
	waitCallers(t, s, n+1)
	f.hold <- struct{}{} // flush 1 ends; flush 2 serves all n
	<-f.entered
	f.hold <- struct{}{}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
	rounds, callers := s.Stats()
	if rounds != 2 || callers != n+1 {
		t.Errorf("Stats() = %d rounds, %d callers; want 2, %d", rounds, callers, n+1)
	}
}

// TestSyncReportsTheRoundsError gives every caller of a failed flush its
// error, and later callers a clean flush of their own.
func TestSyncReportsTheRoundsError(t *testing.T) {
	f := &fakeFS{hold: make(chan struct{}), entered: make(chan struct{}, 16)}
	f.fail.Store(2)
	s := newFake(f)
	ctx := context.Background()

	go s.Sync(ctx)
	<-f.entered
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- s.Sync(ctx) }()
	}
	waitCallers(t, s, 4)
	f.hold <- struct{}{}
	<-f.entered
	f.hold <- struct{}{} // flush 2 fails
	for range 3 {
		if err := <-errs; !errors.Is(err, errDisk) {
			t.Errorf("Sync in the failed round = %v; want %v", err, errDisk)
		}
	}
	f.hold = nil
	f.entered = nil
	if err := s.Sync(ctx); err != nil {
		t.Errorf("Sync after the failed round = %v; want nil", err)
	}
}

func TestSyncGivesUpWithItsContext(t *testing.T) {
	f := &fakeFS{hold: make(chan struct{}), entered: make(chan struct{}, 16)}
	s := newFake(f)
	go s.Sync(context.Background())
	<-f.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sync = %v; want %v", err, context.DeadlineExceeded)
	}
	close(f.hold)
}

// TestRealSyncfs runs the real system call on a directory of the test's.
func TestRealSyncfs(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if errors.Is(err, ErrUnsupported) {
		if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
			t.Fatalf("Open(%s): %v (this machine's kind has ext4 and Linux 6)", dir, err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.WriteFile(filepath.Join(dir, "x"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if rounds, callers := s.Stats(); rounds != 1 || callers != 1 {
		t.Errorf("Stats() = %d, %d; want 1, 1", rounds, callers)
	}

	set := NewSet()
	defer set.Close()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	a, err1 := set.For(dir)
	b, err2 := set.For(sub)
	if err1 != nil || err2 != nil {
		t.Fatalf("For: %v, %v", err1, err2)
	}
	if a != b {
		t.Error("two directories of one file system got different Syncers")
	}
	if _, err := set.For(filepath.Join(dir, "missing")); err == nil {
		t.Error("For(a missing directory) = nil error")
	}
	if c, err := set.Find(dir); c != a || err != nil {
		t.Errorf("Find(%s) = %p, %v; want For's Syncer %p", dir, c, err, a)
	}
	// procfs holds nothing to flush and is no file system syncfs serves.
	if _, err := set.For("/proc"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("For(/proc) = %v; want ErrUnsupported", err)
	}
	if c, err := set.Find("/proc"); c != nil || err != nil {
		t.Errorf("Find(/proc) = %v, %v; want nil, nil", c, err)
	}
}

func TestKernelRelease(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"6.18.44-fc-v1147", true},
		{"5.8.0", true},
		{"5.10.0-26-amd64", true},
		{"5.7.19", false},
		{"4.19.0-25-amd64", false},
		{"5.8rc1", true},
		{"garbage", false},
		{"", false},
	} {
		if got := atLeast(tc.release, 5, 8); got != tc.want {
			t.Errorf("atLeast(%q, 5, 8) = %v; want %v", tc.release, got, tc.want)
		}
	}
}

// waitCallers waits until n Sync calls have joined a round.
func waitCallers(t *testing.T, s *Syncer, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, c := s.Stats(); c >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d callers joined", func() uint64 { _, c := s.Stats(); return c }(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
