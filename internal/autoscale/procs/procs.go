// Package procs is the autoscale actuator that runs workers as local
// processes: one `glimpse worker` (or any command) per worker. Scaling in
// sends SIGTERM to the newest processes, which drain — finish or release the
// job they hold — and exit; a process still running StopTimeout after its
// SIGTERM is killed, and its unacknowledged job is redelivered by the queue.
package procs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
)

var _ autoscale.Actuator = (*Actuator)(nil)

// Config says how to start one worker process.
type Config struct {
	// Path and Args are the command, e.g. the glimpse binary and
	// ["worker", "--queue", "nats://…"].
	Path string
	Args []string
	// Env is added to this process's environment; Dir is the working
	// directory (empty: this process's).
	Env []string
	Dir string
	// StopTimeout is how long a draining process may run after SIGTERM
	// before it is killed.
	StopTimeout time.Duration
	// Stdout and Stderr receive the workers' output (nil: discarded).
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
}

// Actuator starts and stops worker processes. It is safe for concurrent use.
type Actuator struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	live     []*proc // running, oldest first
	draining int
	killed   int
	closed   bool
	wg       sync.WaitGroup
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	stop bool          // SIGTERM sent
}

// New returns an actuator with no processes.
func New(cfg Config) (*Actuator, error) {
	if cfg.Path == "" {
		return nil, errors.New("procs: a worker command is required")
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Actuator{cfg: cfg, log: cfg.Logger}, nil
}

// Scale starts or drains processes until n are running.
func (a *Actuator) Scale(ctx context.Context, n int) error {
	if n < 0 {
		return fmt.Errorf("procs: scale to %d: want 0 or more", n)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("procs: actuator closed")
	}
	for len(a.live) > n {
		p := a.live[len(a.live)-1]
		a.live = a.live[:len(a.live)-1]
		a.stopLocked(p)
	}
	for len(a.live) < n {
		if err := a.startLocked(); err != nil {
			return err
		}
	}
	return nil
}

// Current reports the running processes; each is ready once started.
func (a *Actuator) Current(ctx context.Context) (running, ready int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.live), len(a.live), nil
}

// Draining is the number of processes told to stop that have not exited.
func (a *Actuator) Draining() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.draining
}

// Killed is the number of processes killed for not draining in time.
func (a *Actuator) Killed() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.killed
}

// Close drains every process and waits for all to exit; when ctx ends first
// the rest are killed.
func (a *Actuator) Close(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	procs := a.live
	a.live = nil
	for _, p := range procs {
		a.stopLocked(p)
	}
	a.mu.Unlock()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		a.mu.Lock()
		for _, p := range procs {
			select {
			case <-p.done:
			default:
				_ = p.cmd.Process.Kill()
				a.killed++
			}
		}
		a.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

func (a *Actuator) startLocked() error {
	cmd := exec.Command(a.cfg.Path, a.cfg.Args...)
	cmd.Dir = a.cfg.Dir
	cmd.Env = append(os.Environ(), a.cfg.Env...)
	cmd.Stdout, cmd.Stderr = a.cfg.Stdout, a.cfg.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("procs: start worker: %w", err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	a.live = append(a.live, p)
	a.wg.Add(1)
	a.log.Info("worker process started", "pid", cmd.Process.Pid)
	go a.wait(p)
	return nil
}

// wait reaps p; a process that exits without being told to is dropped from
// the running set so that the next tick replaces it.
func (a *Actuator) wait(p *proc) {
	defer a.wg.Done()
	err := p.cmd.Wait()
	close(p.done)
	a.mu.Lock()
	defer a.mu.Unlock()
	if p.stop {
		a.draining--
		a.log.Info("worker process drained", "pid", p.cmd.Process.Pid, "exit", exitText(err))
		return
	}
	for i, q := range a.live {
		if q == p {
			a.live = append(a.live[:i], a.live[i+1:]...)
			break
		}
	}
	a.log.Warn("worker process exited unasked", "pid", p.cmd.Process.Pid, "exit", exitText(err))
}

func (a *Actuator) stopLocked(p *proc) {
	if p.stop {
		return
	}
	p.stop = true
	a.draining++
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return // already gone; wait reaps it
	}
	go func() {
		t := time.NewTimer(a.cfg.StopTimeout)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			a.mu.Lock()
			a.killed++
			a.mu.Unlock()
			a.log.Warn("worker process did not drain in time; killing it", "pid", p.cmd.Process.Pid, "stop_timeout", a.cfg.StopTimeout)
			_ = p.cmd.Process.Kill()
		}
	}()
}

func exitText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
