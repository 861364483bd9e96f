package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRealPhotos sends real photos through the HTTP API of a real serve and
// checks the real model's answers.
func TestRealPhotos(t *testing.T) {
	s := startServe(t, t.TempDir(), "--workers", "2")
	chelsea := readPhoto(t, "chelsea.png")

	var cat imageView
	resp := uploadRaw(t, s.URL, "?wait=60s&filename=chelsea.png", "image/png", chelsea, &cat)
	if resp.StatusCode != 200 {
		t.Fatalf("POST chelsea with wait = %d; want 200\n%s", resp.StatusCode, s.logs)
	}
	if cat.Status != "done" || cat.Result == nil || len(cat.Result.Labels) == 0 {
		t.Fatalf("chelsea = %+v; want done with labels", cat)
	}
	if got := cat.Result.Labels[0].Label; got != "Egyptian cat" {
		t.Errorf("chelsea top-1 = %q; want %q (labels %+v)", got, "Egyptian cat", cat.Result.Labels)
	}
	sum := 0.0
	for i, l := range cat.Result.Labels {
		sum += l.Score
		if i > 0 && l.Score > cat.Result.Labels[i-1].Score {
			t.Errorf("labels not sorted by score: %+v", cat.Result.Labels)
		}
	}
	if sum <= 0 || sum > 1.0001 {
		t.Errorf("label scores sum to %v; want softmax probabilities in (0,1]", sum)
	}

	// Several files in one multipart request.
	var multi struct {
		Images []imageView `json:"images"`
	}
	resp = uploadFiles(t, s.URL, "?wait=60s", map[string][]byte{
		"coffee.png": readPhoto(t, "coffee.png"),
		"dog.jpg":    readPhoto(t, "dog.jpg"),
	}, &multi)
	if resp.StatusCode != 200 || len(multi.Images) != 2 {
		t.Fatalf("multipart upload = %d with %d images; want 200 with 2", resp.StatusCode, len(multi.Images))
	}
	var coffeeID string
	for _, im := range multi.Images {
		if im.Status != "done" {
			t.Errorf("%s status = %s; want done", im.Filename, im.Status)
			continue
		}
		if im.Filename == "coffee.png" {
			coffeeID = im.ID
			if got := im.Result.Labels[0].Label; got != "espresso" {
				t.Errorf("coffee top-1 = %q; want espresso", got)
			}
		}
	}

	// The list is newest first and filters by label.
	var list struct {
		Images []imageView `json:"images"`
	}
	req, _ := http.NewRequest("GET", s.URL+"/v1/images?label=espresso", nil)
	do(t, req, &list)
	if len(list.Images) != 1 || list.Images[0].ID != coffeeID {
		t.Errorf("label=espresso lists %+v; want only %s", list.Images, coffeeID)
	}
	req, _ = http.NewRequest("GET", s.URL+"/v1/images", nil)
	do(t, req, &list)
	if len(list.Images) != 3 {
		t.Fatalf("list has %d images; want 3", len(list.Images))
	}
	for i := 1; i < len(list.Images); i++ {
		if list.Images[i].CreatedAt > list.Images[i-1].CreatedAt {
			t.Errorf("list not newest first: %s after %s", list.Images[i].CreatedAt, list.Images[i-1].CreatedAt)
		}
	}

	// The original bytes come back with the sniffed type and nosniff.
	req, _ = http.NewRequest("GET", s.URL+"/v1/images/"+cat.ID+"/content", nil)
	resp = do(t, req, nil)
	body, _ := io.ReadAll(resp.Body)
	if !bytes.Equal(body, chelsea) || resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("content: %d bytes, type %q, nosniff %q; want the original PNG with nosniff",
			len(body), resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"))
	}

	// The result JSON lands in blob storage with the image's name.
	waitResultObjects(t, filepath.Join(s.Data, "blobs"), []string{cat.ID}, 30*time.Second)
	raw, err := os.ReadFile(filepath.Join(s.Data, "blobs", "results", cat.ID+".json"))
	if err != nil {
		t.Fatalf("result blob: %v", err)
	}
	var doc struct {
		ID       string `json:"id"`
		Filename string `json:"filename"`
		Result   struct {
			Labels []struct{ Label string } `json:"labels"`
		} `json:"result"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.ID != cat.ID || doc.Filename != "chelsea.png" || len(doc.Result.Labels) == 0 {
		t.Errorf("result blob = %s (err %v); want id, filename and labels", raw, err)
	}

	// OpenAPI and metrics are served.
	var oa struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	req, _ = http.NewRequest("GET", s.URL+"/openapi.json", nil)
	do(t, req, &oa)
	if !strings.HasPrefix(oa.OpenAPI, "3.1") || oa.Paths["/v1/images"] == nil || oa.Paths["/v1/images/{id}"] == nil {
		t.Errorf("openapi %q with paths %d; want 3.1 with the image routes", oa.OpenAPI, len(oa.Paths))
	}
	// The worker counts a job once it is acknowledged, just after the
	// outcome that answered the request: poll.
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		req, _ := http.NewRequest("GET", s.URL+"/metrics", nil)
		metrics, _ := io.ReadAll(do(t, req, nil).Body)
		if !bytes.Contains(metrics, []byte(`glimpse_worker_jobs_total{outcome="done"} 3`)) {
			return fmt.Errorf("metrics lack 3 done jobs:\n%s", grepLines(metrics, "glimpse_worker_jobs_total"))
		}
		return nil
	})

	// Delete removes it.
	req, _ = http.NewRequest("DELETE", s.URL+"/v1/images/"+cat.ID, nil)
	if resp := do(t, req, nil); resp.StatusCode != 204 {
		t.Errorf("DELETE = %d; want 204", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", s.URL+"/v1/images/"+cat.ID, nil)
	if resp := do(t, req, nil); resp.StatusCode != 404 {
		t.Errorf("GET after DELETE = %d; want 404", resp.StatusCode)
	}
}

// TestBadInput sends what users get wrong and checks each gets a clear
// problem+json answer and the service keeps working.
func TestBadInput(t *testing.T) {
	s := startServe(t, t.TempDir(), "--workers", "1", "--max-bytes", "2MB", "--max-megapixels", "30")
	good := noiseJPEG(t, 320, 240, 1)
	var truncPNG bytes.Buffer
	png.Encode(&truncPNG, image.NewRGBA(image.Rect(0, 0, 64, 64)))

	cases := []struct {
		name        string
		query       string
		contentType string
		body        []byte
		multipart   bool
		want        int
		detail      string // a word the explanation must contain
	}{
		{name: "empty body", contentType: "image/png", want: 400},
		{name: "text body", contentType: "text/plain", body: []byte("hello"), want: 415},
		{name: "not an image behind image/png", contentType: "image/png", body: []byte("hello, I am text"), want: 415},
		{name: "bomb header", contentType: "image/png", body: pngHeader(65535, 65535), want: 422, detail: "megapixels"},
		{name: "too many bytes", contentType: "image/jpeg", body: bytes.Repeat([]byte{0xff}, 3_000_000), want: 413},
		{name: "truncated PNG", contentType: "image/png", body: truncPNG.Bytes()[:20], want: 422},
		{name: "unknown feature", query: "?features=labels,bogus", contentType: "image/jpeg", body: good, want: 400, detail: "labels"},
		{name: "bad wait", query: "?wait=forever", contentType: "image/jpeg", body: good, want: 400},
		{name: "multipart without file", multipart: true, want: 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p problem
			var resp *http.Response
			if tc.multipart {
				var buf bytes.Buffer
				buf.WriteString("--xyz\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--xyz--\r\n")
				resp = uploadRaw(t, s.URL, tc.query, "multipart/form-data; boundary=xyz", buf.Bytes(), &p)
			} else {
				resp = uploadRaw(t, s.URL, tc.query, tc.contentType, tc.body, &p)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d; want %d (problem %+v)", resp.StatusCode, tc.want, p)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("Content-Type = %q; want application/problem+json", ct)
			}
			if p.Detail == "" || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail = %q; want an explanation mentioning %q", p.Detail, tc.detail)
			}
		})
	}

	// A JPEG whose header is fine but whose data stops short is accepted,
	// then fails with a reason a person can read.
	var img imageView
	trunc := noiseJPEG(t, 800, 600, 2)
	resp := uploadRaw(t, s.URL, "?wait=60s", "image/jpeg", trunc[:len(trunc)/3], &img)
	if resp.StatusCode != 200 || img.Status != "failed" || img.Error == "" {
		t.Errorf("truncated JPEG: %d %+v; want 200 with a failed image and a reason", resp.StatusCode, img)
	}

	// The service is unharmed: a good image still goes through.
	resp = uploadRaw(t, s.URL, "?wait=60s", "image/jpeg", good, &img)
	if resp.StatusCode != 200 || img.Status != "done" {
		t.Errorf("good image after bad input: %d %+v; want 200 done", resp.StatusCode, img)
	}
}

// TestIdempotentUpload checks a retried upload never creates a second job.
func TestIdempotentUpload(t *testing.T) {
	s := startServe(t, t.TempDir(), "--workers", "1")
	b := noiseJPEG(t, 200, 200, 3)
	var a, b2 imageView
	uploadRaw(t, s.URL, "", "image/jpeg", b, &a)
	uploadRaw(t, s.URL, "", "image/jpeg", b, &b2)
	if a.ID == "" || a.ID != b2.ID {
		t.Fatalf("same bytes gave ids %q and %q; want one id", a.ID, b2.ID)
	}
	// The same Idempotency-Key maps to the same image; reusing it for other
	// bytes is refused rather than silently answered with the first image.
	keyed := noiseJPEG(t, 100, 100, 10)
	var k1, k2 imageView
	codes := []int{}
	for _, out := range []*imageView{&k1, &k2} {
		req, _ := http.NewRequest("POST", s.URL+"/v1/images", bytes.NewReader(keyed))
		req.Header.Set("Content-Type", "image/jpeg")
		req.Header.Set("Idempotency-Key", "order-42")
		codes = append(codes, do(t, req, out).StatusCode)
	}
	if k1.ID == "" || k1.ID != k2.ID || codes[0] != 202 {
		t.Fatalf("same Idempotency-Key gave ids %q and %q (codes %v); want one id", k1.ID, k2.ID, codes)
	}
	req, _ := http.NewRequest("POST", s.URL+"/v1/images", bytes.NewReader(noiseJPEG(t, 100, 100, 11)))
	req.Header.Set("Content-Type", "image/jpeg")
	req.Header.Set("Idempotency-Key", "order-42")
	if resp := do(t, req, nil); resp.StatusCode != 422 {
		t.Errorf("Idempotency-Key reused for other bytes = %d; want 422", resp.StatusCode)
	}
	waitDone(t, s.URL, a.ID, time.Minute)
	waitDone(t, s.URL, k1.ID, time.Minute)
	var list struct {
		Images []imageView `json:"images"`
	}
	req, _ = http.NewRequest("GET", s.URL+"/v1/images", nil)
	do(t, req, &list)
	if len(list.Images) != 2 {
		t.Errorf("store holds %d images; want 2", len(list.Images))
	}
	if v := getImage(t, s.URL, a.ID); v.Attempts != 1 {
		t.Errorf("re-uploaded image ran %d times; want 1", v.Attempts)
	}

	// The same bytes asked for a feature the image lacks: the one image is
	// analysed again, for its labels and the new feature, and its result
	// object follows.
	var wider struct {
		ID       string   `json:"id"`
		Status   string   `json:"status"`
		Attempts int      `json:"attempts"`
		Features []string `json:"features"`
		Result   struct {
			Labels []any `json:"labels"`
			Colors *struct {
				Dominant []any `json:"dominant"`
			} `json:"colors"`
		} `json:"result"`
	}
	resp := uploadRaw(t, s.URL, "?features=colors&wait=60s", "image/jpeg", b, &wider)
	if resp.StatusCode != 200 || wider.ID != a.ID || wider.Status != "done" || wider.Attempts != 2 ||
		!slices.Equal(wider.Features, []string{"colors", "labels"}) ||
		len(wider.Result.Labels) == 0 || wider.Result.Colors == nil || len(wider.Result.Colors.Dominant) == 0 {
		t.Fatalf("asking for colors too = %d %+v; want 200, the same image done again (attempt 2) with labels and colors",
			resp.StatusCode, wider)
	}
	checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		doc, err := os.ReadFile(filepath.Join(s.Data, "blobs", "results", a.ID+".json"))
		if err != nil {
			return err
		}
		if !bytes.Contains(doc, []byte(`"colors"`)) || !bytes.Contains(doc, []byte(`"labels"`)) {
			return fmt.Errorf("results/%s.json has no colors and labels yet: %s", a.ID, doc)
		}
		return nil
	})
	req, _ = http.NewRequest("GET", s.URL+"/v1/images", nil)
	do(t, req, &list)
	if len(list.Images) != 2 {
		t.Errorf("store holds %d images after asking for more features; want 2", len(list.Images))
	}
}

// TestRestartKeepsQueuedJobs queues jobs with no workers, restarts serve and
// checks every job finishes after the restart.
func TestRestartKeepsQueuedJobs(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir, "--workers", "0")
	var ids []string
	for i := range 6 {
		var v imageView
		resp := uploadRaw(t, s.URL, "", "image/jpeg", noiseJPEG(t, 300, 200, uint64(100+i)), &v)
		if resp.StatusCode != 202 || v.Status != "queued" {
			t.Fatalf("upload %d = %d %+v; want 202 queued", i, resp.StatusCode, v)
		}
		ids = append(ids, v.ID)
	}
	// A client waiting for its result when serve is told to stop gets its
	// image's id at once (202, queued), and serve still exits cleanly.
	type answer struct {
		code int
		v    imageView
	}
	waiting := make(chan answer, 1)
	go func() {
		var v imageView
		resp := uploadRaw(t, s.URL, "?wait=60s", "image/jpeg", noiseJPEG(t, 300, 200, 99), &v)
		waiting <- answer{resp.StatusCode, v}
	}()
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		var list struct {
			Images []imageView `json:"images"`
		}
		req, _ := http.NewRequest("GET", s.URL+"/v1/images", nil)
		do(t, req, &list)
		if len(list.Images) < len(ids)+1 {
			return fmt.Errorf("%d images; the waiting upload has not been accepted yet", len(list.Images))
		}
		return nil
	})
	if err := s.stop(); err != nil {
		t.Fatalf("stop with a client waiting: %v\n%s", err, s.logs)
	}
	if a := <-waiting; a.code != 202 || a.v.Status != "queued" || a.v.ID == "" {
		t.Errorf("the waiting upload at SIGTERM = %d %+v; want 202 with its queued image", a.code, a.v)
	} else {
		ids = append(ids, a.v.ID)
	}
	s2 := startServe(t, dir, "--workers", "2")
	for _, id := range ids {
		if v := waitDone(t, s2.URL, id, 2*time.Minute); v.Status != "done" {
			t.Errorf("%s = %s (%s); want done", id, v.Status, v.Error)
		}
	}
	// A second serve on the same data directory refuses to start: two
	// embedded queues on one set of files would corrupt them.
	second := exec.Command(glimpseBin, "serve", "--addr", "127.0.0.1:0", "--data", dir)
	second.Dir = ".."
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use") {
		t.Errorf("a second serve on the data directory: %v\n%s\nwant a refusal saying it is in use", err, out)
	}
}

// TestCrashMidJob kills serve with SIGKILL while workers hold jobs and checks
// that after a restart every accepted image has exactly one result.
func TestCrashMidJob(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir, "--workers", "1", "--ack-wait", "2s")
	const n = 24
	var ids []string
	for i := range n {
		var v imageView
		resp := uploadRaw(t, s.URL, "", "image/jpeg", noiseJPEG(t, 1600, 1200, uint64(200+i)), &v)
		if resp.StatusCode != 202 {
			t.Fatalf("upload %d = %d", i, resp.StatusCode)
		}
		ids = append(ids, v.ID)
	}
	// Crash while the worker holds a job: poll until one is processing,
	// then SIGKILL at once.
	var held string
	checkFor(t, time.Minute, 2*time.Millisecond, func() error {
		var page struct {
			Images []imageView `json:"images"`
		}
		req, _ := http.NewRequest("GET", s.URL+"/v1/images?status=processing&limit=1", nil)
		do(t, req, &page)
		if len(page.Images) == 0 {
			return fmt.Errorf("no image is processing yet")
		}
		held = page.Images[0].ID
		return nil
	})
	s.kill()

	s2 := startServe(t, dir, "--workers", "2", "--ack-wait", "2s")
	for _, id := range ids {
		if v := waitDone(t, s2.URL, id, 2*time.Minute); v.Status != "done" {
			t.Errorf("%s = %s (%s); want done", id, v.Status, v.Error)
		}
	}
	if v := getImage(t, s2.URL, held); v.Status != "done" {
		t.Errorf("the image held at the crash is %s; want done", v.Status)
	} else {
		t.Logf("image held at the crash finished after %d attempts", v.Attempts)
	}
	waitResultObjects(t, filepath.Join(dir, "blobs"), ids, time.Minute)
	results, err := filepath.Glob(filepath.Join(dir, "blobs", "results", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != n {
		t.Errorf("%d result objects; want exactly %d", len(results), n)
	}
	var list struct {
		Images []imageView `json:"images"`
	}
	req, _ := http.NewRequest("GET", s2.URL+"/v1/images?limit=100", nil)
	do(t, req, &list)
	if len(list.Images) != n {
		t.Errorf("%d image rows; want exactly %d", len(list.Images), n)
	}
}

// noiseJPEG makes a deterministic textured JPEG.
func noiseJPEG(t testing.TB, w, h int, seed uint64) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint8(r.IntN(256))
			img.SetRGBA(x, y, color.RGBA{v, uint8(x * 255 / w), uint8(y * 255 / h), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngHeader is the start of a PNG whose header claims w×h pixels: a few
// dozen bytes that would decode into gigabytes.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func grepLines(b []byte, word string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestEventsShowProcessing: the event stream shows an image as processing
// while a worker works on it, before it is done, without anyone polling.
// 12-megapixel photos with every feature keep the one worker busy for a
// while each; at least one of three must be seen processing before done
// (each event carries the row as the stream reads it, so a stream that
// falls far behind may skip a state).
func TestEventsShowProcessing(t *testing.T) {
	s := startServe(t, t.TempDir(), "--workers", "1")
	ev := watchEvents(t, s.URL+"/v1/events")
	var ids []string
	for i := range 3 {
		var v imageView
		if resp := uploadRaw(t, s.URL, "?features=all", "image/jpeg", noiseJPEG(t, 4000, 3000, uint64(77+i)), &v); resp.StatusCode != 202 {
			t.Fatalf("upload %d = %d; want 202", i, resp.StatusCode)
		}
		ids = append(ids, v.ID)
	}
	for _, id := range ids {
		waitDone(t, s.URL, id, 2*time.Minute)
	}
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		seen := map[string][]string{} // id → statuses in order
		for _, line := range strings.Split(ev.all(), "\n") {
			var v imageView
			if json.Unmarshal([]byte(line), &v) == nil && v.ID != "" {
				seen[v.ID] = append(seen[v.ID], v.Status)
			}
		}
		for _, id := range ids {
			st := strings.Join(seen[id], ",")
			if p, d := strings.Index(st, "processing"), strings.Index(st, "done"); p >= 0 && d > p {
				return nil
			}
		}
		return fmt.Errorf("statuses seen per image: %v; want one processing, then done", seen)
	})
}

// TestSignedURLSurvivesRestart: a pre-signed upload URL handed out before
// serve restarts still works after (the signing key is kept under --data).
func TestSignedURLSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir, "--workers", "1")
	jpg := readPhoto(t, "dog.jpg")
	var tk struct {
		UploadURL string `json:"upload_url"`
	}
	req, _ := http.NewRequest("POST", s.URL+"/v1/uploads", strings.NewReader(fmt.Sprintf(`{"filename":"dog.jpg","content_type":"image/jpeg","size":%d}`, len(jpg))))
	req.Header.Set("Content-Type", "application/json")
	if resp := do(t, req, &tk); resp.StatusCode != 201 {
		t.Fatalf("POST /v1/uploads = %d", resp.StatusCode)
	}
	s.kill()
	s2 := startServe(t, dir, "--workers", "1")
	// The URL names the first process's address; send it to the new one.
	u, err := url.Parse(tk.UploadURL)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(s2.URL)
	u.Scheme, u.Host = base.Scheme, base.Host
	put, _ := http.NewRequest("PUT", u.String(), bytes.NewReader(jpg))
	put.Header.Set("Content-Type", "image/jpeg")
	var p struct {
		Detail string `json:"detail"`
	}
	if resp := do(t, put, &p); resp.StatusCode != 202 {
		t.Errorf("PUT to a URL signed before the restart = %d %q; want 202", resp.StatusCode, p.Detail)
	}
}
