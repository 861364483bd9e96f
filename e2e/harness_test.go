// Package e2e drives a real `glimpse serve` process — the binary a user runs,
// with the real model, ONNX Runtime, embedded JetStream, files and SQLite —
// over HTTP, the way a user would.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var glimpseBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "glimpse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	glimpseBin = filepath.Join(dir, "glimpse")
	tags := os.Getenv("GLIMPSE_TAGS")
	if tags == "" {
		tags = "turbojpeg"
	}
	build := exec.Command("go", "build", "-tags", tags, "-o", glimpseBin, "./cmd/glimpse")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build glimpse:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// photo returns the path of a real photo from .deps/testdata (made by
// scripts/setup.sh from Debian packages).
func photo(t testing.TB, name string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, ".deps", "testdata", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if os.Getenv("GLIMPSE_STRICT_TESTS") == "1" {
		t.Fatalf("test photo %s missing: run scripts/setup.sh", name)
	}
	t.Skipf("test photo %s missing: run scripts/setup.sh", name)
	return ""
}

func readPhoto(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(photo(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// server is one running `glimpse serve` process.
type server struct {
	t    testing.TB
	cmd  *exec.Cmd
	URL  string
	Data string
	logs *logBuf
	done chan error
}

// startServe starts `glimpse serve` on a free port with data in dir and
// waits until it prints its URL and answers /readyz.
func startServe(t testing.TB, dir string, args ...string) *server {
	t.Helper()
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-level", "debug"}, args...)
	cmd := exec.Command(glimpseBin, all...)
	cmd.Dir = ".."
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, Data: dir, logs: &logBuf{}, done: make(chan error, 1)}
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, "running at "); i >= 0 {
				urlc <- strings.TrimSpace(line[i+len("running at "):])
			}
		}
	}()
	go func() { s.done <- cmd.Wait() }()
	select {
	case s.URL = <-urlc:
	case err := <-s.done:
		t.Fatalf("serve exited before it was ready: %v\n%s", err, s.logs)
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("serve printed no URL in 2 minutes\n%s", s.logs)
	}
	t.Cleanup(func() { s.stop() })
	checkFor(t, time.Minute, 50*time.Millisecond, func() error {
		resp, err := http.Get(s.URL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz: %d", resp.StatusCode)
		}
		return nil
	})
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() error {
	if s.cmd.ProcessState != nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		return fmt.Errorf("serve did not stop within a minute of SIGTERM")
	}
}

// kill crashes the process with SIGKILL, as an OOM kill or power cut would.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	err := <-s.done
	s.done <- err
}

// logBuf collects a process's stderr; tests read it while it grows.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// checkFor polls f until it returns nil or wait passes.
func checkFor(t testing.TB, wait, sleep time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %v: %v", wait, err)
		}
		time.Sleep(sleep)
	}
}

// waitResultObjects waits until results/<id>.json exists under blobDir for
// every id. The object follows the image's done row (the commit point): a
// worker writes it just after the commit, or, when the worker died between
// the two, the job's redelivery writes it one ack wait later.
func waitResultObjects(t testing.TB, blobDir string, ids []string, wait time.Duration) {
	t.Helper()
	checkFor(t, wait, 50*time.Millisecond, func() error {
		missing := 0
		var first string
		for _, id := range ids {
			if _, err := os.Stat(filepath.Join(blobDir, "results", id+".json")); err != nil {
				if missing == 0 {
					first = id
				}
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d result objects missing (first: %s)", missing, len(ids), first)
		}
		return nil
	})
}

// imageView is the part of the API's image JSON the tests read.
type imageView struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	Attempts    int    `json:"attempts"`
	ContentType string `json:"content_type"`
	CreatedAt   string `json:"created_at"`
	Result      *struct {
		Labels []struct {
			Label string  `json:"label"`
			Score float64 `json:"score"`
		} `json:"labels"`
	} `json:"result"`
}

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// do sends a request and decodes a JSON answer into out (when non-nil).
func do(t testing.TB, req *http.Request, out any) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %d %s: decoding %q: %v", req.Method, req.URL, resp.StatusCode, resp.Header.Get("Content-Type"), body, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// uploadRaw posts b as a raw body with the given content type.
func uploadRaw(t testing.TB, base, query, contentType string, b []byte, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/v1/images"+query, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req, out)
}

// uploadFiles posts files as multipart parts named "file".
func uploadFiles(t testing.TB, base, query string, files map[string][]byte, out any) *http.Response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for name, b := range files {
		w, err := mw.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	mw.Close()
	req, err := http.NewRequest("POST", base+"/v1/images"+query, &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return do(t, req, out)
}

func getImage(t testing.TB, base, id string) imageView {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/images/"+id, nil)
	var v imageView
	resp := do(t, req, &v)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/images/%s = %d", id, resp.StatusCode)
	}
	return v
}

// waitDone polls until the image is terminal and returns it.
func waitDone(t testing.TB, base, id string, wait time.Duration) imageView {
	t.Helper()
	var v imageView
	checkFor(t, wait, 100*time.Millisecond, func() error {
		v = getImage(t, base, id)
		if v.Status == "done" || v.Status == "failed" {
			return nil
		}
		return fmt.Errorf("image %s is %s", id, v.Status)
	})
	return v
}
