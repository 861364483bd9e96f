package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

func TestParseSLOs(t *testing.T) {
	cases := []struct {
		in      string
		want    []SLO
		wantErr string
	}{
		{in: "p99<1.2s", want: []SLO{{Text: "p99<1.2s", Metric: "p99", Op: "<", Bound: 1.2}}},
		{in: " p99 < 1.2s , avg<600ms,errors=0", want: []SLO{
			{Text: "p99 < 1.2s", Metric: "p99", Op: "<", Bound: 1.2},
			{Text: "avg<600ms", Metric: "avg", Op: "<", Bound: 0.6},
			{Text: "errors=0", Metric: "errors", Op: "=", Bound: 0},
		}},
		{in: "max<=2", want: []SLO{{Text: "max<=2", Metric: "max", Op: "<=", Bound: 2}}},
		{in: "error_rate<1%", want: []SLO{{Text: "error_rate<1%", Metric: "error_rate", Op: "<", Bound: 0.01}}},
		{in: "error_rate<=0.05", want: []SLO{{Text: "error_rate<=0.05", Metric: "error_rate", Op: "<=", Bound: 0.05}}},
		{in: "throughput>=20/s", want: []SLO{{Text: "throughput>=20/s", Metric: "throughput", Op: ">=", Bound: 20}}},
		{in: "throughput>5", want: []SLO{{Text: "throughput>5", Metric: "throughput", Op: ">", Bound: 5}}},
		{in: "queue.p90<1ns", want: []SLO{{Text: "queue.p90<1ns", Metric: "queue.p90", Op: "<", Bound: 1e-9}}},
		{in: "P50==1s", want: []SLO{{Text: "P50==1s", Metric: "p50", Op: "=", Bound: 1}}},
		{in: "accuracy_qr>=99%", want: []SLO{{Text: "accuracy_qr>=99%", Metric: "accuracy_qr", Op: ">=", Bound: 0.99}}},
		{in: "", wantErr: "names no objective"},
		{in: "p99", wantErr: "no comparison"},
		{in: "p95<1s", wantErr: `unknown metric "p95"`},
		{in: "disk.p99<1s", wantErr: `unknown metric "disk.p99"`},
		{in: "p99<", wantErr: "no bound"},
		{in: "accuracy_qr>=99", wantErr: "write 0.99 or 99%"},
		{in: "error_rate<5", wantErr: "between 0 and 1"},
		{in: "accuracy_qr>=150%", wantErr: "between 0 and 1"},
		{in: "p99<fast", wantErr: "not a duration"},
		{in: "errors<1.5", wantErr: "not a whole number"},
		{in: "errors=-1", wantErr: "not a whole number"},
		{in: "error_rate<lots", wantErr: "not a fraction"},
	}
	for _, tc := range cases {
		got, err := ParseSLOs(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseSLOs(%q) error = %v; want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSLOs(%q) error: %v", tc.in, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParseSLOs(%q) = %+v; want %+v", tc.in, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	s := &Summary{Sent: 10, Done: 9, Errors: 1, ErrorRate: 0.1, Elapsed: 2 * time.Second, Throughput: 4.5,
		Latency: NewDist([]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 900 * time.Millisecond})}
	cases := []struct {
		slo   string
		met   bool
		known bool
	}{
		{"p99<1s", true, true},
		{"p99<900ms", false, true},
		{"p99<=900ms", true, true},
		{"avg<0.5s", true, true},
		{"max>1s", false, true},
		{"errors=0", false, true},
		{"errors<=1", true, true},
		{"error_rate<5%", false, true},
		{"throughput>=4", true, true},
		{"queue.p99<1s", false, false}, // nothing measured: missed
		{"accuracy_qr>=1", false, false},
	}
	for _, tc := range cases {
		slos, err := ParseSLOs(tc.slo)
		if err != nil {
			t.Fatal(err)
		}
		o := Check(s, slos)[0]
		if o.Met != tc.met || o.Known != tc.known {
			t.Errorf("Check(%s) = met %v known %v (%s); want met %v known %v", tc.slo, o.Met, o.Known, o, tc.met, tc.known)
		}
		if !o.Met && !strings.Contains(o.String(), tc.slo) {
			t.Errorf("Check(%s).String() = %q; want it to name the objective", tc.slo, o)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	cases := []struct {
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 75, 3 * time.Millisecond},
		{ms(1, 2, 3, 4), 76, 4 * time.Millisecond},
		{ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{ms(hundred...), 90, 90 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 99.5, 100 * time.Millisecond},
		{ms(hundred...), 0.1, 1 * time.Millisecond},
	}
	for _, tc := range cases {
		if got := Percentile(tc.samples, tc.p); got != tc.want {
			t.Errorf("Percentile(%d samples, %g) = %v; want %v", len(tc.samples), tc.p, got, tc.want)
		}
	}
	d := NewDist(ms(5, 1, 4, 2, 3))
	if d.N != 5 || d.Avg != 3*time.Millisecond || d.P50 != 3*time.Millisecond || d.Max != 5*time.Millisecond {
		t.Errorf("NewDist = %+v", d)
	}
}

func TestScheduleCounts(t *testing.T) {
	const rate, window = 50.0, 100 * time.Second
	want := rate * window.Seconds() // 5000
	for _, tc := range []struct {
		kind     Arrivals
		slack    float64 // allowed |count-want|
		seed     uint64
		minGapCV float64
	}{
		{Poisson, 4 * 70.7, 1, 0.8}, // 4 standard deviations (√5000 ≈ 70.7)
		{Poisson, 4 * 70.7, 7, 0.8},
		{Uniform, 1, 1, 0},
	} {
		s := NewSchedule(rate, tc.kind, tc.seed)
		n := 0
		var last, prev time.Duration
		var gaps []float64
		for {
			at := s.Next()
			if at >= window {
				break
			}
			if at < last {
				t.Fatalf("%s: arrival %v before the previous one %v", tc.kind, at, last)
			}
			prev, last = last, at
			gaps = append(gaps, (at - prev).Seconds())
			n++
		}
		if diff := float64(n) - want; diff > tc.slack || diff < -tc.slack {
			t.Errorf("%s seed %d: %d arrivals in %v at %g/s; want %g ± %g", tc.kind, tc.seed, n, window, rate, want, tc.slack)
		}
		// Poisson gaps vary as much as their mean (coefficient of
		// variation 1); uniform gaps not at all.
		mean, sq := 0.0, 0.0
		for _, g := range gaps[1:] {
			mean += g
		}
		mean /= float64(len(gaps) - 1)
		for _, g := range gaps[1:] {
			sq += (g - mean) * (g - mean)
		}
		cv := 0.0
		if mean > 0 {
			cv = math.Sqrt(sq/float64(len(gaps)-1)) / mean
		}
		if tc.kind == Poisson && (cv < tc.minGapCV || cv > 1.2) {
			t.Errorf("%s: gap coefficient of variation %.2f; want about 1", tc.kind, cv)
		}
		if tc.kind == Uniform && cv > 1e-6 {
			t.Errorf("%s: gap coefficient of variation %.2g; want 0", tc.kind, cv)
		}
	}
	a, b := NewSchedule(10, Poisson, 3), NewSchedule(10, Poisson, 3)
	for range 100 {
		if x, y := a.Next(), b.Next(); x != y {
			t.Fatalf("same seed, different schedules: %v vs %v", x, y)
		}
	}
}

// fakeServer answers like Glimpse's /v1/images: an upload named
// "bad-*" is refused with 415, one named "fail-*" ends failed, the rest end
// done after polls polls, with a QR code and EXIF.
type fakeServer struct {
	polls int

	mu    sync.Mutex
	seen  map[string]int
	keys  map[string]bool
	waits atomic.Int64
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer k1" {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(401)
		io.WriteString(w, `{"title":"Unauthorized","status":401,"detail":"bad key"}`)
		return
	}
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	started, finished := created.Add(300*time.Millisecond), created.Add(500*time.Millisecond)
	img := job.Image{CreatedAt: created, Status: job.StatusQueued}
	switch {
	case r.Method == "POST" && r.URL.Path == "/v1/images":
		name := r.URL.Query().Get("filename")
		if k := r.Header.Get("Idempotency-Key"); k == "" || f.keys[k] {
			http.Error(w, "want a fresh Idempotency-Key", 400)
			return
		} else {
			f.keys[k] = true
		}
		if r.Header.Get("Content-Type") != "image/jpeg" {
			http.Error(w, "want image/jpeg", 400)
			return
		}
		if strings.HasPrefix(name, "bad-") {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(415)
			io.WriteString(w, `{"title":"Unsupported Media Type","status":415,"detail":"not an image we read"}`)
			return
		}
		img.ID = name
		if r.URL.Query().Get("wait") != "" {
			f.waits.Add(1)
			f.seen[name] = f.polls
		}
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/images/"):
		img.ID = strings.TrimPrefix(r.URL.Path, "/v1/images/")
		f.seen[img.ID]++
	default:
		http.NotFound(w, r)
		return
	}
	if f.seen[img.ID] >= f.polls {
		img.Status, img.StartedAt, img.FinishedAt = job.StatusDone, &started, &finished
		lat, lon := 48.1, -2.5
		img.Result = &job.Result{
			Labels: []job.Label{{Label: "tabby", Score: 0.8}},
			QR:     []job.Code{{Text: "https://shop.example/p/" + img.ID, Format: "QR_CODE"}},
			EXIF:   &job.EXIF{TakenAt: "2024-05-01T14:00:00+02:00", Latitude: &lat, Longitude: &lon},
		}
		if strings.HasPrefix(img.ID, "fail-") {
			img.Status, img.Result, img.Error = job.StatusFailed, nil, "decode: corrupt JPEG data"
		}
	}
	code := 200 // GET always; an upload only when finished
	if r.Method == "POST" && !img.Status.Terminal() {
		code = 202
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(img)
}

// listSource yields the named items with JPEG-looking bytes.
type listSource struct {
	names []string
	wants map[string]*Expected
	i     int
}

func (l *listSource) Next(context.Context) (Item, error) {
	if l.i == len(l.names) {
		return Item{}, io.EOF
	}
	n := l.names[l.i]
	l.i++
	return Item{Name: n, Data: []byte("\xff\xd8\xff\xe0 fake jpeg"), Want: l.wants[n]}, nil
}

func TestRun(t *testing.T) {
	f64 := func(v float64) *float64 { return &v }
	cases := []struct {
		name  string
		cfg   Config
		names []string
		wants map[string]*Expected
		check func(t *testing.T, s *Summary, results []Result)
	}{
		{
			name:  "async polls until done, errors by kind",
			cfg:   Config{Concurrency: 3, APIKey: "k1"},
			names: []string{"a.jpg", "b.jpg", "bad-1.jpg", "fail-1.jpg", "c.jpg"},
			check: func(t *testing.T, s *Summary, _ []Result) {
				if s.Sent != 5 || s.Done != 3 || s.Errors != 2 {
					t.Errorf("sent %d done %d errors %d; want 5, 3, 2", s.Sent, s.Done, s.Errors)
				}
				if s.ErrorKinds["http 415"] != 1 || s.ErrorKinds["failed: decode"] != 1 {
					t.Errorf("errors by kind = %v", s.ErrorKinds)
				}
				if s.QueueWait.P50 != 300*time.Millisecond || s.Processing.Max != 200*time.Millisecond {
					t.Errorf("queue wait %+v, processing %+v; want 300ms and 200ms from the timestamps", s.QueueWait, s.Processing)
				}
				if s.Upload.N != 3 || s.Latency.N != 3 {
					t.Errorf("upload n=%d latency n=%d; want 3", s.Upload.N, s.Latency.N)
				}
			},
		},
		{
			name:  "wrong key is an http error",
			cfg:   Config{Concurrency: 1, APIKey: "nope"},
			names: []string{"a.jpg"},
			check: func(t *testing.T, s *Summary, r []Result) {
				if s.ErrorKinds["http 401"] != 1 || r[0].Error != "bad key" {
					t.Errorf("errors %v, result %+v; want one http 401 with the problem's detail", s.ErrorKinds, r[0])
				}
			},
		},
		{
			name:  "sync mode uses wait",
			cfg:   Config{Concurrency: 2, APIKey: "k1", Wait: 5 * time.Second},
			names: []string{"a.jpg", "b.jpg"},
			check: func(t *testing.T, s *Summary, _ []Result) {
				if s.Done != 2 {
					t.Errorf("done %d; want 2", s.Done)
				}
			},
		},
		{
			name:  "open loop at a rate, with a count",
			cfg:   Config{Rate: 200, Arrivals: Uniform, Count: 6, APIKey: "k1"},
			names: []string{"1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg", "6.jpg", "7.jpg", "8.jpg"},
			check: func(t *testing.T, s *Summary, _ []Result) {
				if s.Sent != 6 || s.Done != 6 {
					t.Errorf("sent %d done %d; want 6 and 6", s.Sent, s.Done)
				}
			},
		},
		{
			name:  "accuracy against expected answers",
			cfg:   Config{Concurrency: 2, APIKey: "k1"},
			names: []string{"a.jpg", "b.jpg"},
			wants: map[string]*Expected{
				"a.jpg": {File: "a.jpg", QR: "https://shop.example/p/a.jpg", TakenAt: "2024-05-01T12:00:00Z", Lat: f64(48.1), Lon: f64(-2.5), Label: "tabby"},
				"b.jpg": {File: "b.jpg", QR: "https://shop.example/p/other", TakenAt: "2024-05-01T14:00:00+02:00", Lat: f64(48.1), Lon: f64(-2.50002)},
			},
			check: func(t *testing.T, s *Summary, _ []Result) {
				a := s.Accuracy
				if a == nil {
					t.Fatal("no accuracy")
				}
				// a: all right but the time (same instant, other offset);
				// b: wrong QR, right time, place 2e-5° off.
				got := fmt.Sprintf("qr %d/%d time %d/%d place %d/%d label %d/%d", a.QR.Correct, a.QR.Checked,
					a.Time.Correct, a.Time.Checked, a.Place.Correct, a.Place.Checked, a.Label.Correct, a.Label.Checked)
				if want := "qr 1/2 time 1/2 place 1/2 label 1/1"; got != want {
					t.Errorf("accuracy %s; want %s (misses %q)", got, want, a.Misses)
				}
				slos, _ := ParseSLOs("accuracy_qr>=1,accuracy_label=1")
				if o := Check(s, slos); o[0].Met || !o[1].Met {
					t.Errorf("checks %v", o)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fakeServer{polls: 2, seen: map[string]int{}, keys: map[string]bool{}}
			srv := httptest.NewServer(fs)
			defer srv.Close()
			cfg := tc.cfg
			cfg.URL, cfg.Unique, cfg.PollMin, cfg.PollMax = srv.URL, true, time.Millisecond, 5*time.Millisecond
			var mu sync.Mutex
			var results []Result
			cfg.OnResult = func(r Result) {
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
			r, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s, err := r.Run(context.Background(), &listSource{names: tc.names, wants: tc.wants})
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != s.Sent {
				t.Errorf("OnResult called %d times for %d sends", len(results), s.Sent)
			}
			if p := r.Progress(); p.InFlight != 0 || p.Sent != int64(s.Sent) || p.Done+p.Failed != int64(s.Sent) {
				t.Errorf("progress after the run = %+v", p)
			}
			tc.check(t, s, results)
			if _, err := json.Marshal(s); err != nil {
				t.Errorf("summary JSON: %v", err)
			}
		})
	}
}

func TestManifestLookup(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "manifest.jsonl")
	body := `{"file":"a.jpg","qr":"x","lat":1.5,"lon":2}` + "\n\n" + `{"file":"sub/b.jpg","taken_at":"2024-05-01T00:00:00Z"}` + "\n"
	if err := os.WriteFile(manifest, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		want string // expected file, "" for none
	}{
		{filepath.Join(dir, "a.jpg"), "a.jpg"},
		{filepath.Join(sub, "b.jpg"), "sub/b.jpg"},
		{"elsewhere/b.jpg", "sub/b.jpg"}, // by base name
		{"c.jpg", ""},
	}
	for _, tc := range cases {
		got := ""
		if e := m.Lookup(tc.path); e != nil {
			got = e.File
		}
		if got != tc.want {
			t.Errorf("Lookup(%q) = %q; want %q", tc.path, got, tc.want)
		}
	}
	if got := job.FormatFeatures(m.Features()); got != "qr,exif" {
		t.Errorf("Features() = %s; want qr,exif", got)
	}
	if err := os.WriteFile(manifest, []byte("{\"qr\":\"x\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadManifest(manifest); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("ReadManifest without file = %v; want an error naming line 1", err)
	}
}

func TestGeneratedUnique(t *testing.T) {
	g, err := NewGenerated(64, 48, 80, 1)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 5 {
		it, err := g.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if http.DetectContentType(it.Data) != "image/jpeg" {
			t.Fatalf("%s is not a JPEG", it.Name)
		}
		if seen[string(it.Data)] {
			t.Errorf("%s repeats an earlier image", it.Name)
		}
		seen[string(it.Data)] = true
	}
	for _, s := range []string{"0x10", "10", "axb", "-1x5"} {
		if _, _, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) succeeded", s)
		}
	}
	if w, h, err := ParseSize("640×480"); err != nil || w != 640 || h != 480 {
		t.Errorf("ParseSize(640×480) = %d, %d, %v", w, h, err)
	}
}
