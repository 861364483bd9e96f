// Command bench measures Glimpse end to end and prints every figure next to
// a reference measured in the same run, because machines here are shared
// and noisy: absolute times drift, ratios hold.
//
//	(a) the in-process limit: decode + preprocess + inference on all cores, no queue, no HTTP
//	    (sessions made before the clock starts; measured just before and just after (b), and averaged)
//	(b) `glimpse serve` end-to-end async throughput over HTTP (upload all, wait for all results)
//	(c) their ratio b/a — what the service keeps of the machine's raw capacity
//	(d) 100 concurrent synchronous requests (?wait=): average and max latency
//
// for 1 MP and 12 MP JPEGs made from a real photo. (a)–(c) are repeated
// (-trials, default 3) and the median trial is reported with the range.
// (b) is also split in two: the upload path's CPU per image (serve with no
// workers taking the uploads) and the worker path's rate (serve restarted
// on that full queue, draining it).
// Run it with `make bench`.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/image/draw"

	"github.com/glimpse-oss/glimpse/internal/analyzer/classify"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/models"
	"github.com/glimpse-oss/glimpse/internal/worker"
)

func main() {
	bin := flag.String("bin", "bin/glimpse", "glimpse binary to run `serve` from")
	n1 := flag.Int("n1", 300, "1 MP images per throughput run")
	n12 := flag.Int("n12", 100, "12 MP images per throughput run")
	syncN := flag.Int("sync", 100, "concurrent synchronous requests")
	src := flag.String("photo", "", "source photo (default: .deps/testdata/dog.jpg)")
	mode := flag.String("mode", "all", "what to measure: service (throughput and latency), features (per-feature cost) or all")
	rounds := flag.Int("rounds", 25, "jobs per feature and size in the features table")
	trials := flag.Int("trials", 3, "throughput trials per size, each (a) then (b) then (a); the table reports the median ratio")
	flag.StringVar(&serveArgs, "serve-args", "", "extra flags for `glimpse serve`, space-separated (e.g. \"--workers 4\")")
	flag.Parse()
	if err := run(*bin, *src, *mode, *n1, *n12, *syncN, *rounds, max(*trials, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type sizeCase struct {
	name   string
	w, h   int
	n      int
	images [][]byte
}

func run(bin, src, mode string, n1, n12, syncN, rounds, trials int) error {
	if src == "" {
		src = filepath.Join(".deps", "testdata", "dog.jpg")
	}
	base, err := loadImage(src)
	if err != nil {
		return err
	}
	if mode != "all" && mode != "service" && mode != "features" {
		return fmt.Errorf("-mode %q: want service, features or all", mode)
	}
	if mode == "features" {
		model, err := loadBenchModel()
		if err != nil {
			return err
		}
		return featureCosts(model, base, rounds)
	}
	cases := []*sizeCase{
		{name: "1 MP", w: 1155, h: 866, n: max(n1, syncN)},
		{name: "12 MP", w: 4000, h: 3000, n: max(n12, syncN)},
	}
	fmt.Printf("Glimpse benchmark — %d CPUs, JPEG decoder %s, %s\n", runtime.NumCPU(), imagedata.Backend(), time.Now().Format(time.DateTime))
	for _, c := range cases {
		fmt.Printf("making %d distinct %s JPEGs from %s …\n", c.n, c.name, filepath.Base(src))
		c.images = makeJPEGs(base, c.w, c.h, c.n)
	}

	model, err := loadBenchModel()
	if err != nil {
		return err
	}

	type row struct {
		name                      string
		inproc, async             float64 // images per second, of the median trial
		ratios                    []float64
		syncAvg, syncMax, syncP50 time.Duration
		inprocCPU, serveCPU       time.Duration // CPU time per image
		clientCPU                 time.Duration // the uploading client's (this process's) CPU time per image in (b)
		// (b) split in two (see split)
		upCPU, upClient time.Duration
		drain           float64
		drainCPU        time.Duration
		splitRef        float64       // (a) measured around the split, like a trial's
		splitRefCPU     time.Duration // and its CPU per image
	}
	var rows []row
	for _, c := range cases {
		n := n1
		if c.name == "12 MP" {
			n = n12
		}
		// Each trial measures the reference around serve (see around).
		// Drift within a trial still moves its ratio by up to a tenth, so
		// the table reports the median trial and the range.
		var ts []row
		for t := range trials {
			var (
				rate                float64
				serveCPU, clientCPU time.Duration
			)
			ref, err := around(model, c.images[:n], func() (err error) {
				client0 := selfCPU()
				rate, serveCPU, err = serveAsync(bin, c.images[:n])
				clientCPU = (selfCPU() - client0) / time.Duration(n)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Printf("%s trial %d: in-process %.1f img/s before serve, %.1f after; serve async %.1f img/s; ratio %.2f\n",
				c.name, t+1, ref.before, ref.after, rate, rate/ref.rate())
			ts = append(ts, row{inproc: ref.rate(), async: rate, inprocCPU: ref.cpu, serveCPU: serveCPU, clientCPU: clientCPU})
		}
		slices.SortFunc(ts, func(a, b row) int { return cmp.Compare(a.async/a.inproc, b.async/b.inproc) })
		r := ts[len(ts)/2]
		r.name = c.name
		for _, t := range ts {
			r.ratios = append(r.ratios, t.async/t.inproc)
		}
		// The split gets its own reference, taken around it as a trial's.
		ref, err := around(model, c.images[:n], func() (err error) {
			r.upCPU, r.upClient, r.drain, r.drainCPU, err = split(bin, c.images[:n])
			return err
		})
		if err != nil {
			return err
		}
		r.splitRef, r.splitRefCPU = ref.rate(), ref.cpu
		fmt.Printf("%s split: upload path %.1f ms serve CPU per image; worker path drains %.1f img/s at %.1f ms CPU per image; in-process %.1f img/s at %.1f ms\n",
			c.name, ms(r.upCPU), r.drain, ms(r.drainCPU), r.splitRef, ms(r.splitRefCPU))
		avg, p50, mx, err := serveSync(bin, c.images[:syncN])
		if err != nil {
			return err
		}
		r.syncAvg, r.syncP50, r.syncMax = avg, p50, mx
		fmt.Printf("%s: %d sync requests: avg %v, max %v\n", c.name, syncN, avg.Round(time.Millisecond), mx.Round(time.Millisecond))
		rows = append(rows, r)
	}

	fmt.Println()
	fmt.Printf("%-6s  %14s  %14s  %9s  %11s  %24s\n", "size", "(a) in-process", "(b) serve async", "(c) b/a", "(c) range", fmt.Sprintf("(d) %d sync: avg/p50/max", syncN))
	for _, r := range rows {
		fmt.Printf("%-6s  %10.1f img/s  %10.1f img/s  %9.2f  %11s  %8s / %s / %s\n", r.name, r.inproc, r.async, r.async/r.inproc,
			fmt.Sprintf("%.2f–%.2f", r.ratios[0], r.ratios[len(r.ratios)-1]),
			r.syncAvg.Round(time.Millisecond), r.syncP50.Round(time.Millisecond), r.syncMax.Round(time.Millisecond))
	}
	fmt.Printf("((a), (b) and (c) are the median of %d trials by ratio; the range spans them all)\n", trials)
	fmt.Println("\nCPU time per image (user + system; less sensitive to other load than the rates):")
	fmt.Printf("%-6s  %14s  %14s  %9s  %14s\n", "size", "in-process", "serve (async)", "serve/in", "client (async)")
	for _, r := range rows {
		fmt.Printf("%-6s  %11.1f ms  %11.1f ms  %8.2f×  %11.1f ms\n", r.name, ms(r.inprocCPU), ms(r.serveCPU), float64(r.serveCPU)/float64(r.inprocCPU), ms(r.clientCPU))
	}
	fmt.Println("(the client, this process, shares the cores with serve while it uploads)")
	fmt.Println("\n(b) split: serve without workers takes the uploads, then serve restarted drains the queue:")
	fmt.Printf("%-6s  %16s  %11s  %16s  %16s  %6s  %20s\n", "size", "upload path CPU", "client CPU", "worker path", "(a) around it", "ratio", "CPU: worker / (a)")
	for _, r := range rows {
		fmt.Printf("%-6s  %13.1f ms  %8.1f ms  %10.1f img/s  %10.1f img/s  %6.2f  %9.1f / %.1f ms\n", r.name, ms(r.upCPU), ms(r.upClient),
			r.drain, r.splitRef, r.drain/r.splitRef, ms(r.drainCPU), ms(r.splitRefCPU))
	}
	fmt.Println("(per image; one run, with (a) measured just before and after it)")
	fmt.Println("\ntargets (2 cores): (c) ≥ 0.85; 1 MP sync avg ≤ 0.6 s and max ≤ 1.2 s")
	if mode == "all" {
		return featureCosts(model, base, rounds)
	}
	return nil
}

func loadBenchModel() (*models.Model, error) {
	model, err := models.Locate("")
	if err != nil {
		return nil, err
	}
	lib, err := models.FindRuntime("")
	if err != nil {
		return nil, err
	}
	return model, classify.InitRuntime(lib)
}

// inProcess is the reference: the same images through decode + preprocess +
// inference with one classifier per core, nothing else (each core recycling
// its pixel buffers, as serve's workers do).
func inProcess(model *models.Model, images [][]byte, workers int) (rate float64, cpuPer time.Duration, err error) {
	// Sessions and buffers are made before the clock starts: the reference
	// is the machine's limit on images, and serve makes its sessions before
	// it is ready.
	type core struct {
		cls  *classify.Classifier
		bufs *imagedata.Buffers
	}
	cores := make([]core, workers)
	for i := range cores {
		cls, err := classify.New(classify.Config{Model: model})
		if err != nil {
			return 0, 0, err
		}
		defer cls.Close()
		// Pixel buffers recycled from one image to the next, as a
		// worker does.
		cores[i] = core{cls, imagedata.NewBuffers(worker.DefaultPixelBuffers)}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	cpu0 := selfCPU()
	start := time.Now()
	for _, c := range cores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(images) {
					return
				}
				img, err := imagedata.Decode(images[i], imagedata.DefaultLimits(), imagedata.DecodeOptions{MinSide: c.cls.MinSide(), Buffers: c.bufs})
				if err != nil {
					errc <- err
					return
				}
				_, err = c.cls.Classify(context.Background(), img.Image)
				img.Release()
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := selfCPU() - cpu0
	select {
	case err := <-errc:
		return 0, 0, err
	default:
	}
	return float64(len(images)) / elapsed.Seconds(), cpu / time.Duration(len(images)), nil
}

// reference is the in-process rate measured just before and just after a
// measurement, and the CPU per image of the two averaged.
type reference struct {
	before, after float64
	cpu           time.Duration
}

// rate is the average of the two rates.
func (r reference) rate() float64 { return (r.before + r.after) / 2 }

// around runs fn between two measurements of the in-process reference on
// images: this machine's speed drifts within minutes, and a reference
// taken only before fn would carry that drift into the ratio.
func around(model *models.Model, images [][]byte, fn func() error) (reference, error) {
	before, cpuBefore, err := inProcess(model, images, runtime.NumCPU())
	if err != nil {
		return reference{}, err
	}
	if err := fn(); err != nil {
		return reference{}, err
	}
	after, cpuAfter, err := inProcess(model, images, runtime.NumCPU())
	if err != nil {
		return reference{}, err
	}
	return reference{before: before, after: after, cpu: (cpuBefore + cpuAfter) / 2}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// selfCPU is the CPU time (user + system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time (user + system) process pid has used, read from
// /proc/<pid>/stat (in clock ticks of 10 ms).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// serveAsync uploads every image to a fresh serve (8 uploads in flight) and
// waits for all results; throughput counts from the first upload to the last result.
func serveAsync(bin string, images [][]byte) (rate float64, cpuPer time.Duration, err error) {
	s, err := startServe(bin)
	if err != nil {
		return 0, 0, err
	}
	defer s.stop()
	cpu0, err := procCPU(s.cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := uploadAll(s.url, images); err != nil {
		return 0, 0, err
	}
	if err := waitDone(s.url, len(images), start); err != nil {
		return 0, 0, err
	}
	elapsed := time.Since(start)
	cpu1, err := procCPU(s.cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	return float64(len(images)) / elapsed.Seconds(), (cpu1 - cpu0) / time.Duration(len(images)), nil
}

// uploadAll uploads every image to serve at base, 8 uploads in flight,
// each expecting 202.
func uploadAll(base string, images [][]byte) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(images) {
					return
				}
				_, code, err := upload(base, "", images[i])
				if err != nil || code != 202 {
					errc <- fmt.Errorf("async upload: %d %v", code, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// split measures (b)'s two halves apart. First serve with no workers takes
// every upload: its CPU per upload is the upload path's cost (HTTP, content
// hash, durable blob, row and job). Then serve is restarted on the same data
// directory, as shipped, and drains the full queue: from the moment it is
// ready to the last result, its rate and CPU per job are the worker path's.
func split(bin string, images [][]byte) (upCPU, upClient time.Duration, drain float64, drainCPU time.Duration, err error) {
	s, err := startServe(bin, "--workers", "0")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer os.RemoveAll(s.data)
	cpu0, err := procCPU(s.cmd.Process.Pid)
	if err != nil {
		s.halt()
		return 0, 0, 0, 0, err
	}
	client0 := selfCPU()
	err = uploadAll(s.url, images)
	upClient = (selfCPU() - client0) / time.Duration(len(images))
	cpu1, err2 := procCPU(s.cmd.Process.Pid)
	s.halt()
	if err := errors.Join(err, err2); err != nil {
		return 0, 0, 0, 0, err
	}
	upCPU = (cpu1 - cpu0) / time.Duration(len(images))

	s, err = startServeIn(bin, s.data)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer s.halt()
	start := time.Now()
	cpu0, err = procCPU(s.cmd.Process.Pid)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	// Workers start before serve reports ready; what they finished by
	// then is not counted.
	done0, err := countDone(s.url)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if err := waitDone(s.url, len(images), start); err != nil {
		return 0, 0, 0, 0, err
	}
	elapsed := time.Since(start)
	cpu1, err = procCPU(s.cmd.Process.Pid)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	n := len(images) - done0
	if n < 1 {
		return 0, 0, 0, 0, errors.New("split: the queue drained before serve was ready")
	}
	return upCPU, upClient, float64(n) / elapsed.Seconds(), (cpu1 - cpu0) / time.Duration(n), nil
}

// serveSync sends every image at once with ?wait= and reports latencies.
func serveSync(bin string, images [][]byte) (avg, p50, mx time.Duration, err error) {
	s, err := startServe(bin)
	if err != nil {
		return 0, 0, 0, err
	}
	defer s.stop()
	lat := make([]time.Duration, len(images))
	errs := make([]error, len(images))
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			t0 := time.Now()
			v, code, err := upload(s.url, "?wait=60s", images[i])
			if err != nil {
				err = fmt.Errorf("sync upload %d: %w", code, err)
			}
			lat[i] = time.Since(t0)
			if err == nil && (code != 200 || v.Status != "done") {
				err = fmt.Errorf("sync upload: %d %s", code, v.Status)
			}
			errs[i] = err
		}()
	}
	close(gate)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, 0, 0, err
	}
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	slices.Sort(lat)
	return sum / time.Duration(len(lat)), lat[len(lat)/2], lat[len(lat)-1], nil
}

type view struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}

func upload(base, query string, b []byte) (view, int, error) {
	var v view
	resp, err := client.Post(base+"/v1/images"+query, "image/jpeg", bytes.NewReader(b))
	if err != nil {
		return v, 0, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&v)
	return v, resp.StatusCode, err
}

// waitDone returns once serve at base reports n jobs done. Each look at
// /metrics costs serve a millisecond or two of CPU (the process collector
// reads /proc), which a fixed fast poll would take from the workers being
// measured: it sleeps a quarter of the time the remaining jobs should take
// at the rate seen since start, between 5 ms and 250 ms, so the run ends
// at most ~5 ms late with a few dozen looks in all.
func waitDone(base string, n int, start time.Time) error {
	for {
		done, err := countDone(base)
		if err != nil {
			return err
		}
		if done >= n {
			return nil
		}
		wait := 250 * time.Millisecond
		if done > 0 {
			left := time.Duration(float64(time.Since(start)) * float64(n-done) / float64(done))
			wait = min(max(left/4, 5*time.Millisecond), wait)
		}
		time.Sleep(wait)
	}
}

func countDone(base string) (int, error) {
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, `glimpse_worker_jobs_total{outcome="done"} `) {
			var n float64
			fmt.Sscan(strings.TrimPrefix(line, `glimpse_worker_jobs_total{outcome="done"} `), &n)
			return int(n), nil
		}
	}
	return 0, sc.Err()
}

// serveArgs are extra flags for every serve the benchmark starts.
var serveArgs string

type server struct {
	cmd  *exec.Cmd
	url  string
	data string
}

// startServe starts serve on a fresh data directory, with extra flags
// after -serve-args (so they win).
func startServe(bin string, extra ...string) (*server, error) {
	data, err := os.MkdirTemp("", "glimpse-bench-")
	if err != nil {
		return nil, err
	}
	s, err := startServeIn(bin, data, extra...)
	if err != nil {
		os.RemoveAll(data)
	}
	return s, err
}

// startServeIn starts serve on data and returns once it is ready.
func startServeIn(bin, data string, extra ...string) (*server, error) {
	// serve as it ships (its autoscaled pool, one worker per core at
	// least), unless -serve-args says otherwise, e.g. "--workers 2" for a
	// fixed pool of one worker per core, as the in-process reference has.
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--log-level", "warn"}
	args = append(args, strings.Fields(serveArgs)...)
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	s := &server{cmd: cmd, data: data}
	for sc.Scan() {
		if i := strings.Index(sc.Text(), "running at "); i >= 0 {
			s.url = strings.TrimSpace(sc.Text()[i+len("running at "):])
			break
		}
	}
	if s.url == "" {
		cmd.Process.Kill()
		return nil, errors.New("serve did not start")
	}
	go io.Copy(io.Discard, out)
	for range 600 {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.halt()
	return nil, errors.New("serve never became ready")
}

// halt stops serve gracefully and keeps its data directory.
func (s *server) halt() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
}

// stop stops serve and removes its data directory.
func (s *server) stop() {
	s.halt()
	os.RemoveAll(s.data)
}

func loadImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w (run make setup for the test photos)", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	return img, err
}

// makeJPEGs scales base to w×h and makes n distinct JPEGs from it (a few
// pixels differ, so content hashes differ and none is deduplicated).
func makeJPEGs(base image.Image, w, h, n int) [][]byte {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), base, base.Bounds(), draw.Src, nil)
	out := make([][]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range out {
		for k := 0; k < 8; k++ {
			o := dst.PixOffset(r.IntN(w), r.IntN(h))
			dst.Pix[o] = uint8(r.IntN(256))
		}
		var buf bytes.Buffer
		jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 90})
		out[i] = buf.Bytes()
	}
	return out
}
