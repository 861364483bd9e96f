package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glimpse-oss/glimpse/internal/blobstore"
	"github.com/glimpse-oss/glimpse/internal/imagedata"
	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
	"github.com/glimpse-oss/glimpse/internal/web/ui"
)

// signedHarness is a Server over a fake store and queue and a real file://
// blob store, which signs upload URLs.
type signedHarness struct {
	srv   *Server
	h     http.Handler
	store *fakeStore
	queue *fakeQueue
	blobs *blobstore.Store
}

func newSignedHarness(t *testing.T, cfg Config) *signedHarness {
	t.Helper()
	if cfg.Limits.MaxBytes == 0 {
		cfg.Limits = testLimits
	}
	blobs, err := blobstore.OpenConfig(context.Background(), "file://"+t.TempDir(), blobstore.Config{SigningKey: []byte("test-signing-key")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	hs := &signedHarness{store: newFakeStore(), queue: &fakeQueue{}, blobs: blobs}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, Deps{
		Store: hs.store, Blobs: blobs, Queue: hs.queue, Signer: blobs,
		IsBlobNotFound: func(err error) bool { return errors.Is(err, blobstore.ErrNotFound) },
		Registerer:     reg, Gatherer: reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs.srv, hs.h = srv, srv.Handler()
	return hs
}

func (hs *signedHarness) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

// ticket asks POST /v1/uploads for an upload URL.
func (hs *signedHarness) ticket(t *testing.T, body string) UploadTicket {
	t.Helper()
	rec := hs.do(httptest.NewRequest(http.MethodPost, "http://glimpse.test/v1/uploads", strings.NewReader(body)))
	if rec.Code != http.StatusCreated {
		t.Fatalf("POST /v1/uploads = %d %s; want 201", rec.Code, rec.Body)
	}
	var tk UploadTicket
	decode(t, rec, &tk)
	return tk
}

// put sends b to an upload URL with content type ct.
func (hs *signedHarness) put(rawURL, ct string, b []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPut, rawURL, bytes.NewReader(b))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return hs.do(req)
}

func TestPresignedUpload(t *testing.T) {
	hs := newSignedHarness(t, Config{})
	png := pngBytes(t, 8, 6, 3)
	tk := hs.ticket(t, `{"filename":"big.png","content_type":"image/png","size":`+itoa(len(png))+`,"features":["labels","qr"]}`)
	u, err := url.Parse(tk.UploadURL)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Method != "PUT" || tk.Headers["Content-Type"] != "image/png" || u.Host != "glimpse.test" ||
		u.Path != "/v1/uploads/"+tk.ID || !strings.HasPrefix(tk.ID, "upl_") || time.Until(tk.ExpiresAt) < 10*time.Minute {
		t.Fatalf("ticket = %+v; want a PUT to http://glimpse.test/v1/uploads/{id} bound to image/png, valid ~15m", tk)
	}

	rec := hs.put(tk.UploadURL, "image/png", png)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("PUT = %d %s; want 202", rec.Code, rec.Body)
	}
	var img job.Image
	decode(t, rec, &img)
	if img.Filename != "big.png" || img.Status != job.StatusQueued || job.FormatFeatures(img.Features) != "labels,qr" ||
		rec.Header().Get("Location") != "/v1/images/"+img.ID {
		t.Errorf("image = %+v (Location %q); want big.png queued with labels,qr", img, rec.Header().Get("Location"))
	}
	if jobs := hs.queue.jobs(); len(jobs) != 1 || jobs[0].ImageID != img.ID || jobs[0].BlobKey != job.InputKey("default", img.ID) {
		t.Errorf("jobs = %+v; want one for %s", jobs, img.ID)
	}
	if got, err := hs.blobs.Get(context.Background(), job.InputKey("default", img.ID)); err != nil || !bytes.Equal(got, png) {
		t.Errorf("stored bytes: %v; want the PNG", err)
	}

	// The URL works once.
	if d := problemOf(t, hs.put(tk.UploadURL, "image/png", png), http.StatusForbidden); !strings.Contains(d, "already used") {
		t.Errorf("second PUT detail = %q; want it to say the URL was already used", d)
	}

	// The same bytes through a new URL once the image is done: 200 with
	// it, as POST /v1/images answers.
	hs.store.setStatus(img.ID, job.StatusDone, job.Label{Label: "tabby", Score: 0.9})
	tk2 := hs.ticket(t, `{"filename":"big.png","content_type":"image/png","size":`+itoa(len(png))+`,"features":["labels","qr"]}`)
	if rec := hs.put(tk2.UploadURL, "image/png", png); rec.Code != http.StatusOK {
		t.Errorf("PUT of a finished image's bytes = %d; want 200", rec.Code)
	}
}

func TestPresignedUploadRefusals(t *testing.T) {
	hs := newSignedHarness(t, Config{})
	png := pngBytes(t, 8, 6, 4)
	size := itoa(len(png))
	mk := func() UploadTicket {
		return hs.ticket(t, `{"filename":"a.png","content_type":"image/png","size":`+size+`}`)
	}
	tamper := func(raw, param, val string) string {
		u, _ := url.Parse(raw)
		q := u.Query()
		q.Set(param, val)
		u.RawQuery = q.Encode()
		return u.String()
	}

	cases := []struct {
		name, url, ct string
		body          []byte
		code          int
		detail        string
	}{
		{"wrong signature", tamper(mk().UploadURL, "signature", "AAAA"), "image/png", png, 403, "signature"},
		{"other key", tamper(mk().UploadURL, "obj", "uploads/default/upl_000000000000000000000000"), "image/png", png, 403, "signature"},
		{"later expiry", tamper(mk().UploadURL, "expiry", itoa(int(time.Now().Add(48*time.Hour).Unix()))), "image/png", png, 403, "signature"},
		{"signed for GET", tamper(mk().UploadURL, "method", "GET"), "image/png", png, 403, "signature"},
		{"other content type", mk().UploadURL, "image/jpeg", png, 403, "image/png"},
		{"no content type", mk().UploadURL, "", png, 403, "image/png"},
		{"more bytes than declared", mk().UploadURL, "image/png", append(append([]byte(nil), png...), make([]byte, 100)...), 413, "declared"},
		{"not an image", mk().UploadURL, "image/png", bytes.Repeat([]byte("hello "), 10), 415, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := problemOf(t, hs.put(c.url, c.ct, c.body), c.code)
			if !strings.Contains(d, c.detail) {
				t.Errorf("detail = %q; want it to mention %q", d, c.detail)
			}
		})
	}
	// Another upload's signed URL does not open this upload's path.
	a, b := mk(), mk()
	ua, _ := url.Parse(a.UploadURL)
	ub, _ := url.Parse(b.UploadURL)
	ua.RawQuery = ub.RawQuery
	problemOf(t, hs.put(ua.String(), "image/png", png), http.StatusForbidden)

	// An expired URL says so.
	tk := mk()
	hs.srv.now = func() time.Time { return time.Now().Add(time.Hour) }
	if d := problemOf(t, hs.put(tk.UploadURL, "image/png", png), http.StatusForbidden); !strings.Contains(d, "expired") {
		t.Errorf("expired detail = %q; want it to say expired", d)
	}
	if n := len(hs.queue.jobs()); n != 0 {
		t.Errorf("%d jobs published by refused uploads; want 0", n)
	}
}

func TestCreateUploadBadRequests(t *testing.T) {
	hs := newSignedHarness(t, Config{})
	for _, c := range []struct {
		body string
		code int
	}{
		{`{"filename":"a.txt","content_type":"text/plain","size":10}`, 415},
		{`{"filename":"a.png","content_type":"image/png","size":999999999}`, 413},
		{`{"filename":"a.png","content_type":"image/png","size":10,"features":["nope"]}`, 400},
		{`{"filename":"a.png","content_type":"image/png","size":0}`, 422},
	} {
		rec := hs.do(httptest.NewRequest(http.MethodPost, "/v1/uploads", strings.NewReader(c.body)))
		problemOf(t, rec, c.code)
	}
	// Without a signer, pre-signed uploads are refused plainly.
	plain := newHarness(t, Config{}, nil)
	problemOf(t, plain.do(httptest.NewRequest(http.MethodPost, "/v1/uploads",
		strings.NewReader(`{"filename":"a.png","content_type":"image/png","size":10}`))), http.StatusNotImplemented)
}

func TestCompleteUpload(t *testing.T) {
	hs := newSignedHarness(t, Config{})
	png := pngBytes(t, 5, 5, 9)
	tk := hs.ticket(t, `{"filename":"s3.png","content_type":"image/png","size":`+itoa(len(png))+`}`)
	key := "uploads/default/" + tk.ID
	if err := hs.blobs.Put(context.Background(), key, png, "image/png"); err != nil {
		t.Fatal(err)
	}
	img, err := hs.srv.CompleteUpload(context.Background(), key)
	if err != nil || img.Filename != "s3.png" || img.Status != job.StatusQueued {
		t.Fatalf("CompleteUpload = %+v, %v; want s3.png queued", img, err)
	}
	if ok, _ := hs.blobs.Exists(context.Background(), key); ok {
		t.Errorf("upload bytes still under %s; want them moved to the input key", key)
	}
	if _, err := hs.srv.CompleteUpload(context.Background(), key); err == nil {
		t.Errorf("second CompleteUpload succeeded; want an error")
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

// readEvents parses a text/event-stream into ch until r ends.
func readEvents(r io.Reader, ch chan<- sseEvent) {
	sc := bufio.NewScanner(r)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				ch <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data += line[len("data: "):]
		}
	}
	close(ch)
}

func nextEvent(t *testing.T, ch <-chan sseEvent, name string) sseEvent {
	t.Helper()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended while waiting for %q", name)
			}
			if ev.name == name {
				return ev
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %q event within 5s", name)
		}
	}
}

func openEvents(t *testing.T, base, query string, hdr ...string) (chan sseEvent, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/events"+query, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan sseEvent, 16)
	if resp.StatusCode == http.StatusOK {
		go readEvents(resp.Body, ch)
	}
	return ch, resp
}

func TestEvents(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	ts := httptest.NewServer(hs.h)
	t.Cleanup(func() { hs.srv.CloseStreams(); ts.Close() })

	ch, resp := openEvents(t, ts.URL, "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /v1/events = %d %q; want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	nextEvent(t, ch, "ready")
	hs.store.keys["glk_other"] = store.Key{Tenant: "other"}
	other, _ := openEvents(t, ts.URL, "?key=glk_other")
	nextEvent(t, other, "ready")

	rec := hs.uploadRaw(t, "?filename=live.png", "image/png", pngBytes(t, 4, 4, 7))
	var img job.Image
	decode(t, rec, &img)
	var got job.Image
	if err := json.Unmarshal([]byte(nextEvent(t, ch, "image").data), &got); err != nil || got.ID != img.ID || got.Status != job.StatusQueued {
		t.Fatalf("created event = %+v, %v; want %s queued", got, err, img.ID)
	}

	// A worker's announcement that it started shows as processing.
	hs.store.setStatus(img.ID, job.StatusProcessing)
	hs.srv.NotifyProgress(job.Outcome{ImageID: img.ID, Tenant: "default", Status: job.StatusProcessing})
	if err := json.Unmarshal([]byte(nextEvent(t, ch, "image").data), &got); err != nil || got.ID != img.ID || got.Status != job.StatusProcessing {
		t.Fatalf("progress event = %+v, %v; want %s processing", got, err, img.ID)
	}

	hs.store.setStatus(img.ID, job.StatusDone, job.Label{Label: "tabby", Score: 0.9})
	hs.srv.NotifyOutcome(job.Outcome{ImageID: img.ID, Tenant: "default", Status: job.StatusDone})
	if err := json.Unmarshal([]byte(nextEvent(t, ch, "image").data), &got); err != nil || got.Status != job.StatusDone ||
		got.Result == nil || got.Result.Labels[0].Label != "tabby" {
		t.Fatalf("outcome event = %+v, %v; want done with tabby", got, err)
	}
	// Asked for more features, it shows as queued again.
	hs.uploadRaw(t, "?filename=live.png&features=faces", "image/png", pngBytes(t, 4, 4, 7))
	if err := json.Unmarshal([]byte(nextEvent(t, ch, "image").data), &got); err != nil || got.ID != img.ID ||
		got.Status != job.StatusQueued || !slices.Contains(got.Features, job.FeatureFaces) {
		t.Fatalf("reopen event = %+v, %v; want %s queued for faces", got, err, img.ID)
	}
	select {
	case ev := <-other:
		t.Fatalf("tenant other got %+v; want nothing from tenant default", ev)
	case <-time.After(100 * time.Millisecond):
	}

	// Shutting down ends the streams and refuses new ones.
	hs.srv.CloseStreams()
	for range ch {
	}
	if _, resp := openEvents(t, ts.URL, ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /v1/events after CloseStreams = %d; want 503", resp.StatusCode)
	}
	if n := hs.srv.events.count(); n > 1 {
		t.Errorf("%d streams still subscribed after CloseStreams", n)
	}
}

func TestEventsAuth(t *testing.T) {
	hs := newHarness(t, Config{RequireKeys: true}, nil)
	hs.store.keys["glk_good"] = store.Key{Tenant: "acme"}
	ts := httptest.NewServer(hs.h)
	t.Cleanup(func() { hs.srv.CloseStreams(); ts.Close() })
	for _, c := range []struct {
		query string
		hdr   []string
		code  int
	}{
		{"", nil, 401},
		{"?key=glk_bad", nil, 401},
		{"?key=glk_good", nil, 200},
		{"", []string{"Authorization", "Bearer glk_good"}, 200},
	} {
		ch, resp := openEvents(t, ts.URL, c.query, c.hdr...)
		if resp.StatusCode != c.code {
			t.Errorf("GET /v1/events%s %v = %d; want %d", c.query, c.hdr, resp.StatusCode, c.code)
			continue
		}
		if c.code == 200 {
			if ev := nextEvent(t, ch, "ready"); !strings.Contains(ev.data, `"acme"`) {
				t.Errorf("ready = %q; want tenant acme", ev.data)
			}
		}
	}
	// ?key= is for the event stream only.
	rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images?key=glk_good", nil))
	problemOf(t, rec, http.StatusUnauthorized)
}

func TestUIServing(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	rec := hs.do(httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Security-Policy") != ui.ContentSecurityPolicy() ||
		rec.Header().Get("X-Content-Type-Options") != "nosniff" || !contains(rec.Body.String(), `src="/ui/app.js"`) {
		t.Fatalf("/ = %d %v; want the page with its CSP", rec.Code, rec.Header())
	}
	if strings.Contains(rec.Body.String(), "<script>") || strings.Contains(rec.Body.String(), "style=") {
		t.Errorf("the page has inline script or style, which the CSP forbids")
	}
	for path, ct := range map[string]string{"/ui/app.js": "text/javascript", "/ui/charts.js": "text/javascript", "/ui/app.css": "text/css"} {
		rec := hs.do(httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), ct) || rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("%s = %d %q; want 200 %s with a CSP", path, rec.Code, rec.Header().Get("Content-Type"), ct)
		}
	}
	if rec := hs.do(httptest.NewRequest(http.MethodGet, "/ui/nope.js", nil)); rec.Code != 404 {
		t.Errorf("/ui/nope.js = %d; want 404", rec.Code)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// s3Signer stands in for an S3 store's signer: its URLs point elsewhere.
type s3Signer struct{ Signer }

func (s3Signer) SignedOrigin() string { return "http://localhost:7070" }

// With a signer whose URLs point at another origin (S3), the UI's CSP lets
// the page connect there, and only there besides itself.
func TestUICSPAllowsSignedOrigin(t *testing.T) {
	blobs, err := blobstore.OpenConfig(context.Background(), "file://"+t.TempDir(), blobstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer blobs.Close()
	reg := prometheus.NewRegistry()
	srv, err := New(Config{Limits: testLimits}, Deps{
		Store: newFakeStore(), Blobs: newFakeBlobs(), Queue: &fakeQueue{}, Signer: s3Signer{blobs},
		IsBlobNotFound: func(err error) bool { return errors.Is(err, errBlobNotFound) },
		Registerer:     reg, Gatherer: reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' http://localhost:7070;") {
		t.Errorf("CSP = %q; want connect-src 'self' http://localhost:7070", csp)
	}
}

// Uploads whose URL expired without completing are forgotten after the
// grace period (their record and any bytes that arrived); live and
// completed ones are not touched.
func TestSweepUploads(t *testing.T) {
	hs := newSignedHarness(t, Config{})
	ctx := context.Background()
	png := pngBytes(t, 8, 6, 5)
	body := `{"filename":"a.png","content_type":"image/png","size":` + itoa(len(png)) + `,"expires_in":60}`
	stale, lapsed, done := hs.ticket(t, body), hs.ticket(t, body), hs.ticket(t, body)
	// Bytes that reached the store for the stale upload without completing.
	staleKey := "uploads/default/" + stale.ID
	if err := hs.blobs.Put(ctx, staleKey, png, "image/png"); err != nil {
		t.Fatal(err)
	}
	if rec := hs.put(done.UploadURL, "image/png", png); rec.Code != http.StatusAccepted {
		t.Fatalf("completing an upload = %d %s", rec.Code, rec.Body)
	}
	// 62 minutes on, the three URLs (valid for a minute) are past a grace
	// of an hour; a ticket made then is not.
	hs.srv.now = func() time.Time { return time.Now().Add(62 * time.Minute) }
	fresh := hs.ticket(t, body)
	n, err := hs.srv.SweepUploads(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("forgot %d uploads; want 2 (the two expired ones never completed)", n)
	}
	for _, id := range []string{stale.ID, lapsed.ID} {
		if _, err := hs.blobs.Get(ctx, uploadMetaKey(id)); !errors.Is(err, blobstore.ErrNotFound) {
			t.Errorf("record of expired upload %s: %v; want it gone", id, err)
		}
	}
	if _, err := hs.blobs.Get(ctx, staleKey); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("bytes of the expired upload: %v; want them gone", err)
	}
	if _, err := hs.blobs.Get(ctx, uploadMetaKey(fresh.ID)); err != nil {
		t.Errorf("record of a live upload: %v; want it kept", err)
	}
}

// Shutting down answers uploads still waiting for their results at once,
// with their images as they stand (202, queued), rather than holding the
// server's shutdown up until it drops them.
func TestDrainAnswersWaitingUploads(t *testing.T) {
	hs := newHarness(t, Config{MaxWait: time.Hour}, nil)
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- hs.uploadRaw(t, "?wait=1h", "image/png", pngBytes(t, 4, 4, 42)) }()
	// Wait for the upload to be waiting.
	for {
		hs.srv.waiters.mu.Lock()
		n := len(hs.srv.waiters.m)
		hs.srv.waiters.mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case rec := <-done:
			t.Fatalf("upload answered %d before it waited: %s", rec.Code, rec.Body.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	hs.srv.Drain()
	select {
	case rec := <-done:
		var img job.Image
		decode(t, rec, &img)
		if rec.Code != http.StatusAccepted || img.Status != job.StatusQueued || rec.Header().Get("Location") != "/v1/images/"+img.ID {
			t.Errorf("waiting upload on shutdown = %d %+v (Location %q); want 202 with the queued image", rec.Code, img, rec.Header().Get("Location"))
		}
	case <-time.After(2 * time.Minute): // a hang, not a timing: the wait was an hour
		t.Fatal("a waiting upload was still waiting two minutes after Drain")
	}
	// Uploads that arrive while the server drains do not wait either.
	if rec := hs.uploadRaw(t, "?wait=1h", "image/png", pngBytes(t, 4, 4, 43)); rec.Code != http.StatusAccepted {
		t.Errorf("upload with wait after Drain = %d; want 202 at once", rec.Code)
	}
}

// A multipart upload refused after its first file (a second file under an
// Idempotency-Key) reaches the client as its 400, every time, although the
// client is still sending: the rest of the body is read before answering.
// (A server that answers and closes with the body unread resets the
// connection, and a client such as curl loses the answer.)
func TestRefusedUploadIsAnsweredNotReset(t *testing.T) {
	hs := newHarness(t, Config{Limits: imagedata.Limits{MaxBytes: 8 << 20, MaxPixels: 1 << 24}}, nil)
	ts := httptest.NewServer(hs.h)
	t.Cleanup(ts.Close)
	big := make([]byte, 3<<20) // not an image, but refused before it is looked at
	for i := range big {
		big[i] = byte(i * 7)
	}
	body, ct := multipartBody(t, part{field: "file", filename: "a.png", data: pngBytes(t, 8, 8, 1)},
		part{field: "file", filename: "b.bin", data: big}, part{field: "file", filename: "c.bin", data: big})
	for i := range 5 {
		conn, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		head := fmt.Sprintf("POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\nIdempotency-Key: k-%d\r\n\r\n", ct, len(body), i)
		// The client sends its whole request before it reads: what the
		// server does with the unread rest decides whether it can.
		if _, err := conn.Write(append([]byte(head), body...)); err != nil {
			conn.Close()
			t.Fatalf("request %d: sending: %v; want the server to read the body it refuses", i, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			t.Fatalf("request %d: %v; want the 400 answered", i, err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("request %d: %d; want 400", i, resp.StatusCode)
		}
	}
}
