package e2e

// Real autoscaling runs: a nats-server with JetStream, `glimpse api`, and
// `glimpse autoscaler run` starting and stopping `glimpse worker` processes —
// separate processes talking over loopback, as the split deployment runs.
// Each run prints a timeline (t, backlog, workers) and checks that no job is
// lost, none is killed and none runs twice.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// arNATSBin finds a nats-server: the one scripts/setup.sh installs under
// .deps/bin, else the machine's.
func arNATSBin(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, ".deps", "bin", "nats-server")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	for _, p := range []string{"/usr/sbin/nats-server", "nats-server"} {
		if p, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
		t.Fatal("no nats-server: run scripts/setup.sh")
	}
	t.Skip("no nats-server: run scripts/setup.sh")
	return ""
}

// arProc is one process the test started; t.Cleanup stops it (SIGTERM, then
// SIGKILL to its process group, which holds the workers it started).
type arProc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuf // stdout
	logs *logBuf // stderr
	done chan struct{}
}

func arStart(t *testing.T, name, bin string, args ...string) *arProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = ".."
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &arProc{name: name, cmd: cmd, out: &logBuf{}, logs: &logBuf{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(45 * time.Second):
			t.Errorf("%s did not stop within 45s of SIGTERM; killing it", name)
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leftovers in its group
		<-p.done
	})
	return p
}

// waitLine waits until the process prints a line holding marker and returns
// the rest of that line.
func (p *arProc) waitLine(t *testing.T, marker string, wait time.Duration) string {
	t.Helper()
	var rest string
	checkFor(t, wait, 20*time.Millisecond, func() error {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\nstdout:\n%s\nstderr:\n%s", p.name, p.cmd.ProcessState, p.out, p.logs)
		default:
		}
		for _, line := range strings.Split(p.out.String(), "\n") {
			if _, after, ok := strings.Cut(line, marker); ok {
				rest = strings.TrimSpace(after)
				return nil
			}
		}
		return fmt.Errorf("%s has not printed %q", p.name, marker)
	})
	return rest
}

// arRig is NATS, the API and the autoscaler driving worker processes.
type arRig struct {
	api, scaler *arProc
	apiURL      string
	metricsURL  string
}

func startARRig(t *testing.T, scalerArgs ...string) *arRig {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(port)
	ns := arStart(t, "nats-server", arNATSBin(t), "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", filepath.Join(dir, "nats"))
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		select {
		case <-ns.done:
			t.Fatalf("nats-server exited:\n%s", ns.logs)
		default:
		}
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return err
		}
		return c.Close()
	})
	engines := []string{"--queue", natsURL, "--db", "sqlite://" + filepath.Join(dir, "glimpse.db"), "--blob", "file://" + filepath.Join(dir, "blobs")}
	r := &arRig{}
	r.api = arStart(t, "glimpse api", glimpseBin, append([]string{"api", "--addr", "127.0.0.1:0", "--log-level", "debug"}, engines...)...)
	r.apiURL = r.api.waitLine(t, "API is running at ", 2*time.Minute)
	worker := strings.Join(append([]string{glimpseBin, "worker", "--workers", "1", "--log-level", "debug"}, engines...), " ")
	args := append([]string{"autoscaler", "run", "--queue", natsURL, "--worker-cmd", worker,
		"--metrics-addr", "127.0.0.1:0", "--scale-tick", "250ms", "--stop-timeout", "40s", "--log-level", "debug"}, scalerArgs...)
	r.scaler = arStart(t, "glimpse autoscaler", glimpseBin, args...)
	r.metricsURL = strings.TrimSuffix(r.scaler.waitLine(t, "metrics  ", time.Minute), "/metrics")
	return r
}

// arSample is the autoscaler's view at one moment.
type arSample struct {
	at                                time.Duration
	backlog, procs, running, draining int
	desired, killed                   int
}

func (r *arRig) sample(at time.Duration) (arSample, error) {
	resp, err := http.Get(r.metricsURL + "/metrics")
	if err != nil {
		return arSample{}, err
	}
	defer resp.Body.Close()
	s := arSample{at: at}
	fields := map[string]*int{
		"glimpse_autoscale_backlog":              &s.backlog,
		"glimpse_autoscale_worker_processes":     &s.procs,
		"glimpse_autoscale_actual_workers":       &s.running,
		"glimpse_autoscale_draining_workers":     &s.draining,
		"glimpse_autoscale_desired_workers":      &s.desired,
		"glimpse_autoscale_killed_workers_total": &s.killed,
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if p := fields[name]; ok && p != nil {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return arSample{}, err
			}
			*p = int(f)
			delete(fields, name)
		}
	}
	if len(fields) > 0 {
		return arSample{}, fmt.Errorf("autoscaler metrics lack %d series", len(fields))
	}
	return s, sc.Err()
}

// arWatch samples the autoscaler every 100ms until stop is called.
type arWatch struct {
	start   time.Time
	mu      sync.Mutex
	samples []arSample
	stopc   chan struct{}
	done    chan struct{}
}

func (r *arRig) watch() *arWatch {
	w := &arWatch{start: time.Now(), stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			if s, err := r.sample(time.Since(w.start)); err == nil {
				w.mu.Lock()
				w.samples = append(w.samples, s)
				w.mu.Unlock()
			}
			select {
			case <-w.stopc:
				return
			case <-tk.C:
			}
		}
	}()
	return w
}

func (w *arWatch) stop() { close(w.stopc); <-w.done }

func (w *arWatch) last() (arSample, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.samples) == 0 {
		return arSample{}, false
	}
	return w.samples[len(w.samples)-1], true
}

// timeline logs the samples where the workers changed, and one a second
// between, and returns the peak worker processes.
func (w *arWatch) timeline(t *testing.T) (peak int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%8s %8s %8s %8s %8s %8s\n", "t", "backlog", "desired", "running", "draining", "procs")
	var prev arSample
	var lastAt time.Duration = -time.Hour
	for i, s := range w.samples {
		peak = max(peak, s.procs)
		changed := i == 0 || s.procs != prev.procs || s.running != prev.running || s.draining != prev.draining || s.desired != prev.desired
		if changed || s.at-lastAt >= time.Second || i == len(w.samples)-1 {
			fmt.Fprintf(&b, "%7.1fs %8d %8d %8d %8d %8d\n", s.at.Seconds(), s.backlog, s.desired, s.running, s.draining, s.procs)
			lastAt = s.at
		}
		prev = s
	}
	t.Logf("timeline (procs = worker processes alive, running + draining):\n%s", b.String())
	return peak
}

// firstAt returns when f first held in the samples from `from` on.
func (w *arWatch) firstAt(from time.Duration, f func(arSample) bool) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.samples {
		if s.at >= from && f(s) {
			return s.at, true
		}
	}
	return 0, false
}

// arPost uploads one JPEG; query may ask to wait for the result.
func arPost(client *http.Client, base, query string, b []byte) (imageView, int, error) {
	resp, err := client.Post(base+"/v1/images"+query, "image/jpeg", bytes.NewReader(b))
	if err != nil {
		return imageView{}, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return imageView{}, resp.StatusCode, err
	}
	var v imageView
	if err := json.Unmarshal(body, &v); err != nil {
		return v, resp.StatusCode, fmt.Errorf("upload: %d %q: %v", resp.StatusCode, body, err)
	}
	if v.ID == "" {
		return v, resp.StatusCode, fmt.Errorf("upload: %d %q: no id", resp.StatusCode, body)
	}
	return v, resp.StatusCode, nil
}

// checkNoLossNoKill checks every image ended done on its first attempt and
// that no worker was killed or exited unasked.
func (r *arRig) checkNoLossNoKill(t *testing.T, ids []string) {
	t.Helper()
	status := map[string]int{}
	var redelivered []string
	for _, id := range ids {
		v := waitDone(t, r.apiURL, id, 2*time.Minute)
		status[v.Status]++
		if v.Status != "done" {
			t.Errorf("image %s ended %s (%s); want done", id, v.Status, v.Error)
		}
		if v.Attempts != 1 {
			redelivered = append(redelivered, fmt.Sprintf("%s:%d", id, v.Attempts))
		}
	}
	t.Logf("%d images: %v; attempts ≠ 1: %d %v", len(ids), status, len(redelivered), redelivered)
	if len(redelivered) > 0 {
		t.Errorf("%d images ran more than once (a worker released or lost them): %v", len(redelivered), redelivered)
	}
	s, err := r.sample(0)
	if err != nil {
		t.Fatal(err)
	}
	if s.killed != 0 {
		t.Errorf("glimpse_autoscale_killed_workers_total = %d; want 0", s.killed)
	}
	logs := r.scaler.logs.String()
	for _, bad := range []string{"did not drain in time", "exited unasked", "drain timed out", "released for redelivery"} {
		if n := strings.Count(logs, bad); n > 0 {
			t.Errorf("autoscaler/worker logs say %q %d times", bad, n)
		}
	}
	t.Logf("worker processes started %d, drained %d", strings.Count(logs, "worker process started"), strings.Count(logs, "worker process drained"))
}

// A 1,000-image burst (200 with -short) through the split roles: the
// autoscaler grows the worker processes from 1 and, once the queue is
// empty, drains them back to 1.
func TestAutoscaleRealBurst(t *testing.T) {
	began := time.Now()
	n := 1000
	if testing.Short() {
		n = 200
	}
	imgs := make([][]byte, n)
	for i := range imgs {
		imgs[i] = noiseJPEG(t, 160, 120, uint64(7000+i))
	}
	r := startARRig(t, "--min-workers", "1", "--max-workers", "4", "--scale-down-window", "3s")
	checkFor(t, time.Minute, 50*time.Millisecond, func() error {
		if s, err := r.sample(0); err != nil || s.procs != 1 || s.running != 1 {
			return fmt.Errorf("autoscaler at start: %+v, %v; want 1 worker process", s, err)
		}
		return nil
	})
	w := r.watch()
	stopped := false
	defer func() {
		if !stopped {
			w.stop()
		}
	}()

	ids := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	client := &http.Client{Timeout: time.Minute}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				v, code, err := arPost(client, r.apiURL, "", imgs[i])
				if err == nil && code != http.StatusAccepted && code != http.StatusOK && code != http.StatusCreated {
					err = fmt.Errorf("upload %d: status %d", i, code)
				}
				if err != nil {
					errs <- err
					continue
				}
				ids[i] = v.ID
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	uploaded := time.Since(w.start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	// The queue empties, then the fleet goes back to its minimum.
	var emptyAt, backAt time.Duration
	checkFor(t, 3*time.Minute, 100*time.Millisecond, func() error {
		s, ok := w.last()
		if !ok || s.backlog != 0 || s.at < uploaded {
			return fmt.Errorf("backlog %d at %v", s.backlog, s.at)
		}
		emptyAt = s.at
		return nil
	})
	checkFor(t, time.Minute, 100*time.Millisecond, func() error {
		s, ok := w.last()
		if !ok || s.procs != 1 || s.draining != 0 {
			return fmt.Errorf("%d worker processes (%d draining) %v after the queue emptied; want 1", s.procs, s.draining, s.at-emptyAt)
		}
		backAt = s.at
		return nil
	})
	w.stop()
	stopped = true
	peak := w.timeline(t)
	firstUp, _ := w.firstAt(0, func(s arSample) bool { return s.procs > 1 })
	peakAt, _ := w.firstAt(0, func(s arSample) bool { return s.procs == peak })
	t.Logf("%d images uploaded in %.1fs; first scale-up at %.1fs, peak %d worker processes at %.1fs; queue empty at %.1fs; back to 1 at %.1fs (%.1fs after empty)",
		n, uploaded.Seconds(), firstUp.Seconds(), peak, peakAt.Seconds(), emptyAt.Seconds(), backAt.Seconds(), (backAt - emptyAt).Seconds())
	if peak <= 1 {
		t.Errorf("peak worker processes = %d during a %d-image burst; want > 1", peak, n)
	}
	r.checkNoLossNoKill(t, ids)
	t.Logf("run took %.1fs", time.Since(began).Seconds())
}

// The course-grader shape: no workers at all, then 100 concurrent requests
// that wait for their results; the autoscaler starts workers up to its cap
// of 15 (on a 2-core machine those beyond the cores only queue for CPU),
// answers all 100, and returns to zero soon after the last result.
func TestAutoscaleRealFromZero(t *testing.T) {
	began := time.Now()
	const n, limit = 100, 15
	imgs := make([][]byte, n)
	for i := range imgs {
		imgs[i] = noiseJPEG(t, 160, 120, uint64(9000+i))
	}
	r := startARRig(t, "--min-workers", "0", "--max-workers", strconv.Itoa(limit), "--scale-down-window", "2s")
	checkFor(t, time.Minute, 50*time.Millisecond, func() error {
		if s, err := r.sample(0); err != nil || s.procs != 0 {
			return fmt.Errorf("autoscaler at start: %+v, %v; want 0 worker processes", s, err)
		}
		return nil
	})
	w := r.watch()
	stopped := false
	defer func() {
		if !stopped {
			w.stop()
		}
	}()

	type answer struct {
		id   string
		sync bool // answered with the result (200), not 202
		at   time.Duration
		err  error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 2 * time.Minute}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, code, err := arPost(client, r.apiURL, "?wait=60s", imgs[i])
			a := answer{id: v.ID, err: err, at: time.Since(w.start)}
			switch {
			case err != nil:
			case code == http.StatusOK && v.Status == "done":
				a.sync = true
			case code == http.StatusOK || code == http.StatusAccepted:
				// Not finished within ?wait=: poll like a client would.
				for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
					resp, gerr := client.Get(r.apiURL + "/v1/images/" + v.ID)
					if gerr != nil {
						continue
					}
					var g imageView
					json.NewDecoder(resp.Body).Decode(&g)
					resp.Body.Close()
					if g.Status == "done" || g.Status == "failed" {
						break
					}
				}
				a.at = time.Since(w.start)
			default:
				a.err = fmt.Errorf("upload %d: status %d", i, code)
			}
			answers[i] = a
		}()
	}
	wg.Wait()
	var last time.Duration
	ids := make([]string, 0, n)
	synced := 0
	for _, a := range answers {
		if a.err != nil {
			t.Error(a.err)
			continue
		}
		ids = append(ids, a.id)
		last = max(last, a.at)
		if a.sync {
			synced++
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	var zeroAt time.Duration
	checkFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		s, ok := w.last()
		if !ok || s.at < last || s.procs != 0 {
			return fmt.Errorf("%d worker processes (%d draining) %v after the last result; want 0", s.procs, s.draining, s.at-last)
		}
		zeroAt = s.at
		return nil
	})
	w.stop()
	stopped = true
	peak := w.timeline(t)
	firstUp, _ := w.firstAt(0, func(s arSample) bool { return s.procs > 0 })
	peakAt, _ := w.firstAt(0, func(s arSample) bool { return s.procs == peak })
	downFrom, _ := w.firstAt(peakAt, func(s arSample) bool { return s.desired < peak })
	t.Logf("%d requests with ?wait=60s: %d answered with the result, %d polled after a 202; first worker at %.1fs, peak %d worker processes at %.1fs (cap %d, %d cores); scale-down began %.1fs; last result at %.1fs; zero worker processes at %.1fs — %.1fs after the last result",
		n, synced, n-synced, firstUp.Seconds(), peak, peakAt.Seconds(), limit, runtime.NumCPU(), downFrom.Seconds(), last.Seconds(), zeroAt.Seconds(), (zeroAt - last).Seconds())
	if peak < 1 {
		t.Errorf("peak worker processes = %d; want at least 1", peak)
	}
	r.checkNoLossNoKill(t, ids)
	t.Logf("run took %.1fs", time.Since(began).Seconds())
}
