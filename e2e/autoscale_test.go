package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// metric reads one unlabelled gauge from /metrics.
func metric(t testing.TB, base, name string) float64 {
	t.Helper()
	v, err := readMetric(base, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// readMetric is metric for goroutines other than the test's.
func readMetric(base, name string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("metric %s not in /metrics", name)
}

// A burst of uploads makes the autoscaler add workers, every image ends
// done, and the pool returns to its minimum once the queue drains.
func TestAutoscaleBurst(t *testing.T) {
	s := startServe(t, t.TempDir(), "--min-workers", "1", "--max-workers", "4",
		"--scale-tick", "250ms", "--scale-down-window", "3s")
	if w := metric(t, s.URL, "glimpse_workers"); w != 1 {
		t.Fatalf("glimpse_workers = %g at start; want 1", w)
	}
	const n = 200
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var v imageView
			resp := uploadFiles(t, s.URL, "", map[string][]byte{fmt.Sprintf("b%d.jpg", i): noiseJPEG(t, 160, 120, uint64(i+1))}, &v)
			if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
				t.Errorf("upload %d: %d", i, resp.StatusCode)
			}
			ids[i] = v.ID
		}()
	}
	// Watch the pool while the burst is processed.
	peak := 0.0
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if w, err := readMetric(s.URL, "glimpse_workers"); err == nil {
				peak = max(peak, w)
			}
		}
	}()
	wg.Wait()
	for i, id := range ids {
		if id == "" {
			t.Fatalf("upload %d returned no id", i)
		}
		if v := waitDone(t, s.URL, id, 3*time.Minute); v.Status != "done" {
			t.Errorf("image %s ended %s (%s); want done", id, v.Status, v.Error)
		}
	}
	close(stop)
	<-watched
	if peak <= 1 {
		t.Errorf("peak glimpse_workers = %g during a %d-image burst; want > 1", peak, n)
	}
	checkFor(t, time.Minute, 100*time.Millisecond, func() error {
		if w := metric(t, s.URL, "glimpse_workers"); w != 1 {
			return fmt.Errorf("glimpse_workers = %g after the burst drained; want 1", w)
		}
		return nil
	})
	if !strings.Contains(s.logs.String(), "autoscale decision") {
		t.Error("no autoscale decision in the log")
	}
	t.Logf("peak workers %g; desired now %g", peak, metric(t, s.URL, "glimpse_autoscale_desired_workers"))
}
