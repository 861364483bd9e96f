// Package durable makes writes to a local file system durable in groups.
//
// Glimpse's embedded engines — the file blob store, SQLite and the embedded
// NATS JetStream — each promise that a write is on disk when it returns.
// Each used to keep that promise with fsyncs of its own: a blob cost a
// file and a directory fsync, a SQLite commit a fsync of its log, a
// JetStream publish a fsync of its block. On the virtual machines we run
// on, an image took about nine of them, and turning them all off saved
// about as much of serve's CPU as decoding the image costs.
//
// A Syncer keeps the same promise for every engine on one file system with
// one syncfs(2) for many writes: a caller writes its data to the operating
// system (write, rename) without syncing, then calls Sync, which returns
// once a syncfs that began after the call has finished. Calls that arrive
// while a syncfs runs share the next one, so concurrent uploads and jobs
// pay one flush between them (group commit) and no caller waits for more
// than the flush in progress plus its own.
//
// syncfs flushes everything dirty on the file system, the data and the
// metadata of every file, so a Sync covers all writes its caller made
// before it, in any file, created or renamed. It reports a write-back error
// of any file on the file system since the previous syncfs (Linux 5.8 and
// later); a Syncer passes such an error to every caller of that round, as
// any of their writes may be the one that failed.
package durable

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrUnsupported means a directory's file system or the kernel cannot be
// relied on for syncfs; callers fall back to syncing each file.
var ErrUnsupported = errors.New("durable: syncfs is not supported here")

// Syncer runs group-committed syncfs calls on one file system. It is safe
// for concurrent use.
type Syncer struct {
	dir  *os.File     // a directory on the file system, the handle syncfs takes
	sync func() error // syncfs(dir); tests replace it

	mu      sync.Mutex
	pending *round // the round new callers join; nil when none waits
	running bool   // a goroutine is running rounds

	rounds  atomic.Uint64 // syncfs calls made
	callers atomic.Uint64 // Sync calls served
}

// round is one syncfs and the callers it serves.
type round struct {
	done chan struct{} // closed when the syncfs has returned
	err  error
}

// Supported returns nil when syncfs can be relied on for dir's file system,
// else an error wrapping ErrUnsupported that says why: another operating
// system, a kernel older than 5.8 (whose syncfs reports no write-back
// errors), or a network or unknown file system.
func Supported(dir string) error { return supported(dir) }

// Open returns a Syncer for the file system that holds dir, or an error
// wrapping ErrUnsupported when syncfs cannot be relied on there (see
// Supported).
func Open(dir string) (*Syncer, error) {
	if err := supported(dir); err != nil {
		return nil, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("durable: %w", err)
	}
	return &Syncer{dir: d, sync: func() error { return syncfs(d) }}, nil
}

// Sync returns once everything its caller wrote to the file system before
// the call is on disk, or ctx ends first (the writes may then or may not be
// durable). The error is syncfs's, for the round that served the call.
func (s *Syncer) Sync(ctx context.Context) error {
	s.mu.Lock()
	r := s.pending
	if r == nil {
		// Rounds start only after leaving pending, under mu, so this
		// round's syncfs begins after the caller's writes.
		r = &round{done: make(chan struct{})}
		s.pending = r
	}
	if !s.running {
		s.running = true
		go s.run()
	}
	s.mu.Unlock()
	s.callers.Add(1)
	select {
	case <-r.done:
		if r.err != nil {
			return fmt.Errorf("durable: syncfs: %w", r.err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run serves pending rounds one after another until none is left.
func (s *Syncer) run() {
	for {
		s.mu.Lock()
		r := s.pending
		if r == nil {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.pending = nil
		s.mu.Unlock()
		r.err = s.sync()
		s.rounds.Add(1)
		close(r.done)
	}
}

// Stats reports how many syncfs calls were made and how many Sync calls
// they served: their ratio is how many writes each flush carried.
func (s *Syncer) Stats() (rounds, callers uint64) {
	return s.rounds.Load(), s.callers.Load()
}

// Close releases the directory handle. Sync must not be called after.
func (s *Syncer) Close() error {
	if s.dir == nil {
		return nil
	}
	return s.dir.Close()
}

// Set hands out one Syncer per file system, so that every engine on a disk
// shares its flushes. It is safe for concurrent use.
type Set struct {
	mu    sync.Mutex
	byDev map[uint64]*Syncer
}

// NewSet returns an empty Set.
func NewSet() *Set { return &Set{byDev: map[uint64]*Syncer{}} }

// For returns the Syncer of dir's file system, opening it on first use, or
// an error wrapping ErrUnsupported (see Open). dir must exist.
func (st *Set) For(dir string) (*Syncer, error) {
	dev, err := device(dir)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if s, ok := st.byDev[dev]; ok {
		return s, nil
	}
	s, err := Open(dir)
	if err != nil {
		return nil, err
	}
	st.byDev[dev] = s
	return s, nil
}

// Find is For, except that where syncfs cannot be relied on it returns nil
// and no error: the caller then fsyncs its own files.
func (st *Set) Find(dir string) (*Syncer, error) {
	s, err := st.For(dir)
	if errors.Is(err, ErrUnsupported) {
		return nil, nil
	}
	return s, err
}

// Syncers returns the Syncers handed out so far.
func (st *Set) Syncers() []*Syncer {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]*Syncer, 0, len(st.byDev))
	for _, s := range st.byDev {
		out = append(out, s)
	}
	return out
}

// Close closes every Syncer handed out.
func (st *Set) Close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	var errs []error
	for dev, s := range st.byDev {
		errs = append(errs, s.Close())
		delete(st.byDev, dev)
	}
	return errors.Join(errs...)
}

// atLeast reports whether a kernel release such as "6.1.0-13-amd64" is at
// least major.minor.
func atLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	digits := func(s string) string { return s[:len(s)-len(strings.TrimLeft(s, "0123456789"))] }
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(digits(parts[1]))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
