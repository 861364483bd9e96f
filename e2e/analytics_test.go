package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/glimpse-oss/glimpse/internal/natsembed"
	"github.com/glimpse-oss/glimpse/internal/queue"
)

// manifestCity is the part of a pump manifest line the analytics test reads.
type manifestCity struct {
	File    string `json:"file"`
	QR      string `json:"qr"`
	TakenAt string `json:"taken_at"`
	City    string `json:"city"`
}

type statsCell struct {
	T       time.Time `json:"t"`
	Label   string    `json:"label"`
	Product string    `json:"product"`
	Place   string    `json:"place"`
	Count   int       `json:"count"`
	Done    int       `json:"done"`
	Failed  int       `json:"failed"`
	P50     float64   `json:"p50_ms"`
}

func getStats(t *testing.T, base, path string) []statsCell {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	var out struct {
		Buckets []statsCell `json:"buckets"`
	}
	if resp := do(t, req, &out); resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d", path, resp.StatusCode)
	}
	return out.Buckets
}

// doneTotal sums the images done in May 2024 … now, by finish time.
func doneTotal(t *testing.T, base string) int {
	n := 0
	for _, c := range getStats(t, base, "/v1/stats/throughput?bucket=day&from="+time.Now().Add(-24*time.Hour).UTC().Format(time.RFC3339)) {
		n += c.Done + c.Failed
	}
	return n
}

// TestAnalyticsAgainstPump sends two batches of pump photos through a real
// serve, restarting it in between, re-publishing an outcome that was already
// loaded and running a backfill while it is down; then every product, place
// and label count of the stats API must match the pump's manifests exactly.
func TestAnalyticsAgainstPump(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	data, photos := t.TempDir(), t.TempDir()
	pumpBatch := func(s *server, seed string) {
		t.Helper()
		m := filepath.Join(photos, "manifest-"+seed+".jsonl")
		stdout, stderr, code := run(t, "pump", "--count", "8", "--size", "640x480", "--seed", seed, "--rotated", "0.3",
			"--to", s.URL, "--rate", "20", "--features", "labels,qr,exif", "--manifest", m, "--json", "--check", "errors=0")
		if code != 0 {
			t.Fatalf("pump --seed %s: exit %d\n%s\n%s", seed, code, stdout, stderr)
		}
	}
	waitTotal := func(s *server, want int) {
		t.Helper()
		checkFor(t, 2*time.Minute, 200*time.Millisecond, func() error {
			if n := doneTotal(t, s.URL); n != want {
				return fmt.Errorf("stats count %d images; want %d", n, want)
			}
			return nil
		})
	}

	s := startServe(t, data)
	pumpBatch(s, "21")
	waitTotal(s, 8)
	req, _ := http.NewRequest("GET", s.URL+"/v1/images?limit=1", nil)
	var list struct {
		Images []imageView `json:"images"`
	}
	do(t, req, &list)
	if len(list.Images) != 1 {
		t.Fatalf("list gave %d images", len(list.Images))
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	// While serve is down: re-publish an outcome the loader already loaded
	// (a redelivery), and backfill from the result documents.
	republishOutcome(t, filepath.Join(data, "nats"), list.Images[0].ID)
	if stdout, stderr, code := run(t, "analytics", "backfill", "--data", data); code != 0 || !strings.Contains(stdout, `"done":8`) {
		t.Fatalf("analytics backfill: exit %d\n%s\n%s", code, stdout, stderr)
	}

	s = startServe(t, data)
	waitTotal(s, 8)
	pumpBatch(s, "22")
	waitTotal(s, 16)
	// This serve's loader took the re-published outcome and the second
	// batch: 9 outcomes for 8 new rows.
	checkFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		req, _ := http.NewRequest("GET", s.URL+"/metrics", nil)
		resp := do(t, req, nil)
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		const want = `glimpse_analytics_outcomes_total{result="loaded"} 9`
		if !strings.Contains(body.String(), want+"\n") {
			return fmt.Errorf("/metrics lacks %s", want)
		}
		return nil
	})

	var entries []manifestCity
	for _, seed := range []string{"21", "22"} {
		b, err := os.ReadFile(filepath.Join(photos, "manifest-"+seed+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var e manifestCity
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			entries = append(entries, e)
		}
	}
	if len(entries) != 16 {
		t.Fatalf("manifests hold %d photos; want 16", len(entries))
	}
	wantProducts, wantPlaces := map[string]int{}, map[string]int{}
	for _, e := range entries {
		taken, err := time.Parse(time.RFC3339, e.TakenAt)
		if err != nil {
			t.Fatal(err)
		}
		day := taken.UTC().Format(time.DateOnly)
		wantProducts[day+" "+strings.TrimPrefix(e.QR, "https://")]++
		wantPlaces[day+" "+e.City]++
	}
	const taken = "?bucket=day&time=taken&from=2024-05-01&to=2024-06-01&top=1000"
	gotProducts, gotPlaces := map[string]int{}, map[string]int{}
	for _, c := range getStats(t, s.URL, "/v1/stats/products"+taken) {
		gotProducts[c.T.Format(time.DateOnly)+" "+c.Product] += c.Count
	}
	for _, c := range getStats(t, s.URL, "/v1/stats/places"+taken) {
		gotPlaces[c.T.Format(time.DateOnly)+" "+c.Place] += c.Count
	}
	if fmt.Sprint(gotProducts) != fmt.Sprint(wantProducts) {
		t.Errorf("products by day:\n got %v\nwant %v", gotProducts, wantProducts)
	}
	if fmt.Sprint(gotPlaces) != fmt.Sprint(wantPlaces) {
		t.Errorf("places by day:\n got %v\nwant %v", gotPlaces, wantPlaces)
	}
	labels := 0
	for _, c := range getStats(t, s.URL, "/v1/stats/labels?bucket=hour&top=1000&from="+time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339)) {
		labels += c.Count
	}
	if labels != 16 {
		t.Errorf("labels count %d images; want 16 (one top label each)", labels)
	}
	if n := doneTotal(t, s.URL); n != 16 {
		t.Errorf("throughput counts %d images after the redelivery; want 16", n)
	}

	// Bad parameters are 400 problems.
	for _, q := range []string{"/v1/stats/throughput?bucket=week", "/v1/stats/labels?from=yesterday", "/v1/stats/places?time=later",
		"/v1/stats/products?top=0", "/v1/stats/backlog?bucket=minute&from=2020-01-01"} {
		req, _ := http.NewRequest("GET", s.URL+q, nil)
		var p problem
		if resp := do(t, req, &p); resp.StatusCode != 400 || p.Detail == "" {
			t.Errorf("GET %s = %d %q; want 400 with a detail", q, resp.StatusCode, p.Detail)
		}
	}
	checkFor(t, 30*time.Second, 500*time.Millisecond, func() error {
		if len(getStats(t, s.URL, "/v1/stats/backlog?bucket=minute")) == 0 {
			return fmt.Errorf("no backlog samples yet")
		}
		return nil
	})

	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	for format, lines := range map[string]int{"csv": 17, "jsonl": 16} {
		stdout, stderr, code := run(t, "analytics", "export", "--data", data, "--format", format, "--since", "24h")
		if got := strings.Count(stdout, "\n"); code != 0 || got != lines {
			t.Errorf("analytics export --format %s: exit %d, %d lines; want %d\n%s", format, code, got, lines, stderr)
		}
	}
}

// republishOutcome starts the embedded NATS of a stopped serve and publishes
// the outcome of image id once more, as a redelivery would.
func republishOutcome(t *testing.T, dir, id string) {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, queue.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	subject := queue.ResultsSubject + "." + id
	msg, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("outcome of %s: %v", id, err)
	}
	if _, err := js.Publish(ctx, subject, msg.Data); err != nil {
		t.Fatal(err)
	}
}
