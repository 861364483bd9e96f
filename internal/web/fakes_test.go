package web

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// fakeStore is an in-memory Store.
type fakeStore struct {
	mu      sync.Mutex
	images  map[string]*job.Image // by id
	keys    map[string]store.Key  // by secret
	lastOpt store.ListOptions
	page    store.Page
	listErr error
	panicOn string // method name that panics, for recovery tests
	similar []store.Similar
	simArgs [2]int // max distance and limit of the last SimilarImages
}

func newFakeStore() *fakeStore {
	return &fakeStore{images: map[string]*job.Image{}, keys: map[string]store.Key{}}
}

func clone(img *job.Image) *job.Image {
	c := *img
	c.Features = append([]job.Feature(nil), img.Features...)
	return &c
}

func (f *fakeStore) CreateImage(_ context.Context, img *job.Image) (*job.Image, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if got, ok := f.images[img.ID]; ok {
		return clone(got), false, nil
	}
	c := clone(img)
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	c.CreatedAt, c.UpdatedAt = now, now
	f.images[img.ID] = c
	return clone(c), true, nil
}

func (f *fakeStore) GetImage(_ context.Context, tenant, id string) (*job.Image, error) {
	if f.panicOn == "GetImage" {
		panic("fake store exploded")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[id]
	if !ok || img.Tenant != tenant {
		return nil, store.ErrNotFound
	}
	return clone(img), nil
}

func (f *fakeStore) Reopen(_ context.Context, tenant, id string, from, to []job.Feature) (*job.Image, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[id]
	if !ok || img.Tenant != tenant {
		return nil, false, store.ErrNotFound
	}
	if !img.Status.Terminal() || !slices.Equal(img.Features, from) {
		return clone(img), false, nil
	}
	img.Features = append([]job.Feature(nil), to...)
	img.Status, img.Error, img.StartedAt, img.FinishedAt = job.StatusQueued, "", nil, nil
	return clone(img), true, nil
}

func (f *fakeStore) ListImages(_ context.Context, opt store.ListOptions) (store.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastOpt = opt
	if f.listErr != nil {
		return store.Page{}, f.listErr
	}
	return f.page, nil
}

func (f *fakeStore) DeleteImage(_ context.Context, tenant, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[id]
	if !ok || img.Tenant != tenant {
		return store.ErrNotFound
	}
	delete(f.images, id)
	return nil
}

func (f *fakeStore) SimilarImages(_ context.Context, tenant, id string, maxDistance, limit int) ([]store.Similar, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[id]
	if !ok || img.Tenant != tenant {
		return nil, store.ErrNotFound
	}
	f.simArgs = [2]int{maxDistance, limit}
	return f.similar, nil
}

func (f *fakeStore) Authenticate(_ context.Context, secret string) (store.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[secret]
	if !ok {
		return store.Key{}, store.ErrUnauthorized
	}
	return k, nil
}

// setStatus moves an image to st, as a worker would.
func (f *fakeStore) setStatus(id string, st job.Status, labels ...job.Label) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img := f.images[id]
	img.Status = st
	if st == job.StatusDone {
		img.Result = &job.Result{Labels: labels}
	}
}

func (f *fakeStore) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.images)
}

// errBlobNotFound is fakeBlobs' not-found error.
var errBlobNotFound = errors.New("fake blobs: not found")

// fakeBlobs is an in-memory Blobs.
type fakeBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
	types map[string]string
}

func newFakeBlobs() *fakeBlobs {
	return &fakeBlobs{blobs: map[string][]byte{}, types: map[string]string{}}
}

func (f *fakeBlobs) Put(_ context.Context, key string, b []byte, contentType string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blobs[key] = append([]byte(nil), b...)
	f.types[key] = contentType
	return nil
}

func (f *fakeBlobs) Get(_ context.Context, key string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.blobs[key]
	if !ok {
		return nil, errBlobNotFound
	}
	return append([]byte(nil), b...), nil
}

func (f *fakeBlobs) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.blobs[key]; !ok {
		return errBlobNotFound
	}
	delete(f.blobs, key)
	return nil
}

func (f *fakeBlobs) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ks []string
	for k := range f.blobs {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// fakeQueue records publishes; like the real queue it deduplicates by
// image id, and jobs() reports what a worker would see.
type fakeQueue struct {
	mu    sync.Mutex
	calls []job.Job
	err   error
}

func (f *fakeQueue) Publish(_ context.Context, j job.Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.calls = append(f.calls, j)
	return nil
}

// jobs returns the distinct jobs published, in order: those the queue
// keeps, as it drops a message whose id it has seen.
func (f *fakeQueue) jobs() []job.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	var out []job.Job
	for _, j := range f.calls {
		if !seen[j.MessageID()] {
			seen[j.MessageID()] = true
			out = append(out, j)
		}
	}
	return out
}

func (f *fakeQueue) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// pngBytes encodes a w×h PNG whose pixels depend on seed, so different
// seeds give different bytes.
func pngBytes(t testing.TB, w, h int, seed byte) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{R: byte(x*7) ^ seed, G: byte(y*13) + seed, B: byte(x*y) ^ seed*3, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatalf("png.Encode: %v", err)
	}
	return buf.Bytes()
}

// hugePNG is a valid small PNG whose header claims w×h pixels.
func hugePNG(t *testing.T, w, h uint32) []byte {
	t.Helper()
	b := pngBytes(t, 4, 4, 1)
	// Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), …, CRC.
	if string(b[12:16]) != "IHDR" {
		t.Fatalf("unexpected PNG layout: %q", b[12:16])
	}
	binary.BigEndian.PutUint32(b[16:20], w)
	binary.BigEndian.PutUint32(b[20:24], h)
	binary.BigEndian.PutUint32(b[29:33], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// contains reports whether s contains every one of subs.
func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
