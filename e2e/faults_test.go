package e2e

// Crashes and faults: nothing accepted is lost, nothing is done twice. The
// tests kill and pause real processes, cut the database and the blob store
// off through a TCP proxy, and fill a disk, then check every image's row,
// result object and outcome message.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestFaultWorkerKills runs `glimpse api` and three `glimpse worker`
// processes on a nats-server, uploads 2,000 distinct images (300 with
// -short) and SIGKILLs one worker every 2 seconds, restarting it each time,
// until every job is finished. Every job must end done exactly once: one
// row, done; one result object; one outcome message (and no image finished
// twice on the wire).
func TestFaultWorkerKills(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	rig := startFaultRig(t, 3, "--ack-wait", "3s")
	imgs := make([][]byte, n)
	for i := range imgs {
		imgs[i] = noiseJPEG(t, 64, 48, uint64(3_000_000+i))
	}
	up := startUploads(rig.api.URL, imgs, 8)

	// The kill schedule: every 2 s one worker in turn is SIGKILLed and
	// started again, until every image is finished (or 10 minutes pass).
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Minute)
	kills := 0
	var restart time.Duration
	for {
		counts, err := statusCounts(rig.db)
		if err != nil {
			t.Fatal(err)
		}
		if counts["done"]+counts["failed"] >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 minutes and %d kills: images by status %v, %d of %d uploads accepted", kills, counts, up.accepted.Load(), n)
		}
		<-tick.C
		i := kills % len(rig.workers)
		rig.workers[i].kill()
		kills++
		began := time.Now()
		rig.workers[i] = startWorkerRole(t, fmt.Sprintf("glimpse worker %d (restart %d)", i+1, kills), nil, rig.workerArgs...)
		restart += time.Since(began)
	}
	elapsed := time.Since(up.start)
	<-up.done
	for _, err := range up.errors() {
		t.Error(err)
	}
	t.Logf("%d jobs with a worker SIGKILLed every 2 s (%d kills, restart to ready %v on average): all finished after %v, %.1f jobs/s",
		n, kills, (restart / time.Duration(max(kills, 1))).Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	rig.checkExactlyOnce(t, up.imageIDs())
}

// TestFaultServeKills uploads continuously to `glimpse serve` and SIGKILLs
// serve itself three times during the run, restarting it on the same --data
// each time. Every upload that got a 2xx must end done with its result
// object.
func TestFaultServeKills(t *testing.T) {
	const kills, perLife = 3, 60
	dir := t.TempDir()
	args := []string{"--workers", "2", "--ack-wait", "3s"}
	s := startServe(t, dir, args...)
	var base atomic.Value
	base.Store(s.URL)

	var (
		mu       sync.Mutex
		accepted = map[string]int{} // image id → upload number
		refused  atomic.Int64       // attempts that failed or got a non-2xx (retried)
		next     atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 30 * time.Second}
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				b := noiseJPEG(t, 64, 48, uint64(4_000_000+i))
				for try := 0; ; try++ {
					select {
					case <-stop:
						return
					default:
					}
					id, status, err := postJPEG(client, base.Load().(string)+fmt.Sprintf("/v1/images?filename=up-%05d.jpg", i), b)
					if err == nil && (status == http.StatusAccepted || status == http.StatusOK) {
						mu.Lock()
						accepted[id] = i
						mu.Unlock()
						break
					}
					refused.Add(1)
					if try > 2000 {
						t.Errorf("upload %d: still refused after %d tries: %d %v", i, try, status, err)
						return
					}
					time.Sleep(20 * time.Millisecond) // back-off before the retry
				}
			}
		})
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted)
	}
	var downtime time.Duration
	for k := range kills {
		from := count()
		checkFor(t, 2*time.Minute, 10*time.Millisecond, func() error {
			if got := count() - from; got < perLife {
				return fmt.Errorf("%d uploads accepted since the last restart", got)
			}
			return nil
		})
		s.kill()
		killedAt := time.Now()
		s = startServe(t, dir, args...)
		base.Store(s.URL)
		downtime += time.Since(killedAt)
		t.Logf("kill %d: serve SIGKILLed after %d uploads accepted; back and ready in %v", k+1, count(), time.Since(killedAt).Round(time.Millisecond))
	}
	from := count()
	checkFor(t, 2*time.Minute, 10*time.Millisecond, func() error {
		if got := count() - from; got < perLife {
			return fmt.Errorf("%d uploads accepted since the last restart", got)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	db := openSQLite(t, filepath.Join(dir, "glimpse.db"))
	n := count()
	checkFor(t, 3*time.Minute, 50*time.Millisecond, func() error {
		counts, err := statusCounts(db)
		if err != nil {
			return err
		}
		if counts["done"]+counts["failed"] < n {
			return fmt.Errorf("images by status: %v; %d accepted", counts, n)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	ids := make([]string, 0, len(accepted))
	for id := range accepted {
		ids = append(ids, id)
	}
	waitResultObjects(t, filepath.Join(dir, "blobs"), ids, time.Minute)
	for id, i := range accepted {
		var status, reason string
		if err := db.QueryRow(`SELECT status, error FROM images WHERE id = ?`, id).Scan(&status, &reason); err != nil {
			t.Errorf("upload %d (%s) got a 2xx but has no row: %v", i, id, err)
			continue
		}
		if status != "done" {
			t.Errorf("upload %d (%s) is %s (%s); want done", i, id, status, reason)
		}
		if _, err := os.Stat(filepath.Join(dir, "blobs", "results", id+".json")); err != nil {
			t.Errorf("upload %d (%s): result object: %v", i, id, err)
		}
	}
	t.Logf("%d uploads accepted across %d SIGKILLs of serve (%v down in all, %d attempts refused or cut and retried): all done, each with its result object",
		n, kills, downtime.Round(time.Millisecond), refused.Load())
}

// TestFaultPausedWorker pauses a worker (SIGSTOP) in the middle of a slow
// job, past the ack deadline, lets another worker take the job over and
// finish it, then resumes the first one (SIGCONT). Its late work must not
// overwrite the row, the result object or the outcome of the winner, nor
// publish a second one.
func TestFaultPausedWorker(t *testing.T) {
	rig := startFaultRig(t, 1, "--ack-wait", "2s")
	w1 := rig.workers[0]
	t.Cleanup(func() { _ = w1.cmd.Process.Signal(syscall.SIGCONT) })

	// A slow job: a 12-megapixel noise JPEG with every feature. The pause
	// must land while the job is processing; if the job slips through
	// first, try another image.
	var id string
	for try := 0; ; try++ {
		if try == 5 {
			t.Fatalf("could not pause the worker mid-job in %d tries", try)
		}
		var v imageView
		resp := uploadRaw(t, rig.api.URL, "?features=all", "image/jpeg", noiseJPEG(t, 4000, 3000, uint64(5_000+try)), &v)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("upload = %d; want 202", resp.StatusCode)
		}
		checkFor(t, time.Minute, 2*time.Millisecond, func() error {
			if v = getImage(t, rig.api.URL, v.ID); v.Status == "queued" {
				return fmt.Errorf("image %s is queued", v.ID)
			}
			return nil
		})
		if v.Status != "processing" {
			t.Logf("try %d: the job was %s before the pause; trying a slower one", try+1, v.Status)
			continue
		}
		if err := w1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		if v = getImage(t, rig.api.URL, v.ID); v.Status != "processing" {
			_ = w1.cmd.Process.Signal(syscall.SIGCONT)
			t.Logf("try %d: the job was %s as the pause landed; trying again", try+1, v.Status)
			continue
		}
		id = v.ID
		break
	}
	pausedAt := time.Now()

	// Another worker takes the job over once the ack deadline passes.
	w2 := startWorkerRole(t, "glimpse worker 2", nil, rig.workerArgs...)
	won := waitDone(t, rig.api.URL, id, 2*time.Minute)
	if won.Status != "done" || won.Attempts != 2 {
		t.Fatalf("image = %s after %d attempts (%s); want done by the second", won.Status, won.Attempts, won.Error)
	}
	t.Logf("worker 2 finished the job %v after worker 1 was paused", time.Since(pausedAt).Round(time.Millisecond))
	waitResultObjects(t, rig.blobDir, []string{id}, 30*time.Second)
	resultPath := filepath.Join(rig.blobDir, "results", id+".json")
	blob, err := os.ReadFile(resultPath)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(resultPath)
	if err != nil {
		t.Fatal(err)
	}
	var finished string
	if err := rig.db.QueryRow(`SELECT finished_at FROM images WHERE id = ?`, id).Scan(&finished); err != nil {
		t.Fatal(err)
	}

	// Worker 1 resumes, finishes its analysis and finds the job taken.
	if err := w1.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 2*time.Minute, 20*time.Millisecond, func() error {
		c, err := counter(w1.Metrics, `glimpse_worker_jobs_total{outcome="stale"}`)
		if err != nil {
			return err
		}
		if c < 1 {
			return fmt.Errorf("worker 1 has not settled its late delivery")
		}
		return nil
	})
	t.Logf("worker 1 resumed after %v paused and dropped its late work", time.Since(pausedAt).Round(time.Millisecond))

	after := getImage(t, rig.api.URL, id)
	var finishedAfter string
	if err := rig.db.QueryRow(`SELECT finished_at FROM images WHERE id = ?`, id).Scan(&finishedAfter); err != nil {
		t.Fatal(err)
	}
	if after.Status != "done" || after.Attempts != 2 || finishedAfter != finished {
		t.Errorf("row after worker 1 resumed = %s, attempt %d, finished %s; want the winner's done, 2, %s",
			after.Status, after.Attempts, finishedAfter, finished)
	}
	if got, err := os.ReadFile(resultPath); err != nil || !bytes.Equal(got, blob) {
		t.Errorf("result object after worker 1 resumed differs from the winner's:\n got %s (%v)\nwant %s", got, err, blob)
	}
	if st, err := os.Stat(resultPath); err != nil || !st.ModTime().Equal(before.ModTime()) {
		t.Errorf("result object was rewritten after worker 1 resumed (mtime %v, was %v)", st.ModTime(), before.ModTime())
	}
	rig.checkOutcomes(t, []string{id})
	for _, w := range []*role{w1, w2} {
		if !w.running() {
			t.Errorf("%s exited: %v", w.name, w.err)
		}
	}
}

// TestFaultOutages makes each backing service unavailable for a while —
// PostgreSQL and the S3 blob store cut off behind a TCP proxy, and a full
// disk under the blobs and the SQLite database. While it lasts the API
// answers 503 with Retry-After and a problem detail (not a hang, not a
// 500); once it clears, uploads work again, and every image accepted
// before or around it ends done — the workers waited instead of spending
// the jobs' attempts (--max-deliver 2 would dead-letter a job after two
// failed attempts).
func TestFaultOutages(t *testing.T) {
	t.Run("database", func(t *testing.T) {
		pg := postgresSchema(t)
		proxy := startFaultProxy(t, "127.0.0.1:5432")
		dsn := strings.Replace(pg.url, "127.0.0.1:5432", proxy.addr, 1)
		o := startOutageRig(t, nil, "--db", dsn, "--blob", "file://"+filepath.Join(t.TempDir(), "blobs"))
		o.run(t, "PostgreSQL", proxy.cut, proxy.restore)
	})
	t.Run("blobs", func(t *testing.T) {
		gw := startVersityGW(t)
		proxy := startFaultProxy(t, strings.TrimPrefix(gw.endpoint, "http://"))
		blobURL := strings.Replace(gw.blobURL(), gw.endpoint, "http://"+proxy.addr, 1)
		o := startOutageRig(t, gw.env, "--db", "sqlite://"+filepath.Join(t.TempDir(), "glimpse.db"), "--blob", blobURL)
		o.run(t, "the S3 blob store", proxy.cut, proxy.restore)
	})
	t.Run("full disk", func(t *testing.T) {
		mnt := mountTmpfs(t, "20m")
		o := startOutageRig(t, nil, "--db", "sqlite://"+filepath.Join(mnt, "glimpse.db"), "--blob", "file://"+filepath.Join(mnt, "blobs"))
		filler := filepath.Join(mnt, "filler")
		fill := func() {
			f, err := os.Create(filler)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			chunk := make([]byte, 1<<20)
			for i := 0; i < 64; i++ { // 64 MB at most: the tmpfs is 20 MB
				if _, err := f.Write(chunk); err != nil {
					if !errors.Is(err, syscall.ENOSPC) {
						t.Fatal(err)
					}
					return
				}
			}
			t.Fatalf("wrote 64 MB to a 20 MB tmpfs without ENOSPC")
		}
		free := func() {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		}
		o.run(t, "a full disk", fill, free)
	})
}

// outageRig is `glimpse api` and one `glimpse worker` on a nats-server,
// with the database and blob store named by the caller.
type outageRig struct {
	api    *role
	worker *role
	client *http.Client
	seed   atomic.Uint64
}

func startOutageRig(t *testing.T, env []string, engines ...string) *outageRig {
	t.Helper()
	natsURL := startNATS(t)
	args := append([]string{"--queue", natsURL, "--data", t.TempDir(), "--max-deliver", "2", "--ack-wait", "3s"}, engines...)
	o := &outageRig{client: &http.Client{Timeout: time.Minute}}
	o.api = startAPIRole(t, env, args...)
	o.worker = startWorkerRole(t, "glimpse worker", env, append([]string{"--workers", "1"}, args...)...)
	o.seed.Store(uint64(time.Now().UnixNano()))
	return o
}

// upload posts a fresh image and returns the answer.
func (o *outageRig) upload(t *testing.T, w, h int) (*http.Response, imageView, time.Duration) {
	t.Helper()
	b := noiseJPEG(t, w, h, o.seed.Add(1))
	began := time.Now()
	resp, err := o.client.Post(o.api.URL+"/v1/images", "image/jpeg", bytes.NewReader(b))
	took := time.Since(began)
	if err != nil {
		t.Fatalf("upload: %v (after %v: a hang?)", err, took)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v imageView
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("upload answer %q: %v", body, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, v, took
}

// expect503 checks that resp is a 503 problem with Retry-After and a detail.
func expect503(t *testing.T, what string, resp *http.Response, took time.Duration) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	var p problem
	_ = json.Unmarshal(body, &p)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || p.Detail == "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("%s during the outage = %d, Retry-After %q, %s %s; want 503 with Retry-After and a problem detail",
			what, resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), body)
		return
	}
	t.Logf("%s during the outage: 503 in %v, Retry-After %s: %s", what, took.Round(time.Millisecond), resp.Header.Get("Retry-After"), p.Detail)
}

// run uploads a batch, breaks the dependency with down, checks the API's
// answers while it is down and that the worker is waiting, mends it with
// up, and checks that everything accepted ends done.
func (o *outageRig) run(t *testing.T, what string, down, up func()) {
	t.Helper()
	// The worker is paused while the batch is accepted and the dependency
	// breaks, so that it surely meets the outage with work in hand however
	// fast this machine is. (Its metrics are read before it stops.)
	retriesBefore := dependencyRetries(t, o.worker.Metrics)
	if err := o.worker.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := true
	resume := func() {
		if paused {
			paused = false
			if err := o.worker.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(resume)
	var ids []string
	for range 8 {
		resp, v, _ := o.upload(t, 1600, 1200)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("upload before the outage = %d; want 202", resp.StatusCode)
		}
		ids = append(ids, v.ID)
	}
	down()
	downAt := time.Now()
	resume()
	resp, _, took := o.upload(t, 64, 48)
	expect503(t, "POST /v1/images", resp, took)
	if what == "PostgreSQL" {
		began := time.Now()
		req, _ := http.NewRequest("GET", o.api.URL+"/v1/images/"+ids[0], nil)
		resp, err := o.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		expect503(t, "GET /v1/images/{id}", resp, time.Since(began))
		resp.Body.Close()
	}
	// Hold the outage until the worker has retried a few times — longer
	// than two attempts would last.
	checkFor(t, time.Minute, 20*time.Millisecond, func() error {
		if n := dependencyRetries(t, o.worker.Metrics) - retriesBefore; n < 4 {
			return fmt.Errorf("the worker retried %v times", n)
		}
		return nil
	})
	resp, _, took = o.upload(t, 64, 48)
	expect503(t, "POST /v1/images (later)", resp, took)
	up()
	outage := time.Since(downAt)
	var v imageView
	checkFor(t, time.Minute, 50*time.Millisecond, func() error {
		var took time.Duration
		resp, v, took = o.upload(t, 64, 48)
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("upload after the outage = %d after %v", resp.StatusCode, took)
		}
		return nil
	})
	recovered := time.Since(downAt) - outage
	ids = append(ids, v.ID)
	for _, id := range ids {
		img := waitDone(t, o.api.URL, id, 2*time.Minute)
		if img.Status != "done" {
			t.Errorf("image %s = %s (%s); want done", id, img.Status, img.Error)
		}
	}
	t.Logf("%s unavailable for %v: the worker retried %v calls in place; uploads accepted again %v after it came back; all %d images done",
		what, outage.Round(time.Millisecond), dependencyRetries(t, o.worker.Metrics)-retriesBefore, recovered.Round(time.Millisecond), len(ids))
}

// dependencyRetries sums the worker's glimpse_worker_dependency_retries_total.
func dependencyRetries(t *testing.T, url string) float64 {
	t.Helper()
	sum := 0.0
	for _, step := range []string{"mark processing", "read input", "save result", "read image", "write result", "mark failed"} {
		c, err := counter(url, `glimpse_worker_dependency_retries_total{step="`+step+`"}`)
		if err != nil {
			t.Fatal(err)
		}
		sum += c
	}
	return sum
}

// faultRig is `glimpse api` and some `glimpse worker` processes on a
// nats-server, with SQLite and files in a temp dir, and an observer of the
// outcomes on the wire.
type faultRig struct {
	api        *role
	workers    []*role
	workerArgs []string
	blobDir    string
	db         *sql.DB
	js         jetstream.JetStream
	live       *outcomeLog
}

func startFaultRig(t *testing.T, workers int, extra ...string) *faultRig {
	t.Helper()
	natsURL := startNATS(t)
	dir := t.TempDir()
	r := &faultRig{blobDir: filepath.Join(dir, "blobs")}
	dbPath := filepath.Join(dir, "glimpse.db")
	engines := append([]string{
		"--queue", natsURL, "--db", "sqlite://" + dbPath, "--blob", "file://" + r.blobDir, "--data", dir,
	}, extra...)
	r.workerArgs = append([]string{"--workers", "1"}, engines...)
	r.api = startAPIRole(t, nil, engines...)
	r.db = openSQLite(t, dbPath)
	obs, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(obs.Close)
	if r.js, err = jetstream.New(obs); err != nil {
		t.Fatal(err)
	}
	r.live = &outcomeLog{done: map[string]map[string]bool{}, failed: map[string]int{}}
	if _, err := obs.Subscribe(resultsSubject+".>", r.live.record); err != nil {
		t.Fatal(err)
	}
	if err := obs.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range workers {
		r.workers = append(r.workers, startWorkerRole(t, fmt.Sprintf("glimpse worker %d", i+1), nil, r.workerArgs...))
	}
	return r
}

// checkOutcomes checks the outcomes of ids: exactly one done outcome each
// in the results stream, and no image finished twice or failed on the wire.
func (r *faultRig) checkOutcomes(t *testing.T, ids []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	checkOutcomes(ctx, t, r.js, ids)
	if dup := r.live.twice(); len(dup) > 0 {
		t.Errorf("%d images finished more than once on the wire: %v", len(dup), dup[:min(len(dup), 10)])
	}
	if f := r.live.failedIDs(); len(f) > 0 {
		t.Errorf("failed outcomes published for %v", f[:min(len(f), 10)])
	}
	t.Logf("the observer saw done outcomes for %d of %d images live", r.live.count(), len(ids))
}

// checkExactlyOnce checks that every image of ids is done exactly once: one
// row, done; one result object; one outcome; nothing left in the queue.
func (r *faultRig) checkExactlyOnce(t *testing.T, ids []string) {
	t.Helper()
	// A done row is the commit point; its result object and outcome follow
	// it, and when a worker died between the two, the job's redelivery (after
	// the ack wait) writes them. Every job is acknowledged only after its
	// effects, so an empty queue means they are all complete.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	checkFor(t, 2*time.Minute, 50*time.Millisecond, func() error { return queueDrained(ctx, r.js) })
	counts, err := statusCounts(r.db)
	if err != nil {
		t.Fatal(err)
	}
	if counts["done"] != len(ids) || len(counts) != 1 {
		t.Errorf("images by status: %v; want all %d done", counts, len(ids))
	}
	attempts := map[int]int{}
	rows, err := r.db.Query(`SELECT attempts, count(*) FROM images GROUP BY attempts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a, c int
		if err := rows.Scan(&a, &c); err != nil {
			t.Fatal(err)
		}
		attempts[a] = c
	}
	rows.Close()
	t.Logf("images by attempts: %v", attempts)
	results, err := filepath.Glob(filepath.Join(r.blobDir, "results", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(ids) {
		t.Errorf("%d result objects; want %d", len(results), len(ids))
	}
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(r.blobDir, "results", id+".json")); err != nil {
			t.Errorf("result object of %s: %v", id, err)
		}
	}
	r.checkOutcomes(t, ids)
}

// openSQLite opens a Glimpse SQLite database read-only for checks while
// other processes write it.
func openSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// faultProxy forwards TCP connections on a loopback port to a target; cut
// closes the listener and every connection (clients see resets, then
// refused connections), restore listens again on the same port.
type faultProxy struct {
	t      testing.TB
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func startFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *faultProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // cut meanwhile
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(c, up)
			go pipe(up, c)
		}
	}()
}

// cut makes the target unreachable through the proxy.
func (p *faultProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore makes the target reachable again on the same address.
func (p *faultProxy) restore() {
	var ln net.Listener
	checkFor(p.t, 10*time.Second, 20*time.Millisecond, func() (err error) {
		ln, err = net.Listen("tcp", p.addr)
		return err
	})
	p.serve(ln)
}

// mountTmpfs mounts a tmpfs of size on a temp dir and unmounts it in
// Cleanup (after the processes using it, which were started later, have
// stopped). The test is skipped when mounting is not permitted.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// startNATS starts one JetStream nats-server from .deps/bin on a loopback
// port (startNATSCluster needs routes; a single node needs none) and
// returns its URL.
func startNATS(t testing.TB) string {
	t.Helper()
	bin := depBin(t, "nats-server")
	dir := t.TempDir()
	for try := 0; ; try++ {
		port := strconv.Itoa(freePort(t))
		p := startProc(t, "nats-server", nil, bin, "-a", "127.0.0.1", "-p", port, "-js", "-sd", dir)
		var up bool
		checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			if !p.running() {
				return nil
			}
			nc, err := nats.Connect("nats://127.0.0.1:" + port)
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if _, err := js.AccountInfo(ctx); err != nil {
				return err
			}
			up = true
			return nil
		})
		if up {
			return "nats://127.0.0.1:" + port
		}
		if try == 2 {
			t.Fatalf("nats-server would not start: %v\n%s", p.err, p.logs)
		}
	}
}
