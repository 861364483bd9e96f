package e2e

// Helpers for the tests that run Glimpse's roles as separate processes
// against real engines: a NATS JetStream cluster from .deps/bin/nats-server,
// versitygw, PostgreSQL. Every process is started by the test on random
// loopback ports and stopped in t.Cleanup.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream and consumer names documented in the README for operators (the
// nats CLI, KEDA); the tests read them as a user's tools would.
const (
	jobsStream      = "GLIMPSE_JOBS"
	resultsStream   = "GLIMPSE_RESULTS"
	resultsSubject  = "glimpse.results"
	workersConsumer = "glimpse-workers"
)

// strict reports whether a missing dependency fails the test instead of
// skipping it (make test sets GLIMPSE_STRICT_TESTS=1).
func strict() bool { return os.Getenv("GLIMPSE_STRICT_TESTS") == "1" }

// missing fails or skips t because a dependency is absent; how says how to
// get it.
func missing(t testing.TB, what, how string) {
	t.Helper()
	if strict() {
		t.Fatalf("%s is missing: %s", what, how)
	}
	t.Skipf("%s is missing: %s", what, how)
}

// depBin returns the path of a tool scripts/setup.sh installs into
// .deps/bin, searching upwards from the test's directory.
func depBin(t testing.TB, name string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, ".deps", "bin", name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	missing(t, ".deps/bin/"+name, "run scripts/setup.sh (make setup) to install it")
	return ""
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago. Used
// only where a server must know its port before it starts (cluster routes).
func freePort(t testing.TB) int { return freePorts(t, 1)[0] }

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago. It holds every listener until all n are chosen: ports taken
// one at a time can repeat, and a cluster given the same port twice loses a
// node (a CI run saw n3 refuse its config over a duplicate route).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// proc is a process the test started. Its stdout and stderr go to logs.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs *logBuf
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid once done is closed
}

// startProc starts bin with args in the repository root, env added to the
// test's environment, and stops it (SIGTERM, then SIGKILL) in t.Cleanup.
func startProc(t testing.TB, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	// Should the test binary itself die (a -timeout panic), take the
	// process with it rather than leave it running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, logs: &logBuf{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.stop(30 * time.Second); err != nil {
			t.Logf("%s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("--- %s output (last 4 KB):\n%s", name, tail(p.logs.String(), 4096))
		}
	})
	return p
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill crashes the process with SIGKILL and waits for it to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and waits up to grace for the exit, then kills.
func (p *proc) stop(grace time.Duration) error {
	if !p.running() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		p.kill()
		return fmt.Errorf("did not stop within %v of SIGTERM; killed", grace)
	}
}

// waitLine polls the output until a line contains marker and returns what
// follows the marker on that line, trimmed.
func (p *proc) waitLine(t testing.TB, marker string, wait time.Duration) string {
	t.Helper()
	var rest string
	checkFor(t, wait, 20*time.Millisecond, func() error {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			if i := strings.Index(line, marker); i >= 0 {
				rest = strings.TrimSpace(line[i+len(marker):])
				return nil
			}
		}
		if !p.running() {
			t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, marker, tail(p.logs.String(), 4096))
		}
		return fmt.Errorf("%s has not printed %q yet", p.name, marker)
	})
	return rest
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// natsNode is one server of a test cluster.
type natsNode struct {
	name                        string
	port, clusterPort, httpPort int
	conf                        string
	proc                        *proc
}

func (n *natsNode) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// natsCluster is a JetStream cluster of nats-server processes on loopback,
// each with its own store directory.
type natsCluster struct {
	t     testing.TB
	bin   string
	nodes []*natsNode
}

// startNATSCluster starts a size-node JetStream cluster from
// .deps/bin/nats-server and waits until every node is healthy and the
// cluster has a meta leader.
func startNATSCluster(t testing.TB, size int) *natsCluster {
	t.Helper()
	c := &natsCluster{t: t, bin: depBin(t, "nats-server")}
	dir := t.TempDir()
	ports := freePorts(t, 3*size)
	for i := range size {
		c.nodes = append(c.nodes, &natsNode{
			name: fmt.Sprintf("n%d", i+1), port: ports[3*i], clusterPort: ports[3*i+1], httpPort: ports[3*i+2],
		})
	}
	for _, n := range c.nodes {
		var routes []string
		for _, o := range c.nodes {
			if o != n {
				routes = append(routes, fmt.Sprintf("%q", "nats://127.0.0.1:"+strconv.Itoa(o.clusterPort)))
			}
		}
		conf := fmt.Sprintf(`server_name: %s
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
jetstream { store_dir: %q }
cluster {
  name: glimpse-e2e
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, n.name, n.port, n.httpPort, filepath.Join(dir, n.name, "js"), n.clusterPort, strings.Join(routes, ", "))
		n.conf = filepath.Join(dir, n.name+".conf")
		if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		c.start(n)
	}
	c.waitHealthy(2 * time.Minute)
	return c
}

func (c *natsCluster) start(n *natsNode) {
	n.proc = startProc(c.t, "nats-server "+n.name, nil, c.bin, "-c", n.conf)
}

// URLs is the client URL list of the nodes, without those numbered in except.
func (c *natsCluster) URLs(except ...int) string {
	var urls []string
	for i, n := range c.nodes {
		skip := false
		for _, e := range except {
			skip = skip || e == i
		}
		if !skip {
			urls = append(urls, n.url())
		}
	}
	return strings.Join(urls, ",")
}

// index returns the number of the node called name, or -1.
func (c *natsCluster) index(name string) int {
	for i, n := range c.nodes {
		if n.name == name {
			return i
		}
	}
	return -1
}

// kill crashes node i with SIGKILL.
func (c *natsCluster) kill(i int) { c.nodes[i].proc.kill() }

// restart starts node i again on its ports and store after a kill.
func (c *natsCluster) restart(i int) { c.start(c.nodes[i]) }

// jsz is the part of a node's /jsz monitoring answer the tests read.
type jsz struct {
	Meta *struct {
		Leader string `json:"leader"`
		Size   int    `json:"cluster_size"`
	} `json:"meta_cluster"`
}

// waitHealthy polls every running node's /healthz until it answers 200 and
// its /jsz names a meta leader.
func (c *natsCluster) waitHealthy(wait time.Duration) {
	c.t.Helper()
	checkFor(c.t, wait, 50*time.Millisecond, func() error {
		for _, n := range c.nodes {
			if !n.proc.running() {
				continue
			}
			base := "http://127.0.0.1:" + strconv.Itoa(n.httpPort)
			resp, err := httpClient.Get(base + "/healthz")
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("%s /healthz: %d %s", n.name, resp.StatusCode, body)
			}
			var j jsz
			if err := getJSON(base+"/jsz", &j); err != nil {
				return err
			}
			if j.Meta == nil || j.Meta.Leader == "" {
				return fmt.Errorf("%s knows no meta leader yet", n.name)
			}
		}
		return nil
	})
}

func getJSON(url string, out any) error {
	resp, err := httpClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// jsTimeout bounds each JetStream API call of the tests: while a stream
// has no leader the servers do not answer, and a call would otherwise wait
// for its context.
const jsTimeout = 2 * time.Second

// httpClient is the tests' client for probes and metrics, with a timeout
// so that a hung server fails a poll instead of the test.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// streamLeader returns the name of the server leading stream name, "" when
// it has none right now.
func streamLeader(ctx context.Context, js jetstream.JetStream, name string) (string, error) {
	// Short, so that a poll for a new leader measures the election, not
	// the timeout.
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return "", err
	}
	info := st.CachedInfo()
	if info.Cluster == nil {
		return "", nil
	}
	return info.Cluster.Leader, nil
}

// role is a running `glimpse api` or `glimpse worker` process.
type role struct {
	*proc
	URL     string // the API's base URL (api only)
	Metrics string // the worker's /metrics URL when started with --metrics-addr
}

// startAPIRole starts `glimpse api` on a free port and waits until it
// answers /readyz.
func startAPIRole(t testing.TB, env []string, args ...string) *role {
	t.Helper()
	all := append([]string{"api", "--addr", "127.0.0.1:0"}, args...)
	r := &role{proc: startProc(t, "glimpse api", env, glimpseBin, all...)}
	r.URL = r.waitLine(t, "running at ", 2*time.Minute)
	checkFor(t, time.Minute, 50*time.Millisecond, func() error {
		resp, err := httpClient.Get(r.URL + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz: %d %s", resp.StatusCode, body)
		}
		return nil
	})
	return r
}

// startWorkerRole starts `glimpse worker` with a metrics endpoint and waits
// until it reports that its workers run.
func startWorkerRole(t testing.TB, name string, env []string, args ...string) *role {
	t.Helper()
	all := append([]string{"worker", "--metrics-addr", "127.0.0.1:0"}, args...)
	r := &role{proc: startProc(t, name, env, glimpseBin, all...)}
	r.waitLine(t, "worker is running", 2*time.Minute)
	r.Metrics = r.waitLine(t, "  metrics  ", 10*time.Second)
	return r
}

// counter sums the samples of a Prometheus counter whose line starts with
// prefix (name plus labels) in the text at url.
func counter(url, prefix string) (float64, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok || (rest != "" && rest[0] != ' ') {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %v", url, line, err)
		}
		sum += v
	}
	return sum, nil
}
