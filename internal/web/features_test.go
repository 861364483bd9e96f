package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
)

func TestListFeatureFilters(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images?qr_url=https://shop.example/p/&taken_after=2024-05-01&taken_before=2024-06-01T12:00:00%2B02:00&near=48.85,2.29,25&has_faces=true", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; want 200 (%s)", rec.Code, rec.Body.String())
	}
	got := hs.store.lastOpt
	if got.QRURL != "https://shop.example/p/" ||
		!got.TakenAfter.Equal(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)) ||
		!got.TakenBefore.Equal(time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)) ||
		got.Near == nil || *got.Near != (store.Near{Lat: 48.85, Lon: 2.29, Km: 25}) ||
		got.HasFaces == nil || !*got.HasFaces {
		t.Errorf("ListOptions = %+v; want every filter parsed", got)
	}

	for _, tt := range []struct{ query, word string }{
		{"taken_after=yesterday", "taken_after"},
		{"taken_before=2024-13-01", "taken_before"},
		{"near=48.8,2.2", "near"},
		{"near=91,0,10", "near"},
		{"near=0,0,0", "near"},
		{"near=NaN,0,5", "near"},
		{"near=0,nan,5", "near"},
		{"near=0,0,NaN", "near"},
		{"taken_after=2024-06-01&taken_before=2024-05-01", "before taken_before"},
		{"taken_after=2024-05-17T14:03:11+02:00", "%2B"},
		{"has_faces=maybe", "has_faces"},
	} {
		rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images?"+tt.query, nil))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tt.word) {
			t.Errorf("%s = %d %s; want 400 naming %s", tt.query, rec.Code, rec.Body.String(), tt.word)
		}
	}
}

func TestSimilarAndThumbnail(t *testing.T) {
	hs := newHarness(t, Config{}, nil)
	a := seed(t, hs, DefaultTenant, "a.png", pngBytes(t, 4, 4, 1))
	b := seed(t, hs, DefaultTenant, "b.png", pngBytes(t, 4, 4, 2))
	hs.store.similar = []store.Similar{{Image: b, Distance: 3}}

	// Analysed without phash, or not yet: a 409 that says what to do.
	rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+a.ID+"/similar", nil))
	if detail := problemOf(t, rec, http.StatusConflict); !strings.Contains(detail, "features=phash") {
		t.Errorf("similar of an image without phash: %q; want advice to add it", detail)
	}
	hs.store.mu.Lock()
	hs.store.images[a.ID].Features = []job.Feature{job.FeatureLabels, job.FeaturePHash}
	hs.store.mu.Unlock()
	rec = hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+a.ID+"/similar", nil))
	if detail := problemOf(t, rec, http.StatusConflict); !strings.Contains(detail, "queued") || rec.Header().Get("Retry-After") == "" {
		t.Errorf("similar of an image not analysed yet: %q; want its status and a Retry-After", detail)
	}
	// Done, but its hash failed: no retrying will help, and it says why.
	hs.store.mu.Lock()
	hs.store.images[a.ID].Status = job.StatusDone
	hs.store.images[a.ID].Result = &job.Result{Errors: map[job.Feature]string{job.FeaturePHash: "phash: empty image"}}
	hs.store.mu.Unlock()
	rec = hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+a.ID+"/similar", nil))
	if detail := problemOf(t, rec, http.StatusConflict); !strings.Contains(detail, "phash: empty image") || rec.Header().Get("Retry-After") != "" {
		t.Errorf("similar of an image whose hash failed: %q, Retry-After %q; want the reason and no retry", detail, rec.Header().Get("Retry-After"))
	}
	hs.store.mu.Lock()
	hs.store.images[a.ID].Result = &job.Result{PHash: "c3a1f0e08c0f1e3c"}
	hs.store.mu.Unlock()

	rec = hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+a.ID+"/similar?max_distance=12&limit=5", nil))
	var list SimilarList
	decode(t, rec, &list)
	if rec.Code != 200 || len(list.Images) != 1 || list.Images[0].Distance != 3 || list.Images[0].Image.ID != b.ID {
		t.Errorf("similar = %d %+v; want b at distance 3", rec.Code, list)
	}
	if hs.store.simArgs != [2]int{12, 5} {
		t.Errorf("store asked with %v; want max distance 12, limit 5", hs.store.simArgs)
	}
	for _, q := range []string{"max_distance=65", "max_distance=x", "limit=0"} {
		if rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+a.ID+"/similar?"+q, nil)); rec.Code != 400 {
			t.Errorf("similar?%s = %d; want 400", q, rec.Code)
		}
	}
	if rec := hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/img_000000000000000000000000/similar", nil)); rec.Code != 404 {
		t.Errorf("similar of unknown image = %d; want 404", rec.Code)
	}

	// No thumbnail was made: 404 that says how to get one.
	rec = hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+a.ID+"/thumbnail", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "features=thumbnail") {
		t.Errorf("thumbnail before one exists = %d %s; want 404 with advice", rec.Code, rec.Body.String())
	}
	hs.store.mu.Lock()
	hs.store.images[a.ID].Status = job.StatusDone
	hs.store.images[a.ID].Result = &job.Result{Thumbnail: &job.Thumbnail{Width: 4, Height: 4, ContentType: "image/jpeg"}}
	hs.store.mu.Unlock()
	hs.blobs.Put(t.Context(), job.ThumbnailKey(a.ID), []byte("JPEGBYTES"), "image/jpeg")
	rec = hs.do(httptest.NewRequest(http.MethodGet, "/v1/images/"+a.ID+"/thumbnail", nil))
	if rec.Code != 200 || rec.Body.String() != "JPEGBYTES" || rec.Header().Get("Content-Type") != "image/jpeg" {
		t.Errorf("thumbnail = %d %q %q; want the stored JPEG", rec.Code, rec.Body.String(), rec.Header().Get("Content-Type"))
	}
}

// missingFeature tells a caller why an image has no answer for a feature
// and what would get one; for an image keyed by an Idempotency-Key,
// sending the same bytes again makes another image, and it says so.
func TestMissingFeature(t *testing.T) {
	sha := job.ContentHash([]byte("x"))
	plain := &job.Image{ID: job.NewImageID("acme", sha, ""), Tenant: "acme", SHA256: sha, Status: job.StatusDone, Features: []job.Feature{job.FeatureLabels}}
	keyed := *plain
	keyed.ID = job.NewImageID("acme", sha, "order-1")
	queued := *plain
	queued.Status, queued.Features = job.StatusQueued, []job.Feature{job.FeatureLabels, job.FeaturePHash}
	failed := queued
	failed.Status, failed.Error = job.StatusFailed, "the data is not a recognised image"
	broke := queued
	broke.Status, broke.Result = job.StatusDone, &job.Result{Errors: map[job.Feature]string{job.FeaturePHash: "phash: empty image"}}
	for _, tt := range []struct {
		name string
		img  *job.Image
		want string
	}{
		{"not asked", plain, "send the same image again with features=phash"},
		{"not asked, keyed", &keyed, "Idempotency-Key"},
		{"not yet", &queued, "it is queued; ask again once it is done"},
		{"failed", &failed, "the data is not a recognised image"},
		{"its analyzer failed", &broke, "phash: empty image"},
	} {
		if got := missingFeature(tt.img, job.FeaturePHash); !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q; want it to say %q", tt.name, got, tt.want)
		}
	}
}
