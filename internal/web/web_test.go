package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// harness is a Server over fakes.
type harness struct {
	srv   *Server
	h     http.Handler
	store *fakeStore
	blobs *fakeBlobs
	queue *fakeQueue
	reg   *prometheus.Registry
}

// testLimits are small so that "too large" is cheap to provoke.
var testLimits = imagedata.Limits{MaxBytes: 64 << 10, MaxPixels: 1 << 20}

func newHarness(t *testing.T, cfg Config, ready map[string]func(context.Context) error) *harness {
	t.Helper()
	if cfg.Limits == (imagedata.Limits{}) {
		cfg.Limits = testLimits
	}
	hs := &harness{store: newFakeStore(), blobs: newFakeBlobs(), queue: &fakeQueue{}, reg: prometheus.NewRegistry()}
	srv, err := New(cfg, Deps{
		Store: hs.store, Blobs: hs.blobs, Queue: hs.queue,
		IsBlobNotFound: func(err error) bool { return errors.Is(err, errBlobNotFound) },
		Ready:          ready,
		Registerer:     hs.reg, Gatherer: hs.reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs.srv, hs.h = srv, srv.Handler()
	return hs
}

// do serves req and returns the recorded response.
func (hs *harness) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

// uploadRaw posts b as a raw body of type ct.
func (hs *harness) uploadRaw(t *testing.T, query, ct string, b []byte, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/images"+query, bytes.NewReader(b))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return hs.do(req)
}

// part is one multipart part.
type part struct {
	field, filename string
	data            []byte
}

// multipartBody encodes parts; it returns the body and its Content-Type.
func multipartBody(t *testing.T, parts ...part) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		if p.filename != "" {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.field, p.filename))
			h.Set("Content-Type", "application/octet-stream")
		} else {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p.field))
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatalf("CreatePart: %v", err)
		}
		w.Write(p.data)
	}
	if err := mw.Close(); err != nil {
		t.Fatalf("multipart Close: %v", err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// decode unmarshals the JSON body of rec into v.
func decode(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %q: %v", rec.Body.String(), err)
	}
}

// problemOf checks that rec is a problem+json with status want and returns
// its detail.
func problemOf(t *testing.T, rec *httptest.ResponseRecorder, want int) string {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status = %d; want %d (body %s)", rec.Code, want, rec.Body.String())
	}
	if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
		t.Fatalf("Content-Type = %q; want application/problem+json", got)
	}
	var p struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	decode(t, rec, &p)
	if p.Status != want || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem = %+v; want status %d with a title and a detail", p, want)
	}
	return p.Detail
}

func TestUploadBadInput(t *testing.T) {
	good := pngBytes(t, 8, 8, 1)
	big := pngBytes(t, 500, 500, 2) // noisy enough to exceed testLimits.MaxBytes
	if int64(len(big)) <= testLimits.MaxBytes {
		t.Fatalf("test image is %d bytes; want more than %d", len(big), testLimits.MaxBytes)
	}
	noFile, noFileCT := multipartBody(t, part{field: "comment", data: []byte("hi")})
	twoFiles, twoFilesCT := multipartBody(t,
		part{field: "file", filename: "a.png", data: good},
		part{field: "file", filename: "b.png", data: pngBytes(t, 8, 8, 9)})
	threeFiles, threeFilesCT := multipartBody(t,
		part{field: "file", filename: "a.png", data: good},
		part{field: "file", filename: "b.png", data: good},
		part{field: "file", filename: "c.png", data: good})
	oneBad, oneBadCT := multipartBody(t,
		part{field: "file", filename: "good.png", data: good},
		part{field: "file", filename: "notes.txt", data: []byte("just some text, not an image")})

	tests := []struct {
		name    string
		query   string
		ct      string
		body    []byte
		hdr     []string
		unsized bool // hide the Content-Length
		want    int
		detail  []string // substrings of the problem detail
	}{
		{name: "empty body", ct: "image/png", want: http.StatusBadRequest, detail: []string{"empty"}},
		{name: "text/plain body", ct: "text/plain", body: []byte("hello"), want: http.StatusUnsupportedMediaType,
			detail: []string{"multipart/form-data", "image/*"}},
		{name: "no content type", body: good, want: http.StatusUnsupportedMediaType, detail: []string{"multipart/form-data"}},
		{name: "non-image bytes typed image/png", ct: "image/png", body: []byte("definitely not a png file"),
			want: http.StatusUnsupportedMediaType},
		// Inspect reads headers only, so the cut falls inside the IHDR chunk;
		// a cut past the header is found by the worker's decode instead.
		{name: "truncated png", ct: "image/png", body: good[:20], want: http.StatusUnprocessableEntity,
			detail: []string{"truncated"}},
		{name: "oversized with length", ct: "image/png", body: big, want: http.StatusRequestEntityTooLarge},
		{name: "oversized streamed", ct: "image/png", body: big, unsized: true, want: http.StatusRequestEntityTooLarge},
		{name: "huge dimensions", ct: "image/png", body: hugePNG(t, 100000, 100000), want: http.StatusUnprocessableEntity,
			detail: []string{"megapixels"}},
		{name: "multipart without file part", ct: noFileCT, body: noFile, want: http.StatusBadRequest,
			detail: []string{`"file"`}},
		{name: "malformed multipart", ct: "multipart/form-data; boundary=XYZ", body: []byte("garbage without boundaries"),
			want: http.StatusBadRequest},
		{name: "multipart without boundary", ct: "multipart/form-data", body: []byte("x"), want: http.StatusBadRequest,
			detail: []string{"boundary"}},
		{name: "unknown feature", query: "?features=labels,telepathy", ct: "image/png", body: good,
			want: http.StatusBadRequest, detail: []string{"telepathy", "labels"}},
		{name: "unparsable wait", query: "?wait=soon", ct: "image/png", body: good, want: http.StatusBadRequest,
			detail: []string{"wait"}},
		{name: "zero wait", query: "?wait=0s", ct: "image/png", body: good, want: http.StatusBadRequest},
		{name: "wait beyond cap", query: "?wait=2h", ct: "image/png", body: good, want: http.StatusBadRequest,
			detail: []string{"1m0s"}},
		{name: "idempotency key with two files", ct: twoFilesCT, body: twoFiles, hdr: []string{"Idempotency-Key", "k1"},
			want: http.StatusBadRequest, detail: []string{"single file"}},
		{name: "idempotency key too long", ct: "image/png", body: good,
			hdr: []string{"Idempotency-Key", strings.Repeat("k", 201)}, want: http.StatusBadRequest},
		{name: "too many files", ct: threeFilesCT, body: threeFiles, want: http.StatusRequestEntityTooLarge,
			detail: []string{"at most 2"}},
		{name: "one bad file among good", ct: oneBadCT, body: oneBad, want: http.StatusUnsupportedMediaType,
			detail: []string{"notes.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, Config{MaxFiles: 2}, nil)
			req := httptest.NewRequest(http.MethodPost, "/v1/images"+tt.query, bytes.NewReader(tt.body))
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			if tt.unsized {
				req.ContentLength = -1
				req.Body = io.NopCloser(bytes.NewReader(tt.body))
			}
			rec := hs.do(req)
			detail := problemOf(t, rec, tt.want)
			if !contains(detail, tt.detail...) {
				t.Errorf("detail = %q; want it to mention %q", detail, tt.detail)
			}
			if n, keys, jobs := hs.store.count(), hs.blobs.keys(), hs.queue.jobs(); n != 0 || len(keys) != 0 || len(jobs) != 0 {
				t.Errorf("after a rejected upload: %d rows, blobs %v, %d jobs; want nothing stored", n, keys, len(jobs))
			}
		})
	}
}

func TestUploadRaw(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	b := pngBytes(t, 12, 7, 3)
	rec := hs.uploadRaw(t, "?filename=../../etc/cat%0A.png&features=labels", "image/jpeg", b)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d; want 202 (body %s)", rec.Code, rec.Body.String())
	}
	var img job.Image
	decode(t, rec, &img)
	wantID := job.NewImageID(DefaultTenant, job.ContentHash(b), "")
	if img.ID != wantID {
		t.Errorf("id = %q; want %q", img.ID, wantID)
	}
	if got, want := rec.Header().Get("Location"), "/v1/images/"+wantID; got != want {
		t.Errorf("Location = %q; want %q", got, want)
	}
	if img.Status != job.StatusQueued || img.ContentType != "image/png" || img.Width != 12 || img.Height != 7 ||
		img.Size != int64(len(b)) || img.SHA256 != job.ContentHash(b) || img.Filename != "cat.png" {
		t.Errorf("image = %+v; want queued image/png 12×7 of %d bytes named cat.png", img, len(b))
	}
	got, err := hs.blobs.Get(context.Background(), job.InputKey(DefaultTenant, wantID))
	if err != nil || !bytes.Equal(got, b) {
		t.Errorf("input blob = %d bytes, %v; want the uploaded %d bytes", len(got), err, len(b))
	}
	if ct := hs.blobs.types[job.InputKey(DefaultTenant, wantID)]; ct != "image/png" {
		t.Errorf("blob content type = %q; want the sniffed image/png", ct)
	}
	jobs := hs.queue.jobs()
	if len(jobs) != 1 {
		t.Fatalf("published %d jobs; want 1", len(jobs))
	}
	j := jobs[0]
	if j.ImageID != wantID || j.Tenant != DefaultTenant || j.BlobKey != job.InputKey(DefaultTenant, wantID) ||
		len(j.Features) != 1 || j.Features[0] != job.FeatureLabels {
		t.Errorf("job = %+v; want one for %s with labels", j, wantID)
	}
}

func TestUploadContentDispositionName(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	rec := hs.uploadRaw(t, "", "application/octet-stream", pngBytes(t, 4, 4, 1),
		"Content-Disposition", `attachment; filename="holiday.png"`)
	var img job.Image
	decode(t, rec, &img)
	if rec.Code != http.StatusAccepted || img.Filename != "holiday.png" {
		t.Errorf("status %d, filename %q; want 202 and holiday.png", rec.Code, img.Filename)
	}
}

func TestUploadIdempotentReupload(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	b := pngBytes(t, 8, 8, 4)
	first := hs.uploadRaw(t, "", "image/png", b)
	second := hs.uploadRaw(t, "", "image/png", b)
	var a, c job.Image
	decode(t, first, &a)
	decode(t, second, &c)
	if first.Code != http.StatusAccepted || second.Code != http.StatusAccepted || a.ID != c.ID {
		t.Fatalf("uploads: %d %s, %d %s; want 202 twice with the same id", first.Code, a.ID, second.Code, c.ID)
	}
	if n := hs.store.count(); n != 1 {
		t.Errorf("rows = %d; want 1", n)
	}
	if jobs := hs.queue.jobs(); len(jobs) != 1 {
		t.Errorf("distinct jobs = %d; want 1", len(jobs))
	}

	// Once processing started, a re-upload publishes nothing more; once done
	// it answers 200 with the result.
	hs.store.setStatus(a.ID, job.StatusProcessing)
	calls := len(hs.queue.calls)
	hs.uploadRaw(t, "", "image/png", b)
	if got := len(hs.queue.calls); got != calls {
		t.Errorf("publishes after re-upload while processing = %d; want %d", got, calls)
	}
	hs.store.setStatus(a.ID, job.StatusDone, job.Label{Label: "tabby", Score: 0.9})
	rec := hs.uploadRaw(t, "", "image/png", b)
	var done job.Image
	decode(t, rec, &done)
	if rec.Code != http.StatusOK || done.Status != job.StatusDone || done.Result == nil || done.Result.Labels[0].Label != "tabby" {
		t.Errorf("re-upload of a done image: %d %+v; want 200 with the result", rec.Code, done)
	}
}

// Sending an image again with features it lacks analyses it again for all
// of them once it has finished; while its job is under way it is a 409.
func TestUploadAsksForMoreFeatures(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	b := pngBytes(t, 8, 8, 9)
	var img job.Image
	decode(t, hs.uploadRaw(t, "", "image/png", b), &img)

	// Still queued: its job cannot take more features.
	rec := hs.uploadRaw(t, "?features=faces", "image/png", b)
	if detail := problemOf(t, rec, http.StatusConflict); !strings.Contains(detail, "faces") || rec.Header().Get("Retry-After") == "" {
		t.Errorf("409 detail %q, Retry-After %q; want the missing feature named and a Retry-After", detail, rec.Header().Get("Retry-After"))
	}
	// In a request of several files, that refuses every file: none of
	// them is stored or queued.
	rows, calls := hs.store.count(), len(hs.queue.calls)
	body, ct := multipartBody(t, part{field: "file", filename: "new.png", data: pngBytes(t, 8, 8, 10)}, part{field: "file", filename: "again.png", data: b})
	if detail := problemOf(t, hs.uploadRaw(t, "?features=faces", ct, body), http.StatusConflict); !strings.Contains(detail, `file "again.png"`) {
		t.Errorf("409 of a request of two files: %q; want the file named", detail)
	}
	if hs.store.count() != rows || len(hs.queue.calls) != calls {
		t.Errorf("a refused request of two files stored %d images and published %d jobs; want none",
			hs.store.count()-rows, len(hs.queue.calls)-calls)
	}
	// Asking for what it already has is a plain re-upload.
	if rec := hs.uploadRaw(t, "?features=labels", "image/png", b); rec.Code != http.StatusAccepted {
		t.Errorf("re-upload for the same features: %d; want 202", rec.Code)
	}

	hs.store.setStatus(img.ID, job.StatusDone, job.Label{Label: "tabby", Score: 0.9})
	rec = hs.uploadRaw(t, "?features=faces,qr", "image/png", b)
	var again job.Image
	decode(t, rec, &again)
	want := []job.Feature{job.FeatureFaces, job.FeatureLabels, job.FeatureQR}
	if rec.Code != http.StatusAccepted || again.ID != img.ID || again.Status != job.StatusQueued ||
		!slices.Equal(again.Features, want) || again.Result == nil {
		t.Fatalf("asking a done image for more: %d %+v; want 202, the same id queued for %v with the old result", rec.Code, again, want)
	}
	jobs := hs.queue.jobs()
	if len(jobs) != 2 || !slices.Equal(jobs[1].Features, want) || jobs[1].ImageID != img.ID {
		t.Fatalf("jobs = %+v; want a second job of the image for %v", jobs, want)
	}
	if n := hs.store.count(); n != 1 {
		t.Errorf("rows = %d; want 1", n)
	}

	// With an Idempotency-Key a different list is a different request.
	k := hs.uploadRaw(t, "", "image/png", b, "Idempotency-Key", "k-1")
	var keyed job.Image
	decode(t, k, &keyed)
	hs.store.setStatus(keyed.ID, job.StatusDone)
	problemOf(t, hs.uploadRaw(t, "?features=faces", "image/png", b, "Idempotency-Key", "k-1"), http.StatusUnprocessableEntity)
}

func TestUploadIdempotencyKey(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	b1, b2 := pngBytes(t, 8, 8, 5), pngBytes(t, 8, 8, 6)
	idOf := func(rec *httptest.ResponseRecorder) string {
		t.Helper()
		var img job.Image
		decode(t, rec, &img)
		return img.ID
	}
	k1 := hs.uploadRaw(t, "", "image/png", b1, "Idempotency-Key", "order-1")
	k1again := hs.uploadRaw(t, "", "image/png", b1, "Idempotency-Key", "order-1")
	k2 := hs.uploadRaw(t, "", "image/png", b1, "Idempotency-Key", "order-2")
	if k1.Code != http.StatusAccepted || idOf(k1) != idOf(k1again) {
		t.Errorf("same key twice: %d, ids %s %s; want 202 and the same id", k1.Code, idOf(k1), idOf(k1again))
	}
	if idOf(k1) == idOf(k2) {
		t.Errorf("different keys gave the same id %s", idOf(k1))
	}
	if want := job.NewImageID(DefaultTenant, job.ContentHash(b1), "order-1"); idOf(k1) != want {
		t.Errorf("id = %s; want %s", idOf(k1), want)
	}
	reuse := hs.uploadRaw(t, "", "image/png", b2, "Idempotency-Key", "order-1")
	problemOf(t, reuse, http.StatusUnprocessableEntity)
	got, _ := hs.blobs.Get(context.Background(), job.InputKey(DefaultTenant, idOf(k1)))
	if !bytes.Equal(got, b1) {
		t.Errorf("the reused key overwrote the stored bytes")
	}
}

func TestUploadMultipart(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	body, ct := multipartBody(t,
		part{field: "note", data: []byte("ignored")},
		part{field: "file", filename: `C:\photos\one.png`, data: pngBytes(t, 5, 5, 7)},
		part{field: "file", filename: "two.png", data: pngBytes(t, 6, 6, 8)})
	rec := hs.uploadRaw(t, "", ct, body)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d; want 202 (body %s)", rec.Code, rec.Body.String())
	}
	var list ImageList
	decode(t, rec, &list)
	if len(list.Images) != 2 || list.Images[0].Filename != "one.png" || list.Images[1].Filename != "two.png" {
		t.Fatalf("images = %+v; want one.png and two.png", list.Images)
	}
	if jobs := hs.queue.jobs(); len(jobs) != 2 {
		t.Errorf("jobs = %d; want 2", len(jobs))
	}
	if rec.Header().Get("Location") != "" {
		t.Errorf("Location = %q on a multi-file upload; want none", rec.Header().Get("Location"))
	}

	one, oneCT := multipartBody(t, part{field: "file", filename: "solo.png", data: pngBytes(t, 3, 3, 9)})
	rec = hs.uploadRaw(t, "", oneCT, one)
	var img job.Image
	decode(t, rec, &img)
	if rec.Code != http.StatusAccepted || img.Filename != "solo.png" || rec.Header().Get("Location") == "" {
		t.Errorf("single multipart file: %d %+v; want 202 with the image and a Location", rec.Code, img)
	}
}

func TestUploadPublishFailure(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	hs.queue.setErr(errors.New("nats: no responders"))
	b := pngBytes(t, 8, 8, 10)
	rec := hs.uploadRaw(t, "", "image/png", b)
	problemOf(t, rec, http.StatusServiceUnavailable)
	if rec.Header().Get("Retry-After") == "" {
		t.Errorf("no Retry-After on 503")
	}
	if n := hs.store.count(); n != 1 {
		t.Errorf("rows = %d; want the queued row kept for the reconciler", n)
	}
	hs.queue.setErr(nil)
	rec = hs.uploadRaw(t, "", "image/png", b)
	if rec.Code != http.StatusAccepted || len(hs.queue.jobs()) != 1 {
		t.Errorf("retry: %d with %d jobs; want 202 and the job published", rec.Code, len(hs.queue.jobs()))
	}
}

// waitForSubscriber polls until someone waits on id.
func waitForSubscriber(t *testing.T, s *Server, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.waiters.mu.Lock()
		n := len(s.waiters.m[id])
		s.waiters.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("nobody waited on %s", id)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func TestUploadWait(t *testing.T) {
	t.Run("finished in time", func(t *testing.T) {
		hs := newHarness(t, Config{}, nil)
		b := pngBytes(t, 8, 8, 11)
		id := job.NewImageID(DefaultTenant, job.ContentHash(b), "")
		done := make(chan struct{})
		go func() {
			defer close(done)
			waitForSubscriber(t, hs.srv, id)
			hs.store.setStatus(id, job.StatusDone, job.Label{Label: "espresso", Score: 0.8})
			hs.srv.NotifyOutcome(job.Outcome{ImageID: id, Tenant: DefaultTenant, Status: job.StatusDone})
		}()
		rec := hs.uploadRaw(t, "?wait=30s", "image/png", b)
		<-done
		var img job.Image
		decode(t, rec, &img)
		if rec.Code != http.StatusOK || img.Status != job.StatusDone || img.Result == nil || len(img.Result.Labels) != 1 {
			t.Fatalf("wait: %d %+v; want 200 with the result", rec.Code, img)
		}
		if n := len(hs.srv.waiters.m); n != 0 {
			t.Errorf("%d waiter entries left; want 0", n)
		}
	})
	t.Run("expires", func(t *testing.T) {
		hs := newHarness(t, Config{}, nil)
		rec := hs.uploadRaw(t, "?wait=50ms", "image/png", pngBytes(t, 8, 8, 12))
		var img job.Image
		decode(t, rec, &img)
		if rec.Code != http.StatusAccepted || img.Status != job.StatusQueued {
			t.Errorf("wait expired: %d %s; want 202 queued", rec.Code, img.Status)
		}
	})
}

func TestNotifyOutcomeWithoutWaiters(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	// Must neither block nor panic.
	hs.srv.NotifyOutcome(job.Outcome{ImageID: "img_000000000000000000000000", Status: job.StatusFailed})
}

// seed stores an image for tenant directly and returns it.
func seed(t *testing.T, hs *harness, tenant, name string, b []byte) *job.Image {
	t.Helper()
	id := job.NewImageID(tenant, job.ContentHash(b), "")
	img, _, err := hs.store.CreateImage(context.Background(), &job.Image{
		ID: id, Tenant: tenant, Filename: name, ContentType: "image/png", Size: int64(len(b)),
		SHA256: job.ContentHash(b), Features: []job.Feature{job.FeatureLabels}, Status: job.StatusQueued,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs.blobs.Put(context.Background(), job.InputKey(tenant, id), b, "image/png")
	hs.blobs.Put(context.Background(), job.ResultKey(id), []byte(`{}`), "application/json")
	return img
}

func TestGetImage(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	mine := seed(t, hs, DefaultTenant, "cat.png", pngBytes(t, 4, 4, 1))
	theirs := seed(t, hs, "other", "dog.png", pngBytes(t, 4, 4, 2))
	hs.store.setStatus(mine.ID, job.StatusDone, job.Label{Label: "Egyptian cat", Score: 0.67})

	rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+mine.ID, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; want 200 (%s)", rec.Code, rec.Body.String())
	}
	var m map[string]any
	decode(t, rec, &m)
	for _, k := range []string{"id", "filename", "content_type", "size", "sha256", "features", "status", "attempts", "created_at", "updated_at", "result"} {
		if _, ok := m[k]; !ok {
			t.Errorf("image JSON lacks %q: %v", k, m)
		}
	}
	if _, ok := m["$schema"]; ok {
		t.Errorf("image JSON has a $schema field")
	}
	if labels := m["result"].(map[string]any)["labels"].([]any); labels[0].(map[string]any)["label"] != "Egyptian cat" {
		t.Errorf("labels = %v; want Egyptian cat", labels)
	}

	for _, tt := range []struct{ name, id string }{
		{"other tenant", theirs.ID},
		{"unknown", "img_ffffffffffffffffffffffff"},
		{"malformed", "nonsense"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+tt.id, nil))
			problemOf(t, rec, http.StatusNotFound)
		})
	}
}

func TestListImages(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	img := seed(t, hs, DefaultTenant, "a.png", pngBytes(t, 4, 4, 1))
	hs.store.page = store.Page{Images: []*job.Image{img}, Next: "CUR2"}

	rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images?status=done&label=tabby&limit=10&cursor=CUR1", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; want 200 (%s)", rec.Code, rec.Body.String())
	}
	want := store.ListOptions{Tenant: DefaultTenant, Status: job.StatusDone, Label: "tabby", Cursor: "CUR1", Limit: 10}
	if hs.store.lastOpt != want {
		t.Errorf("ListOptions = %+v; want %+v", hs.store.lastOpt, want)
	}
	var list ImageList
	decode(t, rec, &list)
	if len(list.Images) != 1 || list.NextCursor != "CUR2" || !contains(list.Next, "cursor=CUR2", "status=done", "label=tabby", "limit=10") {
		t.Errorf("list = %+v; want one image, next_cursor CUR2 and a next link keeping the filters", list)
	}

	hs.store.page = store.Page{}
	rec = hs.do(httptest.NewRequest(http.MethodGet, "/v1/images", nil))
	list = ImageList{}
	decode(t, rec, &list)
	if hs.store.lastOpt.Limit != 50 || list.Images == nil || len(list.Images) != 0 || list.Next != "" {
		t.Errorf("empty list: limit %d, %+v; want limit 50, images [] and no next", hs.store.lastOpt.Limit, list)
	}
	if !strings.Contains(rec.Body.String(), `"images":[]`) {
		t.Errorf("body %s; want images as an empty array", rec.Body.String())
	}

	for _, tt := range []struct{ name, query string }{
		{"bad status", "?status=sleeping"},
		{"limit zero", "?limit=0"},
		{"limit too big", "?limit=1001"},
		{"limit not a number", "?limit=ten"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			problemOf(t, hs.do(httptest.NewRequest(http.MethodGet, "/v1/images"+tt.query, nil)), http.StatusBadRequest)
		})
	}
	t.Run("bad cursor", func(t *testing.T) {
		hs.store.listErr = store.ErrBadCursor
		detail := problemOf(t, hs.do(httptest.NewRequest(http.MethodGet, "/v1/images?cursor=zzz", nil)), http.StatusBadRequest)
		if !strings.Contains(detail, "cursor") {
			t.Errorf("detail = %q; want it to mention the cursor", detail)
		}
	})
}

func TestContent(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	b := pngBytes(t, 4, 4, 3)
	img := seed(t, hs, DefaultTenant, `we"ird\name.png`, b)

	rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+img.ID+"/content", nil))
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), b) {
		t.Fatalf("status %d, %d bytes; want 200 with the %d original bytes", rec.Code, rec.Body.Len(), len(b))
	}
	for _, tt := range []struct{ header, want string }{
		{"Content-Type", "image/png"},
		{"X-Content-Type-Options", "nosniff"},
		{"Content-Disposition", `inline; filename=name.png`},
		{"ETag", `"` + img.SHA256 + `"`},
		{"Cache-Control", "private, max-age=86400"},
	} {
		if got := rec.Header().Get(tt.header); got != tt.want {
			t.Errorf("%s = %q; want %q", tt.header, got, tt.want)
		}
	}

	req := httptest.NewRequest(http.MethodGet, "/v1/images/"+img.ID+"/content", nil)
	req.Header.Set("If-None-Match", `"`+img.SHA256+`"`)
	if rec := hs.do(req); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("If-None-Match: %d with %d bytes; want 304 and no body", rec.Code, rec.Body.Len())
	}

	// One byte range gets a 206 with those bytes; what cannot be served
	// as one range gets the whole image, and a range past the end a 416.
	n := len(b)
	etag := `"` + img.SHA256 + `"`
	for _, tt := range []struct {
		rng, ifRange string
		code         int
		from, to     int // the bytes of b expected, to exclusive
		contentRange string
	}{
		{"bytes=0-9", "", 206, 0, 10, fmt.Sprintf("bytes 0-9/%d", n)},
		{"Bytes=0-9", "", 206, 0, 10, fmt.Sprintf("bytes 0-9/%d", n)},
		{"bytes=10-", "", 206, 10, n, fmt.Sprintf("bytes 10-%d/%d", n-1, n)},
		{"bytes=-5", "", 206, n - 5, n, fmt.Sprintf("bytes %d-%d/%d", n-5, n-1, n)},
		{"bytes=5-1000000", "", 206, 5, n, fmt.Sprintf("bytes 5-%d/%d", n-1, n)},
		{"bytes=0-9", etag, 206, 0, 10, fmt.Sprintf("bytes 0-9/%d", n)},
		{"bytes=0-9", `"stale"`, 200, 0, n, ""},
		{"bytes=0-1,5-6", "", 200, 0, n, ""},
		{"bytes=9-3", "", 200, 0, n, ""},
		{"items=0-9", "", 200, 0, n, ""},
		{"bytes=x-", "", 200, 0, n, ""},
		{fmt.Sprintf("bytes=%d-", n), "", 416, 0, 0, fmt.Sprintf("bytes */%d", n)},
		{"bytes=-0", "", 416, 0, 0, fmt.Sprintf("bytes */%d", n)},
	} {
		req := httptest.NewRequest(http.MethodGet, "/v1/images/"+img.ID+"/content", nil)
		req.Header.Set("Range", tt.rng)
		if tt.ifRange != "" {
			req.Header.Set("If-Range", tt.ifRange)
		}
		rec := hs.do(req)
		if rec.Code != tt.code || rec.Header().Get("Content-Range") != tt.contentRange ||
			(tt.code != 416 && !bytes.Equal(rec.Body.Bytes(), b[tt.from:tt.to])) {
			t.Errorf("Range %q (If-Range %q) = %d, Content-Range %q, %d bytes; want %d, %q, bytes %d to %d",
				tt.rng, tt.ifRange, rec.Code, rec.Header().Get("Content-Range"), rec.Body.Len(), tt.code, tt.contentRange, tt.from, tt.to)
		}
		if tt.code != 416 && (rec.Header().Get("Accept-Ranges") != "bytes" || rec.Header().Get("Content-Length") != strconv.Itoa(tt.to-tt.from)) {
			t.Errorf("Range %q: Accept-Ranges %q, Content-Length %q; want bytes, %d", tt.rng,
				rec.Header().Get("Accept-Ranges"), rec.Header().Get("Content-Length"), tt.to-tt.from)
		}
		if tt.code == 416 {
			problemOf(t, rec, 416)
		}
	}

	hs.blobs.Delete(context.Background(), job.InputKey(DefaultTenant, img.ID))
	problemOf(t, hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+img.ID+"/content", nil)), http.StatusNotFound)
}

func TestDelete(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	img := seed(t, hs, DefaultTenant, "a.png", pngBytes(t, 4, 4, 1))
	theirs := seed(t, hs, "other", "b.png", pngBytes(t, 4, 4, 2))

	rec := hs.do(httptest.NewRequest(http.MethodDelete, "/v1/images/"+img.ID, nil))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status = %d; want 204 (%s)", rec.Code, rec.Body.String())
	}
	if _, err := hs.store.GetImage(context.Background(), DefaultTenant, img.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("row still there: %v", err)
	}
	for _, k := range []string{job.InputKey(DefaultTenant, img.ID), job.ResultKey(img.ID)} {
		if _, err := hs.blobs.Get(context.Background(), k); !errors.Is(err, errBlobNotFound) {
			t.Errorf("blob %s still there", k)
		}
	}
	problemOf(t, hs.do(httptest.NewRequest(http.MethodDelete, "/v1/images/"+img.ID, nil)), http.StatusNotFound)
	problemOf(t, hs.do(httptest.NewRequest(http.MethodDelete, "/v1/images/"+theirs.ID, nil)), http.StatusNotFound)
	if hs.store.count() != 1 {
		t.Errorf("the other tenant's image was deleted")
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name        string
		requireKeys bool
		header      []string
		want        int
		wantTenant  string
	}{
		{name: "open without key", want: http.StatusAccepted, wantTenant: DefaultTenant},
		{name: "open with good bearer", header: []string{"Authorization", "Bearer s3cret"}, want: http.StatusAccepted, wantTenant: "acme"},
		{name: "open with bad key", header: []string{"X-API-Key", "wrong"}, want: http.StatusUnauthorized},
		{name: "required without key", requireKeys: true, want: http.StatusUnauthorized},
		{name: "required with X-API-Key", requireKeys: true, header: []string{"X-API-Key", "s3cret"}, want: http.StatusAccepted, wantTenant: "acme"},
		{name: "required with bad bearer", requireKeys: true, header: []string{"Authorization", "Bearer nope"}, want: http.StatusUnauthorized},
		{name: "basic scheme", header: []string{"Authorization", "Basic Zm9vOmJhcg=="}, want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, Config{RequireKeys: tt.requireKeys}, nil)
			hs.store.keys["s3cret"] = store.Key{ID: "k1", Tenant: "acme"}
			b := pngBytes(t, 4, 4, 1)
			rec := hs.uploadRaw(t, "", "image/png", b, tt.header...)
			if tt.want == http.StatusUnauthorized {
				problemOf(t, rec, http.StatusUnauthorized)
				if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q; want a Bearer challenge", rec.Header().Get("WWW-Authenticate"))
				}
				return
			}
			if rec.Code != tt.want {
				t.Fatalf("status = %d; want %d (%s)", rec.Code, tt.want, rec.Body.String())
			}
			id := job.NewImageID(tt.wantTenant, job.ContentHash(b), "")
			if _, err := hs.store.GetImage(context.Background(), tt.wantTenant, id); err != nil {
				t.Errorf("image not stored under tenant %q: %v", tt.wantTenant, err)
			}
		})
	}
}

func TestHealthAndReady(t *testing.T) {
	ok := func(context.Context) error { return nil }
	hs := newHarness(t, Config{}, map[string]func(context.Context) error{
		"store": ok,
		"queue": func(context.Context) error { return errors.New("no stream GLIMPSE_JOBS") },
		"model": func(context.Context) error { panic("model check bug") },
	})
	if rec := hs.do(httptest.NewRequest(http.MethodGet, "/healthz", nil)); rec.Code != http.StatusOK {
		t.Errorf("/healthz = %d; want 200", rec.Code)
	}
	rec := hs.do(httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var r Readiness
	decode(t, rec, &r)
	if rec.Code != http.StatusServiceUnavailable || r.Status != "unready" || r.Checks["store"] != "ok" ||
		!strings.Contains(r.Checks["queue"], "GLIMPSE_JOBS") || !strings.Contains(r.Checks["model"], "panicked") {
		t.Errorf("/readyz = %d %+v; want 503 naming the queue and model failures", rec.Code, r)
	}

	hs = newHarness(t, Config{}, map[string]func(context.Context) error{"store": ok, "blobs": ok})
	rec = hs.do(httptest.NewRequest(http.MethodGet, "/readyz", nil))
	r = Readiness{}
	decode(t, rec, &r)
	if rec.Code != http.StatusOK || r.Status != "ready" || len(r.Checks) != 2 {
		t.Errorf("/readyz = %d %+v; want 200 ready with 2 checks", rec.Code, r)
	}
}

// The Image and Result schemas carry a whole example, every feature in it,
// that decodes into the API's own types field for field.
func TestOpenAPIExamples(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	rec := hs.do(httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Examples []json.RawMessage `json:"examples"`
			} `json:"schemas"`
		} `json:"components"`
	}
	decode(t, rec, &doc)
	for name, into := range map[string]any{"Image": &job.Image{}, "Result": &job.Result{}} {
		ex := doc.Components.Schemas[name].Examples
		if len(ex) != 1 {
			t.Errorf("schema %s has %d examples; want 1", name, len(ex))
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(ex[0]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			t.Errorf("the %s example does not decode as one: %v", name, err)
		}
	}
	var res map[string]any
	if err := json.Unmarshal(doc.Components.Schemas["Result"].Examples[0], &res); err != nil {
		t.Fatal(err)
	}
	for _, f := range job.Features {
		key := string(f)
		if _, ok := res[key]; !ok {
			t.Errorf("the Result example has no %q", key)
		}
	}
}

func TestOpenAPI(t *testing.T) {
	hs := newHarness(t, Config{Version: "1.2.3"}, nil)
	rec := hs.do(httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; want 200", rec.Code)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title   string `json:"title"`
			Version string `json:"version"`
		} `json:"info"`
		Paths map[string]map[string]any `json:"paths"`
	}
	decode(t, rec, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") || doc.Info.Title != "Glimpse" || doc.Info.Version != "1.2.3" {
		t.Errorf("openapi %q, info %+v; want 3.1, Glimpse 1.2.3", doc.OpenAPI, doc.Info)
	}
	for path, methods := range map[string][]string{
		"/v1/images":              {"get", "post"},
		"/v1/images/{id}":         {"get", "delete"},
		"/v1/images/{id}/content": {"get"},
		"/healthz":                {"get"},
		"/readyz":                 {"get"},
	} {
		for _, m := range methods {
			if _, ok := doc.Paths[path][m]; !ok {
				t.Errorf("OpenAPI lacks %s %s", strings.ToUpper(m), path)
			}
		}
	}
	post, _ := json.Marshal(doc.Paths["/v1/images"]["post"])
	if !contains(string(post), `"multipart/form-data"`, `"image/*"`, `"oneOf"`, `#/components/schemas/ImageList`) {
		t.Errorf("POST /v1/images documents neither both body shapes nor both answers: %s", post)
	}
	// /docs is drawn by our own script from /openapi.json: nothing from
	// another origin, so it works offline (the CSP would refuse a CDN).
	if rec := hs.do(httptest.NewRequest(http.MethodGet, "/docs", nil)); rec.Code != http.StatusOK ||
		!contains(rec.Body.String(), `src="/ui/docs.js"`) || strings.Contains(rec.Body.String(), "https://") ||
		!strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("/docs = %d %s (CSP %q); want our page loading /ui/docs.js under the UI's CSP",
			rec.Code, rec.Body.String(), rec.Header().Get("Content-Security-Policy"))
	}
	if rec := hs.do(httptest.NewRequest(http.MethodGet, "/ui/docs.js", nil)); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "/openapi.json") {
		t.Errorf("/ui/docs.js = %d; want the script that reads /openapi.json", rec.Code)
	}
	// Every /v1 operation documents the 429 of the rate limit and the
	// upload cap, with Retry-After and a problem body.
	for path, methods := range doc.Paths {
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for m, op := range methods {
			b, _ := json.Marshal(op)
			var o struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			json.Unmarshal(b, &o)
			if r := o.Responses["429"]; !contains(string(r), "Retry-After", "application/problem+json") {
				t.Errorf("%s %s: 429 response %s; want one with Retry-After and a problem body", strings.ToUpper(m), path, r)
			}
		}
	}
}

func TestRoutingErrors(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	problemOf(t, hs.do(httptest.NewRequest(http.MethodGet, "/no/such/thing", nil)), http.StatusNotFound)
	rec := hs.do(httptest.NewRequest(http.MethodPut, "/v1/images", nil))
	problemOf(t, rec, http.StatusMethodNotAllowed)
	if allow := rec.Header().Get("Allow"); !contains(allow, "GET", "POST") {
		t.Errorf("Allow = %q; want GET and POST", allow)
	}
}

func TestHomePage(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	rec := hs.do(httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
		!contains(rec.Body.String(), "Glimpse", `href="/docs"`, "curl") {
		t.Errorf("/ = %d %q; want an HTML page about Glimpse linking /docs", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestPanicRecovery(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	hs.store.panicOn = "GetImage"
	problemOf(t, hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/img_ffffffffffffffffffffffff", nil)),
		http.StatusInternalServerError)
	if rec := hs.do(httptest.NewRequest(http.MethodGet, "/healthz", nil)); rec.Code != http.StatusOK {
		t.Errorf("/healthz after a panic = %d; want 200", rec.Code)
	}
}

func TestMiddlewareHeadersAndMetrics(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	rec := hs.uploadRaw(t, "", "image/png", pngBytes(t, 4, 4, 1))
	if rec.Header().Get("X-Request-Id") == "" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v; want X-Request-Id and nosniff", rec.Header())
	}
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	if got := hs.do(req).Header().Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id = %q; want the client's abc-123", got)
	}
	hs.do(httptest.NewRequest(http.MethodGet, "/nope", nil))

	rec = hs.do(httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`glimpse_http_requests_total{code="202",method="POST",route="/v1/images"} 1`,
		`glimpse_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`glimpse_http_request_duration_seconds_count{route="/healthz"} 1`,
		`glimpse_upload_bytes_total `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestNewValidation(t *testing.T) {
	ok := Deps{Store: newFakeStore(), Blobs: newFakeBlobs(), Queue: &fakeQueue{}, IsBlobNotFound: func(error) bool { return false }}
	tests := []struct {
		name string
		cfg  Config
		deps func(d Deps) Deps
	}{
		{"no store", Config{}, func(d Deps) Deps { d.Store = nil; return d }},
		{"no IsBlobNotFound", Config{}, func(d Deps) Deps { d.IsBlobNotFound = nil; return d }},
		{"gatherer without registerer", Config{}, func(d Deps) Deps { d.Gatherer = prometheus.NewRegistry(); return d }},
		{"negative max files", Config{MaxFiles: -1}, func(d Deps) Deps { return d }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, tt.deps(ok)); err == nil || !strings.HasPrefix(err.Error(), "web: ") {
				t.Errorf("New = %v; want a web: error", err)
			}
		})
	}
	if _, err := New(Config{}, ok); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}
