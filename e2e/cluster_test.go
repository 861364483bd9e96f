package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite"
)

// TestClusterNodeKill runs `glimpse api` and two `glimpse worker` processes
// against a three-node NATS JetStream cluster (every stream R3), uploads
// 1,000 distinct images concurrently (200 with -short) and SIGKILLs the
// server leading the jobs stream a third of the way through. Every job must
// end done exactly once: one row, one result object, one outcome, one done
// count in the workers' metrics, and nothing left in the jobs stream. The
// killed node is restarted at the end and must catch up.
func TestClusterNodeKill(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	cl := startNATSCluster(t, 3)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "glimpse.db")
	blobDir := filepath.Join(dir, "blobs")
	engines := []string{
		"--queue", cl.URLs(), "--replicas", "3",
		"--db", "sqlite://" + dbPath, "--blob", "file://" + blobDir, "--data", dir,
		"--ack-wait", "10s",
	}
	api := startAPIRole(t, nil, engines...)
	var workers []*role
	for i := range 2 {
		args := append([]string{"--workers", "1"}, engines...)
		workers = append(workers, startWorkerRole(t, fmt.Sprintf("glimpse worker %d", i+1), nil, args...))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// The victim is the server leading the jobs stream: the hardest node to
	// lose, since publishes and acks go through it.
	leader := jobsLeader(ctx, t, cl.URLs())
	victim := cl.index(leader)
	if victim < 0 {
		t.Fatalf("jobs stream leader %q is not one of our nodes", leader)
	}
	// The observer talks to the survivors only, so that it sees every
	// outcome published while the victim dies.
	obs, err := nats.Connect(cl.URLs(victim), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	ojs, err := jetstream.New(obs)
	if err != nil {
		t.Fatal(err)
	}
	live := &outcomeLog{done: map[string]map[string]bool{}, failed: map[string]int{}}
	sub, err := obs.Subscribe(resultsSubject+".>", live.record)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := obs.Flush(); err != nil {
		t.Fatal(err)
	}

	imgs := make([][]byte, n)
	for i := range imgs {
		imgs[i] = noiseJPEG(t, 64, 48, uint64(1_000_000+i))
	}
	up := startUploads(api.URL, imgs, 8)

	checkFor(t, 3*time.Minute, 5*time.Millisecond, func() error {
		if got := up.accepted.Load(); got < int64(n/3) {
			return fmt.Errorf("%d of %d uploads accepted", got, n)
		}
		return nil
	})
	killAt := time.Now()
	cl.kill(victim)
	t.Logf("killed %s (leader of %s) after %d of %d uploads", leader, jobsStream, up.accepted.Load(), n)

	var newLeader string
	checkFor(t, time.Minute, 5*time.Millisecond, func() error {
		l, err := streamLeader(ctx, ojs, jobsStream)
		if err != nil {
			return err
		}
		if l == "" || l == leader {
			return fmt.Errorf("jobs stream leader is %q", l)
		}
		newLeader = l
		return nil
	})
	failover := time.Since(killAt)

	select {
	case <-up.done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("uploads still running after 5 minutes: %d of %d accepted", up.accepted.Load(), n)
	}
	uploadsEnd := time.Now()
	for _, err := range up.errors() {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var counts map[string]int
	checkFor(t, 5*time.Minute, 50*time.Millisecond, func() error {
		counts, err = statusCounts(db)
		if err != nil {
			return err
		}
		if counts["done"]+counts["failed"] < n {
			return fmt.Errorf("images by status: %v", counts)
		}
		return nil
	})
	allDone := time.Now()
	if counts["done"] != n {
		t.Errorf("images by status: %v; want all %d done", counts, n)
	}

	elapsed := allDone.Sub(up.start)
	t.Logf("%d images: uploads took %v (%.0f/s), all done after %v: %.1f jobs/s end to end",
		n, uploadsEnd.Sub(up.start).Round(time.Millisecond), float64(n)/uploadsEnd.Sub(up.start).Seconds(),
		elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	t.Logf("after the kill: new jobs-stream leader %s in %v; %s; %d upload attempts answered 503 or failed and were retried",
		newLeader, failover.Round(time.Millisecond), up.stallReport(killAt), up.retries.Load())

	// Rows: one per upload, each done, with its attempts.
	attempts := map[int]int{}
	rows, err := db.Query(`SELECT id, status, attempts FROM images`)
	if err != nil {
		t.Fatal(err)
	}
	rowIDs := map[string]bool{}
	for rows.Next() {
		var id, status string
		var a int
		if err := rows.Scan(&id, &status, &a); err != nil {
			t.Fatal(err)
		}
		rowIDs[id] = true
		attempts[a]++
		if a < 1 {
			t.Errorf("image %s is %s with %d attempts recorded; want at least 1", id, status, a)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("attempts per image: %v", attempts)
	ids := up.imageIDs()
	if len(rowIDs) != n {
		t.Errorf("%d image rows; want %d", len(rowIDs), n)
	}
	for _, id := range ids {
		if !rowIDs[id] {
			t.Errorf("uploaded image %s has no row", id)
		}
	}

	// One result object per image.
	waitResultObjects(t, blobDir, ids, time.Minute)
	results, err := filepath.Glob(filepath.Join(blobDir, "results", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != n {
		t.Errorf("%d result objects; want %d", len(results), n)
	}
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(blobDir, "results", id+".json")); err != nil {
			t.Errorf("result object of %s: %v", id, err)
		}
	}

	// Outcomes: exactly one done outcome per image in the results stream,
	// and no image finished twice (two done outcomes with different finish
	// times) on the wire.
	checkOutcomes(ctx, t, ojs, ids)
	if dup := live.twice(); len(dup) > 0 {
		t.Errorf("%d images finished more than once: %v", len(dup), dup[:min(len(dup), 10)])
	}
	if f := live.failedIDs(); len(f) > 0 {
		t.Errorf("failed outcomes published for %v", f[:min(len(f), 10)])
	}
	t.Logf("the observer saw done outcomes for %d of %d images live", live.count(), n)

	// The workers counted each job done once between them.
	var done, stale, retried float64
	for _, w := range workers {
		for name, v := range map[string]*float64{"done": &done, "stale": &stale, "retried": &retried} {
			c, err := counter(w.Metrics, `glimpse_worker_jobs_total{outcome="`+name+`"}`)
			if err != nil {
				t.Fatal(err)
			}
			*v += c
		}
	}
	if int(done) != n {
		t.Errorf("workers counted %v jobs done; want exactly %d", done, n)
	}
	t.Logf("worker deliveries: %v done, %v stale (redelivered after done), %v retried", done, stale, retried)

	// Nothing is left to do.
	checkFor(t, time.Minute, 50*time.Millisecond, func() error { return queueDrained(ctx, ojs) })

	// The killed node comes back and catches up with both streams.
	restartAt := time.Now()
	cl.restart(victim)
	cl.waitHealthy(2 * time.Minute)
	for _, s := range []string{jobsStream, resultsStream} {
		checkFor(t, 2*time.Minute, 20*time.Millisecond, func() error { return replicasCurrent(ctx, ojs, s, 3) })
	}
	t.Logf("%s restarted and current on both streams after %v", leader, time.Since(restartAt).Round(time.Millisecond))

	for _, p := range append([]*role{api}, workers...) {
		if !p.running() {
			t.Errorf("%s exited during the test: %v", p.name, p.err)
		}
	}
}

// jobsLeader waits for the jobs stream to have a leader and returns its
// server name.
func jobsLeader(ctx context.Context, t *testing.T, urls string) string {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var leader string
	checkFor(t, time.Minute, 20*time.Millisecond, func() error {
		l, err := streamLeader(ctx, js, jobsStream)
		if err != nil {
			return err
		}
		if l == "" {
			return fmt.Errorf("%s has no leader yet", jobsStream)
		}
		leader = l
		return nil
	})
	return leader
}

// checkOutcomes checks that the results stream holds exactly one outcome
// per image, each done, and no other.
func checkOutcomes(ctx context.Context, t *testing.T, js jetstream.JetStream, ids []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, resultsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(resultsSubject+".>"))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Msgs; got != uint64(len(ids)) {
		t.Errorf("results stream holds %d outcomes; want %d", got, len(ids))
	}
	var missing []string
	for _, id := range ids {
		subj := resultsSubject + "." + id
		if c := info.State.Subjects[subj]; c != 1 {
			missing = append(missing, fmt.Sprintf("%s:%d", id, c))
			continue
		}
		msg, err := st.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			t.Fatalf("outcome of %s: %v", id, err)
		}
		var o struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(msg.Data, &o); err != nil || o.Status != "done" {
			t.Errorf("outcome of %s = %s (%v); want done", id, msg.Data, err)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d images without exactly one outcome message (id:count): %v", len(missing), missing[:min(len(missing), 10)])
	}
}

// queueDrained reports whether the jobs stream is empty and the workers'
// consumer has nothing pending.
func queueDrained(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, jsTimeout)
	defer cancel()
	st, err := js.Stream(ctx, jobsStream)
	if err != nil {
		return err
	}
	if m := st.CachedInfo().State.Msgs; m != 0 {
		return fmt.Errorf("%s still holds %d jobs", jobsStream, m)
	}
	c, err := st.Consumer(ctx, workersConsumer)
	if err != nil {
		return err
	}
	ci := c.CachedInfo()
	if ci.NumPending != 0 || ci.NumAckPending != 0 {
		return fmt.Errorf("%s: %d pending, %d unacknowledged", workersConsumer, ci.NumPending, ci.NumAckPending)
	}
	return nil
}

// replicasCurrent reports whether stream name has a leader and want-1
// followers that are online, current and not lagging.
func replicasCurrent(ctx context.Context, js jetstream.JetStream, name string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, jsTimeout)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return err
	}
	ci := st.CachedInfo().Cluster
	if ci == nil || ci.Leader == "" {
		return fmt.Errorf("%s has no leader", name)
	}
	ok := 0
	for _, r := range ci.Replicas {
		if r.Current && !r.Offline && r.Lag == 0 {
			ok++
		}
	}
	if ok != want-1 {
		return fmt.Errorf("%s: %d of %d followers current: %+v", name, ok, want-1, ci.Replicas)
	}
	return nil
}

func statusCounts(db *sql.DB) (map[string]int, error) {
	rows, err := db.Query(`SELECT status, count(*) FROM images GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var c int
		if err := rows.Scan(&s, &c); err != nil {
			return nil, err
		}
		out[s] = c
	}
	return out, rows.Err()
}

// outcomeLog records the outcomes published on the wire: for each image,
// the distinct finish times of its done outcomes. A re-sent outcome (same
// finish time) is the same outcome; two finish times mean the image was
// processed to the end twice.
type outcomeLog struct {
	mu     sync.Mutex
	done   map[string]map[string]bool
	failed map[string]int
}

func (l *outcomeLog) record(m *nats.Msg) {
	var o struct {
		ImageID    string `json:"image_id"`
		Status     string `json:"status"`
		FinishedAt string `json:"finished_at"`
	}
	if err := json.Unmarshal(m.Data, &o); err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch o.Status {
	case "done":
		if l.done[o.ImageID] == nil {
			l.done[o.ImageID] = map[string]bool{}
		}
		l.done[o.ImageID][o.FinishedAt] = true
	case "failed":
		l.failed[o.ImageID]++
	}
}

func (l *outcomeLog) twice() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id, times := range l.done {
		if len(times) > 1 {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func (l *outcomeLog) failedIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id := range l.failed {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (l *outcomeLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.done)
}

// uploads posts images concurrently, retrying each on 503 or a transport
// error (the same bytes are the same image, so a retry never makes a second
// one) for up to two minutes.
type uploads struct {
	start    time.Time
	accepted atomic.Int64
	retries  atomic.Int64
	done     chan struct{}

	mu    sync.Mutex
	ids   []string
	began []time.Time
	ended []time.Time
	errs  []error
}

func startUploads(base string, imgs [][]byte, concurrency int) *uploads {
	u := &uploads{
		start: time.Now(), done: make(chan struct{}),
		ids: make([]string, len(imgs)), began: make([]time.Time, len(imgs)), ended: make([]time.Time, len(imgs)),
	}
	client := &http.Client{Timeout: 30 * time.Second}
	next := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				u.one(client, base, i, imgs[i])
			}
		})
	}
	go func() {
		for i := range imgs {
			next <- i
		}
		close(next)
		wg.Wait()
		close(u.done)
	}()
	return u
}

func (u *uploads) one(client *http.Client, base string, i int, b []byte) {
	began := time.Now()
	deadline := began.Add(2 * time.Minute)
	url := fmt.Sprintf("%s/v1/images?filename=img-%04d.jpg", base, i)
	for {
		id, status, err := postJPEG(client, url, b)
		if err == nil && (status == http.StatusAccepted || status == http.StatusOK) {
			u.mu.Lock()
			u.ids[i], u.began[i], u.ended[i] = id, began, time.Now()
			u.mu.Unlock()
			u.accepted.Add(1)
			return
		}
		if err == nil && status != http.StatusServiceUnavailable {
			err = fmt.Errorf("status %d", status)
			u.fail(fmt.Errorf("upload %d: %v", i, err))
			return
		}
		if time.Now().After(deadline) {
			u.fail(fmt.Errorf("upload %d: still failing after 2 minutes: status %d, %v", i, status, err))
			return
		}
		u.retries.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
}

func (u *uploads) fail(err error) {
	u.mu.Lock()
	u.errs = append(u.errs, err)
	u.mu.Unlock()
}

func (u *uploads) errors() []error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.errs)
}

func (u *uploads) imageIDs() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.ids)
}

// stallReport says how the uploads fared around at: the longest gap
// between two accepted uploads after it (and before it, for comparison),
// and the slowest upload in flight at that moment.
func (u *uploads) stallReport(at time.Time) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	ends := slices.Clone(u.ended)
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	var gapBefore, gapAfter time.Duration
	for i := 1; i < len(ends); i++ {
		g := ends[i].Sub(ends[i-1])
		if ends[i].Before(at) {
			gapBefore = max(gapBefore, g)
		} else {
			gapAfter = max(gapAfter, g)
		}
	}
	var slowest time.Duration
	for i := range u.began {
		if !u.began[i].After(at) && u.ended[i].After(at) {
			slowest = max(slowest, u.ended[i].Sub(u.began[i]))
		}
	}
	return fmt.Sprintf("longest gap between accepted uploads %v after the kill (%v before it); slowest upload in flight at the kill took %v",
		gapAfter.Round(time.Millisecond), gapBefore.Round(time.Millisecond), slowest.Round(time.Millisecond))
}

// postJPEG uploads b as a raw JPEG body and returns the image id.
func postJPEG(client *http.Client, url string, b []byte) (string, int, error) {
	resp, err := client.Post(url, "image/jpeg", bytes.NewReader(b))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode, nil
	}
	var v imageView
	if err := json.Unmarshal(body, &v); err != nil || v.ID == "" {
		return "", resp.StatusCode, fmt.Errorf("decoding %q: %v", strings.TrimSpace(string(body)), err)
	}
	return v.ID, resp.StatusCode, nil
}
