package worker

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/queue"
	"github.com/glimpse-oss/glimpse/internal/store"
)

func s3Event(bucket string, keys ...string) []byte {
	recs := ""
	for i, k := range keys {
		if i > 0 {
			recs += ","
		}
		recs += fmt.Sprintf(`{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":%q},"object":{"key":%q,"size":1}}}`, bucket, url.QueryEscape(k))
	}
	return []byte(`{"Records":[` + recs + `]}`)
}

// Objects written straight into the bucket under inputs/<tenant>/ become
// images through their storage events; repeats, other prefixes and our own
// keys change nothing.
func TestStorageEvents(t *testing.T) {
	r := newRig(t, queue.Config{})
	ctx := context.Background()
	cat := testPNG(t, 20)
	r.blobs.Put(ctx, "inputs/acme/holiday cat.png", cat, "image/png")
	r.blobs.Put(ctx, "inputs/acme/notes.txt", []byte("not an image"), "text/plain")
	r.blobs.Put(ctx, "elsewhere/dog.png", testPNG(t, 21), "image/png")

	p := r.pool(t, fastConfig(), classifierFunc(func(context.Context) ([]job.Label, error) { return catLabels, nil }))
	p.SetSize(1)
	publish := func(b []byte) {
		t.Helper()
		if _, err := r.nc.Request(queue.EventsSubject, b, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	publish(s3Event("photos", "inputs/acme/holiday cat.png", "elsewhere/dog.png", "inputs/acme/notes.txt"))
	publish(s3Event("photos", "inputs/acme/holiday cat.png")) // the same event again
	publish(s3Event("photos", "inputs/../x.png", "inputs/acme/gone.png"))

	id := job.NewImageID("acme", job.ContentHash(cat), "")
	img := r.waitStatus(t, id, job.StatusDone)
	if img.Tenant != "acme" || img.Filename != "holiday cat.png" || len(img.Result.Labels) == 0 || img.Attempts != 1 {
		t.Errorf("image from the event = %+v; want acme's done image, processed once", img)
	}
	if b, err := r.blobs.Get(ctx, job.InputKey("acme", id)); err != nil || len(b) != len(cat) {
		t.Errorf("canonical input copy: %d bytes, %v", len(b), err)
	}
	txt := job.NewImageID("acme", job.ContentHash([]byte("not an image")), "")
	if img := r.waitStatus(t, txt, job.StatusFailed); img.Error == "" {
		t.Error("the text object failed without a reason")
	}
	// Only those two images exist: the other prefix, the bad key and the
	// missing object made none, and the repeat made no second one.
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		d, err := r.q.Depth(ctx)
		if err != nil || d.Backlog() != 0 {
			return fmt.Errorf("backlog %+v, %v", d, err)
		}
		return nil
	})
	page, err := r.db.ListImages(ctx, store.ListOptions{Tenant: "acme"})
	if err != nil || len(page.Images) != 2 {
		t.Errorf("acme has %d images (%v); want 2", len(page.Images), err)
	}
	if page, _ := r.db.ListImages(ctx, store.ListOptions{Tenant: ".."}); len(page.Images) != 0 {
		t.Errorf("a bad key made images: %+v", page.Images)
	}
}
