package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tenantKey makes an API key for tenant with `glimpse keys create` and
// returns its secret and id.
func tenantKey(t *testing.T, dir, tenant string) (secret, id string) {
	t.Helper()
	out, errOut, code := run(t, "keys", "create", "--data", dir, "--tenant", tenant, "--name", tenant+"-test")
	m := regexp.MustCompile(`key (key_[0-9a-f]+) for tenant`).FindStringSubmatch(errOut)
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "glk_") || m == nil {
		t.Fatalf("keys create --tenant %s: %q %q (exit %d)", tenant, out, errOut, code)
	}
	return strings.TrimSpace(out), m[1]
}

// keyed sends a request with key as a bearer token and returns the status
// and body.
func keyed(t *testing.T, client *http.Client, method, rawURL, key string, body []byte, header ...string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// sseWatch reads an event stream and collects the data of its events.
type sseWatch struct {
	mu     sync.Mutex
	data   []string
	ready  chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func watchEvents(t *testing.T, rawURL string) *sseWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("GET %s = %d", rawURL, resp.StatusCode)
	}
	w := &sseWatch{ready: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		readyOnce := sync.OnceFunc(func() { close(w.ready) })
		for sc.Scan() {
			line := sc.Text()
			if line == "event: ready" {
				readyOnce()
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				w.mu.Lock()
				w.data = append(w.data, d)
				w.mu.Unlock()
			}
		}
	}()
	select {
	case <-w.ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("no ready event on %s", rawURL)
	}
	t.Cleanup(w.stop)
	return w
}

func (w *sseWatch) stop() {
	w.cancel()
	<-w.done
}

func (w *sseWatch) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.data, "\n")
}

// uploadTicket is the answer of POST /v1/uploads.
type uploadTicket struct {
	ID        string `json:"id"`
	UploadURL string `json:"upload_url"`
}

// TestTenantIsolation: tenant globex makes 1,000 attempts to reach what
// tenant acme uploaded — image records, results, bytes, thumbnails, similar
// images, list filters, stats, its pre-signed upload URL and its events —
// and gets nothing of acme's. Then a revoked key is refused at once.
func TestTenantIsolation(t *testing.T) {
	dir := t.TempDir()
	keyA, _ := tenantKey(t, dir, "acme")
	keyB, idB := tenantKey(t, dir, "globex")
	// Rate limits off: this test is about scoping, not throttling.
	s := startServe(t, dir, "--workers", "2", "--require-keys", "--rate-limit", "0")
	client := &http.Client{Timeout: 60 * time.Second}

	evA := watchEvents(t, s.URL+"/v1/events?key="+url.QueryEscape(keyA))
	evB := watchEvents(t, s.URL+"/v1/events?key="+url.QueryEscape(keyB))

	// acme uploads images with every feature, so thumbnails and hashes exist.
	var ids, secrets []string
	for i := range 4 {
		name := fmt.Sprintf("acme-secret-%d.jpg", i)
		code, body, _ := keyed(t, client, "POST", s.URL+"/v1/images?features=all&wait=60s&filename="+name, keyA,
			noiseJPEG(t, 160, 120, uint64(9000+i)), "Content-Type", "image/jpeg")
		var v imageView
		if err := json.Unmarshal(body, &v); err != nil || code != 200 || v.Status != "done" {
			t.Fatalf("acme upload %d = %d %s; want 200 done", i, code, body)
		}
		ids = append(ids, v.ID)
		secrets = append(secrets, v.ID, name)
	}
	for _, id := range ids {
		if code, _, _ := keyed(t, client, "GET", s.URL+"/v1/images/"+id+"/thumbnail", keyA, nil); code != 200 {
			t.Fatalf("acme's own thumbnail of %s = %d; want 200", id, code)
		}
	}

	// A pre-signed URL is a credential for one PUT of one acme upload; it
	// cannot be pointed at another upload, and B's key does not make the
	// image B's.
	ticket := func(key string) uploadTicket {
		t.Helper()
		body := `{"filename":"acme-signed.jpg","content_type":"image/jpeg","size":100000}`
		code, b, _ := keyed(t, client, "POST", s.URL+"/v1/uploads", key, []byte(body), "Content-Type", "application/json")
		var tk uploadTicket
		if err := json.Unmarshal(b, &tk); err != nil || code != 201 {
			t.Fatalf("POST /v1/uploads = %d %s", code, b)
		}
		return tk
	}
	tkA, tkB := ticket(keyA), ticket(keyB)
	signedJPEG := noiseJPEG(t, 96, 96, 9100)
	put := func(rawURL, key string) (int, []byte) {
		code, b, _ := keyed(t, client, "PUT", rawURL, key, signedJPEG, "Content-Type", "image/jpeg")
		return code, b
	}
	uA, _ := url.Parse(tkA.UploadURL)
	uB, _ := url.Parse(tkB.UploadURL)
	retargets := map[string]string{}
	{ // acme's signature on globex's upload path
		u := *uA
		u.Path = uB.Path
		retargets["acme's signature, globex's upload id"] = u.String()
	}
	{ // acme's signature with the object renamed into globex
		u := *uA
		q := u.Query()
		q.Set("obj", strings.Replace(q.Get("obj"), "/acme/", "/globex/", 1))
		u.RawQuery = q.Encode()
		retargets["acme's signature, object moved to globex"] = u.String()
	}
	{ // globex's signature on acme's upload path
		u := *uB
		u.Path = uA.Path
		retargets["globex's signature, acme's upload id"] = u.String()
	}
	for what, rawURL := range retargets {
		if code, b := put(rawURL, keyB); code != 403 {
			t.Errorf("PUT with %s = %d %s; want 403", what, code, b)
		}
	}
	code, b := put(tkA.UploadURL, keyB) // the URL is the credential; B's key is ignored
	var signedImg imageView
	if err := json.Unmarshal(b, &signedImg); err != nil || code != 202 {
		t.Fatalf("PUT of acme's upload URL = %d %s; want 202", code, b)
	}
	if code, _, _ := keyed(t, client, "GET", s.URL+"/v1/images/"+signedImg.ID, keyA, nil); code != 200 {
		t.Errorf("acme cannot read the image of its signed upload: %d", code)
	}
	ids = append(ids, signedImg.ID)
	secrets = append(secrets, signedImg.ID, "acme-signed.jpg")
	waitDoneKey := func(id string) {
		checkFor(t, time.Minute, 100*time.Millisecond, func() error {
			_, b, _ := keyed(t, client, "GET", s.URL+"/v1/images/"+id, keyA, nil)
			var v imageView
			json.Unmarshal(b, &v)
			if v.Status != "done" {
				return fmt.Errorf("%s is %q", id, v.Status)
			}
			return nil
		})
	}
	waitDoneKey(signedImg.ID)

	// 1,000 attempts by globex.
	perImage := []struct{ method, path string }{
		{"GET", "/v1/images/%s"},
		{"GET", "/v1/images/%s/content"},
		{"GET", "/v1/images/%s/thumbnail"},
		{"GET", "/v1/images/%s/similar"},
		{"GET", "/v1/images/%s/similar?max_distance=64"},
		{"DELETE", "/v1/images/%s"},
		{"GET", "/v1/images/%s/"},
		{"GET", "/v1/images/%s/content?key=" + url.QueryEscape(keyA)}, // A's key in the query is not a credential here
	}
	lists := []string{
		"/v1/images", "/v1/images?status=done", "/v1/images?limit=1000", "/v1/images?label=window%20screen",
		"/v1/images?status=queued", "/v1/images?feature=thumbnail",
		"/v1/stats/throughput", "/v1/stats/labels", "/v1/stats/products", "/v1/stats/places",
		"/v1/stats/failures", "/v1/stats/backlog",
	}
	const attempts = 1000
	counts := map[int]int{}
	var leaks []string
	for i := range attempts {
		var (
			code   int
			body   []byte
			target string
		)
		switch k := i % 10; {
		case k < 6: // an image route of one of acme's ids
			r := perImage[(i/10+k)%len(perImage)]
			id := ids[i%len(ids)]
			if i%7 == 0 {
				id = strings.ToUpper(id[:4]) + id[4:] // case games are still not acme's image
			}
			target = r.method + " " + fmt.Sprintf(r.path, id)
			code, body, _ = keyed(t, client, r.method, s.URL+fmt.Sprintf(r.path, id), keyB, nil)
			if code != 401 && code != 403 && code != 404 && code != 405 {
				leaks = append(leaks, fmt.Sprintf("%s = %d %.200s", target, code, body))
			}
			// A 404 may repeat the id asked for; it must carry nothing else of acme's.
			for _, sec := range secrets {
				if !strings.HasPrefix(sec, "img_") && bytes.Contains(body, []byte(sec)) {
					leaks = append(leaks, fmt.Sprintf("%s body names %s", target, sec))
				}
			}
		case k < 9: // lists, filters and stats: globex's own, which are empty
			target = "GET " + lists[(i/10*3+k)%len(lists)]
			code, body, _ = keyed(t, client, "GET", s.URL+lists[(i/10*3+k)%len(lists)], keyB, nil)
			if code != 200 {
				leaks = append(leaks, fmt.Sprintf("%s = %d %.200s; want globex's own (empty) answer", target, code, body))
			}
			for _, sec := range secrets {
				if bytes.Contains(body, []byte(sec)) {
					leaks = append(leaks, fmt.Sprintf("%s body names acme's %s", target, sec))
				}
			}
		default: // replay acme's used upload URL
			target = "PUT acme's used upload URL"
			code, body = put(tkA.UploadURL, keyB)
			if code != 403 {
				leaks = append(leaks, fmt.Sprintf("%s = %d %.200s; want 403", target, code, body))
			}
		}
		counts[code]++
	}
	if len(leaks) > 0 {
		t.Errorf("%d of %d attempts reached acme's data; first ones:\n%s", len(leaks), attempts, strings.Join(leaks[:min(10, len(leaks))], "\n"))
	}
	t.Logf("globex's %d attempts on acme's data: answers by status %v", attempts, counts)

	// acme's images survived globex's DELETEs.
	for _, id := range ids {
		if code, _, _ := keyed(t, client, "GET", s.URL+"/v1/images/"+id, keyA, nil); code != 200 {
			t.Errorf("acme's image %s after globex's attempts = %d; want 200", id, code)
		}
	}
	// globex's stream never carried acme's images; acme's own stream did.
	evB.stop()
	if got := evB.all(); slices.ContainsFunc(secrets, func(sec string) bool { return strings.Contains(got, sec) }) {
		t.Errorf("globex's event stream carried acme's images:\n%.2000s", got)
	}
	if got := evA.all(); !strings.Contains(got, ids[0]) {
		t.Errorf("acme's event stream lacks its own image %s (the stream works?):\n%.2000s", ids[0], got)
	}

	// Keys: listed without secrets; a revoked key is refused at once.
	out, _, code2 := run(t, "keys", "list", "--data", dir)
	if code2 != 0 || !strings.Contains(out, idB) || !strings.Contains(out, "globex") || strings.Contains(out, keyB) || strings.Contains(out, keyA) {
		t.Errorf("keys list (exit %d) lacks keys or shows secrets:\n%s", code2, out)
	}
	if code, _, _ := keyed(t, client, "GET", s.URL+"/v1/images", keyB, nil); code != 200 {
		t.Fatalf("globex before revocation = %d; want 200", code)
	}
	if _, errOut, code := run(t, "keys", "revoke", "--data", dir, idB); code != 0 {
		t.Fatalf("keys revoke: exit %d %s", code, errOut)
	}
	for _, path := range []string{"/v1/images", "/v1/events?key=" + url.QueryEscape(keyB)} {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		if !strings.Contains(path, "key=") {
			req.Header.Set("X-API-Key", keyB)
		}
		resp := do(t, req, nil)
		if resp.StatusCode != 401 {
			t.Errorf("GET %s with the revoked key = %d; want 401 at once", strings.Split(path, "?")[0], resp.StatusCode)
		}
	}
	out, _, _ = run(t, "keys", "list", "--data", dir, "--tenant", "globex")
	if !strings.Contains(out, "revoked") {
		t.Errorf("keys list does not show the revocation:\n%s", out)
	}
	if code, _, _ := keyed(t, client, "GET", s.URL+"/v1/images", keyA, nil); code != 200 {
		t.Errorf("acme after globex's revocation = %d; want 200", code)
	}
}

// TestTenantRateLimit: a tenant flooding the API gets 429 with Retry-After
// (for its request rate and for uploads in flight) while a quiet tenant's
// requests keep succeeding. The quiet tenant's latency with and without
// the flood is measured and reported.
func TestTenantRateLimit(t *testing.T) {
	dir := t.TempDir()
	keyF, _ := tenantKey(t, dir, "flood")
	keyC, _ := tenantKey(t, dir, "calm")
	s := startServe(t, dir, "--workers", "1", "--require-keys",
		"--rate-limit", "20/s", "--rate-burst", "40", "--max-concurrent-uploads", "8")

	// The cap on uploads in flight is tested in internal/web
	// (TestUploadConcurrencyCap, with bodies that block). Held from outside
	// over raw connections against a real serve it proved timing-dependent
	// on this shared machine, so it is not repeated here.

	// Latency of calm's small reads, paced within its own limit.
	calmClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	const reads = 120
	measure := func() (p50, p90 time.Duration, bad []string) {
		tick := time.NewTicker(time.Second / 15)
		defer tick.Stop()
		var lat []time.Duration
		for range reads {
			<-tick.C
			start := time.Now()
			code, body, _ := keyed(t, calmClient, "GET", s.URL+"/v1/images?limit=1", keyC, nil)
			lat = append(lat, time.Since(start))
			if code != 200 {
				bad = append(bad, fmt.Sprintf("%d %.200s", code, body))
			}
		}
		slices.Sort(lat)
		return lat[len(lat)/2], lat[len(lat)*9/10], bad
	}
	keyed(t, calmClient, "GET", s.URL+"/v1/images?limit=1", keyC, nil) // warm the connection
	quiet50, quiet90, bad := measure()
	if len(bad) > 0 {
		t.Fatalf("calm's quiet reads failed: %v", bad[:min(5, len(bad))])
	}

	// The flood: 4 senders of flood, as fast as they can, until calm is measured.
	var (
		stop                 = make(chan struct{})
		wg                   sync.WaitGroup
		sent, throttled, oks atomic.Int64
		retryAfterMissing    atomic.Int64
		floodClient          = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 30 * time.Second}
	)
	for range 4 {
		wg.Go(func() {
			for n := 0; n < 1_000_000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", s.URL+"/v1/images?limit=1", nil)
				req.Header.Set("Authorization", "Bearer "+keyF)
				resp, err := floodClient.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
				switch resp.StatusCode {
				case 429:
					throttled.Add(1)
					if resp.Header.Get("Retry-After") == "" {
						retryAfterMissing.Add(1)
					}
				case 200:
					oks.Add(1)
				}
			}
		})
	}
	floodStart := time.Now()
	flood50, flood90, bad := measure()
	close(stop)
	wg.Wait()
	floodFor := time.Since(floodStart)
	if len(bad) > 0 {
		t.Errorf("calm got %d failures during the flood (want none): %v", len(bad), bad[:min(5, len(bad))])
	}
	if throttled.Load() == 0 || retryAfterMissing.Load() > 0 {
		t.Errorf("flood: %d of %d requests got 429, %d without Retry-After; want 429s, all with Retry-After",
			throttled.Load(), sent.Load(), retryAfterMissing.Load())
	}
	// At 20/s with a burst of 40, flood can have had at most 40 + 20/s of 200s.
	if most := 40 + int64(floodFor.Seconds()*20) + 20; oks.Load() > most {
		t.Errorf("flood got %d successes in %v; the limit allows about %d", oks.Load(), floodFor.Round(time.Millisecond), most)
	}
	t.Logf("calm's GET /v1/images?limit=1 at 15/s: quiet p50 %v p90 %v; during flood p50 %v p90 %v; p50 ratio %.2f (issue's goal: within 1.10)",
		quiet50.Round(time.Microsecond), quiet90.Round(time.Microsecond), flood50.Round(time.Microsecond), flood90.Round(time.Microsecond),
		float64(flood50)/float64(quiet50))
	t.Logf("flood: %d requests in %v (%.0f/s), %d answered 429, %d answered 200",
		sent.Load(), floodFor.Round(time.Millisecond), float64(sent.Load())/floodFor.Seconds(), throttled.Load(), oks.Load())

	// The metric names the flooding tenant only.
	code, body, _ := keyed(t, http.DefaultClient, "GET", s.URL+"/metrics", "", nil)
	metrics := string(body)
	for _, want := range []string{`glimpse_http_throttled_total{reason="rate",tenant="flood"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	if strings.Contains(metrics, `tenant="calm"`) {
		t.Errorf("/metrics shows calm throttled")
	}
}
