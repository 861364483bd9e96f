package web

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glimpse-oss/glimpse/internal/store"
)

// throttledCount reads glimpse_http_throttled_total{tenant, reason}.
func throttledCount(t *testing.T, reg *prometheus.Registry, tenant, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "glimpse_http_throttled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["tenant"] == tenant && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// fakeClock is a settable clock for the throttle.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func TestRateLimitPerTenant(t *testing.T) {
	hs := newHarness(t, Config{RateLimit: RateLimit{PerSecond: 2, Burst: 3}}, nil)
	clk := &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	hs.srv.now = clk.Now
	hs.store.keys["glk_acme"] = store.Key{Tenant: "acme"}

	list := func(key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/v1/images", nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		return hs.do(req)
	}
	// The open default tenant has a burst of 3, then is throttled.
	for i, wantLeft := range []string{"2", "1", "0"} {
		rec := list("")
		if rec.Code != http.StatusOK {
			t.Fatalf("request %d = %d; want 200 (%s)", i, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("RateLimit-Remaining"); got != wantLeft {
			t.Errorf("request %d: RateLimit-Remaining = %q; want %q", i, got, wantLeft)
		}
		if got := rec.Header().Get("RateLimit-Limit"); got != "3" {
			t.Errorf("RateLimit-Limit = %q; want 3", got)
		}
	}
	rec := list("")
	detail := problemOf(t, rec, http.StatusTooManyRequests)
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q; want 1 (a token comes in 0.5 s)", got)
	}
	if !contains(detail, `tenant "default"`, "2 requests per second") {
		t.Errorf("detail %q does not name the tenant and the limit", detail)
	}
	if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("429 lacks nosniff: %q", got)
	}
	// Another tenant has its own bucket.
	if rec := list("glk_acme"); rec.Code != http.StatusOK {
		t.Errorf("acme while default is throttled = %d; want 200", rec.Code)
	}
	// Half a second brings one token back.
	clk.Advance(500 * time.Millisecond)
	if rec := list(""); rec.Code != http.StatusOK {
		t.Errorf("after 0.5 s = %d; want 200", rec.Code)
	}
	if rec := list(""); rec.Code != http.StatusTooManyRequests {
		t.Errorf("right after = %d; want 429", rec.Code)
	}
	if got := throttledCount(t, hs.reg, "default", "rate"); got != 2 {
		t.Errorf("glimpse_http_throttled_total{tenant=default,reason=rate} = %v; want 2", got)
	}
	// Routes outside /v1 are never throttled.
	for range 5 {
		if rec := hs.do(httptest.NewRequest(http.MethodGet, "/healthz", nil)); rec.Code != http.StatusOK {
			t.Fatalf("/healthz = %d; want 200", rec.Code)
		}
	}
}

func TestRateLimitRetryAfterCountsSeconds(t *testing.T) {
	hs := newHarness(t, Config{RateLimit: RateLimit{PerSecond: 0.2, Burst: 1}}, nil)
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	hs.srv.now = clk.Now
	hs.do(httptest.NewRequest(http.MethodGet, "/v1/images", nil))
	clk.Advance(time.Second)
	rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images", nil))
	problemOf(t, rec, http.StatusTooManyRequests)
	if got := rec.Header().Get("Retry-After"); got != "4" {
		t.Errorf("Retry-After = %q; want 4 (one token per 5 s, 1 s gone)", got)
	}
}

// Unknown keys are charged to the client's address, so guessing keys can
// neither drain a tenant's budget nor escape the limit.
func TestRateLimitUnknownKeys(t *testing.T) {
	hs := newHarness(t, Config{RequireKeys: true, RateLimit: RateLimit{PerSecond: 1, Burst: 2}}, nil)
	hs.srv.now = (&fakeClock{now: time.Unix(1_700_000_000, 0)}).Now
	hs.store.keys["glk_acme"] = store.Key{Tenant: "acme"}
	var codes []int
	for i := range 5 {
		req := httptest.NewRequest(http.MethodGet, "/v1/images", nil)
		req.Header.Set("Authorization", "Bearer glk_guess"+string(rune('a'+i)))
		codes = append(codes, hs.do(req).Code)
	}
	want := []int{401, 401, 429, 429, 429}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("guessed keys = %v; want %v", codes, want)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/images", nil)
	req.Header.Set("Authorization", "Bearer glk_acme")
	if rec := hs.do(req); rec.Code != http.StatusOK {
		t.Errorf("a valid key after the guesses = %d; want 200", rec.Code)
	}
	if got := throttledCount(t, hs.reg, unauthenticated, "rate"); got != 3 {
		t.Errorf("throttled unauthenticated = %v; want 3", got)
	}
}

// blockingBody is an upload body that sends nothing until released.
type blockingBody struct {
	started chan struct{}
	release chan struct{}
	r       io.Reader
}

func (b *blockingBody) Read(p []byte) (int, error) {
	select {
	case <-b.started:
	default:
		close(b.started)
	}
	<-b.release
	return b.r.Read(p)
}

func TestUploadConcurrencyCap(t *testing.T) {
	hs := newHarness(t, Config{RateLimit: RateLimit{MaxUploads: 1}}, nil)
	hs.store.keys["glk_acme"] = store.Key{Tenant: "acme"}
	img := pngBytes(t, 8, 8, 1)
	body := &blockingBody{started: make(chan struct{}), release: make(chan struct{}), r: bytes.NewReader(img)}
	first := make(chan int, 1)
	go func() {
		req := httptest.NewRequest(http.MethodPost, "/v1/images", body)
		req.Header.Set("Content-Type", "image/png")
		first <- hs.do(req).Code
	}()
	select {
	case <-body.started: // the first upload holds its slot, reading
	case <-time.After(10 * time.Second):
		t.Fatal("the first upload never started reading its body")
	}
	rec := hs.uploadRaw(t, "", "image/png", pngBytes(t, 8, 8, 2))
	detail := problemOf(t, rec, http.StatusTooManyRequests)
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q; want 1", got)
	}
	if !contains(detail, "uploads in progress") {
		t.Errorf("detail %q does not say why", detail)
	}
	// Reads and other tenants' uploads are not held up.
	if rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images", nil)); rec.Code != http.StatusOK {
		t.Errorf("list during the upload = %d; want 200", rec.Code)
	}
	if rec := hs.uploadRaw(t, "", "image/png", pngBytes(t, 8, 8, 3), "X-API-Key", "glk_acme"); rec.Code != http.StatusAccepted {
		t.Errorf("acme's upload = %d; want 202", rec.Code)
	}
	close(body.release)
	if code := <-first; code != http.StatusAccepted {
		t.Fatalf("first upload = %d; want 202", code)
	}
	if rec := hs.uploadRaw(t, "", "image/png", pngBytes(t, 8, 8, 4)); rec.Code != http.StatusAccepted {
		t.Errorf("upload after the slot freed = %d; want 202 (%s)", rec.Code, rec.Body)
	}
	if got := throttledCount(t, hs.reg, "default", "uploads"); got != 1 {
		t.Errorf("throttled uploads = %v; want 1", got)
	}
}

func TestRateLimitConfig(t *testing.T) {
	for _, rl := range []RateLimit{{PerSecond: -1}, {MaxUploads: -1}, {PerSecond: 1, Burst: -2}} {
		_, err := New(Config{RateLimit: rl}, Deps{
			Store: newFakeStore(), Blobs: newFakeBlobs(), Queue: &fakeQueue{},
			IsBlobNotFound: func(error) bool { return false },
		})
		if err == nil {
			t.Errorf("New with %+v succeeded; want an error", rl)
		}
	}
	// Off by default: no headers, no 429.
	hs := newHarness(t, Config{}, nil)
	for range 50 {
		rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images", nil))
		if rec.Code != http.StatusOK || rec.Header().Get("RateLimit-Limit") != "" {
			t.Fatalf("no limit set: %d, RateLimit-Limit %q", rec.Code, rec.Header().Get("RateLimit-Limit"))
		}
	}
}

// An upload that waits for its results (?wait=) gives its slot back once its
// bytes are stored: the cap bounds uploads in progress, not waiting clients.
func TestUploadSlotFreedWhileWaiting(t *testing.T) {
	hs := newHarness(t, Config{RateLimit: RateLimit{MaxUploads: 1}}, nil)
	first := make(chan int, 1)
	go func() {
		// Nothing processes jobs here, so this waits the whole 3 s.
		first <- hs.uploadRaw(t, "?wait=3s", "image/png", pngBytes(t, 8, 8, 1)).Code
	}()
	for deadline := time.Now().Add(10 * time.Second); hs.store.count() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first upload was not stored: %d images", hs.store.count())
		}
	}
	// The slot is freed just after the image is stored and queued: allow
	// that moment, but far less than the first upload's 3 s wait.
	var rec *httptest.ResponseRecorder
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		rec = hs.uploadRaw(t, "", "image/png", pngBytes(t, 8, 8, 2))
		if rec.Code != http.StatusTooManyRequests || time.Now().After(deadline) {
			break
		}
	}
	if rec.Code != http.StatusAccepted {
		t.Errorf("upload while another waits for its result = %d; want 202 (%s)", rec.Code, rec.Body)
	}
	if code := <-first; code != http.StatusAccepted {
		t.Errorf("waiting upload = %d; want 202 once its wait ran out", code)
	}
}
